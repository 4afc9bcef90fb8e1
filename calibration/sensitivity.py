"""Per-block INT8 sensitivity and the mixed-precision plan that meets an accuracy budget.

A block is a module of the exported graph (the node-name prefix up to the first indexed
module, e.g. ``separator/blocks.3``). Leave-one-out quantises every block but one, and one
block alone; blocks are ranked by how much keeping them out of INT8 helps. The mixed plan
adds blocks to the non-INT8 set in that order until the budget holds, then drops any that
are no longer needed, so it keeps as few blocks out of INT8 as it can find.
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from emotrt.runtime.errors import ConfigError

log = logging.getLogger(__name__)

Metrics = Dict[str, float]
Evaluate = Callable[[Sequence[str]], Metrics]
_INDEXED = re.compile(r"(\.|_)\d+$")


class BudgetError(ConfigError):
    """No mixed INT8 plan meets the accuracy budget."""


@dataclass(frozen=True)
class Budget:
    """Largest allowed drop from FP32 per metric (SI-SDRi in dB; UA, CCC and cosine as fractions).

    ``agreement`` is the share of an SER's labels allowed to differ from FP32's: on balanced
    classes it bounds the UA drop in any sample like the held-out one, where the UA drop alone
    (changes for the worse minus changes for the better) passed a plan that changed 2 % of the
    labels and lost 3.2 UA points on a stored test set (docs/eval/channels.md).
    """

    sisdri: float = 0.3
    ua: float = 0.01
    ccc: float = 0.01
    cosine: float = 0.01
    agreement: float = 0.01

    def __post_init__(self) -> None:
        negative = ["{}={}".format(k, v) for k, v in self.limits().items() if v < 0]
        if negative:
            raise ConfigError("accuracy budget must be non-negative: " + ", ".join(negative))

    def limits(self) -> Dict[str, float]:
        return {"sisdri": self.sisdri, "ua": self.ua, "ccc": self.ccc, "cosine": self.cosine,
                "agreement": self.agreement}

    def checked(self, reference: Metrics) -> List[Tuple[str, float]]:
        """(metric, allowed drop) of every metric in ``reference`` with a limit; ``ua.clean`` (a
        metric of one group of items) has the limit of ``ua``."""
        limits = self.limits()
        return [(name, limits[name.split(".")[0]]) for name in reference if name.split(".")[0] in limits]

    def cost(self, reference: Metrics, metrics: Metrics) -> float:
        """Worst metric drop as a multiple of its allowance (<= 1 meets the budget)."""
        worst = 0.0
        for name, limit in self.checked(reference):
            drop = reference[name] - metrics[name]
            worst = max(worst, drop / limit if limit > 0 else (float("inf") if drop > 1e-9 else 0.0))
        return worst

    def violations(self, reference: Metrics, metrics: Metrics) -> List[str]:
        """Human-readable list of the metrics that drop more than allowed."""
        return ["{} {:.4f} vs FP32 {:.4f} (allowed drop {})".format(name, metrics[name], reference[name], limit)
                for name, limit in self.checked(reference) if reference[name] - metrics[name] > limit]


def _shared_prefix(paths: Sequence[List[str]]) -> int:
    """How many leading module names every path shares (a wrapper such as ``model``)."""
    if not paths:
        return 0
    depth = min(len(p) for p in paths)
    for i in range(depth):
        if any(p[i] != paths[0][i] for p in paths):
            return i
    return depth


def node_blocks(nodes: Sequence[str]) -> "OrderedDict[str, List[str]]":
    """Group node names into blocks by module path, in graph order.

    An unindexed module is its own block below a wrapper every node shares: the offline TSE's
    ``/model/encoder`` and ``/model/decoder`` are two blocks, as the per-hop graph's
    ``/encoder`` and ``/decoder`` are, not one block ``model``.
    """
    paths = [[p for p in name.split("/") if p][:-1] for name in nodes]
    shared = _shared_prefix(paths)
    blocks: "OrderedDict[str, List[str]]" = OrderedDict()
    for name, parts in zip(nodes, paths):
        key = name
        for i, part in enumerate(parts):
            if _INDEXED.search(part):
                key = "/".join(parts[: i + 1])
                break
        else:
            if parts:
                key = "/".join(parts[: min(shared, len(parts) - 1) + 1])
        blocks.setdefault(key, []).append(name)
    return blocks


@dataclass(frozen=True)
class BlockSensitivity:
    """Cost (budget multiples) with every block but this one in INT8, and with only this one."""

    block: str
    nodes: Tuple[str, ...]
    all_but: Metrics
    alone: Metrics
    cost_all_but: float
    cost_alone: float


@dataclass(frozen=True)
class MixedPlan:
    """The chosen INT8 blocks, the blocks kept out of INT8, and the metrics of that plan."""

    int8_blocks: Tuple[str, ...]
    kept_blocks: Tuple[str, ...]
    int8_nodes: Tuple[str, ...]
    metrics: Metrics
    ranking: Tuple[BlockSensitivity, ...] = field(default=())
    evaluations: int = 0


class _Cache:
    def __init__(self, evaluate: Evaluate, blocks: Mapping[str, Sequence[str]]) -> None:
        self.evaluate, self.blocks, self.seen = evaluate, blocks, {}  # type: Dict[FrozenSet[str], Metrics]

    def __call__(self, int8_blocks: Sequence[str]) -> Metrics:
        key = frozenset(int8_blocks)
        if key not in self.seen:
            nodes = [n for b in self.blocks if b in key for n in self.blocks[b]]
            self.seen[key] = self.evaluate(nodes)
        return self.seen[key]


def rank_blocks(
    evaluate: Evaluate, blocks: Mapping[str, Sequence[str]], reference: Metrics, budget: Budget
) -> List[BlockSensitivity]:
    """Leave-one-out over ``blocks``, most sensitive (largest gain when kept out) first."""
    run = evaluate if isinstance(evaluate, _Cache) else _Cache(evaluate, blocks)
    names = list(blocks)
    results = []
    for block in names:
        all_but = run([b for b in names if b != block])
        alone = run([block])
        results.append(BlockSensitivity(block, tuple(blocks[block]), all_but, alone,
                                        budget.cost(reference, all_but), budget.cost(reference, alone)))
    return sorted(results, key=lambda r: (r.cost_all_but, -r.cost_alone))


def choose_mixed(
    evaluate: Evaluate, blocks: Mapping[str, Sequence[str]], reference: Metrics, budget: Budget,
    ranking: Optional[Sequence[BlockSensitivity]] = None,
) -> MixedPlan:
    """The mixed plan meeting ``budget`` with the fewest blocks out of INT8 that the search finds.

    ``ranking`` (from :func:`rank_blocks`, possibly on a quicker subset) orders the blocks to
    keep out of INT8; without it, graph order is used. The budget is always checked with
    ``evaluate``.
    """
    run = _Cache(evaluate, blocks)
    if not blocks:
        log.warning("no block INT8 can quantise (no Conv/MatMul/Gemm outside the front end): plan stays FP16/FP32")
        return MixedPlan((), (), (), dict(reference), (), 0)
    names = list(blocks)
    ranking = list(ranking or [])
    order = [r.block for r in ranking] or names
    kept: List[str] = []
    while budget.cost(reference, run([b for b in names if b not in kept])) > 1.0:
        if len(kept) == len(names) - 1:
            best = min(names, key=lambda b: budget.cost(reference, run([b])))
            problems = budget.violations(reference, run([best]))
            if problems:
                raise BudgetError(
                    "no mixed INT8 plan meets the accuracy budget; the best single INT8 block ({}) gives: {}".format(
                        best, "; ".join(problems)),
                    hint="relax the budget (--max-sisdr-drop/--max-ua-drop/--max-ccc-drop) or deploy FP16",
                )
            kept = [b for b in names if b != best]  # the order left a harmful block last; another meets it
            break
        kept.append(next(b for b in order if b not in kept))
    for block in list(reversed(kept)):
        trial = [b for b in kept if b != block]
        if budget.cost(reference, run([b for b in names if b not in trial])) <= 1.0:
            kept = trial
    int8 = [b for b in names if b not in kept]
    log.info("mixed plan: %d of %d blocks INT8 after %d evaluations", len(int8), len(names), len(run.seen))
    return MixedPlan(
        tuple(int8), tuple(kept), tuple(n for b in int8 for n in blocks[b]), run(int8), tuple(ranking), len(run.seen)
    )
