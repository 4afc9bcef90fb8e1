"""The profiler's own cost (goal: per-stage timing costs <= 2 % of the real-time factor), measured in one run.

    nice -n 10 .venv/bin/python benchmarks/bench_profile.py BUNDLE [--seconds 30] [--repeats 3]

Two measurements, both in this one process:

1. end to end: ``emotrt profile``'s own A/B. The timed stream and an untimed stream of the same
   precision take the same hops in alternating order (``ProfileConfig.measure_overhead``); the
   real-time factor (wall and thread CPU) of both, and the median per-hop ratio. Repeated
   ``--repeats`` times; on a shared machine the run-to-run spread shows how much is noise.
2. an A/A control: two untimed streams of the same precision, same drive, same repeat count: the
   spread a difference of zero shows on this machine (wall time on a loaded VM moves by several %).
3. the instrumentation alone: the cost of the timing proxies per hop (``TimedStepper.step``,
   ``TimedVad.update``, ``StageClock.end_call``, and ``TimedEngine._run`` once per SER hop) around
   no-op callees, in microseconds, over the median hop time of (1): the overhead with the noise
   of the machine taken out.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def proxy_cost_us(calls: int = 200000) -> dict:
    """Microseconds per hop that the timing proxies add (no-op stepper, VAD and engine behind them)."""
    from emotrt.devices.stage_timing import StageClock, TimedEngine, TimedStepper, TimedVad

    class Noop:
        def step(self, inputs):
            return inputs

        def update(self, audio):
            return True

        def _run(self, feed):
            return feed

    clock = StageClock()
    stepper, vad, engine = TimedStepper(Noop(), "tse_step", clock), TimedVad(Noop(), "vad", clock, True), TimedEngine(Noop(), "ser", clock)
    feed = {}
    base0 = time.perf_counter()
    noop = Noop()
    for _ in range(calls):
        noop.step(feed)
        noop.update(feed)
    base = time.perf_counter() - base0
    t0 = time.perf_counter()
    for i in range(calls):
        stepper.step(feed)
        vad.update(feed)
        clock.end_call(0.001, 0.001)
        if i % 1000 == 0:
            clock.reset()
    hop = (time.perf_counter() - t0 - base) / calls
    t0 = time.perf_counter()
    for _ in range(calls):
        engine._run(feed)
    ser = (time.perf_counter() - t0) / calls
    return {"per_hop_us": 1e6 * hop, "per_ser_call_us": 1e6 * ser}


def aa_control(bundle: str, seconds: float, seed: int) -> dict:
    """Two identical untimed fp32 streams through the profiler's own driver: what 'no difference' measures as."""
    from emotrt.devices.profile_audio import synth_speech
    from emotrt.devices.profiler import Variant, drive, load_engines
    from emotrt.devices.stage_timing import ProfiledPipeline
    from emotrt.runtime.bundle_reader import Bundle
    from emotrt.runtime.pipeline import PipelineConfig

    with Bundle.open(bundle, verify="cached") as opened:
        engines, _, _ = load_engines(opened, "fp32", "onnxruntime")
        env, speakers = opened.environments(), opened.speakers(dim=opened.contract("tse_step").spk_dim)
        variants = []
        for label in ("A", "B"):
            pipeline = ProfiledPipeline(engines["tse_step"], engines["ser"], env, speakers, vad=engines.get("vad"),
                                        config=PipelineConfig(threads=1))
            variant = Variant(label, "fp32", pipeline, None)
            variant.stream = pipeline.create_stream(speakers.names()[0], env.names()[0])
            variants.append(variant)
        rate, chunk = variants[0].pipeline.sample_rate, variants[0].pipeline.layout.chunk
        audio = synth_speech(seconds + 1.0, rate, seed)
        drive(variants, (audio[i:i + chunk] for i in range(0, audio.size - chunk + 1, chunk)), rate, chunk / rate,
              "max", int(rate / chunk), 1.0, seed)
        for engine in engines.values():
            engine.close()
    a, b = variants
    return {"wall": sum(b.processing) / sum(a.processing) - 1.0, "cpu": sum(b.cpu) / sum(a.cpu) - 1.0,
            "median_hop": float(np.median(b.processing) / np.median(a.processing)) - 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from emotrt.devices.profiler import ProfileConfig, profile_bundle

    runs = []
    for _ in range(args.repeats):
        doc = profile_bundle(args.bundle, ProfileConfig(duration_s=args.seconds, warmup_s=1.0, layers=False,
                                                        backend="onnxruntime"))
        stages = doc["runs"][0]["stages"]
        runs.append(dict(doc["overhead"], median_hop_ms=stages["end_to_end"]["p50_ms"],
                         ser_calls_per_hop=stages["ser"]["count"] / max(stages["end_to_end"]["count"], 1)))
    controls = [aa_control(args.bundle, args.seconds, seed) for seed in range(args.repeats)]
    proxies = proxy_cost_us()
    hop_ms = float(np.median([r["median_hop_ms"] for r in runs]))
    per_hop_us = proxies["per_hop_us"] + runs[0]["ser_calls_per_hop"] * proxies["per_ser_call_us"]
    figures = {
        "load_average": list(__import__("os").getloadavg()),
        "audio_seconds_per_repeat": args.seconds,
        "repeats": runs,
        "overhead_wall_median": float(np.median([r["overhead"] for r in runs])),
        "overhead_cpu_median": float(np.median([r["overhead_cpu"] for r in runs])),
        "overhead_median_hop_median": float(np.median([r["overhead_median_hop"] for r in runs])),
        "aa_control": controls,
        "aa_control_abs_max": {k: max(abs(c[k]) for c in controls) for k in ("wall", "cpu", "median_hop")},
        "proxy_cost": proxies,
        "proxy_cost_per_hop_us": per_hop_us,
        "proxy_cost_fraction_of_median_hop": per_hop_us / (1000.0 * hop_ms),
    }
    print(json.dumps(figures, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
