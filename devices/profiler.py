"""``emotrt profile``: the streaming pipeline per stage on this device, trtexec-grade statistics.

Every precision asked for gets its own pipeline and stream over the same engines' backend;
every hop is fed to all of them in a fresh seeded random order, so they share the machine's load and
no stream always runs right after the same other one (which would hand it warm caches).
Stages are timed by thin proxies around what the stream calls (resampler, TSE stepper, VAD,
SER engine): the runtime's code is untouched and only a ``perf_counter`` pair per stage is
added. At ``--pace max`` one more, uninstrumented stream of the first precision runs in the
same shuffle, which gives the profiler's own cost (real-time factor with and without timing).

    from emotrt.devices.profiler import ProfileConfig, profile_bundle
    doc = profile_bundle("bundle/", ProfileConfig(duration_s=10, precisions=("fp32",)))
    doc["runs"][0]["stages"]["tse_step"]["p99_ms"]
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from emotrt.devices.latency import stability, summarize, warnings_for
from emotrt.devices.power import ResourceSampler, power_mode
from emotrt.devices.profile_audio import MicBlocks, load_source
from emotrt.devices.profile_document import SCHEMA, ProfileError, bundle_id, device_info, emotrt_commit
from emotrt.devices.stage_timing import STAGES, TIMED_STAGES, ProfiledPipeline, StageClock
from emotrt.runtime.errors import BundleError, ConfigError
from emotrt.runtime.pipeline import PipelineConfig
from emotrt.runtime.vad import VadConfig

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
PACES = ("max", "realtime")
ENGINE_STAGES = ("tse_step", "ser")


@dataclass(frozen=True)
class ProfileConfig:
    """What to profile and how. ``inject_slowdown`` ((stage, factor), ...) is a test hook: it spins
    inside that stage's timer until the stage took ``factor`` times as long (a real slowdown)."""

    source: str = "synth"
    speaker: Optional[str] = None
    environment: Optional[str] = None
    pace: str = "max"
    duration_s: float = 10.0
    warmup_s: float = 1.0
    precisions: Tuple[str, ...] = ("fp32",)
    backend: str = "auto"
    ser_every_window: bool = True
    layers: bool = True
    layer_runs: int = 30
    top: int = 10
    measure_overhead: bool = True
    interval_s: float = 0.2
    buffer_s: float = 1.0
    mic_device: Optional[str] = None
    inject_slowdown: Tuple[Tuple[str, float], ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.pace not in PACES:
            problems.append("pace={!r} must be one of {}".format(self.pace, ", ".join(PACES)))
        if self.duration_s <= 0:
            problems.append("duration_s={} must be positive".format(self.duration_s))
        if self.warmup_s < 0:
            problems.append("warmup_s={} must be >= 0".format(self.warmup_s))
        if self.buffer_s < 0:
            problems.append("buffer_s={} must be >= 0".format(self.buffer_s))
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if not self.precisions or bad or len(set(self.precisions)) != len(self.precisions):
            problems.append("precisions={} must be distinct values of {}".format(",".join(self.precisions), ",".join(PRECISIONS)))
        if self.backend not in ("auto", "tensorrt", "onnxruntime"):
            problems.append("backend={!r} must be auto, tensorrt or onnxruntime".format(self.backend))
        for stage, factor in self.inject_slowdown:
            if stage not in TIMED_STAGES or factor < 1.0:
                problems.append("inject_slowdown {}={} needs a stage of {} and a factor >= 1".format(
                    stage, factor, ", ".join(TIMED_STAGES)))
        if self.layer_runs < 1 or self.top < 1:
            problems.append("layer_runs and top must be >= 1")
        if problems:
            raise ConfigError("invalid profile settings: " + "; ".join(problems))


# ----------------------------------------------------------------------------- loading


@dataclass
class Variant:
    """One measured stream: a precision on a backend, timed or not."""

    label: str
    precision: str
    pipeline: Any
    clock: Optional[StageClock]
    stream: Any = None
    processing: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)
    t_s: List[float] = field(default_factory=list)
    overruns: List[float] = field(default_factory=list)
    results: int = 0
    dropped: int = 0

    def reset(self) -> None:
        del self.processing[:], self.cpu[:], self.t_s[:], self.overruns[:]
        self.results = 0
        if self.clock is not None:
            self.clock.reset()


def load_engines(bundle: Any, precision: str, backend: str) -> Tuple[Dict[str, Any], str, str]:
    """(tse_step/ser/vad engines, backend, reason) for ``precision``; TensorRT needs this device's plans."""
    from emotrt.runtime.backends import load_engine
    from emotrt.runtime.loading import STREAMING_MODELS, choose_backend, tensorrt_available

    engines: Dict[str, Any] = {}
    if backend in ("auto", "tensorrt") and tensorrt_available() is None:
        from emotrt.runtime.fingerprint import probe_device

        device = probe_device()
        try:
            plans = {name: bundle.engine_path(name, precision, device) for name in STREAMING_MODELS}
        except BundleError as exc:
            if backend == "tensorrt":
                raise ProfileError(
                    "bundle {} has no TensorRT engines for {} on this device ({})".format(bundle.root, precision, exc.message),
                    hint="build them on the device with `emotrt build {}`, or profile --precision {} / --backend onnxruntime".format(
                        bundle.root, ",".join(sorted({e.precision for e in bundle.engines}) or ["fp32"])),
                ) from exc
        else:
            for name in STREAMING_MODELS:
                engines[name] = load_engine(plans[name], backend="tensorrt", contract=bundle.contract(name))
            chosen, reason = "tensorrt", "TensorRT engines for {} match this device".format(precision)
    if not engines:
        chosen, reason, _ = choose_backend(bundle, "onnxruntime" if backend == "auto" else backend)
        if backend == "auto":
            reason = "TensorRT not usable here ({}), using ONNX Runtime".format(tensorrt_available() or "no fitting plans")
        for name in STREAMING_MODELS:
            engines[name] = load_engine(bundle.model_path(name, precision), threads=1)
    if "vad" in bundle.models:
        engines["vad"] = load_engine(bundle.model_path("vad", "fp32"), threads=1)
    return engines, chosen, reason


def _speaker_table(bundle: Any, spk_dim: int, wanted: Optional[str], scratch: Path) -> Tuple[Any, str, Optional[str]]:
    from emotrt.runtime.tables import VectorTable

    table = bundle.speakers(dim=spk_dim)
    if wanted is not None or table.names():
        return table, wanted or table.names()[0], None
    table = VectorTable(scratch / "speakers", kind="speaker", dim=spk_dim)
    vector = np.random.default_rng(0).normal(size=spk_dim)
    table.add("profile", vector / np.linalg.norm(vector))
    return table, "profile", "the bundle has no enrolled speaker: a random embedding stands in (timing is unaffected)"


# ----------------------------------------------------------------------------- driving


def _feed(variant: Variant, rate: int, block: np.ndarray) -> Tuple[float, float]:
    c0, t0 = time.thread_time(), time.perf_counter()
    variant.stream.accept_waveform(rate, block)
    for _ in variant.stream.results():
        variant.results += 1
    return t0, c0


def drive(variants: Sequence[Variant], blocks: Iterator[np.ndarray], rate: int, block_s: float, pace: str,
          warmup_blocks: int, buffer_s: float, seed: int = 0) -> None:
    """Feed every block to every variant in a shuffled order; at real-time pace, wait for each block's arrival."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = len(variants)
    for k, block in enumerate(blocks):
        if k == warmup_blocks:
            for v in variants:
                v.reset()
        arrival = start + (k + 1) * block_s
        if pace == "live":  # a microphone: the block has just arrived; the capture ring counts what was lost
            arrival = time.perf_counter()
        elif pace == "realtime":
            lag = time.perf_counter() - arrival
            if lag < 0:
                time.sleep(-lag)
            elif lag > buffer_s:  # the capture buffer is full: this block is lost, as on a device
                for v in variants:
                    v.dropped += int(k >= warmup_blocks)
                continue
        for i in (rng.permutation(n) if n > 1 else (0,)):
            v = variants[i]
            t0, c0 = _feed(v, rate, block)
            t1 = time.perf_counter()
            v.cpu.append(time.thread_time() - c0)
            latency = t1 - t0 if pace == "max" else t1 - arrival
            v.processing.append(t1 - t0)
            v.t_s.append(k * block_s)
            if pace != "max" and latency > block_s:
                v.overruns.append(k * block_s)
            if v.clock is not None:
                v.clock.end_call(t1 - t0, latency)


def _blocks(samples: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, samples.shape[0] - size + 1, size):
        yield samples[i:i + size]


def gpu_memory_mb(engine: Any) -> Optional[Dict[str, float]]:
    """Device memory in use / total (pycuda ``mem_get_info``) where the engine runs on CUDA, else None."""
    gpu = getattr(engine, "gpu", None)
    if gpu is None:
        return None
    try:
        with gpu as cuda:
            free, total = cuda.mem_get_info()
    except Exception as exc:  # noqa: BLE001 - pycuda.driver.Error is a plain Exception; an optional figure never fails a profile
        log.info("no GPU memory figure: %s", exc)
        return None
    return {"used_mb": (total - free) / 2.0 ** 20, "total_mb": total / 2.0 ** 20}


def profiler_cost(untimed: Variant, timed: Variant, block_s: float) -> Dict[str, Any]:
    """The timed stream against the untimed one of the same precision, same hops, same run: wall and thread-CPU
    real-time factors, and the median per-hop ratio (robust to hops hit by other processes)."""
    audio = len(untimed.processing) * block_s
    out: Dict[str, Any] = {"precision": untimed.precision, "hops": len(untimed.processing)}
    for key, a, b in (("", untimed.processing, timed.processing), ("_cpu", untimed.cpu, timed.cpu)):
        out["rtf" + key + "_untimed"] = float(sum(a)) / audio
        out["rtf" + key + "_timed"] = float(sum(b)) / audio
        out["overhead" + key] = float(sum(b)) / float(sum(a)) - 1.0 if sum(a) > 0 else 0.0
    out["overhead_median_hop"] = float(np.median(timed.processing) / np.median(untimed.processing)) - 1.0
    return out


def _run_doc(v: Variant, backend: str, reason: str, block_s: float) -> Dict[str, Any]:
    assert v.clock is not None
    audio_s = len(v.processing) * block_s
    stages = {name: summarize(v.clock.samples[name]) for name in STAGES}
    stable = stability(v.clock.samples["end_to_end"])
    return {
        "precision": v.precision, "backend": backend, "backend_reason": reason,
        "audio_s": audio_s, "processing_s": float(sum(v.processing)),
        "real_time_factor": float(sum(v.processing)) / audio_s if audio_s else None,
        "real_time_factor_cpu": float(sum(v.cpu)) / audio_s if audio_s else None,
        "hops": len(v.processing), "results": v.results, "dropped_hops": v.dropped,
        "overruns": len(v.overruns),
        "stages": stages, "stability": stable,
        "timeline": {"t_s": [round(t, 4) for t in v.t_s], "overrun_t_s": [round(t, 4) for t in v.overruns]},
        "warnings": warnings_for(stages, stable["stable"], ENGINE_STAGES),
    }


def profile_bundle(path: Any, config: ProfileConfig = ProfileConfig()) -> Dict[str, Any]:
    """Profile the bundle at ``path``; returns the profile document (``profile.schema.json``)."""
    from emotrt.runtime.bundle_reader import Bundle

    with Bundle.open(path, verify="cached") as bundle, tempfile.TemporaryDirectory(prefix="emotrt-profile-") as scratch:
        bundle.require("tse_step", "ser")
        missing = [p for p in config.precisions if p not in bundle.precisions("tse_step") or p not in bundle.precisions("ser")]
        if missing and config.backend == "onnxruntime":
            raise ProfileError("bundle {} has no {} graphs (it has: {})".format(
                bundle.root, ",".join(missing), ",".join(bundle.precisions("tse_step"))),
                hint="calibrate (emotrt calibrate) and rebuild the bundle, or pick --precision among those")
        return _profile(bundle, config, Path(scratch))


def _profile(bundle: Any, config: ProfileConfig, scratch: Path) -> Dict[str, Any]:
    variants: List[Variant] = []
    loaded: List[Tuple[str, Dict[str, Any], str, str]] = []
    pipe_config = PipelineConfig(threads=1, vad=VadConfig(), ser_async=False)
    notes: List[str] = []
    try:
        for precision in config.precisions:
            engines, backend, reason = load_engines(bundle, precision, config.backend)
            loaded.append((precision, engines, backend, reason))
        spk_dim = bundle.contract("tse_step").spk_dim
        speakers, speaker, note = _speaker_table(bundle, spk_dim, config.speaker, scratch)
        if note:
            notes.append(note)
        environments = bundle.environments()
        environment = config.environment or environments.names()[0]
        slowdown = dict(config.inject_slowdown)
        for precision, engines, backend, reason in loaded:
            clock = StageClock(slowdown)
            pipeline = ProfiledPipeline(engines["tse_step"], engines["ser"], environments, speakers,
                                        vad=engines.get("vad"), config=pipe_config, backend=backend,
                                        clock=clock, ser_every_window=config.ser_every_window)
            variants.append(Variant(precision, precision, pipeline, clock))
        baseline = None
        if config.measure_overhead and config.pace == "max" and config.source != "mic":
            _, engines, backend, _ = loaded[0]
            plain = ProfiledPipeline(engines["tse_step"], engines["ser"], environments, speakers,
                                     vad=engines.get("vad"), config=pipe_config, backend=backend,
                                     ser_every_window=config.ser_every_window)
            baseline = Variant(loaded[0][0] + "-untimed", loaded[0][0], plain, None)
            variants.append(baseline)
        for v in variants:
            v.stream = v.pipeline.create_stream(speaker, environment)
        layout = variants[0].pipeline.layout
        total_s = config.duration_s + config.warmup_s
        mic = None
        if config.source == "mic":
            mic = MicBlocks(config.mic_device, total_s, config.buffer_s)
            rate, blocks, description, pace = mic.sample_rate, iter(mic), mic.source.description, "live"
        else:
            rate, samples, description = load_source(config.source, layout.sample_rate, total_s, config.seed)
            pace = config.pace
        block = mic.block if mic is not None else max(1, rate * layout.chunk // layout.sample_rate)
        block_s = block / float(rate)
        warmup_blocks = int(round(config.warmup_s / block_s))
        if config.source != "mic":
            blocks = _blocks(samples, block)
        mode = power_mode()
        with ResourceSampler(config.interval_s) as sampler:
            t0 = time.perf_counter()
            drive(variants, blocks, rate, block_s, pace, warmup_blocks, config.buffer_s, config.seed)
            wall = time.perf_counter() - t0
        if mic is not None:
            for v in variants:
                v.dropped = mic.dropped
            pace = "realtime"
        measured = [v for v in variants if v.clock is not None]
        runs = [_run_doc(v, loaded[i][2], loaded[i][3], block_s) for i, v in enumerate(measured)]
        for run, (_, engines, _, _) in zip(runs, loaded):
            run["gpu_memory"] = gpu_memory_mb(engines["tse_step"])
        audio_total = sum(len(v.processing) for v in variants) * block_s
        inferences = sum(len(v.clock.samples["tse_step"]) + len(v.clock.samples["ser"]) for v in measured)
        power = sampler.summary(audio_total, inferences, wall)
        if power["note"]:
            notes.append(power["note"])
        overhead = None
        if baseline is not None and baseline.processing:
            overhead = profiler_cost(baseline, measured[0], block_s)
        layers = None
        if config.layers:
            from emotrt.devices.layer_times import layer_times

            layers = {precision: layer_times(engines, backend, bundle, precision, variants[i].pipeline, speaker,
                                             environment, runs=config.layer_runs, top=config.top, scratch=scratch)
                      for i, (precision, engines, backend, _) in enumerate(loaded)}
        for v in variants:
            v.stream.close()
        return {
            "schema": SCHEMA,
            "kind": "emotrt-profile",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "emotrt_commit": emotrt_commit(),
            "bundle": {"path": str(bundle.root), "id": bundle_id(bundle), "targets": list(bundle.manifest.targets)},
            "device": device_info(),
            "power_mode": mode,
            "config": dict(asdict(config), inject_slowdown=[list(p) for p in config.inject_slowdown],
                           precisions=list(config.precisions), speaker=speaker, environment=environment,
                           source_description=description, pace=pace, source_rate=rate,
                           sample_rate=layout.sample_rate, hop_ms=1000.0 * layout.chunk / layout.sample_rate,
                           ser_window_s=layout.window / float(layout.sample_rate),
                           ser_hop_s=layout.ser_hop / float(layout.sample_rate)),
            "wall_s": wall,
            "runs": runs,
            "overhead": overhead,
            "resources": power,
            "layers": layers,
            "notes": notes,
        }
    finally:
        for _, engines, _, _ in loaded:
            for engine in engines.values():
                engine.close()


__all__ = ["ProfileConfig", "Variant", "drive", "load_engines", "profile_bundle"]
