"""The bundle manifest (``manifest.json``, schema 1 in docs/contracts.md) as frozen dataclasses.

One shape for the writer (``emotrt.devices.bundle_writer``) and the reader
(``emotrt.runtime.bundle_reader``), and one rule for which files a manifest covers
(:func:`covered_files`): both sides call it, so they cannot drift apart.

    manifest = Manifest.read("bundle/")
    manifest.models["tse_step"].variants["int8"]       # 'models/tse_step.int8.onnx'
    manifest.write("bundle/")                          # atomically

Torch-free, numpy-free and Python 3.8-valid (runs on the device). The JSON Schema
(``devices/schema/manifest.schema.json``) is checked against these classes in
``tests/runtime/test_manifest.py``.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from emotrt.runtime.atomic import atomic_write
from emotrt.runtime.errors import BundleError
from emotrt.runtime.fingerprint import EngineFingerprint

SCHEMA = 1
MANIFEST = "manifest.json"
#: the detached signature of the manifest (``emotrt sign``, devices/signing.py); it cannot list itself
SIGNATURE = "manifest.sig"
#: folders outside ``files``: devices enroll speakers after flashing
UNHASHED = ("speakers",)
PRECISIONS = ("fp32", "fp16", "int8")
_UPGRADE = "pip install -U emotrt (this emotrt reads bundle schema {})".format(SCHEMA)
_REBUILD = "rebuild the bundle with `emotrt build`"

Dims = Tuple[Optional[int], ...]


def sha256_file(path: Any) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(os.fspath(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_member_name(name: str, archive: str) -> PurePosixPath:
    """A bundle-relative path that stays inside its directory, else :class:`BundleError`."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")) or ":" in (path.parts[:1] or [""])[0]:
        raise BundleError(
            "{}: member {!r} escapes the bundle directory; refusing to unpack".format(archive, name),
            hint="rebuild the archive with `emotrt build --tar`",
        )
    return path


def is_covered(rel: str) -> bool:
    """Whether the bundle-relative path ``rel`` belongs in the manifest's ``files`` (THE rule)."""
    return rel not in (MANIFEST, SIGNATURE) and rel.split("/")[0] not in UNHASHED


def covered_files(root: Any) -> List[str]:
    """Every file under ``root`` that the manifest's ``files`` must list, bundle-relative and sorted."""
    root = Path(root)
    out = []
    for dirpath, _, names in os.walk(str(root)):
        for name in names:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if is_covered(rel):
                out.append(rel)
    return sorted(out)


def hash_files(root: Any) -> Dict[str, str]:
    """The manifest's ``files``: sha256 of every covered file under ``root``."""
    return {rel: sha256_file(Path(root) / rel) for rel in covered_files(root)}


def _drop_none(data: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _dims(values: Mapping[str, Sequence[Optional[int]]]) -> Dict[str, Dims]:
    return {name: tuple(d for d in dims) for name, dims in values.items()}


@dataclass(frozen=True)
class ModelIO:
    """A graph's I/O dims by tensor name (None marks a dynamic dim)."""

    inputs: Mapping[str, Dims]
    outputs: Mapping[str, Dims]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ModelIO":
        return cls(_dims(data.get("inputs", {})), _dims(data.get("outputs", {})))

    def to_json(self) -> Dict[str, Any]:
        return {"inputs": {k: list(v) for k, v in self.inputs.items()},
                "outputs": {k: list(v) for k, v in self.outputs.items()}}


@dataclass(frozen=True)
class ModelEntry:
    """One model: its graph contract, ONNX per precision and calibration artefacts (bundle-relative)."""

    contract: Mapping[str, str]
    variants: Mapping[str, str]
    io: Optional[ModelIO] = None
    calib_cache: Optional[str] = None
    calib_caches: Mapping[str, str] = field(default_factory=dict)  # TensorRT cache version code -> file
    precision_plan: Optional[str] = None

    def files(self) -> List[str]:
        """The bundle files this entry refers to."""
        rels = list(self.variants.values())
        rels += [rel for rel in (self.calib_cache, self.precision_plan) if rel]
        rels += list(self.calib_caches.values())
        return rels

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str = "?", source: str = MANIFEST) -> "ModelEntry":
        if not isinstance(data, Mapping) or "contract" not in data or "variants" not in data:
            raise BundleError("{}: model {!r} needs 'contract' and 'variants'".format(source, name))
        io = data.get("io")
        return cls(
            contract=dict(data["contract"]), variants=dict(data["variants"]),
            io=ModelIO.from_json(io) if io else None, calib_cache=data.get("calib_cache"),
            calib_caches=dict(data.get("calib_caches") or {}), precision_plan=data.get("precision_plan"),
        )

    def to_json(self) -> Dict[str, Any]:
        return _drop_none({
            "contract": dict(self.contract), "variants": dict(self.variants),
            "io": self.io.to_json() if self.io is not None else None,
            "calib_cache": self.calib_cache, "precision_plan": self.precision_plan,
            "calib_caches": dict(self.calib_caches) if self.calib_caches else None,
        })


@dataclass(frozen=True)
class EngineEntry:
    """One plan listed in the manifest."""

    model: str
    precision: str
    fingerprint: EngineFingerprint
    plan: str
    trtexec: str = ""
    onnx: Optional[str] = None  # the bundle ONNX the plan was built from (the FP32 graph for implicit INT8)
    build_log: Optional[str] = None
    timing_cache: Optional[str] = None
    sha256: Optional[str] = None  # the plan's, for plans outside a bundle (runtime/device_engines.py); a bundle's are in ``files``

    @property
    def fingerprint_id(self) -> str:
        return self.fingerprint.fingerprint_id

    @property
    def key(self) -> Tuple[str, str, str]:
        """What makes two entries the same plan: model, precision and fingerprint."""
        return self.model, self.precision, self.fingerprint_id

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EngineEntry":
        return cls(data["model"], data["precision"], EngineFingerprint.from_dict(data["fingerprint"]), data["plan"],
                   data.get("trtexec", ""), data.get("onnx"), data.get("build_log"), data.get("timing_cache"), data.get("sha256"))

    def to_json(self) -> Dict[str, Any]:
        return _drop_none({
            "model": self.model, "precision": self.precision, "fingerprint": self.fingerprint.to_dict(),
            "fingerprint_id": self.fingerprint_id, "plan": self.plan, "onnx": self.onnx, "trtexec": self.trtexec,
            "build_log": self.build_log, "timing_cache": self.timing_cache, "sha256": self.sha256,
        })


@dataclass(frozen=True)
class BuildPlan:
    """The trtexec line that builds one model at one precision for one target (and JetPack release)."""

    model: str
    precision: str
    target: str
    trtexec: str
    jetpack: Optional[str] = None
    tensorrt: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BuildPlan":
        return cls(data["model"], data["precision"], data["target"], data["trtexec"], data.get("jetpack"), data.get("tensorrt"))

    def to_json(self) -> Dict[str, Any]:
        return _drop_none({"model": self.model, "precision": self.precision, "target": self.target,
                           "jetpack": self.jetpack, "tensorrt": self.tensorrt, "trtexec": self.trtexec})


@dataclass(frozen=True)
class Provenance:
    """Where a bundle came from: source commit, checkpoint hashes, calibration-set hash, tool versions."""

    git_commit: Optional[str]
    checkpoints: Mapping[str, str]
    calibration_set: Optional[str]
    tools: Mapping[str, str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Provenance":
        return cls(data.get("git_commit"), dict(data.get("checkpoints") or {}), data.get("calibration_set"),
                   dict(data.get("tools") or {}))

    def to_json(self) -> Dict[str, Any]:
        return {"git_commit": self.git_commit, "checkpoints": dict(self.checkpoints),
                "calibration_set": self.calibration_set, "tools": dict(self.tools)}


@dataclass(frozen=True)
class Manifest:
    """A whole ``manifest.json``. ``files`` maps every covered file (:func:`covered_files`) to its sha256."""

    models: Mapping[str, ModelEntry]
    files: Mapping[str, str]
    engines: Tuple[EngineEntry, ...] = ()
    build_plans: Tuple[BuildPlan, ...] = ()
    env: str = "env"
    speakers: str = "speakers"
    testvectors: str = "testvectors"
    schema: int = SCHEMA
    emotrt_version: Optional[str] = None
    created: Optional[str] = None
    targets: Tuple[str, ...] = ()
    provenance: Optional[Provenance] = None

    def referenced_files(self) -> List[Tuple[str, str]]:
        """(what refers, file) for every file a model or engine entry names."""
        refs = [("model " + name, rel) for name, entry in sorted(self.models.items()) for rel in entry.files()]
        refs += [("engine " + e.model, e.plan) for e in self.engines]
        return refs

    def with_engines(self, engines: Sequence[EngineEntry], files: Mapping[str, str]) -> "Manifest":
        """This manifest with ``engines`` added (replacing entries for the same plan) and new ``files``."""
        keep = {e.key for e in engines}
        merged = tuple(e for e in self.engines if e.key not in keep) + tuple(engines)
        return replace(self, engines=merged, files=dict(files))

    # ------------------------------------------------------------------ JSON

    @classmethod
    def from_json(cls, data: Any, source: str = MANIFEST) -> "Manifest":
        """Check the schema version and structure of parsed JSON; :class:`BundleError` naming what is wrong."""
        if not isinstance(data, dict):
            raise BundleError("{} must hold a JSON object".format(source))
        schema = data.get("schema")
        if not isinstance(schema, int) or isinstance(schema, bool):
            raise BundleError("{}: 'schema' must be an integer, found {!r}".format(source, schema))
        if schema > SCHEMA:
            raise BundleError(
                "{} uses bundle schema {}, newer than the {} this emotrt reads".format(source, schema, SCHEMA), hint=_UPGRADE
            )
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise BundleError("{} lacks {}".format(source, ", ".join(missing)), hint=_REBUILD)
        kinds = {"models": dict, "files": dict, "engines": list}
        wrong = [k for k, kind in kinds.items() if not isinstance(data[k], kind)]
        if wrong:
            raise BundleError("{}: {} must be {}".format(source, ", ".join(wrong), ", ".join(kinds[k].__name__ for k in wrong)))
        for key in ("env", "speakers", "testvectors"):
            check_member_name(str(data[key]), source)
        models = {name: ModelEntry.from_json(entry, name, source) for name, entry in data["models"].items()}
        try:
            engines = tuple(EngineEntry.from_json(e) for e in data["engines"])
            plans = tuple(BuildPlan.from_json(p) for p in data.get("build_plans") or ())
        except (KeyError, TypeError) as exc:
            raise BundleError("{}: an engine or build plan entry lacks {}".format(source, exc), hint=_REBUILD)
        prov = data.get("provenance")
        return cls(
            models=models, files=dict(data["files"]), engines=engines, build_plans=plans,
            env=data["env"], speakers=data["speakers"], testvectors=data["testvectors"], schema=schema,
            emotrt_version=data.get("emotrt_version"), created=data.get("created"),
            targets=tuple(data.get("targets") or ()), provenance=Provenance.from_json(prov) if prov is not None else None,
        )

    def to_json(self) -> Dict[str, Any]:
        return _drop_none({
            "schema": self.schema,
            "emotrt_version": self.emotrt_version,
            "created": self.created,
            "targets": list(self.targets),
            "models": {name: entry.to_json() for name, entry in self.models.items()},
            "engines": [e.to_json() for e in self.engines],
            "build_plans": [p.to_json() for p in self.build_plans],
            "env": self.env,
            "speakers": self.speakers,
            "testvectors": self.testvectors,
            "files": dict(self.files),
            "provenance": self.provenance.to_json() if self.provenance is not None else None,
        })

    @classmethod
    def read(cls, root: Any) -> "Manifest":
        """Parse and check ``root/manifest.json``."""
        path = Path(root) / MANIFEST
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise BundleError("cannot read {}: {}".format(path, exc))
        except ValueError as exc:
            raise BundleError("{} is not valid JSON: {}".format(path, exc), hint=_REBUILD)
        return cls.from_json(data, source=str(path))

    def write(self, root: Any) -> Path:
        """Write ``root/manifest.json`` atomically."""
        path = Path(root) / MANIFEST
        atomic_write(path, (json.dumps(self.to_json(), indent=1) + "\n").encode())
        return path


_REQUIRED = ("schema", "models", "engines", "files", "env", "speakers", "testvectors")

