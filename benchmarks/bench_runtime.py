"""Runtime benchmark: ONNX Runtime FP32, one CPU thread; ratios measured in one run (DESIGN.md §5).

    nice -n 10 .venv/bin/python benchmarks/bench_runtime.py [--bundle BUNDLE | --models DIR] [--seconds 20]

With ``--bundle`` it measures that bundle (load includes verifying it); otherwise it exports
realistic-size stand-in models (benchmarks/synthetic_models.py) and streams them through a
:class:`Pipeline` built from those graphs. The machine may be shared, so next to wall time it
reports CPU time of the calling thread (``time.thread_time``; ONNX Runtime with one intra-op
thread computes on the caller), which other processes' load barely moves, and the load average
at start and end. It reports:

- real-time factor of the whole pipeline (target <= 0.25), wall and CPU;
- per-call latency p99 over the audio duration each call covers (target <= 50 %), wall and CPU;
- runtime overhead over calling the backend directly with the same inputs (target <= 5 %): CPU
  time outside the backend calls within the same run (the Python around the engines), and
  runtime vs hand-written direct loops issuing the same ONNX Runtime calls (best of three each,
  alternating), both IOBinding (what the runtime issues) and plain ``session.run``;
- load to first result (target <= 1 s): from the ``Pipeline.from_bundle`` call to the first
  result with audio fed as fast as possible; the first result needs one SER window of audio
  (``first_result_needs_audio_s``) since a result is one scored window. Measured with the
  first-ever verification (every file hashed) and with ``verify="cached"`` (what `emotrt run`
  does once the bundle's files verified);
- what batching k TSE hops per call would save: CPU per hop of ``tse_offline`` over k hops of
  audio (a proxy for a k-hop ``tse_step``, which would need a re-export) against one ``tse_step`` hop;
- MACs/FLOPs per second of audio of each engine and what they predict for a Jetson Orin Nano.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
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


def load_bundle(bundle: Path, verify=True):
    """A Pipeline from a real bundle (ONNX Runtime, one thread), its load start and its ONNX files."""
    from emotrt.runtime.pipeline import Pipeline, PipelineConfig
    from emotrt.runtime.vad import VadConfig

    # SER on every window (worst case for latency): the energy gate at -60 dBFS, not the bundle's VAD.
    config = PipelineConfig(threads=1, vad=VadConfig(energy_threshold_db=-60.0, use_model=False))
    started = time.perf_counter()
    pipeline = Pipeline.from_bundle(bundle, backend="onnxruntime", config=config, verify=verify)
    files = {name: pipeline.bundle.model_path(name) for name in ("tse_step", "ser")}
    return pipeline, started, files


def first_result(pipeline, audio: np.ndarray, started: float):
    """Seconds from ``started`` to the first result, feeding hops as fast as possible; and the audio it took."""
    stream = pipeline.create_stream(pipeline.speakers.names()[0], pipeline.environments.names()[0])
    block, i = pipeline.layout.chunk, 0
    while not list(stream.results()):
        stream.accept_waveform(16000, audio[i:i + block])
        i += block
    stream.close()
    return time.perf_counter() - started, i / 16000.0


class EngineClock:
    """Wraps the ONNX Runtime sessions' run calls to add up wall and thread-CPU seconds spent inside them."""

    def __init__(self, *engines) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        for engine in engines:
            for method in ("run", "run_with_iobinding"):
                self._wrap(engine.session, method)

    def _wrap(self, session, method: str) -> None:
        inner = getattr(session, method)

        def timed(*args, **kwargs):
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu += time.thread_time() - c0
                self.wall += time.perf_counter() - w0

        setattr(session, method, timed)


def stream_timed(pipeline, audio: np.ndarray, block: int, clock: "EngineClock" = None):
    """Feed ``audio`` in ``block``-sample calls: per-call wall and CPU seconds, results, stream, backend CPU seconds."""
    stream = pipeline.create_stream(pipeline.speakers.names()[0], pipeline.environments.names()[0])
    walls, cpus, inside, results = [], [], [], []
    before = clock.cpu if clock else 0.0
    for i in range(0, audio.shape[0] - block + 1, block):
        b0 = clock.cpu if clock else 0.0
        w0, c0 = time.perf_counter(), time.thread_time()
        stream.accept_waveform(16000, audio[i:i + block])
        results.extend(stream.results())
        cpus.append(time.thread_time() - c0)
        walls.append(time.perf_counter() - w0)
        inside.append(clock.cpu - b0 if clock else 0.0)
    stream.inside = np.array(inside)  # per-call backend CPU seconds, for the median overhead
    return np.array(walls), np.array(cpus), results, stream, (clock.cpu - before if clock else 0.0)


def _tse_feed(pipeline):
    from emotrt.runtime.backends.stepper import state_arrays

    feed = state_arrays(pipeline.tse.contract)
    feed["spk_emb"] = pipeline.speaker_embedding(pipeline.speakers.names()[0])[None, :]
    return feed


def direct_plain(pipeline, audio: np.ndarray, speech_ends) -> float:
    """CPU seconds of plain ``session.run`` calls, no runtime: TSE every hop, SER at the same window ends."""
    tse, ser, layout = pipeline.tse.session, pipeline.ser.session, pipeline.layout
    pairs = [(s.input_name, s.output_name) for s in pipeline.tse.contract.states]
    feed = _tse_feed(pipeline)
    names = [o.name for o in tse.get_outputs()]
    env = pipeline.environment_token(pipeline.environments.names()[0])[None, :]
    extracted = np.zeros(audio.shape[0], dtype=np.float32)
    speech_ends = set(speech_ends)
    chunk = layout.chunk
    c0 = time.thread_time()
    for i in range(0, audio.shape[0] - chunk + 1, chunk):
        feed["audio"] = audio[None, i:i + chunk]
        outs = dict(zip(names, tse.run(names, feed)))
        for name_in, name_out in pairs:
            feed[name_in] = outs[name_out]
        extracted[i:i + chunk] = outs["audio_out"][0]
        if i + chunk in speech_ends:
            ser.run(None, {"audio": extracted[None, i + chunk - layout.window:i + chunk], "env_token": env})
    return time.thread_time() - c0


def direct_bound(pipeline, audio: np.ndarray, speech_ends) -> float:
    """CPU seconds of the calls the runtime issues (IOBinding, ping-pong state), written out by hand."""
    tse, ser, layout = pipeline.tse.session, pipeline.ser.session, pipeline.layout
    feed = _tse_feed(pipeline)
    chunk = layout.chunk
    hop_in, hop_out = np.zeros((1, chunk), np.float32), np.zeros((1, chunk), np.float32)
    copies = {s.input_name: (feed[s.input_name].copy(), feed[s.input_name].copy()) for s in pipeline.tse.contract.states}
    bindings = []
    for parity in (0, 1):
        binding = tse.io_binding()
        for name, array in (("audio", hop_in), ("spk_emb", feed["spk_emb"])):
            binding.bind_input(name, "cpu", 0, np.float32, array.shape, array.ctypes.data)
        binding.bind_output("audio_out", "cpu", 0, np.float32, hop_out.shape, hop_out.ctypes.data)
        for s in pipeline.tse.contract.states:
            a, b = copies[s.input_name][parity], copies[s.input_name][1 - parity]
            binding.bind_input(s.input_name, "cpu", 0, np.float32, a.shape, a.ctypes.data)
            binding.bind_output(s.output_name, "cpu", 0, np.float32, b.shape, b.ctypes.data)
        bindings.append(binding)
    env = pipeline.environment_token(pipeline.environments.names()[0])[None, :]
    extracted = np.zeros(audio.shape[0], dtype=np.float32)
    speech_ends = set(speech_ends)
    c0 = time.thread_time()
    for k, i in enumerate(range(0, audio.shape[0] - chunk + 1, chunk)):
        hop_in[0] = audio[i:i + chunk]
        tse.run_with_iobinding(bindings[k % 2])
        extracted[i:i + chunk] = hop_out[0]
        if i + chunk in speech_ends:
            ser.run(None, {"audio": extracted[None, i + chunk - layout.window:i + chunk], "env_token": env})
    return time.thread_time() - c0


def batching_estimate(pipeline, audio: np.ndarray, hops=(1, 5, 25, 50)) -> dict:
    """CPU ms per hop: one tse_step hop, and tse_offline over k hops of audio (proxy for a k-hop step graph)."""
    chunk = pipeline.layout.chunk
    emb = pipeline.speaker_embedding(pipeline.speakers.names()[0])[None, :]
    stepper = pipeline.tse.create_stepper()
    n = 100
    c0 = time.thread_time()
    for i in range(n):
        stepper.step({"audio": audio[None, i * chunk:(i + 1) * chunk], "spk_emb": emb})
    out = {"tse_step_1_hop": 1000 * (time.thread_time() - c0) / n}
    offline = pipeline.tse_offline
    if offline is None:
        return out
    for k in hops:
        calls = max(1, n // k)
        c0 = time.thread_time()
        for _ in range(calls):
            offline._run({"audio": audio[None, :k * chunk], "spk_emb": emb})
        out["tse_offline_{}_hops".format(k)] = 1000 * (time.thread_time() - c0) / (calls * k)
    return out


def measure_load(bundle: Path) -> dict:
    """Load to first result in fresh interpreters (imports included): the first run hashes every file, the next uses the record."""
    env = dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp(prefix="emotrt-bench-cache-"))
    figures = {}
    for label in ("first_ever_run", "later_run"):
        out = subprocess.run([sys.executable, __file__, "--bundle", str(bundle), "--load-only"],
                             env=env, check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
        figures[label] = json.loads(out.strip().splitlines()[-1])
    return figures


def _ratio(seconds: np.ndarray, q: float, covered: float) -> float:
    return float(np.percentile(seconds, q)) / covered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a bundle to benchmark (its first speaker and environment)")
    parser.add_argument("--models", type=Path, help="directory with tse_step.onnx and ser.onnx (default: export stand-ins)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from synthetic_models import count_macs, write_models

    load_start = os.getloadavg()
    audio = _speech(args.seconds)
    load_figures = {}
    if args.load_only:
        cpu_started = time.process_time()
        pipeline, load_started, _ = load_bundle(args.bundle, verify="cached")
        loaded = time.perf_counter() - load_started
        to_first, first_audio = first_result(pipeline, audio, load_started)
        print(json.dumps({"load_s": loaded, "load_to_first_result_s": to_first, "first_audio_s": first_audio,
                          "load_to_first_result_cpu_s": time.process_time() - cpu_started}))
        return
    if args.bundle:
        load_figures = measure_load(args.bundle)
        pipeline, load_started, files = load_bundle(args.bundle, verify=False)
        first_audio = load_figures["first_ever_run"]["first_audio_s"]
    else:
        models = args.models or write_models(Path(tempfile.mkdtemp(prefix="emotrt-bench-")))
        pipeline, load_started = load_pipeline(models)
        files = {name: models / (name + ".onnx") for name in ("tse_step", "ser")}
        loaded = time.perf_counter() - load_started
        to_first, first_audio = first_result(pipeline, audio, load_started)
        load_figures["no_bundle"] = {"load_s": loaded, "load_to_first_result_s": to_first}

    # Runtime and direct calls alternate, best of three each, so load from other processes hits both alike.
    clock = EngineClock(*[e for e in (pipeline.tse, pipeline.ser) if e is not None])
    runs, plains, bounds, outside, median_outside = [], [], [], [], []
    for _ in range(3):
        walls, cpus, results, stream, backend_cpu = stream_timed(pipeline, audio, pipeline.layout.chunk, clock)
        stream.close()
        runs.append((walls, cpus))
        outside.append(float(cpus.sum()) / backend_cpu - 1.0)
        # per hop, robust to hops hit by other processes: median outside time over median backend time
        median_outside.append(float(np.median(cpus - stream.inside) / np.median(stream.inside)))
        speech_ends = [int(round(r.end * 16000)) for r in results if r.speech]
        plains.append(direct_plain(pipeline, audio, speech_ends))
        bounds.append(direct_bound(pipeline, audio, speech_ends))
    walls, cpus = min(runs, key=lambda run: run[1].sum())
    block = pipeline.layout.chunk
    covered = block / 16000.0
    large_block = 5 * block
    large_walls, large_cpus = stream_timed(pipeline, audio, large_block)[:2]
    # The same engines with SER on its worker thread (what `emotrt run` uses): calls wait for TSE only.
    from dataclasses import replace

    from emotrt.runtime.pipeline import Pipeline

    async_pipeline = Pipeline(pipeline.tse, pipeline.ser, pipeline.environments, pipeline.speakers,
                              config=replace(pipeline.config, ser_async=True))
    async_walls, async_cpus, _, async_stream, _ = stream_timed(async_pipeline, audio, block)
    async_stream.input_finished()
    async_pipeline.ser_executor.shutdown(wait=True)
    batching = batching_estimate(pipeline, audio)
    macs = {name: count_macs(path) for name, path in files.items()}
    layout = pipeline.layout
    per_second = {
        "tse_step": macs["tse_step"] * (16000.0 / layout.chunk),
        "ser": macs["ser"] * (16000.0 / layout.ser_hop),
    }
    runtime_cpu = float(cpus.sum())
    figures = {
        "load_average_start_end": [load_start, os.getloadavg()],
        "audio_seconds": args.seconds,
        "hop_ms": 1000 * covered,
        "ser_window_s": layout.window / 16000.0,
        "ser_hop_s": layout.ser_hop / 16000.0,
        "speech_windows": len(speech_ends),
        "real_time_factor_wall": float(walls.sum()) / args.seconds,
        "real_time_factor_cpu": runtime_cpu / args.seconds,
        "call_p50_over_audio_wall": _ratio(walls, 50, covered),
        "call_p99_over_audio_wall": _ratio(walls, 99, covered),
        "call_p99_over_audio_cpu": _ratio(cpus, 99, covered),
        "call_max_over_audio_cpu": float(cpus.max()) / covered,
        "call_p99_over_audio_100ms_blocks_wall": _ratio(large_walls, 99, large_block / 16000.0),
        "call_p99_over_audio_100ms_blocks_cpu": _ratio(large_cpus, 99, large_block / 16000.0),
        "call_p99_over_audio_ser_async_wall": _ratio(async_walls, 99, covered),
        "call_p99_over_audio_ser_async_cpu": _ratio(async_cpus, 99, covered),
        "runtime_cpu_s": runtime_cpu,
        "direct_bound_cpu_s": min(bounds),
        "direct_plain_cpu_s": min(plains),
        "runtime_overhead_outside_backend_cpu_same_run": min(outside),
        "runtime_overhead_outside_backend_cpu_median_hop": min(median_outside),
        "runtime_overhead_vs_direct_bound_calls_cpu": runtime_cpu / min(bounds) - 1.0,
        "runtime_overhead_vs_direct_plain_calls_cpu": runtime_cpu / min(plains) - 1.0,
        "load": load_figures,
        "first_result_needs_audio_s": first_audio,
        "batching_cpu_ms_per_hop": batching,
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
