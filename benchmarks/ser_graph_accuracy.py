"""The exported SER graphs (FP32, FP16, INT8 Q/DQ) on the stored test sets, against their PyTorch checkpoint.

``emotrt calibrate`` checks each precision on held-out utterances heard in the stored test sets'
scenes; this scores a graph on the windows ``emotrt eval`` uses (every stored test set, the speaker's enrollment gain for an
enrollment-referenced SER), through :class:`~emotrt.training.checkpoint_eval.Evaluator`'s ``against``
comparison: the UA difference with its 95 % paired bootstrap interval, per set. The graph runs on
ONNX Runtime's CPU provider (TensorRT's INT8 kernels are the device's, not measured here)::

    python benchmarks/ser_graph_accuracy.py checkpoints/ser_fbank calib/ser.int8.onnx --corpus data/synth \\
        [--limit 200] [--sets clean,noise_seen_m5db]
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Tuple

import numpy as np
import torch


class GraphSER:
    """An exported SER graph where the Evaluator expects the PyTorch SER: same config, tokens and
    windows; ``__call__`` runs the graph one window at a time (its batch is 1)."""

    def __init__(self, model: Any, path: str) -> None:
        from emotrt.runtime.backends import load_engine

        self.model, self.engine = model, load_engine(path)

    def __getattr__(self, name: str) -> Any:  # config, null_env, project_env: the checkpoint's
        return getattr(self.model, name)

    def eval(self) -> "GraphSER":
        return self

    def __call__(self, audio: torch.Tensor, token: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        outs = [self.engine.run({"audio": a[None].numpy(), "env_token": t[None].detach().numpy()})
                for a, t in zip(audio, token)]
        return (torch.from_numpy(np.concatenate([o["logits"] for o in outs])),
                torch.from_numpy(np.concatenate([o["avd"] for o in outs])))


def main() -> None:
    from emotrt.training.checkpoint_eval import EvalConfig, Evaluator
    from emotrt.training.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("graph", help="an exported or calibrated ser*.onnx")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--sets", default="", help="comma-separated stored test sets (default: all)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the comparison rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_model(args.checkpoint)
    config = EvalConfig(sets=tuple(s for s in args.sets.split(",") if s), text_modes=("text",), limit=args.limit)
    report = Evaluator(model, args.corpus, config=config, against=GraphSER(model, args.graph)).run()
    rows = [g for g in report["text_gain"] if g["compared"].startswith("against")]
    print("| set | PyTorch UA | graph UA | PyTorch − graph | 95 % interval |")
    print("|---|---|---|---|---|")
    for row, own in zip(rows, report["ser"]):
        print("| {} | {:.3f} | {:.3f} | {:+.1f} | [{:+.1f}, {:+.1f}] |".format(
            row["set"], own["ua"], row["against_ua"], 100 * row["ua_gain"], 100 * row["ua_ci"][0], 100 * row["ua_ci"][1]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
