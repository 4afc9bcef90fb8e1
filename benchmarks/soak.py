"""Soak: hours of mixed audio through the runtime as fast as possible; RSS over time, overruns, errors.

    nice -n 10 .venv/bin/python benchmarks/soak.py BUNDLE -s alice -e busy_cafe [--hours 1] [--stream-minutes 5]

The audio cycles speech (espeak-ng), digital silence, a NaN burst and a clipped (x20) stretch; each
stream gets ``--stream-minutes`` of it at the next sample rate of 16/44.1/48/8 kHz (the stream
resamples), in 20 ms blocks, then ends and a new stream starts, as a service does between
sessions. RSS is sampled after every audio minute; the report (JSON on stdout) gives its slope in
MB per audio hour over the whole run and after the first stream (allocator warm-up), the maximum
growth, SER results, dropped results, NaN/clipped counts and every exception (none expected).
Real-time overruns do not apply (no pacing); ``dropped_results`` is the backlog the stream shed.
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
from typing import Dict, List

import numpy as np

RATES = (16000, 44100, 48000, 8000)


def _rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2 ** 20


def speech_16k() -> np.ndarray:
    """One espeak-ng sentence at 16 kHz."""
    import soundfile
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), "the quick brown fox jumps over the lazy dog"], check=True)
        audio, rate = soundfile.read(str(wav), dtype="float32")
    return soxr.resample(audio, rate, 16000).astype(np.float32)


def cycle_16k(speech: np.ndarray) -> np.ndarray:
    """~20 s: speech x3, 3 s silence, speech with a 0.2 s NaN burst, 2 s silence, clipped speech."""
    nan = speech.copy()
    nan[4000:7200] = np.nan
    silence = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    return np.concatenate([speech, speech, speech, silence(3), nan, silence(2), speech * 20]).astype(np.float32)


def at_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    if rate == 16000:
        return audio
    finite = np.nan_to_num(audio)  # soxr on NaN spreads it; put the burst back where it was
    out = soxr.resample(finite, 16000, rate).astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(audio))
    if bad.size:
        out[int(bad[0] * rate / 16000): int(bad[-1] * rate / 16000)] = np.nan
    return out


def soak(bundle: str, speaker: str, environment: str, hours: float, stream_minutes: float, backend: str) -> Dict:
    from emotrt.runtime.pipeline import Pipeline

    base = cycle_16k(speech_16k())
    cycles = {rate: at_rate(base, rate) for rate in RATES}
    samples: List[List[float]] = []
    errors: List[str] = []
    totals = {"results": 0, "speech_results": 0, "dropped_results": 0, "nonfinite_samples": 0, "clipped_samples": 0,
              "streams": 0}
    audio_s, start = 0.0, time.perf_counter()
    target = hours * 3600.0
    with Pipeline.from_bundle(bundle, backend=backend) as pipeline:
        samples.append([0.0, 0.0, _rss_mb()])
        next_sample = 60.0
        while audio_s < target:
            rate = RATES[totals["streams"] % len(RATES)]
            cycle, block = cycles[rate], int(rate * 0.02)
            stream = pipeline.create_stream(speaker, environment)
            fed, stream_s = 0, min(stream_minutes * 60.0, target - audio_s)
            try:
                while fed < stream_s * rate:
                    offset = fed % cycle.size
                    piece = cycle[offset: offset + block]
                    stream.accept_waveform(rate, piece)
                    fed += piece.size
                    audio_s += piece.size / float(rate)
                    for result in stream.results():
                        totals["results"] += 1
                        totals["speech_results"] += bool(result.speech)
                    if audio_s >= next_sample:
                        samples.append([round(audio_s, 1), round(time.perf_counter() - start, 1), round(_rss_mb(), 2)])
                        next_sample += 60.0
                stream.input_finished()
                totals["results"] += sum(1 for _ in stream.results())
            except Exception as exc:  # the soak counts every failure instead of stopping at the first
                errors.append("{}: {}".format(type(exc).__name__, exc))
            for key in ("dropped_results", "nonfinite_samples", "clipped_samples"):
                totals[key] += getattr(stream.stats, key)
            stream.close()
            totals["streams"] += 1
    return report(samples, totals, errors, audio_s, time.perf_counter() - start, stream_minutes)


def slope_mb_per_hour(points: List[List[float]]) -> float:
    if len(points) < 2:
        return float("nan")
    x = np.array([p[0] for p in points]) / 3600.0
    y = np.array([p[2] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def report(samples: List[List[float]], totals: Dict, errors: List[str], audio_s: float, wall_s: float,
           stream_minutes: float) -> Dict:
    after_first = [p for p in samples if p[0] >= stream_minutes * 60.0]
    rss = [p[2] for p in samples]
    return {
        "audio_hours": round(audio_s / 3600.0, 3), "wall_seconds": round(wall_s, 1),
        "speed_x_realtime": round(audio_s / wall_s, 1),
        "rss_mb": {"start": rss[0], "after_first_stream": after_first[0][2] if after_first else None, "end": rss[-1],
                   "max": max(rss)},
        "rss_slope_mb_per_hour": {"whole_run": round(slope_mb_per_hour(samples), 2),
                                  "after_first_stream": round(slope_mb_per_hour(after_first), 2)},
        "rss_growth_after_first_stream_mb": round(rss[-1] - after_first[0][2], 2) if after_first else None,
        "totals": totals, "errors": errors, "overruns": "n/a (not paced)",
        "rss_samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("-s", "--speaker", required=True)
    parser.add_argument("-e", "--environment", required=True)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--stream-minutes", type=float, default=5.0)
    parser.add_argument("--backend", default="onnxruntime")
    args = parser.parse_args()
    result = soak(args.bundle, args.speaker, args.environment, args.hours, args.stream_minutes, args.backend)
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
