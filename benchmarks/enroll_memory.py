"""Peak memory of ``emotrt enroll`` on a long recording: streamed segments vs the whole file at once.

Writes MINUTES of espeak-ng speech with pauses (16 kHz PCM16), then enrolls it in a fresh
process per mode and prints that process's peak RSS (``ru_maxrss`` of the child):

    nice -n 10 .venv/bin/python benchmarks/enroll_memory.py EXPORT_DIR [--minutes 10] [--whole]

EXPORT_DIR holds ``enroll.onnx`` (and ``vad.onnx``) from ``emotrt export``. ``--whole`` also runs
the enroll graph over the whole recording in one pass (what enrollment did before streaming).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import sys
from emotrt.export.enroll import enroll_speaker
segment = float(sys.argv[4])
enroll_speaker(sys.argv[1], "long", sys.argv[2], sys.argv[3], segment_seconds=segment)
"""


def speech_wav(path: Path, minutes: float) -> Path:
    """``minutes`` of one espeak-ng sentence and 1 s pauses, repeated."""
    import soundfile
    import soxr

    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), "the quick brown fox jumps over the lazy dog"], check=True)
    audio, rate = soundfile.read(str(raw), dtype="float32")
    unit = np.concatenate([soxr.resample(audio, rate, 16000).astype(np.float32), np.zeros(16000, np.float32)])
    n = int(minutes * 60 * 16000)
    soundfile.write(str(path), np.tile(unit, n // unit.size + 1)[:n], 16000, subtype="PCM_16")
    return path


def peak_mb(export: Path, wav: Path, segment: float, store: Path) -> tuple:
    """(peak RSS in MB, seconds) of one enrollment in a fresh process."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", CHILD, str(store), str(wav), str(export / "enroll.onnx"), str(segment)], check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        raise RuntimeError("a child's peak RSS is only visible when it exceeds the previous children's; run --whole last")
    return peak / 1024.0, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--whole", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = speech_wav(Path(tmp) / "long.wav", args.minutes)
        print("recording: {:.1f} min, {:.1f} MB on disk".format(args.minutes, wav.stat().st_size / 1e6))
        mb, secs = peak_mb(args.export, wav, 30.0, Path(tmp) / "s1")
        print("streamed (30 s segments): peak RSS {:.0f} MB, {:.1f} s".format(mb, secs))
        if args.whole:
            mb, secs = peak_mb(args.export, wav, float("inf"), Path(tmp) / "s2")
            print("whole file in one pass:   peak RSS {:.0f} MB, {:.1f} s".format(mb, secs))


if __name__ == "__main__":
    main()
