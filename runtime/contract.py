"""The contract every emotrt ONNX graph carries in its ``metadata_props`` (DESIGN.md §2.2).

Export writes it with :meth:`ModelContract.to_metadata`; calibration, devices and
the runtime read it back with :meth:`ModelContract.from_metadata`. Values are JSON
strings under ``emotrt.*`` keys, so a graph describes itself to any tool.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from emotrt.runtime.errors import ModelContractError

SCHEMA = 1
MODEL_KINDS = ("tse_step", "tse_offline", "enroll", "ser", "vad")
PREFIX = "emotrt."


@dataclass(frozen=True)
class StateSpec:
    """One streaming state tensor: fed as ``state_in.<name>``, returned as ``state_out.<name>``."""

    name: str
    shape: Tuple[int, ...]
    init: float = 0.0

    @property
    def input_name(self) -> str:
        return "state_in." + self.name

    @property
    def output_name(self) -> str:
        return "state_out." + self.name


@dataclass(frozen=True)
class ModelContract:
    """What a graph is and how to drive it.

    ``chunk_samples`` is the audio one ``tse_step`` call consumes; ``window_samples``
    the audio one ``ser`` call sees. ``extra`` holds model-specific facts (labels,
    parity achieved, export commit, ...), all JSON-serialisable.
    """

    model: str
    sample_rate: int
    chunk_samples: Optional[int] = None
    window_samples: Optional[int] = None
    states: Tuple[StateSpec, ...] = ()
    spk_dim: Optional[int] = None
    d_model: Optional[int] = None
    labels: Tuple[str, ...] = ()
    opset: Optional[int] = None
    schema: int = SCHEMA
    extra: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.model not in MODEL_KINDS:
            problems.append("model={!r} is not one of {}".format(self.model, ", ".join(MODEL_KINDS)))
        if self.sample_rate <= 0:
            problems.append("sample_rate={} must be positive".format(self.sample_rate))
        if self.model == "tse_step" and not self.chunk_samples:
            problems.append("tse_step needs chunk_samples")
        if self.model == "ser" and not (self.window_samples and self.d_model):
            problems.append("ser needs window_samples and d_model")
        if problems:
            raise ModelContractError("invalid model contract: " + "; ".join(problems))

    def to_metadata(self) -> Dict[str, str]:
        """The ``metadata_props`` entries (key -> JSON string)."""
        data = asdict(self)
        data["states"] = [asdict(s) for s in self.states]
        return {PREFIX + key: json.dumps(value) for key, value in data.items()}

    @classmethod
    def from_metadata(cls, props: Dict[str, str], source: str = "model") -> "ModelContract":
        """Parse ``metadata_props``; a graph without them gets a clear error."""
        data = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if "model" not in data:
            raise ModelContractError(
                "{} carries no emotrt metadata (metadata_props emotrt.*)".format(source),
                hint="export it with `emotrt export`",
            )
        try:
            values = {k: json.loads(v) for k, v in data.items()}
        except ValueError as exc:
            raise ModelContractError("{} has malformed emotrt metadata: {}".format(source, exc))
        try:
            return cls._from_values(values, source)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # found by the fuzz test
            raise ModelContractError("{} has malformed emotrt metadata ({}: {})".format(source, type(exc).__name__, exc),
                                     hint="re-export it with `emotrt export`")

    @classmethod
    def _from_values(cls, values: Dict[str, Any], source: str) -> "ModelContract":
        schema = values.get("schema", SCHEMA)
        if schema > SCHEMA:
            raise ModelContractError(
                "{} uses contract schema {}, this emotrt reads up to {}".format(source, schema, SCHEMA),
                hint="upgrade emotrt on this machine",
            )
        known = set(cls.__dataclass_fields__)
        extra = dict(values.pop("extra", {}) or {})
        extra.update({k: v for k, v in values.items() if k not in known})
        values = {k: v for k, v in values.items() if k in known}
        values["states"] = tuple(
            StateSpec(s["name"], tuple(s["shape"]), float(s.get("init", 0.0)))
            for s in values.get("states", [])
        )
        values["labels"] = tuple(values.get("labels", ()))
        return cls(extra=extra, **values)

    @property
    def state_bytes(self) -> int:
        """Float32 bytes of streaming state carried between hops."""
        total = 0
        for s in self.states:
            n = 1
            for d in s.shape:
                n *= d
            total += 4 * n
        return total


def state_names(contract: ModelContract) -> List[Tuple[str, str]]:
    """(input name, output name) pairs of the streaming state, in contract order."""
    return [(s.input_name, s.output_name) for s in contract.states]
