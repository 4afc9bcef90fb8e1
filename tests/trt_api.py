"""NVIDIA's real TensorRT Python API names (devices/trt_api/*.json) and two ways to hold code to them.

The files come from the published bindings wheels (scripts/trt_api_from_wheels.py); nothing here
downloads or imports TensorRT.

- :func:`double_names` lists what the recording double (tests/trt_double.py) offers for one
  version, as (real class, name) pairs, by constructing every object the double hands out.
- :func:`code_uses` walks emotrt's TensorRT modules (AST only) and lists every ``trt.…`` name,
  every method or property used on a TensorRT object and every method a subclass of a TensorRT
  class overrides, each with the version guards (``f.<feature>`` of ``trt_compat.features``)
  under which it runs.
- :func:`missing` says which of those the bindings of a version lack.
"""
from __future__ import annotations

import ast
import enum
import functools
import json
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from emotrt.devices import trt_compat
from emotrt.runtime import trt_version

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "devices" / "trt_api"
MODULE = ""  # the owner of a module-level name

#: device TensorRT releases the code must run on -> the published bindings that stand for them
#: (8.5.2 is read from the 8.6.1 bindings: no 8.5 bindings wheel exists, so 8.5-only absences
#: such as builder_optimization_level rest on NVIDIA's 8.6 release notes, not on a file)
DEVICE_VERSIONS = ("8.5.2", "8.6.2", "10.3.0", "10.13.3", "11.4.1")


def api_file(version: str) -> str:
    """The committed API file standing for TensorRT ``version`` (the nearest published bindings)."""
    major, minor, _ = trt_version.parse_version(version)
    if major < 10:
        return "8.6.1"
    if major == 10:
        return "10.3.0" if minor < 13 else "10.13.3"
    return "11.4.0"


@functools.lru_cache(maxsize=None)
def load_api(stem: str) -> Dict[str, Any]:
    return json.loads((API_DIR / (stem + ".json")).read_text())


def has(version: str, owner: str, name: str) -> bool:
    """Whether the real bindings standing for ``version`` have ``owner.name`` (owner "" = the module)."""
    api = load_api(api_file(version))
    if owner == MODULE:
        return name in api["classes"] or name in api["functions"] or name in api["values"]
    return name in api["classes"].get(owner, ())


def missing(version: str, pairs: Iterable[Tuple[str, str]]) -> List[str]:
    """``owner.name`` of each pair the bindings of ``version`` lack (a missing class counts once)."""
    out = []
    for owner, name in sorted(set(pairs)):
        if owner != MODULE and not has(version, MODULE, owner.split(".")[0]):
            out.append(owner)
        elif not has(version, owner, name):
            out.append("{}.{}".format(owner, name) if owner else name)
    return sorted(set(out))


# ----------------------------------------------------------------------------- the double

#: the double's own bookkeeping on the module (not part of the emulated API)
DOUBLE_ONLY = {"calls", "built"}


def _public(obj: Any) -> List[str]:
    names = set(n for n in dir(obj) if not n.startswith("_"))
    if isinstance(obj, type) and issubclass(obj, enum.Enum):  # members, not Enum's own helpers
        return sorted(obj.__members__)
    return sorted(names)


def double_objects(trt: types.ModuleType, onnx_path: Path) -> Dict[str, Any]:
    """Every object the double hands out, keyed by the real class it stands for."""
    logger = trt.ILogger()
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    parser.parse_from_file(str(onnx_path))
    config = builder.create_builder_config()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(onnx_path.read_bytes())
    objects = {
        "Builder": builder, "INetworkDefinition": network, "OnnxParser": parser, "IBuilderConfig": config,
        "IOptimizationProfile": builder.create_optimization_profile(), "ILayer": network.get_layer(0),
        "ITensor": network.get_input(0), "ITimingCache": config.create_timing_cache(b""),
        "Runtime": runtime, "ICudaEngine": engine, "IExecutionContext": engine.create_execution_context(),
    }
    if hasattr(engine, "create_engine_inspector"):
        objects["EngineInspector"] = engine.create_engine_inspector()
    return objects


def double_names(trt: types.ModuleType, onnx_path: Path) -> List[Tuple[str, str]]:
    """(real owner, name) for every name the double offers: module names, class and enum members,
    nested classes, and the methods and attributes (instance ones too) of every object it returns."""
    pairs: List[Tuple[str, str]] = []

    def visit_class(owner: str, cls: Any) -> None:
        for name in _public(cls):
            pairs.append((owner, name))
            inner = getattr(cls, name, None)
            if isinstance(inner, type):  # a nested class such as ILogger.Severity
                visit_class(owner + "." + name, inner)

    for name in sorted(vars(trt)):
        if name.startswith("__") and name != "__version__" or name in DOUBLE_ONLY:
            continue
        pairs.append((MODULE, name))
        value = getattr(trt, name)
        if isinstance(value, (type, types.SimpleNamespace)):
            visit_class(name, value)
    for owner, obj in double_objects(trt, onnx_path).items():
        for name in _public(obj):
            pairs.append((owner, name))
    return sorted(set(pairs))


# ----------------------------------------------------------------------------- emotrt's code

#: emotrt's TensorRT modules (builder, backend, version module, doctor): every file that holds a
#: TensorRT object (:func:`files_using_tensorrt` finds them, a test keeps this list complete)
CODE_MODULES = ("devices/engine_build.py", "devices/trt_compat.py", "runtime/backends/tensorrt.py",
                "runtime/backends/trt_inference.py", "runtime/trt_version.py", "devices/doctor.py",
                "devices/layer_times.py")
PACKAGE_DIRS = ("runtime", "devices", "calibration", "export", "training", "emotrt")
_HOLDS_TRT = re.compile(r"\btrt\.[A-Za-z]|=\s*[\w.]*import_tensorrt\(\)|^\s*import tensorrt\b", re.M)


def files_using_tensorrt() -> List[str]:
    """Package files that hold the tensorrt module or name ``trt.<something>``."""
    found = []
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if _HOLDS_TRT.search(path.read_text()):
                found.append(str(path.relative_to(ROOT)))
    return found

#: expressions that hold a TensorRT object, per module (parameters and attributes the walk cannot infer)
SEEDS: Dict[str, Dict[str, str]] = {
    "devices/trt_compat.py": {"trt": MODULE, "builder": "Builder", "config": "IBuilderConfig",
                              "network": "INetworkDefinition"},
    "devices/engine_build.py": {"trt": MODULE},
    "runtime/backends/tensorrt.py": {"engine.engine": "ICudaEngine"},
    "runtime/backends/trt_inference.py": {"trt": MODULE, "engine": "ICudaEngine", "context": "IExecutionContext"},
    "runtime/trt_version.py": {"tensorrt": MODULE},
    "devices/doctor.py": {},
    "devices/layer_times.py": {"engine.context": "IExecutionContext", "engine.engine": "ICudaEngine"},
}
#: what a call returns (TensorRT Python API reference)
RETURNS = {
    ("Builder", "create_network"): "INetworkDefinition",
    ("Builder", "create_builder_config"): "IBuilderConfig",
    ("Builder", "create_optimization_profile"): "IOptimizationProfile",
    ("INetworkDefinition", "get_layer"): "ILayer",
    ("INetworkDefinition", "get_input"): "ITensor",
    ("IBuilderConfig", "create_timing_cache"): "ITimingCache",
    ("IBuilderConfig", "get_timing_cache"): "ITimingCache",
    ("Runtime", "deserialize_cuda_engine"): "ICudaEngine",
    ("ICudaEngine", "create_execution_context"): "IExecutionContext",
    ("ICudaEngine", "create_engine_inspector"): "EngineInspector",
}
#: calls whose result is the tensorrt module
IMPORTS = ("trt_version.import_tensorrt", "trt_compat.import_tensorrt", "import_tensorrt")
#: ``getattr`` with a computed name: the names it can take (from the values the code allows)
DYNAMIC = {
    "getattr(trt.BuilderFlag, flag.upper())": ("BuilderFlag", ("FP16", "INT8")),  # BuildRecipe.flags
    "getattr(trt, dtype)": (MODULE, ("float32", "float16")),  # pin_layer_precision checks dtype
    "getattr(trt, trt_version.CACHE_CALIBRATORS[algo])": (MODULE, tuple(trt_version.CACHE_CALIBRATORS.values())),
}


@dataclass(frozen=True)
class Use:
    """One TensorRT name the code uses, where, and under which version guards."""

    owner: str
    name: str
    where: str
    guards: Tuple[str, ...]  # source of conditions that are all true where the name is used

    def runs_on(self, version: str) -> bool:
        f = trt_compat.features(version)
        return all(_truth(ast.parse(g, mode="eval").body, f) is not False for g in self.guards)

    @property
    def label(self) -> str:
        return "{}.{}".format(self.owner, self.name) if self.owner else self.name


def _truth(node: ast.AST, f: trt_compat.TrtFeatures) -> Optional[bool]:
    """Three-valued: ``f.<feature>`` is known per version, anything else unknown (None)."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "f":
        return bool(getattr(f, node.attr))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        value = _truth(node.operand, f)
        return None if value is None else not value
    if isinstance(node, ast.BoolOp):
        values = [_truth(v, f) for v in node.values]
        if isinstance(node.op, ast.And):
            return False if False in values else (True if all(v is True for v in values) else None)
        return True if True in values else (False if all(v is False for v in values) else None)
    return None


def _ends(body: Sequence[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], (ast.Return, ast.Raise))


class _Walker:
    """Types expressions as TensorRT classes (or the module) and records the names used on them."""

    def __init__(self, path: str, source: str) -> None:
        self.path, self.uses, self.unresolved = path, [], []  # type: str, List[Use], List[str]
        self.self_types: Dict[str, Any] = {}  # ``self.<attr>`` of the class being walked
        self.tree = ast.parse(source)

    def run(self) -> "_Walker":
        self.block(self.tree.body, dict(SEEDS.get(self.path, {})), ())
        return self

    def typeof(self, node: ast.AST, env: Dict[str, Any]) -> Any:
        text = ast.unparse(node)
        if text in env:
            return env[text]
        if isinstance(node, ast.Attribute):
            owner = self.typeof(node.value, env)
            if owner == MODULE:
                return node.attr  # a class (or function) of the module
            return None
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func in IMPORTS:
                return MODULE
            if isinstance(node.func, ast.Attribute):
                owner = self.typeof(node.func.value, env)
                if owner == MODULE:
                    return node.func.attr  # a constructor: trt.Builder(logger) is a Builder
                if isinstance(owner, str):
                    return RETURNS.get((owner, node.func.attr))
            if func == "getattr" and ast.unparse(node) in DYNAMIC:
                owner, names = DYNAMIC[ast.unparse(node)]
                return ("any of", tuple(names)) if owner == MODULE else None
        return None

    def record(self, owner: str, name: str, node: ast.AST, guards: Tuple[str, ...]) -> None:
        if name.startswith("__") and name != "__version__":
            return
        self.uses.append(Use(owner, name, "{}:{}".format(self.path, node.lineno), guards))

    def expr(self, node: ast.AST, env: Dict[str, Any], guards: Tuple[str, ...]) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute):
                owner = self.typeof(sub.value, env)
                if isinstance(owner, str):
                    self.record(owner, sub.attr, sub, guards)
            elif isinstance(sub, ast.Call) and ast.unparse(sub.func) in ("getattr", "hasattr", "setattr"):
                owner = self.typeof(sub.args[0], env) if sub.args else None
                if not isinstance(owner, str):
                    continue
                if isinstance(sub.args[1], ast.Constant):
                    self.record(owner, sub.args[1].value, sub, guards)
                elif ast.unparse(sub) in DYNAMIC:
                    declared, names = DYNAMIC[ast.unparse(sub)]
                    for name in names:
                        self.record(declared, name, sub, guards)
                else:
                    self.unresolved.append("{}:{} {}".format(self.path, sub.lineno, ast.unparse(sub)))

    def block(self, body: Sequence[ast.stmt], env: Dict[str, Any], guards: Tuple[str, ...]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.If):
                test = ast.unparse(stmt.test)
                self.expr(stmt.test, env, guards)
                self.block(stmt.body, env, guards + (test,))
                self.block(stmt.orelse, env, guards + ("not ({})".format(test),))
                if _ends(stmt.body) and not stmt.orelse:
                    guards = guards + ("not ({})".format(test),)  # the rest runs only when the test failed
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.block(stmt.body, dict(env, **self.self_types), guards)
                continue
            if isinstance(stmt, ast.ClassDef):
                self.class_def(stmt, env, guards)
                continue
            if isinstance(stmt, ast.Assign):
                self.expr(stmt.value, env, guards)
                kind = self.typeof(stmt.value, env)
                for target in stmt.targets:
                    self.expr(target, env, guards)
                    text = ast.unparse(target)
                    scopes = (env, self.self_types) if text.startswith("self.") else (env,)
                    for scope in scopes:  # an assignment of anything else forgets the type
                        scope.pop(text, None) if kind is None else scope.__setitem__(text, kind)
                continue
            children = [getattr(stmt, k) for k in ("body", "orelse", "finalbody") if hasattr(stmt, k)]
            children += [h.body for h in getattr(stmt, "handlers", [])]
            for field, value in ast.iter_fields(stmt):
                if field not in ("body", "orelse", "finalbody", "handlers"):
                    for node in value if isinstance(value, list) else [value]:
                        if isinstance(node, ast.AST):
                            self.expr(node, env, guards)
            for child in children:
                self.block(child, env, guards)

    def class_def(self, stmt: ast.ClassDef, env: Dict[str, Any], guards: Tuple[str, ...]) -> None:
        """A subclass of a TensorRT class: each method it overrides must exist in the real base."""
        bases: List[str] = []
        for base in stmt.bases:
            self.expr(base, env, guards)
            kind = self.typeof(base, env)
            if isinstance(kind, str) and kind != MODULE:
                bases.append(kind)
            elif isinstance(kind, tuple):
                bases.extend(kind[1])
        for item in stmt.body:
            if isinstance(item, ast.FunctionDef):
                for base in bases:
                    self.record(base, item.name, item, guards)
        outer, self.self_types = self.self_types, {}
        self.block(stmt.body, dict(env), guards)
        self.self_types = outer


def code_uses(paths: Sequence[str] = CODE_MODULES, sources: Optional[Dict[str, str]] = None) -> Tuple[List[Use], List[str]]:
    """Every TensorRT name used in ``paths`` (``sources`` overrides a file's text) and the ``getattr`` calls
    on TensorRT objects whose name the walk cannot resolve."""
    uses: List[Use] = []
    unresolved: List[str] = []
    for path in paths:
        source = (sources or {}).get(path) or (ROOT / path).read_text()
        walker = _Walker(path, source).run()
        uses += walker.uses
        unresolved += walker.unresolved
    return uses, unresolved


def code_missing(version: str, uses: Iterable[Use]) -> List[str]:
    """``owner.name (file:line)`` for each use that runs on ``version`` and its bindings lack."""
    out = []
    for use in uses:
        if use.runs_on(version) and missing(version, [(use.owner, use.name)]):
            out.append("{} ({})".format(use.label, use.where))
    return sorted(set(out))
