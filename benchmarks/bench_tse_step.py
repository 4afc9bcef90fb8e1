"""Stateful ``tse_step`` vs re-running a sliding window over the same receptive field.

    python benchmarks/bench_tse_step.py MODELS_DIR [--hops 200]      # an `emotrt export` output
    python benchmarks/bench_tse_step.py --ckpt CKPT_DIR              # exports the checkpoint first

Both run in ONNX Runtime, one thread, in this one process. The receptive field is measured
on ``tse_offline.onnx`` (how far an impulse at sample 0 reaches); the sliding window re-runs
``tse_offline`` on the last ``receptive field + chunk`` samples for every hop and keeps the
last chunk, which must equal the stateful output. Prints the compute ratio per second of
audio; no assertion on time (DESIGN.md §5).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emotrt.runtime.backends import load_engine


def receptive_field(offline, spk, length, chunk):
    """Samples of history one output sample depends on, measured with an impulse."""
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((1, length))).astype(np.float32)
    poked = audio.copy()
    poked[0, 0] += 1.0
    diff = np.abs(offline.run({"audio": audio, "spk_emb": spk})["audio_out"] - offline.run({"audio": poked, "spk_emb": spk})["audio_out"])
    reached = np.nonzero(diff[0] > 1e-6)[0]
    if reached.size == 0 or reached[-1] >= length - chunk:
        raise SystemExit("receptive field not measurable within {} samples".format(length))
    return int(reached[-1]) + 1


def run(models, hops):
    with load_engine(models / "tse_step.onnx") as step, load_engine(models / "tse_offline.onnx") as offline:
        contract = step.contract
        chunk, rate = contract.chunk_samples, contract.sample_rate
        rng = np.random.default_rng(1)
        spk = rng.standard_normal((1, contract.spk_dim)).astype(np.float32)
        field = receptive_field(offline, spk, max(8 * rate // chunk, 64) * chunk, chunk)
        window = -(-(field + chunk) // chunk) * chunk  # whole hops covering the field plus the new hop
        audio = (0.3 * rng.standard_normal((1, window + hops * chunk))).astype(np.float32)

        states = {s.input_name: np.full(s.shape, s.init, np.float32) for s in contract.states}
        streamed = []
        t0 = time.perf_counter()
        for i in range(audio.shape[1] // chunk):
            out = step.run(dict(states, audio=audio[:, i * chunk:(i + 1) * chunk], spk_emb=spk))
            states = {s.input_name: out[s.output_name] for s in contract.states}
            streamed.append(out["audio_out"])
        t_step = time.perf_counter() - t0
        streamed = np.concatenate(streamed, axis=1)

        worst = 0.0
        t0 = time.perf_counter()
        for i in range(hops):
            end = window + (i + 1) * chunk
            y = offline.run({"audio": audio[:, end - window:end], "spk_emb": spk})["audio_out"][:, -chunk:]
            worst = max(worst, float(np.abs(y - streamed[:, end - chunk:end]).max()))
        t_window = time.perf_counter() - t0

    seconds_step = audio.shape[1] / rate
    seconds_window = hops * chunk / rate
    per_s_step, per_s_window = t_step / seconds_step, t_window / seconds_window
    print("chunk {} samples ({:.1f} ms), receptive field {} samples ({:.0f} ms), window {} samples".format(
        chunk, 1000 * chunk / rate, field, 1000 * field / rate, window))
    print("stateful tse_step : {:.2f} ms compute per s of audio".format(1000 * per_s_step))
    print("sliding window    : {:.2f} ms compute per s of audio".format(1000 * per_s_window))
    print("ratio             : {:.1f}x less compute for the stateful step (window/chunk = {:.1f})".format(
        per_s_window / per_s_step, window / chunk))
    print("same output       : max abs {:.2e} over {} hops".format(worst, hops))
    return per_s_window / per_s_step, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="?", type=Path, help="directory with tse_step.onnx and tse_offline.onnx")
    ap.add_argument("--ckpt", type=Path, help="TSE checkpoint to export first")
    ap.add_argument("--hops", type=int, default=200)
    args = ap.parse_args()
    if args.ckpt:
        from emotrt.export.exporter import ExportConfig, export_checkpoints

        args.models = Path(tempfile.mkdtemp()) / "models"
        export_checkpoints([args.ckpt], args.models, ExportConfig(vad=False))
    if args.models is None:
        ap.error("give MODELS_DIR or --ckpt")
    ratio, worst = run(args.models, args.hops)
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
