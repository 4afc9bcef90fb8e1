"""The gate's presence test on a draw of the valid split it was not fitted on.

Collects the gate's calibration windows twice (``emotrt.training.tse_gate.collect``: the target
alone, in noise, with another talker, and another talker alone, three times as many of those) with
two seeds, fits the presence model and thresholds on the first as ``emotrt eval --calibrate-gate``
does, and prints, per condition of the second, the share of windows judged present: for the fitted
gate and for the thresholds of each ``--baseline`` (a TSE ``config.json`` with a ``gate`` key, e.g.
an earlier commit's ``git show REV:checkpoints/tse_edge/config.json > old.json``)::

    python benchmarks/gate_presence.py checkpoints/ser_fbank checkpoints/tse_edge --corpus data/synth \\
        --baseline old.json [--per-condition 192] [--samples DIR]

``--samples DIR`` keeps both draws (``fit.npz``, ``check.npz``) and reuses them on the next run.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, Optional, Sequence

FIT_SEED, CHECK_SEED = 2020, 5050  # 2020: the calibration's own draw


def draws(ser: str, tse: str, corpus: str, per_condition: int, samples: Optional[Path]) -> Dict[str, object]:
    from emotrt.training.checkpoint_eval import Evaluator
    from emotrt.training.models import load_model
    from emotrt.training.tse_gate import GateSamples, collect

    out: Dict[str, object] = {}
    evaluator = None
    for name, seed in (("fit", FIT_SEED), ("check", CHECK_SEED)):
        path = samples / (name + ".npz") if samples is not None else None
        if path is not None and path.exists():
            out[name] = GateSamples.load(path)
            continue
        if evaluator is None:
            evaluator = Evaluator(load_model(ser)[0], corpus, tse=load_model(tse)[0])
        out[name] = collect(evaluator, per_condition, seed=seed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            out[name].save(path)
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ser")
    parser.add_argument("tse")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--baseline", action="append", default=[], help="TSE config.json whose gate to compare")
    parser.add_argument("--per-condition", type=int, default=192)
    parser.add_argument("--min-present", type=float, default=0.98)
    parser.add_argument("--samples", type=Path)
    args = parser.parse_args(argv)

    from emotrt.runtime.gate import GateThresholds
    from emotrt.training.tse_gate import calibrate, summarize

    data = draws(args.ser, args.tse, args.corpus, args.per_condition, args.samples)
    gates = {"fitted on the fit draw": calibrate(data["fit"], args.min_present)}
    for path in args.baseline:
        gates[path] = GateThresholds.from_dict(json.loads(Path(path).read_text())["gate"])
    check = data["check"]
    conditions = list(dict.fromkeys(check.condition.tolist()))
    print("windows judged present on the check draw (seed {}; absent: the other talker alone)\n".format(CHECK_SEED))
    print("| gate | " + " | ".join(conditions) + " |")
    print("|---" * (len(conditions) + 1) + "|")
    for name, gate in gates.items():
        summary = summarize(check, gate)
        print("| {} | {} |".format(name, " | ".join("{:.3f}".format(summary[c]["present"]) for c in conditions)))


if __name__ == "__main__":
    main()
