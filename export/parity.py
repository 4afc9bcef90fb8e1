"""Parity: ONNX Runtime vs PyTorch on feeds other than the traced one (optimum/Polygraphy style).

Every output of every case is compared; all mismatches are collected and reported in one
typed error, with max abs/rel error, before anything fails.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

from emotrt.export.specs import Feed, GraphSpec
from emotrt.runtime.errors import ModelContractError


class ParityError(ModelContractError):
    """ONNX Runtime and PyTorch disagree beyond the spec's tolerance."""


@dataclass(frozen=True)
class OutputParity:
    """Worst error of one output over all cases of one graph."""

    name: str
    max_abs: float
    max_rel: float
    ok: bool


@dataclass(frozen=True)
class ParityResult:
    """Parity of one graph: the cases' input shapes and each output's worst error."""

    kind: str
    shapes: Tuple[str, ...]
    outputs: Tuple[OutputParity, ...]
    atol: float
    rtol: float

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outputs)

    @property
    def max_abs(self) -> float:
        return max(o.max_abs for o in self.outputs)

    @property
    def max_rel(self) -> float:
        return max(o.max_rel for o in self.outputs)

    def mismatches(self) -> List[str]:
        return [
            "{}.{}: max abs {:.3g}, max rel {:.3g} (atol {:g}, rtol {:g})".format(
                self.kind, o.name, o.max_abs, o.max_rel, self.atol, self.rtol
            )
            for o in self.outputs
            if not o.ok
        ]

    def to_dict(self) -> Dict[str, Any]:
        """The summary stored in the graph's metadata (``emotrt.extra.parity``)."""
        return {
            "backend": "onnxruntime-cpu vs torch",
            "shapes": list(self.shapes),
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "atol": self.atol,
            "rtol": self.rtol,
            "outputs": {o.name: {"max_abs": o.max_abs, "max_rel": o.max_rel} for o in self.outputs},
        }


def run_torch(spec: GraphSpec, model: torch.nn.Module, feed: Feed) -> Dict[str, np.ndarray]:
    """The PyTorch outputs of ``spec`` for ``feed``, by output name."""
    with torch.no_grad():
        out = spec.module(model)(*feed.values())
    out = out if isinstance(out, (tuple, list)) else (out,)
    return {name: t.detach().numpy() for name, t in zip(spec.outputs(model), out)}


def to_numpy(feed: Feed) -> Dict[str, np.ndarray]:
    return {k: v.detach().numpy().astype(np.float32) for k, v in feed.items()}


def compare_graph(spec: GraphSpec, model: torch.nn.Module, config: Any, onnx_path: Any) -> ParityResult:
    """Run every parity case of ``spec`` through PyTorch and ONNX Runtime and measure the errors."""
    from emotrt.runtime.backends import load_engine

    worst: Dict[str, List[float]] = {name: [0.0, 0.0, 1.0] for name in spec.outputs(model)}
    shapes = []
    with load_engine(onnx_path, backend="onnxruntime") as engine:
        for feed in spec.cases(model, config):
            shapes.append("x".join(str(d) for d in feed["audio"].shape))
            expected = run_torch(spec, model, feed)
            got = engine.run(to_numpy(feed))
            for name, ref in expected.items():
                w = worst[name]
                if got[name].shape != ref.shape:
                    w[0], w[1], w[2] = float("inf"), float("inf"), False
                    continue
                err = np.abs(got[name].astype(np.float64) - ref)
                rel = err / np.maximum(np.abs(ref), 1e-12)
                w[0], w[1] = max(w[0], float(err.max())), max(w[1], float(rel.max()))
                w[2] = w[2] and not np.any(err > spec.atol + spec.rtol * np.abs(ref))
    outputs = tuple(OutputParity(n, w[0], w[1], bool(w[2])) for n, w in worst.items())
    return ParityResult(spec.kind, tuple(shapes), outputs, spec.atol, spec.rtol)


def require_parity(results: Sequence[ParityResult], stage: str = "export") -> None:
    """Raise one :class:`ParityError` listing every mismatching output of every graph."""
    problems = [m for r in results for m in r.mismatches()]
    if problems:
        raise ParityError(
            "ONNX Runtime does not match PyTorch after {} ({} output(s)): {}".format(stage, len(problems), "; ".join(problems)),
            hint="make the named graphs shape-independent (a Reshape baked at the traced length is the usual cause), then re-run `emotrt export`",
        )
