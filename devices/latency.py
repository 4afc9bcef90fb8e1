"""Latency statistics as trtexec and perf_analyzer compute them (REFERENCE.md "Profiling practice").

- percentiles by nearest rank without interpolation: index N-1-floor((1-p/100)*N) of the sorted
  samples (trtexec, samples/common/sampleReporting.cpp), computed in exact arithmetic;
- coefficient of variation = population standard deviation / mean;
- stability: the last three windows' means agree within 10 % of their mean (perf_analyzer);
- a percentile bootstrap interval of the median, for comparing two runs against their own noise.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def nearest_rank(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of ascending ``sorted_values`` by trtexec's nearest-rank rule."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("no samples")
    excluded = math.floor((1 - Fraction(str(p)) / 100) * n)
    return float(sorted_values[max(0, min(n - 1, n - 1 - excluded))])


def summarize(seconds: Sequence[float], keep_samples: bool = True) -> Dict[str, Any]:
    """count, mean, min, p50/p90/p95/p99, max (milliseconds) and the coefficient of variation."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {"count": 0}
    ordered = np.sort(ms)
    mean = float(ms.mean())
    out: Dict[str, Any] = {"count": int(ms.size), "mean_ms": mean, "min_ms": float(ordered[0])}
    for p in PERCENTILES:
        out["p{}_ms".format(p)] = nearest_rank(ordered, p)
    out["max_ms"] = float(ordered[-1])
    out["cv"] = float(ms.std() / mean) if mean > 0 else 0.0
    if keep_samples:
        out["samples_ms"] = [round(float(v), 5) for v in ms]
    return out


def stability(seconds: Sequence[float], windows: int = 6, last: int = 3, tolerance: float = 0.10,
              min_window: int = 20) -> Dict[str, Any]:
    """Split the samples into ``windows`` equal windows; stable when the ``last`` windows' means are within ``tolerance``.

    ``stable`` is None when there are too few samples for ``last`` windows of ``min_window`` samples.
    """
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    size = max(min_window, values.size // windows)
    count = values.size // size
    if count < last:
        return {"stable": None, "window_means_ms": [], "tolerance": tolerance,
                "reason": "{} samples: fewer than {} windows of {}".format(values.size, last, size)}
    means = [float(values[i * size:(i + 1) * size].mean()) for i in range(count)]
    tail = np.array(means[-last:])
    centre = float(tail.mean())
    spread = float(np.max(np.abs(tail - centre)) / centre) if centre > 0 else 0.0
    return {"stable": bool(spread <= tolerance), "window_means_ms": means, "window_size": size,
            "spread": spread, "tolerance": tolerance}


def bootstrap_median(samples: Sequence[float], rounds: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> Tuple[float, float, float]:
    """(median, low, high): percentile bootstrap interval of the median."""
    values = np.asarray(samples, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(rounds, values.size))
    medians = np.median(values[picks], axis=1)
    alpha = (1 - confidence) / 2
    return float(np.median(values)), float(np.quantile(medians, alpha)), float(np.quantile(medians, 1 - alpha))


def ratio_interval(before: Sequence[float], after: Sequence[float], rounds: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> Tuple[float, float, float]:
    """(ratio, low, high): median(after)/median(before) with a bootstrap interval resampling both sides."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, a.size, size=(rounds, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, size=(rounds, b.size))], axis=1)
    ratios = mb / np.maximum(ma, 1e-12)
    alpha = (1 - confidence) / 2
    point = float(np.median(b) / max(float(np.median(a)), 1e-12))
    return point, float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))


def warnings_for(stages: Dict[str, Dict[str, Any]], stable: Optional[bool], engine_stages: Sequence[str],
                 cv_limit: float = 0.025) -> List[str]:
    """trtexec-style warnings: high variation (lock the clocks), host work above engine time, instability, few samples."""
    found = []
    for name in engine_stages:
        cv = stages.get(name, {}).get("cv")
        if cv is not None and cv > cv_limit:
            found.append("{}: coefficient of variation {:.1%} > {:.1%}: timings vary; lock the clocks "
                         "(sudo jetson_clocks, fixed nvpmodel mode) and stop other load".format(name, cv, cv_limit))
    host = stages.get("host", {}).get("p50_ms")
    engine = sum(stages.get(n, {}).get("p50_ms", 0.0) for n in engine_stages if stages.get(n, {}).get("count"))
    if host is not None and engine and host > engine:
        found.append("host work between engine calls (median {:.3f} ms) exceeds engine time ({:.3f} ms): "
                     "the Python around the engines dominates".format(host, engine))
    if stable is False:
        found.append("unstable: the last three windows' mean latencies differ by more than 10 %; run longer (--duration)")
    e2e = stages.get("end_to_end", {}).get("count", 0)
    if 0 < e2e < 64:
        found.append("only {} hops measured: p99 needs at least 64 (MLPerf early stopping); run longer".format(e2e))
    return found
