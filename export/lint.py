"""TensorRT lint: check an ONNX graph against what a given TensorRT's ONNX parser accepts.

The operator matrices are data read from onnx-tensorrt's ``docs/operators.md`` for each
target (``export/trt_ops/<version>.json``, with the source and commit they came from;
regenerate with ``scripts/trt_ops_from_markdown.py``). On top of them ``policy.json`` holds
emotrt's own rules for per-hop graphs (no control flow, DSP as convolutions, one profile).
This runs on the workstation so a graph TensorRT would refuse is caught before it reaches
a Jetson.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

from emotrt.runtime.errors import ConfigError, ModelContractError, TensorRTLintError
from emotrt.runtime.trt_version import parse_version

log = logging.getLogger(__name__)

TABLES = Path(__file__).with_name("trt_ops")
TRT_TARGETS = ("8.5", "10.3", "11")
_ONNX_DOMAINS = ("", "ai.onnx")
#: Operators a parser gained after the newest table not newer than it (REFERENCE.md "Export facts":
#: TensorRT's parser takes ``LayerNormalization`` from 8.6, which has no table of its own).
GAINED_SINCE = {"LayerNormalization": (8, 6)}
_INT32_MAX = 2 ** 31 - 1


@dataclass(frozen=True)
class LintIssue:
    """One finding: ``severity`` is ``error`` (the build would fail) or ``note`` (check by hand)."""

    severity: str
    rule: str
    node: str
    op: str
    message: str

    def line(self) -> str:
        where = "{} ({})".format(self.node, self.op) if self.op else self.node
        return "{}: {}: {}".format(self.rule, where, self.message)


@dataclass(frozen=True)
class LintReport:
    """Every finding for one graph and one TensorRT target."""

    model: str
    trt: str
    source: str
    issues: Tuple[LintIssue, ...]

    @property
    def errors(self) -> List[LintIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise one :class:`TensorRTLintError` naming every offending node."""
        if self.errors:
            raise TensorRTLintError(
                "{} fails the TensorRT {} lint ({} problem(s)): {}".format(
                    self.model, self.trt, len(self.errors), "; ".join(i.line() for i in self.errors)
                ),
                hint="change the model or export options for those nodes, then re-run `emotrt lint {} --trt {}`".format(
                    self.model, self.trt
                ),
            )


def load_operator_table(trt: str) -> Dict[str, Any]:
    """The operator matrix for TensorRT ``trt`` (one of :data:`TRT_TARGETS`)."""
    if trt not in TRT_TARGETS:
        raise ConfigError(
            "unknown TensorRT target {!r}; expected one of {}".format(trt, ", ".join(TRT_TARGETS)),
            hint="pass --trt 8.5 (JetPack 5), 10.3 (JetPack 6.1/6.2) or 11 (JetPack 7)",
        )
    return json.loads((TABLES / (trt + ".json")).read_text())


def _policy() -> Dict[str, Any]:
    return json.loads((TABLES / "policy.json").read_text())


def _nodes(graph: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """Every node, including those inside If/Loop/Scan bodies."""
    from onnx import AttributeProto

    for index, node in enumerate(graph.node):
        name = prefix + (node.name or "{}_{}".format(node.op_type, index))
        yield name, node
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _nodes(attr.g, name + "/")
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _nodes(sub, name + "/")


def _model_kind(model: Any) -> str:
    props = {p.key: p.value for p in model.metadata_props}
    try:
        return json.loads(props.get("emotrt.model", '""'))
    except ValueError:
        return ""


_CONSTANT_RULE = re.compile(
    r"`(\w+)`(?: input)? must be (?:an initializer|a constant tensor|a build-time constant|resolvable to a constant)"
)


def _constant_inputs_missing(node: Any, restriction: str, constants: Set[str], opset: int) -> List[str]:
    """Inputs that the parser needs constant (per its restriction text) but that are computed at run time."""
    from onnx import defs

    wanted = _CONSTANT_RULE.findall(restriction)
    if not wanted:
        return []
    try:
        formal = [i.name for i in defs.get_schema(node.op_type, opset).inputs]
    except Exception:  # onnx raises SchemaError (not exported) for unknown ops
        return []
    missing = []
    for input_name in wanted:
        if input_name in formal:  # otherwise it is an attribute, constant by construction
            index = formal.index(input_name)
            if index < len(node.input) and node.input[index] and node.input[index] not in constants:
                missing.append(input_name)
    return missing


def _constants(model: Any) -> Set[str]:
    names = {i.name for i in model.graph.initializer}
    names.update(o for _, n in _nodes(model.graph) if n.op_type == "Constant" for o in n.output)
    return names


def _weights(model: Any, constants: Set[str]) -> Set[str]:
    """Constants and constants dequantized by a ``DequantizeLinear`` (TensorRT's Q/DQ weight pattern)."""
    dequantized = {n.output[0] for _, n in _nodes(model.graph) if n.op_type == "DequantizeLinear" and n.input[0] in constants}
    return constants | dequantized


def _onnx_opset(model: Any) -> int:
    return next((i.version for i in model.opset_import if i.domain in _ONNX_DOMAINS), 1)


def _check_nodes(model: Any, table: Dict[str, Any], policy: Dict[str, Any]) -> Iterator[LintIssue]:
    operators, denied, weights_rule = table["operators"], policy["denied"], policy.get("constant_inputs", {})
    constants, opset = _constants(model), _onnx_opset(model)
    weights = _weights(model, constants)
    noted = set()
    for name, node in _nodes(model.graph):
        op = node.op_type
        if node.domain not in _ONNX_DOMAINS:
            yield LintIssue("error", "custom-domain", name, op, "domain {!r} needs a TensorRT plugin".format(node.domain))
            continue
        if op in weights_rule and _constant_inputs_missing(node, weights_rule[op], weights, opset):
            yield LintIssue("error", "emotrt-policy", name, op, weights_rule[op])
        entry = operators.get(op)
        if entry is None or not entry["supported"]:
            state = "not in" if entry is None else "marked unsupported in"
            yield LintIssue("error", "unsupported-op", name, op, "{} {}".format(state, table["source"]))
        elif op in denied:
            yield LintIssue("error", "emotrt-policy", name, op, denied[op])
        elif entry["restrictions"]:
            missing = _constant_inputs_missing(node, entry["restrictions"], constants, opset)
            if missing:
                yield LintIssue("error", "restriction", name, op, "input(s) {} computed at run time: {}".format(
                    ", ".join(missing), entry["restrictions"]))
            elif op not in noted:
                noted.add(op)
                yield LintIssue("note", "restriction", name, op, entry["restrictions"])


def _check_opset(model: Any, table: Dict[str, Any]) -> Iterator[LintIssue]:
    low, high = table["opset"]
    for imp in model.opset_import:
        if imp.domain in _ONNX_DOMAINS and not low <= imp.version <= high:
            yield LintIssue(
                "error", "opset", "graph", "",
                "opset {} outside {}..{} that TensorRT {} parses".format(imp.version, low, high, table["tensorrt"]),
            )


def _int64_native(table: Dict[str, Any]) -> bool:
    return any("INT64" in entry["types"] for entry in table["operators"].values())


def _check_int64(model: Any, table: Dict[str, Any]) -> Iterator[LintIssue]:
    from onnx import TensorProto, numpy_helper

    if _int64_native(table):
        return
    for value in list(model.graph.input) + list(model.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.INT64:
            yield LintIssue("error", "int64-io", value.name, "", "INT64 graph I/O: TensorRT {} has no INT64 tensors".format(table["tensorrt"]))
    consumers: Dict[str, List[Tuple[str, int]]] = {}
    for _, node in _nodes(model.graph):
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node.op_type, index))
    for init in model.graph.initializer:
        # Slice starts/ends of +-INT64_MAX mean "to the end": clamping them to INT32 keeps that meaning
        if all(op == "Slice" and index in (1, 2) for op, index in consumers.get(init.name, [("", 0)])):
            continue
        if init.data_type == TensorProto.INT64:
            values = numpy_helper.to_array(init)
            if values.size and int(abs(values).max()) > _INT32_MAX:
                yield LintIssue(
                    "error", "int64-range", init.name, "",
                    "INT64 constant beyond INT32 range: TensorRT {} casts to INT32 and clamps".format(table["tensorrt"]),
                )


def _check_shapes(model: Any, policy: Dict[str, Any]) -> Iterator[LintIssue]:
    fixed = _model_kind(model) in policy["fixed_shape_models"]
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value")]
        if fixed and dynamic:
            yield LintIssue("error", "dynamic-shape", value.name, "", "per-hop graphs need fixed shapes (one profile, CUDA graphs, DLA); dims {} are dynamic".format(dynamic))
        elif dims and 0 in dynamic:
            yield LintIssue("error", "dynamic-batch", value.name, "", "batch dimension must be fixed to 1 (one optimization profile)")
        elif len(dynamic) > 1:
            yield LintIssue("note", "dynamic-shape", value.name, "", "{} dynamic dims need min/opt/max in one profile".format(len(dynamic)))


def load_checked(path: Any) -> Any:
    """``onnx.load`` that refuses, in one :class:`ModelContractError`, a file that is not a valid ONNX model.

    An empty or cut protobuf can parse as an empty model, which every rule would pass.
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
        if not model.graph.node or not model.opset_import:
            raise onnx.checker.ValidationError("no graph nodes or no opset")
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, OSError, ValueError, RuntimeError) as exc:
        raise ModelContractError("{} is not a valid ONNX model ({})".format(path, (str(exc).splitlines() or [""])[0][:200]),
                                 hint="pass a .onnx written by `emotrt export` or `emotrt calibrate`")
    return model


def lint_model(model: Any, trt: str, name: str = "") -> LintReport:
    """Check ``model`` (path or ``onnx.ModelProto``) against TensorRT ``trt``; never raises on findings."""
    import onnx

    if not hasattr(model, "graph"):
        name = name or str(model)
        model = load_checked(model)
    table, policy = load_operator_table(trt), _policy()
    issues = list(_check_opset(model, table))
    issues += _check_nodes(model, table, policy)
    issues += _check_int64(model, table)
    issues += _check_shapes(model, policy)
    report = LintReport(name or model.graph.name, trt, table["source"], tuple(issues))
    log.info("lint %s for TensorRT %s: %d error(s)", report.model, trt, len(report.errors))
    return report


def lint_target(tensorrt: str) -> str:
    """The table a TensorRT release is linted against: the newest target not newer than it.

    ``"8.5.2"`` -> ``"8.5"``, ``"8.6.2"`` -> ``"8.5"`` (plus :data:`GAINED_SINCE`),
    ``"10.13.3"`` -> ``"10.3"``, ``"11.4.1"`` -> ``"11"``; a release older than every table
    is a :class:`ConfigError`.
    """
    try:
        version = parse_version(tensorrt)[:2]
    except ValueError:
        version = (0, 0)
    older = [t for t in TRT_TARGETS if parse_version(t)[:2] <= version]
    if not older:
        raise ConfigError(
            "unknown TensorRT target {!r}; expected one of {} or a release such as 8.6.2".format(tensorrt, ", ".join(TRT_TARGETS)),
            hint="pass --trt 8.5 (JetPack 5), 10.3 (JetPack 6.1/6.2) or 11 (JetPack 7)",
        )
    return older[-1]


def lint_release(model: Any, tensorrt: str, name: str = "") -> LintReport:
    """:func:`lint_model` for any TensorRT release (``8.6.2``, ``10.13.3``, or a table name such as ``8.5``)."""
    report = lint_model(model, lint_target(tensorrt), name=name)
    version = parse_version(tensorrt)[:2]
    kept = tuple(i for i in report.issues if not (i.op in GAINED_SINCE and version >= GAINED_SINCE[i.op]))
    return dataclasses.replace(report, trt=tensorrt, issues=kept)


@functools.lru_cache(maxsize=256)
def _release_errors(path: str, size: int, mtime_ns: int, tensorrt: str) -> Tuple[str, ...]:
    return tuple(i.line() for i in lint_release(path, tensorrt, name=path).errors)


def plan_check(path: Any, tensorrt: str) -> Tuple[str, ...]:
    """The lint errors of the ONNX file ``path`` on TensorRT ``tensorrt`` (none: it builds); for ``emotrt build``.

    Memoised per file content stamp and release, since a bundle plans the same graph for many targets.
    """
    stat = Path(path).stat()
    return _release_errors(str(path), stat.st_size, stat.st_mtime_ns, tensorrt)
