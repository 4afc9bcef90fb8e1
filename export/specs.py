"""Declarative export specs, one per graph kind (optimum's export-config shape, STYLE.md 8).

A :class:`GraphSpec` says what a graph is: the model method it wraps, input/output names
(docs/contracts.md), dynamic axes, how to build example inputs and parity cases, the
tolerances, and the contract facts it carries. The exporter, parity check and test-vector
writer are generic over specs; nothing branches on the model class. A checkpoint's
``family`` picks its specs in :data:`FAMILY_SPECS` (by its prefix before ``_``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Tuple

import torch

Feed = Dict[str, torch.Tensor]


def config_value(config: Any, key: str) -> Any:
    """``config.key`` or ``config[key]``: checkpoints give dicts, models dataclass configs."""
    if isinstance(config, Mapping):
        return config[key]
    return getattr(config, key)


class _Method(torch.nn.Module):
    """Exposes one method of a model as ``forward`` so the exporter can trace it."""

    def __init__(self, model: torch.nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, *args: torch.Tensor) -> Any:
        if self.method == "forward":
            return self.model(*args)
        return getattr(self.model, self.method)(*args)


@dataclass(frozen=True)
class GraphSpec:
    """How to export, validate and describe one graph kind.

    ``example(model, config, length, generator)`` builds a feed; ``length`` is ``None``
    for fixed-shape graphs. ``trace_length`` and ``parity_lengths`` are in hops
    (``config.chunk_samples``) plus extra samples, so odd lengths are covered;
    a dynamic graph is checked at lengths other than the traced one.
    """

    kind: str
    method: str
    inputs: Callable[[Any], Tuple[str, ...]]
    outputs: Callable[[Any], Tuple[str, ...]]
    example: Callable[[Any, Any, Any, torch.Generator], Feed]
    dynamic: Tuple[str, ...] = ()
    trace_length: Tuple[int, int] = (4, 0)
    parity_lengths: Tuple[Tuple[int, int], ...] = ()
    parity_seeds: int = 3
    atol: float = 1e-4
    rtol: float = 1e-3

    def module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model with ``forward`` bound to this graph's method, in eval mode."""
        return _Method(model, self.method).eval()

    def dynamic_axes(self, model: Any) -> Dict[str, Dict[int, str]]:
        """Time axis of every dynamic input and output (batch stays 1: one TensorRT profile)."""
        names = [n for n in self.inputs(model) + self.outputs(model) if n in self.dynamic]
        return {n: {1: "samples"} for n in names}

    def samples(self, config: Any, hops_extra: Tuple[int, int]) -> int:
        hops, extra = hops_extra
        return hops * int(config_value(config, "chunk_samples")) + extra

    def cases(self, model: Any, config: Any, seed: int = 0) -> List[Feed]:
        """Parity feeds: other lengths for dynamic graphs, other contents (and states) for fixed ones."""
        gen = torch.Generator().manual_seed(seed + 1)
        if self.dynamic:
            return [self.example(model, config, self.samples(config, hl), gen) for hl in self.parity_lengths]
        return [self.example(model, config, None, gen) for _ in range(self.parity_seeds)]

    def trace_feed(self, model: Any, config: Any) -> Feed:
        gen = torch.Generator().manual_seed(0)
        length = self.samples(config, self.trace_length) if self.dynamic else None
        return self.example(model, config, length, gen)


def _audio(n: int, gen: torch.Generator) -> torch.Tensor:
    return 0.3 * torch.randn(1, n, generator=gen)


def speaker_dim(model: Any, config: Any) -> int:
    """D of ``spk_emb``, read from the model itself (one enrollment pass on silence)."""
    with torch.no_grad():
        return int(model.enroll(torch.zeros(1, 4 * int(config_value(config, "chunk_samples")))).shape[-1])


def _state_names(model: Any) -> List[str]:
    return [name for name, _ in model.state_specs()]


def _tse_step_feed(model: Any, config: Any, length: Any, gen: torch.Generator) -> Feed:
    feed = {
        "audio": _audio(int(config_value(config, "chunk_samples")), gen),
        "spk_emb": torch.randn(1, speaker_dim(model, config), generator=gen),
    }
    for name, shape in model.state_specs():
        # random states exercise every cache path, not only the all-zero start
        feed["state_in." + name] = 0.1 * torch.randn(*shape, generator=gen)
    return feed


def _tse_offline_feed(model: Any, config: Any, length: Any, gen: torch.Generator) -> Feed:
    return {"audio": _audio(length, gen), "spk_emb": torch.randn(1, speaker_dim(model, config), generator=gen)}


def _enroll_feed(model: Any, config: Any, length: Any, gen: torch.Generator) -> Feed:
    return {"audio": _audio(length, gen)}


def _ser_feed(model: Any, config: Any, length: Any, gen: torch.Generator) -> Feed:
    return {
        "audio": _audio(int(config_value(config, "window_samples")), gen),
        "env_token": torch.randn(1, int(config_value(config, "d_model")), generator=gen),
    }


TSE_STEP = GraphSpec(
    kind="tse_step",
    method="step",
    inputs=lambda m: ("audio", "spk_emb") + tuple("state_in." + n for n in _state_names(m)),
    outputs=lambda m: ("audio_out",) + tuple("state_out." + n for n in _state_names(m)),
    example=_tse_step_feed,
)
TSE_OFFLINE = GraphSpec(
    kind="tse_offline",
    method="forward",
    inputs=lambda m: ("audio", "spk_emb"),
    outputs=lambda m: ("audio_out",),
    example=_tse_offline_feed,
    dynamic=("audio", "audio_out"),
    trace_length=(4, 0),
    parity_lengths=((1, 0), (7, 13), (25, 1)),
)
ENROLL = GraphSpec(
    kind="enroll",
    method="enroll",
    inputs=lambda m: ("audio",),
    outputs=lambda m: ("spk_emb",),
    example=_enroll_feed,
    dynamic=("audio",),
    trace_length=(4, 0),
    parity_lengths=((1, 0), (9, 37), (50, 3)),
)
SER = GraphSpec(
    kind="ser",
    method="forward",
    inputs=lambda m: ("audio", "env_token"),
    outputs=lambda m: ("logits", "avd"),
    example=_ser_feed,
)

FAMILY_SPECS: Dict[str, Tuple[GraphSpec, ...]] = {
    "tse": (TSE_STEP, TSE_OFFLINE, ENROLL),
    "ser": (SER,),
}


def specs_for_family(family: Any) -> Tuple[GraphSpec, ...]:
    """The specs of a checkpoint family: an exact key, else its prefix (``tse_td_speakerbeam`` -> ``tse``)."""
    family = str(family or "")
    return FAMILY_SPECS.get(family) or FAMILY_SPECS.get(family.split("_")[0], ())
