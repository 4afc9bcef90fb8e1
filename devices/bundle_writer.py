"""Write bundles (DESIGN.md §2.4): gather files, hash them, write the manifest, pack/unpack ``.tar``.

Reading and verifying is :mod:`emotrt.runtime.bundle_reader`; both sides share the typed
manifest and the rule for which files it covers (:mod:`emotrt.runtime.manifest`). The JSON
Schema is ``devices/schema/manifest.schema.json``. A bundle is assembled in a staged
directory (:func:`emotrt.runtime.atomic.staged_dir`), so a failed build leaves nothing behind.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from emotrt import __version__, source_commit
from emotrt.runtime.atomic import atomic_file, staged_dir
from emotrt.runtime.bundle_reader import unpack_tar
from emotrt.runtime.contract import PREFIX, ModelContract
from emotrt.runtime.errors import BundleError
from emotrt.runtime.manifest import (BuildPlan, EngineEntry, Manifest, ModelEntry, ModelIO, Provenance,
                                     hash_files, sha256_file)
from emotrt.runtime.precision_plan import PrecisionPlan

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("schema") / "manifest.schema.json"
_TOOLS = ("onnx", "onnxruntime", "numpy", "tensorrt", "polygraphy")

__all__ = ["ModelFiles", "Staged", "collect_models", "write_bundle", "update_manifest", "pack_tar", "unpack_tar",
           "SCHEMA_FILE"]


@dataclass(frozen=True)
class ModelFiles:
    """The source files of one model: ONNX per precision, calibration cache, precision plan."""

    name: str
    metadata: Dict[str, str]
    variants: Dict[str, Path]
    calib_cache: Optional[Path] = None
    precision_plan: Optional[Path] = None
    calib_caches: Tuple[Tuple[str, Path], ...] = ()  # (TensorRT cache version code, file) from calibration

    @property
    def contract(self) -> ModelContract:
        return ModelContract.from_metadata(self.metadata, source=str(self.variants["fp32"]))


def read_onnx_metadata(path: Path) -> Dict[str, str]:
    """``emotrt.*`` metadata of an ONNX file, read with ONNX Runtime (the device has no ``onnx``)."""
    from emotrt.runtime.backends import load_engine

    with load_engine(path, backend="onnxruntime") as engine:
        props = dict(engine.session.get_modelmeta().custom_metadata_map)
    return {k: v for k, v in props.items() if k.startswith(PREFIX)}


def read_onnx_io(path: Path) -> ModelIO:
    """The I/O dims of an ONNX file; a dynamic dim is None."""
    from emotrt.runtime.backends import load_engine

    def dims(shape: Sequence[Any]) -> Tuple[Optional[int], ...]:
        return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)

    with load_engine(path, backend="onnxruntime") as engine:
        return ModelIO({t.name: dims(t.shape) for t in engine.inputs}, {t.name: dims(t.shape) for t in engine.outputs})


def collect_models(export_dir: Any, calibration_dir: Optional[Any] = None) -> Dict[str, ModelFiles]:
    """Every contract-carrying ``*.onnx`` of an export dir, with its calibration artefacts."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise BundleError("no export directory at {}".format(export_dir), hint="run `emotrt export` first")
    models: Dict[str, ModelFiles] = {}
    for path in sorted(export_dir.glob("*.onnx")):
        if path.name.count(".") > 1:  # tse_step.int8.onnx etc. belong to calibration
            continue
        metadata = read_onnx_metadata(path)
        name = ModelContract.from_metadata(metadata, source=str(path)).model
        if name in models:
            raise BundleError("{} and {} are both {} graphs".format(models[name].variants["fp32"], path, name))
        variants, cache, plan, per_version = {"fp32": path}, None, None, ()
        if calibration_dir is not None:
            cal = Path(calibration_dir)
            if not cal.is_dir():
                raise BundleError("no calibration directory at {}".format(cal), hint="run `emotrt calibrate` first")
            for precision in ("fp16", "int8"):
                candidate = cal / "{}.{}.onnx".format(name, precision)
                if candidate.is_file():
                    read_onnx_io(candidate)  # a damaged graph is named here, not later as its staged copy
                    variants[precision] = candidate
            cache = _optional(cal / "{}.calib.cache".format(name))
            plan = _optional(cal / "{}.precision.json".format(name))
            per_version = tuple(sorted(
                (p.name[len(name) + len(".trt-"):-len(".calib.cache")], p) for p in cal.glob("{}.trt-*.calib.cache".format(name))
            ))
            if plan is not None:
                check_calibration_source(path, plan, export_dir)
            elif len(variants) > 1 or cache is not None or per_version:
                raise BundleError(
                    "{}: calibration artefacts for {} without {}.precision.json, so their source graph cannot be checked".format(
                        cal, name, name),
                    hint="re-run `emotrt calibrate {} -o {} --force`".format(export_dir, cal))
        models[name] = ModelFiles(name, metadata, variants, cache, plan, per_version)
    if not models:
        raise BundleError(
            "{} holds no ONNX graph with emotrt metadata".format(export_dir), hint="run `emotrt export --out {}`".format(export_dir)
        )
    if calibration_dir is not None:
        check_calibration_models(Path(calibration_dir), export_dir, models)
    return models


def check_calibration_models(cal: Path, export_dir: Path, models: Dict[str, ModelFiles]) -> None:
    """Refuse a calibration directory with nothing for the export, or with plans for models the export lacks."""
    planned = sorted(p.name[: -len(".precision.json")] for p in cal.glob("*.precision.json"))
    foreign = [m for m in planned if m not in models]
    if foreign:
        raise BundleError(
            "{} calibrates {} that {} does not export".format(cal, ", ".join(foreign), export_dir),
            hint="pass the export the calibration was made from, or re-run `emotrt calibrate {} -o {} --force`".format(
                export_dir, cal))
    if not any(m.precision_plan is not None for m in models.values()):
        raise BundleError("{} holds no calibration for any model of {}".format(cal, export_dir),
                          hint="run `emotrt calibrate {} -o {}`, or drop --calibration".format(export_dir, cal))


def check_calibration_source(graph: Path, plan_path: Path, export_dir: Path) -> None:
    """Refuse a precision plan (and so its calibration) made from another graph than the export's ``graph``.

    The plan records the sha256 of the FP32 graph calibration read (``onnx_sha256``); every
    Q/DQ graph, cache and FP16 graph of that calibration run follows from it.
    """
    plan = PrecisionPlan.read(plan_path)
    if not plan.onnx_sha256:
        raise BundleError(
            "{} records no source graph sha256, so it cannot be checked against {}".format(plan_path, graph),
            hint="re-run `emotrt calibrate {} -o {} --force` with this emotrt".format(export_dir, plan_path.parent),
        )
    found = sha256_file(graph)
    if plan.onnx_sha256 != found:
        raise BundleError(
            "calibration {} was made from a {} with sha256 {}..., not this export's {} ({}...)".format(
                plan_path, plan.source_onnx or graph.name, plan.onnx_sha256[:12], graph, found[:12]),
            hint="re-run `emotrt calibrate {} -o {} --force` for this export, or pass the --calibration made from it".format(
                export_dir, plan_path.parent),
        )


def _optional(path: Path) -> Optional[Path]:
    return path if path.is_file() else None


def _tool_versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"emotrt": __version__}
    for name in _TOOLS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def provenance(models: Dict[str, ModelFiles], extra_checkpoints: Optional[Dict[str, str]] = None) -> Provenance:
    """Git commit, checkpoint hashes (from the graphs' metadata), calibration-set hash, tool versions."""
    checkpoints = dict(extra_checkpoints or {})
    sets = {}
    for m in models.values():
        extra = m.contract.extra
        if isinstance(extra.get("checkpoint_sha256"), str):
            checkpoints.setdefault(m.name, extra["checkpoint_sha256"])
        if m.precision_plan is not None:
            found = PrecisionPlan.read(m.precision_plan).calibration_set
            if found:
                sets[m.name] = found
    # one hash for the bundle: the set itself when every model shares it, else a hash of {model: set}
    if len(set(sets.values())) > 1:
        calibration_set = hashlib.sha256(json.dumps(sets, sort_keys=True).encode()).hexdigest()
    else:
        calibration_set = next(iter(sets.values()), None)
    commit = next((m.contract.extra.get("export_commit") for m in models.values() if m.contract.extra.get("export_commit")), None)
    return Provenance(commit or source_commit(), checkpoints, calibration_set, _tool_versions())


def _copy(src: Path, root: Path, rel: str) -> str:
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(str(src), str(dest))
    else:
        shutil.copy2(str(src), str(dest))
    return rel


def stage_models(root: Path, models: Dict[str, ModelFiles]) -> Dict[str, ModelEntry]:
    """Copy every model file under ``models/`` and return the manifest's ``models`` section."""
    section = {}
    for name, m in sorted(models.items()):
        variants = {}
        for precision, src in sorted(m.variants.items()):
            suffix = ".onnx" if precision == "fp32" else ".{}.onnx".format(precision)
            variants[precision] = _copy(src, root, "models/{}{}".format(name, suffix))
        section[name] = ModelEntry(
            contract=dict(sorted(m.metadata.items())), variants=variants, io=read_onnx_io(m.variants["fp32"]),
            calib_cache=_copy(m.calib_cache, root, "models/{}.calib.cache".format(name)) if m.calib_cache else None,
            precision_plan=(_copy(m.precision_plan, root, "models/{}.precision.json".format(name))
                            if m.precision_plan else None),
            calib_caches={code: _copy(path, root, "models/{}.trt-{}.calib.cache".format(name, code))
                          for code, path in m.calib_caches},
        )
    return section


@dataclass(frozen=True)
class Staged:
    """What a stage step adds: the models section (with any files it added) and the engine entries and plans."""

    models: Dict[str, ModelEntry]
    engines: Tuple[EngineEntry, ...] = ()
    build_plans: Tuple[BuildPlan, ...] = ()


#: ``(staging_root, models_section) -> Staged``
StageStep = Callable[[Path, Dict[str, ModelEntry]], Staged]


def write_bundle(
    out: Any,
    models: Dict[str, ModelFiles],
    env_dir: Any,
    testvectors_dir: Any,
    speakers_dir: Optional[Any] = None,
    targets: Sequence[str] = (),
    stage: Optional[StageStep] = None,
    prov: Optional[Provenance] = None,
    force: bool = False,
) -> Path:
    """Assemble a bundle at ``out`` atomically and return its path.

    ``stage(staging_root, models_section)`` may add plans under ``engines/`` and
    returns them as :class:`Staged`; if it raises, nothing is left at ``out``.
    """
    out = Path(out)
    if out.exists() and not force:
        raise BundleError("{} already exists".format(out), hint="pass --force to replace it, or choose another --out")
    if out.exists():
        check_replaceable(out, [Path(env_dir), Path(testvectors_dir)] + [p for m in models.values() for p in m.variants.values()])
    if not Path(env_dir).is_dir():
        raise BundleError(
            "no environment table at {}".format(env_dir),
            hint="emotrt env import CORPUS/environments.json --ckpt CKPT/ser --table {} (or pass --env DIR)".format(env_dir),
        )
    if not Path(testvectors_dir).is_dir():
        raise BundleError("no test vectors at {}".format(testvectors_dir), hint="re-export: emotrt export writes testvectors/")
    with staged_dir(out, "building") as staging:
        section = stage_models(staging, models)
        _copy(Path(env_dir), staging, "env")
        _copy(Path(testvectors_dir), staging, "testvectors")
        if speakers_dir is not None and Path(speakers_dir).is_dir():
            _copy(Path(speakers_dir), staging, "speakers")
        else:
            (staging / "speakers").mkdir()
        staged = stage(staging, section) if stage is not None else Staged(section)
        Manifest(
            models=staged.models,
            files=hash_files(staging),
            engines=tuple(staged.engines),
            build_plans=tuple(staged.build_plans),
            emotrt_version=__version__,
            created=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            targets=tuple(targets),
            provenance=prov if prov is not None else provenance(models),
        ).write(staging)
    log.info("bundle written to %s", out)
    return out


def check_replaceable(out: Path, inputs: Sequence[Path]) -> None:
    """``--force`` replaces a bundle or an empty directory, never anything else: not a directory that is not a
    bundle, not the working directory or one above it, not a directory holding the build's own inputs."""
    hint = "choose another --out (--force only replaces a bundle)"
    resolved, cwd = out.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise BundleError("refusing to replace {}: it is the working directory or contains it".format(out), hint=hint)
    inside = [p for p in inputs if resolved == p.resolve() or resolved in p.resolve().parents]
    if inside:
        raise BundleError("refusing to replace {}: it holds this build's input {}".format(out, inside[0]), hint=hint)
    if not out.is_dir():
        raise BundleError("refusing to replace {}: it is not a directory, let alone a bundle".format(out), hint=hint)
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise BundleError("refusing to replace {}: it is not a bundle (no manifest.json) and not empty".format(out),
                          hint=hint)
    if (out / "manifest.json").is_file():
        try:
            Manifest.read(out)
        except Exception as exc:  # any unreadable manifest: not provably a bundle, so not ours to delete
            raise BundleError("refusing to replace {}: its manifest.json is not a bundle manifest ({})".format(
                out, str(exc).splitlines()[0] if str(exc) else type(exc).__name__), hint=hint)


def update_manifest(root: Any, engines: Sequence[EngineEntry]) -> Manifest:
    """Add engine entries (files already under ``engines/``) and rehash; the manifest is replaced atomically."""
    manifest = Manifest.read(root).with_engines(engines, hash_files(root))
    manifest.write(root)
    return manifest


def _members(root: Path) -> Iterator[Tuple[Path, str]]:
    for dirpath, dirnames, names in os.walk(str(root)):
        dirnames.sort()
        for name in sorted(names):
            path = Path(dirpath, name)
            yield path, path.relative_to(root).as_posix()


def pack_tar(root: Any, archive: Any) -> Path:
    """Pack a bundle directory into one ``.tar`` (plain files, relative paths), written atomically."""
    root, archive = Path(root), Path(archive)
    Manifest.read(root)
    with atomic_file(archive) as tmp:
        with tarfile.open(tmp, "w") as tar:
            for path, rel in _members(root):
                info = tar.gettarinfo(str(path), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(str(path), "rb") as f:
                    tar.addfile(info, f)
    return archive
