"""Read and verify a bundle (DESIGN.md §2.4, manifest schema 1 in docs/contracts.md).

    bundle = Bundle.open("bundle/")            # or "bundle.tar"; verifies schema and every sha256
    onnx = bundle.model_path("tse_step", "int8")
    engine = bundle.engine_for("tse_step", "int8", probe_device())   # raises when none matches

Torch-free and Python 3.8-valid: this runs on the device. Writing bundles is
``emotrt.devices.bundle_writer``; the JSON Schema file lives there too, and this reader
checks the same structure by hand so the device needs no ``jsonschema``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Union

from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import BundleError, FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint, EngineFingerprint, check_match, differences
from emotrt.runtime.tables import VectorTable
from emotrt.runtime.verified import VerifiedFiles, file_identity


SCHEMA = 1
MANIFEST = "manifest.json"
#: folders outside ``files``: devices enroll speakers after flashing
UNHASHED = ("speakers",)
_REQUIRED_KEYS = ("schema", "models", "engines", "files", "env", "speakers", "testvectors")
VERIFY_MODES = (True, False, "cached")
_UPGRADE = "pip install -U emotrt (this emotrt reads bundle schema {})".format(SCHEMA)


def sha256_file(path: Any) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(os.fspath(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rebuild_command(root: Any) -> str:
    """The command that (re)builds a bundle's engines on this device."""
    return "emotrt build {}".format(root)


@dataclass(frozen=True)
class EngineEntry:
    """One plan listed in the manifest."""

    model: str
    precision: str
    fingerprint: EngineFingerprint
    plan: str
    trtexec: str = ""
    onnx: Optional[str] = None  # the bundle ONNX the plan was built from (the FP32 graph for implicit INT8)

    @property
    def fingerprint_id(self) -> str:
        return self.fingerprint.fingerprint_id


def check_member_name(name: str, archive: str) -> PurePosixPath:
    """A tar member path that stays inside its directory, else :class:`BundleError`."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")) or ":" in (path.parts[:1] or [""])[0]:
        raise BundleError(
            "{}: member {!r} escapes the bundle directory; refusing to unpack".format(archive, name),
            hint="rebuild the archive with `emotrt build --tar`",
        )
    return path


def unpack_tar(archive: Any, dest: Any) -> Path:
    """Unpack a bundle ``.tar`` into ``dest`` (created; must be empty) and return the bundle root.

    Every member is checked first: absolute paths, ``..``, links and device files
    are refused before anything is written. Extraction goes to a sibling temp
    directory renamed into place, so a failure leaves nothing half-written.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise BundleError("no bundle archive at {}".format(archive))
    if dest.exists() and any(dest.iterdir()):
        raise BundleError("cannot unpack into {}: it is not empty".format(dest), hint="choose an empty directory")
    try:
        tar = tarfile.open(str(archive))
    except (tarfile.TarError, OSError) as exc:
        raise BundleError("{} is not a readable tar archive: {}".format(archive, exc))
    with tar:
        members = tar.getmembers()
        for member in members:
            check_member_name(member.name, str(archive))
            if not (member.isfile() or member.isdir()):
                raise BundleError(
                    "{}: member {!r} is a link or special file; bundles hold plain files only".format(archive, member.name),
                    hint="rebuild the archive with `emotrt build --tar`",
                )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=str(dest.parent), prefix="." + dest.name + ".unpack-"))
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(str(tmp), members=members, filter="data")
            else:  # Python < 3.8.17 has no filters; members were checked above
                tar.extractall(str(tmp), members=members)
            if dest.exists():
                dest.rmdir()
            os.replace(str(tmp), str(dest))
        except BaseException:
            shutil.rmtree(str(tmp), ignore_errors=True)
            raise
    return _bundle_root(dest)


def _bundle_root(path: Path) -> Path:
    """``path`` or its single sub-folder, whichever holds the manifest."""
    if (path / MANIFEST).is_file():
        return path
    children = [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []
    if len(children) == 1 and (children[0] / MANIFEST).is_file():
        return children[0]
    raise BundleError(
        "{} is not a bundle: no {}".format(path, MANIFEST), hint="create one with `emotrt build EXPORT_DIR --out BUNDLE`"
    )


class Bundle:
    """A verified bundle directory: models, engines, environment table, speakers, test vectors."""

    def __init__(self, root: Path, manifest: Dict[str, Any], unpacked: Optional[Path] = None) -> None:
        self.root = root
        self.manifest = manifest
        self._unpacked = unpacked

    def close(self) -> None:
        """Remove the temporary copy of a bundle opened from a ``.tar``; idempotent."""
        if self._unpacked is not None:
            shutil.rmtree(str(self._unpacked), ignore_errors=True)
            self._unpacked = None

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def open(cls, path: Any, verify: Union[bool, str] = True) -> "Bundle":
        """Open a bundle directory or ``.tar`` and verify it.

        ``verify``: True hashes every file, ``"cached"`` hashes only files changed since they last
        verified (see :mod:`emotrt.runtime.verified`), False skips the check. A ``.tar`` is unpacked
        into a temporary directory that :meth:`close` (or leaving a ``with`` block) removes.
        """
        if verify not in VERIFY_MODES:
            raise BundleError("verify={!r} must be one of {}".format(verify, VERIFY_MODES),
                              hint="pass verify=True (every file) or verify=\"cached\"")
        path = Path(path)
        unpacked = None
        if path.is_file() and tarfile.is_tarfile(str(path)):
            unpacked = Path(tempfile.mkdtemp(prefix="emotrt-bundle-"))
            try:
                root = unpack_tar(path, unpacked / path.stem)
            except BaseException:
                shutil.rmtree(str(unpacked), ignore_errors=True)
                raise
        elif path.is_dir():
            root = _bundle_root(path)
        else:
            raise BundleError("no bundle at {}".format(path), hint="create one with `emotrt build EXPORT_DIR --out BUNDLE`")
        bundle = cls(root, {}, unpacked)
        try:
            bundle.manifest = read_manifest(root)
            if verify:
                bundle.verify(cached=verify == "cached")
        except BaseException:
            bundle.close()
            raise
        return bundle

    # ------------------------------------------------------------------ verification

    def verify(self, cached: bool = False) -> None:
        """Check every listed file's sha256, unlisted files, and that every model's files are listed.

        ``cached`` skips hashing files unchanged since they last verified here and records the rest.
        """
        problems: List[str] = []
        files: Dict[str, str] = self.manifest["files"]
        record = VerifiedFiles(self.root) if cached else None
        for rel, expected in sorted(files.items()):
            check_member_name(rel, str(self.root / MANIFEST))
            path = self.root / rel
            if not path.is_file():
                problems.append("{} is missing".format(rel))
            elif record is not None and record.known(rel, expected):
                continue
            else:
                identity = file_identity(path)
                if sha256_file(path) != expected:
                    problems.append("{} does not match its sha256 (tampered or corrupt)".format(rel))
                elif record is not None:
                    record.remember(rel, expected, identity)
        for rel in self._present_files():
            if rel not in files:
                problems.append("{} is not listed in the manifest".format(rel))
        for name in self.models:
            for rel in self._model_files(name):
                if rel not in files:
                    problems.append("model {} refers to {}, which the bundle does not carry".format(name, rel))
        for entry in self.engines:
            if entry.plan not in files:
                problems.append("engine {} refers to {}, which the bundle does not carry".format(entry.model, entry.plan))
        if problems:
            raise BundleError(
                "bundle {} failed verification: {}".format(self.root, "; ".join(problems)),
                hint="rebuild or re-copy the bundle (emotrt build ... --out BUNDLE)",
            )
        if record is not None:
            record.save()

    def _present_files(self) -> List[str]:
        out = []
        for dirpath, _, names in os.walk(str(self.root)):
            for name in names:
                rel = Path(dirpath, name).relative_to(self.root).as_posix()
                if rel != MANIFEST and rel.split("/")[0] not in UNHASHED:
                    out.append(rel)
        return sorted(out)

    def _model_files(self, name: str) -> List[str]:
        entry = self.manifest["models"][name]
        rels = list(entry.get("variants", {}).values())
        rels += [entry[k] for k in ("calib_cache", "precision_plan") if entry.get(k)]
        rels += list(entry.get("calib_caches", {}).values())
        return rels

    # ------------------------------------------------------------------ models

    @property
    def models(self) -> List[str]:
        return sorted(self.manifest["models"])

    def require(self, *names: str) -> None:
        """Raise :class:`BundleError` naming every model in ``names`` the bundle lacks."""
        absent = [n for n in names if n not in self.manifest["models"]]
        if absent:
            raise BundleError(
                "bundle {} lacks model(s) {} (it has: {})".format(self.root, ", ".join(absent), ", ".join(self.models) or "none"),
                hint="export them (emotrt export) and rebuild the bundle (emotrt build)",
            )

    def contract(self, name: str) -> ModelContract:
        """The graph contract of ``name``, as recorded in the manifest."""
        self.require(name)
        return ModelContract.from_metadata(self.manifest["models"][name]["contract"], source="{}:{}".format(self.root, name))

    def io(self, name: str) -> Dict[str, Dict[str, List[Optional[int]]]]:
        """``{"inputs": {name: dims}, "outputs": {...}}`` of ``name`` (None marks a dynamic dim); {} for older bundles."""
        self.require(name)
        return dict(self.manifest["models"][name].get("io", {}))

    def precisions(self, name: str) -> List[str]:
        self.require(name)
        return sorted(self.manifest["models"][name].get("variants", {}))

    def model_path(self, name: str, precision: str = "fp32") -> Path:
        """The ONNX file of ``name`` at ``precision`` (fp32, fp16, int8)."""
        self.require(name)
        variants = self.manifest["models"][name].get("variants", {})
        if precision not in variants:
            raise BundleError(
                "bundle has no {} variant of {} (it has: {})".format(precision, name, ", ".join(sorted(variants)) or "none"),
                hint="calibrate it (emotrt calibrate) and rebuild the bundle",
            )
        return self.root / variants[precision]

    def calib_cache(self, name: str) -> Optional[Path]:
        self.require(name)
        rel = self.manifest["models"][name].get("calib_cache")
        return self.root / rel if rel else None

    def precision_plan(self, name: str) -> Optional[Path]:
        self.require(name)
        rel = self.manifest["models"][name].get("precision_plan")
        return self.root / rel if rel else None

    def file_sha256(self, rel: str) -> str:
        """The manifest's sha256 of a bundle-relative path."""
        return self.manifest["files"][rel]

    # ------------------------------------------------------------------ tables and vectors

    @property
    def env_dir(self) -> Path:
        return self.root / self.manifest["env"]

    @property
    def speakers_dir(self) -> Path:
        return self.root / self.manifest["speakers"]

    @property
    def testvectors_dir(self) -> Path:
        return self.root / self.manifest["testvectors"]

    def environments(self) -> VectorTable:
        """The environment table (tokens)."""
        return VectorTable(self.env_dir, kind="environment")

    def speakers(self, dim: Optional[int] = None) -> VectorTable:
        """The speaker store; created empty with ``dim`` when the bundle has none yet."""
        return VectorTable(self.speakers_dir, kind="speaker", dim=dim)

    # ------------------------------------------------------------------ engines

    @property
    def engines(self) -> List[EngineEntry]:
        return [
            EngineEntry(
                e["model"], e["precision"], EngineFingerprint.from_dict(e["fingerprint"]), e["plan"], e.get("trtexec", ""), e.get("onnx")
            )
            for e in self.manifest.get("engines", [])
        ]

    def engine_for(self, name: str, precision: str, device: DeviceFingerprint) -> EngineEntry:
        """The plan of ``name``/``precision`` built for ``device``; never one built for anything else.

        Raises :class:`FingerprintMismatchError` naming the differing field when
        plans exist but none fits, :class:`BundleError` when there are none.
        """
        self.require(name)
        rebuild = rebuild_command(self.root)
        candidates = [e for e in self.engines if e.model == name and e.precision == precision]
        if not candidates:
            raise BundleError(
                "bundle has no {} TensorRT engine for {}".format(precision, name), hint=rebuild + "  (on the device)"
            )
        variants = self.manifest["models"][name].get("variants", {})
        for entry in candidates:
            if not differences(entry.fingerprint, device, ("tensorrt", "compute_capability", "l4t", "cuda")):
                onnx_sha = self.manifest["files"].get(entry.onnx or variants.get(precision, ""))
                if onnx_sha and entry.fingerprint.onnx_sha256 != onnx_sha:
                    raise FingerprintMismatchError(
                        "engine fingerprint mismatch: onnx_sha256 of {} differs from the bundle's {} graph; "
                        "the plan is stale and will not be loaded".format(entry.plan, precision),
                        hint=rebuild,
                    )
                return entry
        check_match(candidates[0].fingerprint, device, rebuild)
        raise AssertionError("unreachable: check_match raises on a mismatch")  # pragma: no cover

    def engine_path(self, name: str, precision: str, device: DeviceFingerprint) -> Path:
        return self.root / self.engine_for(name, precision, device).plan


def read_manifest(root: Any) -> Dict[str, Any]:
    """Parse ``manifest.json`` and check its schema version and structure."""
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except OSError as exc:
        raise BundleError("cannot read {}: {}".format(path, exc))
    except ValueError as exc:
        raise BundleError("{} is not valid JSON: {}".format(path, exc), hint="rebuild the bundle with `emotrt build`")
    if not isinstance(manifest, dict):
        raise BundleError("{} must hold a JSON object".format(path))
    schema = manifest.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise BundleError("{}: 'schema' must be an integer, found {!r}".format(path, schema))
    if schema > SCHEMA:
        raise BundleError(
            "{} uses bundle schema {}, newer than the {} this emotrt reads".format(path, schema, SCHEMA), hint=_UPGRADE
        )
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise BundleError("{} lacks {}".format(path, ", ".join(missing)), hint="rebuild the bundle with `emotrt build`")
    kinds = {"models": dict, "files": dict, "engines": list}
    wrong = [k for k, kind in kinds.items() if not isinstance(manifest[k], kind)]
    if wrong:
        raise BundleError("{}: {} must be {}".format(path, ", ".join(wrong), ", ".join(kinds[k].__name__ for k in wrong)))
    for key in ("env", "speakers", "testvectors"):
        check_member_name(str(manifest[key]), str(path))
    for name, entry in manifest["models"].items():
        if not isinstance(entry, dict) or "contract" not in entry or "variants" not in entry:
            raise BundleError("{}: model {!r} needs 'contract' and 'variants'".format(path, name))
    return manifest
