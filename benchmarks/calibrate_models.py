"""Calibration benchmark: wall time, size and accuracy of INT8/FP16 per method, measured in one run.

    nice -n 10 .venv/bin/python benchmarks/calibrate_models.py --size default
    nice -n 10 .venv/bin/python benchmarks/calibrate_models.py --export EXPORT_DIR --data MANIFEST

Without --export it exports the toy graphs of tests/calibration/toy_models.py ("default" is sized
like the project's default TSE/SER) and speaks a small espeak-ng corpus. Prints one line per
model x precision x method, with latency as a ratio to FP32 measured in the same run.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emotrt.calibration.pipeline import CalibrateConfig, calibrate  # noqa: E402
from emotrt.calibration.qdq import QuantConfig  # noqa: E402
from emotrt.calibration.sources import SourceConfig, build_jobs  # noqa: E402
from emotrt.training.corpus import load_manifest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=("tiny", "default"))
    parser.add_argument("--export", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--methods", default="minmax,entropy,percentile")
    parser.add_argument("--calib-utterances", type=int, default=48)
    parser.add_argument("--eval-utterances", type=int, default=16)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="emotrt-bench-"))
    export, data = args.export, args.data
    if export is None:
        from tests.calibration.conftest import write_corpus
        from tests.calibration.toy_models import export_toy_models

        export = export_toy_models(tmp / "export", size=args.size)
        voices = ("en-us", "en-gb+f3", "en+m3", "en-us+f4", "en+m7", "en-gb+m2", "en-us+f2", "en+m1")
        sentences = ("the kettle is boiling", "we missed the last train", "open the window please",
                     "that was brilliant", "nobody told me about the meeting", "the dog ran across the park",
                     "please call me back tomorrow", "i cannot believe it happened again")
        data = write_corpus(tmp / "corpus", voices, sentences)
    start, cpu = time.perf_counter(), time.process_time()
    noises = data.with_name("noise.jsonl")
    jobs = build_jobs(export, load_manifest(data), load_manifest(noises) if noises.is_file() else [],
                      SourceConfig(calib_utterances=args.calib_utterances, eval_utterances=args.eval_utterances))
    print("feeds built in {:.1f} s wall, {:.1f} s CPU: {}".format(
        time.perf_counter() - start, time.process_time() - cpu, {j.name: len(j.calib.feeds) for j in jobs}))
    for method in args.methods.split(","):
        start, cpu = time.perf_counter(), time.process_time()
        report = calibrate(jobs, tmp / ("out-" + method), CalibrateConfig(quant=QuantConfig(method=method)))
        print("\n## method {}: calibrated {} models in {:.1f} s wall, {:.1f} s CPU of this process ({})".format(
            method, len(jobs), time.perf_counter() - start, time.process_time() - cpu, report.info["seconds_per_model"]))
        for row in report.rows:
            metrics = " ".join("{}={:.3f}".format(k, v) for k, v in sorted(row.metrics.items()))
            print("{:10s} {:6s} size/fp32={:.2f} latency/fp32={:.2f} {}  {}".format(
                row.model, row.precision, row.size_ratio, row.latency_ratio, metrics, row.note))
    print("\noutputs in", tmp)


if __name__ == "__main__":
    main()
