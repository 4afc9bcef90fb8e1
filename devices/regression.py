"""``emotrt profile compare A B``: per-stage deltas against a noise-aware threshold.

For every stage both runs measured, the ratio of medians B/A gets a bootstrap interval from the
per-hop samples of both runs. A stage regressed when the whole interval lies above
``1 + tolerance``: the slowdown is larger than the tolerance (which absorbs run-to-run drift
such as a busier machine) with 95 % confidence given each run's own hop-to-hop noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from emotrt.devices.latency import ratio_interval

DEFAULT_TOLERANCE = 0.20
MIN_SAMPLES = 5


@dataclass(frozen=True)
class StageDelta:
    """One stage of A vs B: medians, ratio B/A with its interval, and the verdict."""

    stage: str
    median_a_ms: float
    median_b_ms: float
    ratio: float
    low: float
    high: float
    verdict: str  # regression | faster | same | too few samples


@dataclass(frozen=True)
class Comparison:
    """Every stage's delta; ``regressed`` when any stage is a regression."""

    a: str
    b: str
    tolerance: float
    deltas: List[StageDelta]

    @property
    def regressed(self) -> bool:
        return any(d.verdict == "regression" for d in self.deltas)

    @property
    def regressions(self) -> List[str]:
        return [d.stage for d in self.deltas if d.verdict == "regression"]


def compare_runs(a: Dict[str, Any], b: Dict[str, Any], tolerance: float = DEFAULT_TOLERANCE,
                 label_a: str = "A", label_b: str = "B", confidence: float = 0.95) -> Comparison:
    """Compare two runs (``doc["runs"][i]``) stage by stage from their per-hop samples."""
    from emotrt.devices.stage_timing import STAGES

    deltas = []
    for stage in sorted(a["stages"], key=lambda name: STAGES.index(name) if name in STAGES else len(STAGES)):
        sa, sb = a["stages"][stage], b["stages"].get(stage, {})
        xa, xb = sa.get("samples_ms") or [], sb.get("samples_ms") or []
        if len(xa) < MIN_SAMPLES or len(xb) < MIN_SAMPLES:
            if xa or xb:
                deltas.append(StageDelta(stage, sa.get("p50_ms", float("nan")), sb.get("p50_ms", float("nan")),
                                         float("nan"), float("nan"), float("nan"), "too few samples"))
            continue
        ratio, low, high = ratio_interval(xa, xb, confidence=confidence)
        if low > 1.0 + tolerance:
            verdict = "regression"
        elif high < 1.0 / (1.0 + tolerance):
            verdict = "faster"
        else:
            verdict = "same"
        deltas.append(StageDelta(stage, sa["p50_ms"], sb["p50_ms"], ratio, low, high, verdict))
    return Comparison(label_a, label_b, tolerance, deltas)


def pick_run(doc: Dict[str, Any], precision: Optional[str]) -> Dict[str, Any]:
    """The run of ``precision`` in ``doc`` (the first when None)."""
    from emotrt.devices.profile_document import ProfileError

    runs = doc["runs"]
    if precision is None:
        return runs[0]
    for run in runs:
        if run["precision"] == precision:
            return run
    raise ProfileError("the profile has no {} run (it has: {})".format(precision, ", ".join(r["precision"] for r in runs)),
                       hint="pass --precision with one of those")
