"""Runtime benchmark: ONNX Runtime FP32, one CPU thread; ratios measured in one run (DESIGN.md §5).

    nice -n 10 .venv/bin/python benchmarks/bench_runtime.py [--bundle BUNDLE | --models DIR] [--seconds 20]

With ``--bundle`` it measures that bundle (load includes verifying it); otherwise it exports
realistic-size stand-in models (benchmarks/synthetic_models.py) and streams them through a
:class:`Pipeline` built from those graphs. It reports:

- real-time factor of the whole pipeline (target <= 0.25);
- per-call latency p99 over the audio duration each call covers (target <= 50 %);
- runtime overhead over calling the backend directly with the same inputs (target <= 5 %), both
  as runtime vs direct-call loops (best of three each, alternating) and, less sensitive to other
  load on the machine, as the time outside the backend calls within the same run;
- load to first result (target <= 1 s);
- MACs/FLOPs per second of audio of each engine and what they predict for a Jetson Orin Nano.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Orin Nano 8 GB GPU: 1024 CUDA cores at 625 MHz (1020 MHz "Super") -> 2 FLOP/core/cycle
# = 1.28 TFLOPS FP32 (2.1 Super); Ampere tensor cores roughly 4x that for FP16. Batch-1 audio
# graphs of this size reach a small fraction of peak; 10 % is the planning assumption used below.
ORIN_NANO_FP32_FLOPS = 1.28e12
ORIN_NANO_FP16_TENSOR_FLOPS = 5.1e12
UTILISATION = 0.10


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000.0
    envelope = (np.sin(2 * np.pi * 0.3 * t) > -0.3).astype(np.float32)
    voice = 0.2 * np.sin(2 * np.pi * 150 * t * (1 + 0.05 * np.sin(2 * np.pi * 4 * t)))
    return (envelope * voice + 0.01 * rng.normal(size=t.shape)).astype(np.float32)


def _tables(root: Path, spk_dim: int, d_model: int):
    from emotrt.runtime.tables import VectorTable

    rng = np.random.default_rng(1)
    env = VectorTable(root / "env", kind="environment", dim=d_model)
    env.add("busy_cafe", rng.normal(size=d_model), replace=True)
    speakers = VectorTable(root / "speakers", kind="speaker", dim=spk_dim)
    speakers.add("alice", rng.normal(size=spk_dim) / np.sqrt(spk_dim), replace=True)
    return env, speakers


def load_pipeline(models: Path):
    """A Pipeline on the stand-in graphs, ONNX Runtime FP32, one thread; and the load time."""
    from emotrt.runtime.backends import load_engine
    from emotrt.runtime.pipeline import Pipeline, PipelineConfig
    from emotrt.runtime.vad import VadConfig

    started = time.perf_counter()
    tse, ser = load_engine(models / "tse_step.onnx", threads=1), load_engine(models / "ser.onnx", threads=1)
    env, speakers = _tables(models, tse.contract.spk_dim, ser.contract.d_model)
    config = PipelineConfig(vad=VadConfig(energy_threshold_db=-60.0))
    return Pipeline(tse, ser, env, speakers, config=config), started


def load_bundle(bundle: Path):
    """A Pipeline from a real bundle (ONNX Runtime, one thread), its load start and its ONNX files."""
    from emotrt.runtime.pipeline import Pipeline, PipelineConfig

    started = time.perf_counter()
    pipeline = Pipeline.from_bundle(bundle, backend="onnxruntime", config=PipelineConfig(threads=1))
    files = {name: pipeline.bundle.model_path(name) for name in ("tse_step", "ser")}
    return pipeline, started, files


class EngineClock:
    """Wraps engines' ``_run`` to add up the seconds spent inside the backend during a run."""

    def __init__(self, *engines) -> None:
        self.seconds = 0.0
        for engine in engines:
            self._wrap(engine)

    def _wrap(self, engine) -> None:
        inner = engine._run

        def timed(feed):
            t0 = time.perf_counter()
            try:
                return inner(feed)
            finally:
                self.seconds += time.perf_counter() - t0

        engine._run = timed


def stream_timed(pipeline, audio: np.ndarray, block: int, clock: "EngineClock" = None):
    """Feed ``audio`` in ``block``-sample calls; per-call seconds, the results, the stream, backend seconds."""
    stream = pipeline.create_stream(pipeline.speakers.names()[0], pipeline.environments.names()[0])
    times, results = [], []
    before = clock.seconds if clock else 0.0
    for i in range(0, audio.shape[0] - block + 1, block):
        t0 = time.perf_counter()
        stream.accept_waveform(16000, audio[i:i + block])
        results.extend(stream.results())
        times.append(time.perf_counter() - t0)
    return np.array(times), results, stream, (clock.seconds - before if clock else 0.0)


def direct_timed(pipeline, audio: np.ndarray, speech_ends) -> float:
    """The same engine calls with no runtime around them: TSE every hop, SER at the same window ends."""
    from emotrt.runtime.backends.stepper import state_arrays

    tse, ser, layout = pipeline.tse.session, pipeline.ser.session, pipeline.layout
    pairs = [(s.input_name, s.output_name) for s in pipeline.tse.contract.states]
    feed = state_arrays(pipeline.tse.contract)
    feed["spk_emb"] = pipeline.speaker_embedding(pipeline.speakers.names()[0])[None, :]
    names = [o.name for o in tse.get_outputs()]
    env = pipeline.environment_token(pipeline.environments.names()[0])[None, :]
    extracted = np.zeros(audio.shape[0], dtype=np.float32)
    speech_ends = set(speech_ends)
    chunk = layout.chunk
    t0 = time.perf_counter()
    for i in range(0, audio.shape[0] - chunk + 1, chunk):
        feed["audio"] = audio[None, i:i + chunk]
        outs = dict(zip(names, tse.run(names, feed)))
        for name_in, name_out in pairs:
            feed[name_in] = outs[name_out]
        extracted[i:i + chunk] = outs["audio_out"][0]
        if i + chunk in speech_ends:
            ser.run(None, {"audio": extracted[None, i + chunk - layout.window:i + chunk], "env_token": env})
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a bundle to benchmark (its first speaker and environment)")
    parser.add_argument("--models", type=Path, help="directory with tse_step.onnx and ser.onnx (default: export stand-ins)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from synthetic_models import count_macs, write_models

    audio = _speech(args.seconds)
    if args.bundle:
        pipeline, load_started, files = load_bundle(args.bundle)
    else:
        models = args.models or write_models(Path(tempfile.mkdtemp(prefix="emotrt-bench-")))
        pipeline, load_started = load_pipeline(models)
        files = {name: models / (name + ".onnx") for name in ("tse_step", "ser")}
    speaker, environment = pipeline.speakers.names()[0], pipeline.environments.names()[0]
    first = pipeline.create_stream(speaker, environment)
    block = pipeline.layout.chunk
    i = 0
    while not list(first.results()):
        first.accept_waveform(16000, audio[i:i + block])
        i += block
    load_to_first = time.perf_counter() - load_started
    first_audio = i / 16000.0

    # Runtime and direct calls alternate, best of three each, so load from other processes hits both alike.
    clock = EngineClock(*[e for e in (pipeline.tse, pipeline.ser, pipeline.vad) if e is not None])
    runs, directs, inside = [], [], []
    for _ in range(3):
        times, results, stream, backend_seconds = stream_timed(pipeline, audio, block, clock)
        stream.close()
        runs.append(times)
        inside.append(float(times.sum()) / backend_seconds - 1.0)
        speech_ends = [int(round(r.end * 16000)) for r in results if r.speech]
        directs.append(direct_timed(pipeline, audio, speech_ends))
    times = min(runs, key=lambda t: t.sum())
    direct = min(directs)
    runtime_total = float(times.sum())
    covered = block / 16000.0
    large_block = 5 * block
    large_times = stream_timed(pipeline, audio, large_block)[0]
    macs = {name: count_macs(path) for name, path in files.items()}
    layout = pipeline.layout
    per_second = {
        "tse_step": macs["tse_step"] * (16000.0 / layout.chunk),
        "ser": macs["ser"] * (16000.0 / layout.ser_hop),
    }
    figures = {
        "audio_seconds": args.seconds,
        "hop_ms": 1000 * covered,
        "ser_window_s": layout.window / 16000.0,
        "ser_hop_s": layout.ser_hop / 16000.0,
        "speech_windows": len(speech_ends),
        "real_time_factor": runtime_total / args.seconds,
        "call_p50_over_audio": float(np.percentile(times, 50)) / covered,
        "call_p99_over_audio": float(np.percentile(times, 99)) / covered,
        "call_max_over_audio": float(times.max()) / covered,
        "call_p99_over_audio_100ms_blocks": float(np.percentile(large_times, 99)) / (large_block / 16000.0),
        "runtime_seconds": runtime_total,
        "direct_seconds": direct,
        "runtime_overhead_vs_direct_calls": runtime_total / direct - 1.0,
        "runtime_overhead_outside_backend_same_run": min(inside),
        "load_to_first_result_s": load_to_first,
        "first_result_needs_audio_s": first_audio,
        "macs_per_call": macs,
        "gflops_per_audio_second": {k: 2 * v / 1e9 for k, v in per_second.items()},
        "orin_nano_predicted_gpu_ms_per_audio_second_fp32": {
            k: 1000 * 2 * v / (ORIN_NANO_FP32_FLOPS * UTILISATION) for k, v in per_second.items()},
        "orin_nano_predicted_gpu_ms_per_audio_second_fp16": {
            k: 1000 * 2 * v / (ORIN_NANO_FP16_TENSOR_FLOPS * UTILISATION) for k, v in per_second.items()},
    }
    pipeline.close()
    print(json.dumps(figures, indent=1, sort_keys=True))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
