"""The precision plan (``<model>.precision.json``, schema 1) as a frozen dataclass.

The calibration stage writes it (``emotrt.calibration.plan``), the bundle carries it and
the engine build reads it (``emotrt.devices.bundle_build``): for one FP32 graph (by sha256)
the INT8 Q/DQ graph and its blocks/nodes, the blocks kept out of INT8 (FP16 on the device),
the nodes that always stay FP32, the TensorRT calibration caches per target version, and
``recipe_sha256`` (the engine fingerprint's ``precision_recipe``).

    plan = PrecisionPlan.read("models/ser.precision.json")
    plan.fp32.fp32_nodes, plan.fp16.nodes

Absent sections and lists stay absent (None) so a plan round-trips to the same JSON.
Torch- and numpy-free, Python 3.8-valid (the device reads it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from emotrt.runtime.errors import ConfigError

SCHEMA = 1


def _strings(data: Mapping[str, Any], key: str) -> Optional[Tuple[str, ...]]:
    return tuple(data[key]) if key in data and data[key] is not None else None


def _listed(values: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class NodeGroup:
    """The graph of one precision and the blocks/nodes that run at it (``int8`` and ``fp16`` sections)."""

    onnx: Optional[str] = None
    blocks: Optional[Tuple[str, ...]] = None
    nodes: Optional[Tuple[str, ...]] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "NodeGroup":
        return cls(data.get("onnx"), _strings(data, "blocks"), _strings(data, "nodes"))

    def to_json(self) -> Dict[str, Any]:
        return _listed({"onnx": self.onnx, "blocks": self.blocks, "nodes": self.nodes})


@dataclass(frozen=True)
class Fp32Nodes:
    """The ``fp32`` section: nodes that stay FP32 (by op type, front end or flagged range)."""

    fp32_op_types: Optional[Tuple[str, ...]] = None
    fp32_nodes: Optional[Tuple[str, ...]] = None
    flagged: Optional[Tuple[Mapping[str, Any], ...]] = None  # {"tensor": name, "abs_max": value}
    flag_limit: Optional[float] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Fp32Nodes":
        flagged = data.get("flagged")
        return cls(_strings(data, "fp32_op_types"), _strings(data, "fp32_nodes"),
                   tuple(dict(f) for f in flagged) if flagged is not None else None, data.get("flag_limit"))

    def to_json(self) -> Dict[str, Any]:
        flagged = [dict(f) for f in self.flagged] if self.flagged is not None else None
        return _listed({"fp32_op_types": self.fp32_op_types, "fp32_nodes": self.fp32_nodes,
                        "flagged": flagged, "flag_limit": self.flag_limit})


@dataclass(frozen=True)
class PrecisionPlan:
    """One model's precision decisions; the four decision sections are what ``recipe_sha256`` covers."""

    model: str
    recipe: Mapping[str, Any] = field(default_factory=dict)
    int8: Optional[NodeGroup] = None
    fp16: Optional[NodeGroup] = None
    fp32: Optional[Fp32Nodes] = None
    recipe_sha256: Optional[str] = None
    source_onnx: Optional[str] = None
    onnx_sha256: Optional[str] = None
    calib_caches: Optional[Mapping[str, str]] = None  # TensorRT version -> cache file name
    sensitivity: Optional[Tuple[Mapping[str, Any], ...]] = None
    schema: int = SCHEMA

    @property
    def calibration_set(self) -> Optional[str]:
        """sha256 of the calibration set the plan was measured on."""
        return self.recipe.get("calibration_set")

    @property
    def fp32_nodes(self) -> Tuple[str, ...]:
        """Nodes that stay FP32 in a weakly typed build."""
        return tuple(self.fp32.fp32_nodes or ()) if self.fp32 is not None else ()

    @property
    def kept_nodes(self) -> Tuple[str, ...]:
        """Nodes of the blocks the mixed-precision search kept out of INT8."""
        return tuple(self.fp16.nodes or ()) if self.fp16 is not None else ()

    def decisions(self) -> Dict[str, Any]:
        """``recipe``, ``int8``, ``fp16``, ``fp32`` as JSON: what ``recipe_sha256`` hashes."""
        return {"recipe": dict(self.recipe),
                "int8": self.int8.to_json() if self.int8 is not None else None,
                "fp16": self.fp16.to_json() if self.fp16 is not None else None,
                "fp32": self.fp32.to_json() if self.fp32 is not None else None}

    @classmethod
    def from_json(cls, data: Any, source: str = "precision plan") -> "PrecisionPlan":
        """Check the schema (1 up to this emotrt's) and parse."""
        if not isinstance(data, dict) or not isinstance(data.get("schema", 0), int) \
                or data.get("schema", 0) not in range(1, SCHEMA + 1):
            raise ConfigError(
                "{}: precision plan schema {} (this emotrt reads 1 to {})".format(
                    source, data.get("schema") if isinstance(data, dict) else None, SCHEMA),
                hint="re-run `emotrt calibrate` with this emotrt",
            )
        try:
            return cls._parse(data)
        except (TypeError, AttributeError, ValueError) as exc:
            raise ConfigError("{}: malformed precision plan ({}: {})".format(source, type(exc).__name__, exc),
                              hint="re-run `emotrt calibrate` to write it again")

    @classmethod
    def _parse(cls, data: Dict[str, Any]) -> "PrecisionPlan":
        section = lambda key, kind: kind.from_json(data[key]) if data.get(key) is not None else None  # noqa: E731
        sensitivity = data.get("sensitivity")
        return cls(
            model=data.get("model", ""), recipe=dict(data.get("recipe") or {}),
            int8=section("int8", NodeGroup), fp16=section("fp16", NodeGroup), fp32=section("fp32", Fp32Nodes),
            recipe_sha256=data.get("recipe_sha256"), source_onnx=data.get("source_onnx"),
            onnx_sha256=data.get("onnx_sha256"),
            calib_caches=dict(data["calib_caches"]) if data.get("calib_caches") is not None else None,
            sensitivity=tuple(dict(s) for s in sensitivity) if sensitivity is not None else None,
            schema=data["schema"],
        )

    def to_json(self) -> Dict[str, Any]:
        data = {"schema": self.schema, "model": self.model, "source_onnx": self.source_onnx,
                "onnx_sha256": self.onnx_sha256, "recipe_sha256": self.recipe_sha256}
        data.update(self.decisions())
        data["calib_caches"] = dict(self.calib_caches) if self.calib_caches is not None else None
        data["sensitivity"] = [dict(s) for s in self.sensitivity] if self.sensitivity is not None else None
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def read(cls, path: Any) -> "PrecisionPlan":
        """Load a plan written by this or an older emotrt."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError("precision plan {} is unreadable ({})".format(path, (str(exc).splitlines() or [""])[0]),
                              hint="re-run `emotrt calibrate` to write it again")
        return cls.from_json(data, source=str(path))
