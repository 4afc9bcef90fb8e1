"""Read and verify a bundle (DESIGN.md §2.4, manifest schema 1 in docs/contracts.md).

    bundle = Bundle.open("bundle/")            # or "bundle.tar"; verifies schema and every sha256
    onnx = bundle.model_path("tse_step", "int8")
    engine = bundle.engine_for("tse_step", "int8", probe_device())   # raises when none matches
    plan = bundle.plan_path(engine)

On a device root (``ROOT/bundles/<id>``, or ``ROOT/current`` pointing there) the engines that
``emotrt flash`` built into ``ROOT/engines/`` (:mod:`emotrt.runtime.device_engines`) are offered
alongside the manifest's own, under the same fingerprint and sha256 rules.

Torch-free and Python 3.8-valid: this runs on the device. The manifest's shape and the rule
for which files it covers are :mod:`emotrt.runtime.manifest`, shared with the writer
(``emotrt.devices.bundle_writer``).
"""
from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from emotrt.runtime.atomic import staged_dir
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.device_engines import read_device_engines
from emotrt.runtime.errors import BundleError, FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint, check_match, differences
from emotrt.runtime.manifest import MANIFEST, EngineEntry, Manifest, check_member_name, covered_files, sha256_file
from emotrt.runtime.tables import VectorTable
from emotrt.runtime.verified import VerifiedFiles, file_identity

VERIFY_MODES = (True, False, "cached")


def rebuild_command(root: Any) -> str:
    """The command that (re)builds a bundle's engines on this device."""
    return "emotrt build {}".format(root)


def unpack_tar(archive: Any, dest: Any) -> Path:
    """Unpack a bundle ``.tar`` into ``dest`` (created; must be empty) and return the bundle root.

    Every member is checked first: absolute paths, ``..``, links and device files
    are refused before anything is written. Extraction goes through
    :func:`emotrt.runtime.atomic.staged_dir`, so a failure leaves nothing half-written.
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
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError("{} is a damaged tar archive: {}".format(archive, exc),
                              hint="copy the archive again, or rebuild it with `emotrt build --tar`")
        for member in members:
            check_member_name(member.name, str(archive))
            if not (member.isfile() or member.isdir()):
                raise BundleError(
                    "{}: member {!r} is a link or special file; bundles hold plain files only".format(archive, member.name),
                    hint="rebuild the archive with `emotrt build --tar`",
                )
        with staged_dir(dest, "unpack") as tmp:
            try:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(str(tmp), members=members, filter="data")
                else:  # Python < 3.8.17 has no filters; members were checked above
                    tar.extractall(str(tmp), members=members)
            except (tarfile.TarError, EOFError) as exc:
                raise BundleError("{} is a damaged tar archive: {}".format(archive, exc),
                                  hint="copy the archive again, or rebuild it with `emotrt build --tar`")
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

    def __init__(self, root: Path, manifest: Optional[Manifest] = None, unpacked: Optional[Path] = None) -> None:
        self.root = root
        self.manifest = manifest
        self._unpacked = unpacked
        self.device_root: Optional[Path] = None  # ROOT when the bundle is installed there (ROOT/bundles/<id>)
        self.device_engines: Tuple[EngineEntry, ...] = ()  # the plans built for it in ROOT/engines, ROOT-relative

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
        bundle = cls(root, None, unpacked)
        try:
            bundle.manifest = Manifest.read(root)
            if unpacked is None:
                bundle.device_root, bundle.device_engines = read_device_engines(root)
            if verify:
                bundle.verify(cached=verify == "cached")
        except BaseException:
            bundle.close()
            raise
        return bundle

    # ------------------------------------------------------------------ verification

    def verify(self, cached: bool = False) -> None:
        """Check that ``files`` lists exactly the covered files, each with its sha256, and every referenced file.

        ``cached`` skips hashing files unchanged since they last verified here and records the rest.
        """
        problems: List[str] = []
        files = self.manifest.files
        record = VerifiedFiles(self.root) if cached else None
        present = covered_files(self.root)
        for rel, expected in sorted(files.items()):
            check_member_name(rel, str(self.root / MANIFEST))
            path = self.root / rel
            if not path.is_file():
                problems.append("{} is missing".format(rel))
            elif rel not in present:
                problems.append("{} is listed but lies outside what a manifest covers".format(rel))
            elif record is not None and record.known(rel, expected):
                continue
            else:
                identity = file_identity(path)
                if sha256_file(path) != expected:
                    problems.append("{} does not match its sha256 (tampered or corrupt)".format(rel))
                elif record is not None:
                    record.remember(rel, expected, identity)
        for rel in present:
            if rel not in files:
                problems.append("{} is not listed in the manifest".format(rel))
        for owner, rel in self.manifest.referenced_files():
            if rel not in files:
                problems.append("{} refers to {}, which the bundle does not carry".format(owner, rel))
        problems += self._device_engine_problems()
        if problems:
            raise BundleError(
                "bundle {} failed verification: {}".format(self.root, "; ".join(problems)),
                hint="rebuild or re-copy the bundle (emotrt build ... --out BUNDLE)",
            )
        if record is not None:
            record.save()

    def _device_engine_problems(self) -> List[str]:
        """The device-built plans that are missing or do not match the sha256 recorded with them."""
        problems = []
        for entry in self.device_engines:
            path = self.plan_path(entry)
            if not path.is_file():
                problems.append("device-built plan {} is missing".format(path))
            elif entry.sha256 and sha256_file(path) != entry.sha256:
                problems.append("device-built plan {} does not match its sha256 (tampered or corrupt)".format(path))
        return problems

    # ------------------------------------------------------------------ models

    @property
    def models(self) -> List[str]:
        return sorted(self.manifest.models)

    def require(self, *names: str) -> None:
        """Raise :class:`BundleError` naming every model in ``names`` the bundle lacks."""
        absent = [n for n in names if n not in self.manifest.models]
        if absent:
            raise BundleError(
                "bundle {} lacks model(s) {} (it has: {})".format(self.root, ", ".join(absent), ", ".join(self.models) or "none"),
                hint="export them (emotrt export) and rebuild the bundle (emotrt build)",
            )

    def contract(self, name: str) -> ModelContract:
        """The graph contract of ``name``, as recorded in the manifest."""
        self.require(name)
        return ModelContract.from_metadata(dict(self.manifest.models[name].contract), source="{}:{}".format(self.root, name))

    def io(self, name: str) -> Dict[str, Dict[str, List[Optional[int]]]]:
        """``{"inputs": {name: dims}, "outputs": {...}}`` of ``name`` (None marks a dynamic dim); {} for older bundles."""
        self.require(name)
        io = self.manifest.models[name].io
        return io.to_json() if io is not None else {}

    def precisions(self, name: str) -> List[str]:
        self.require(name)
        return sorted(self.manifest.models[name].variants)

    def model_path(self, name: str, precision: str = "fp32") -> Path:
        """The ONNX file of ``name`` at ``precision`` (fp32, fp16, int8)."""
        self.require(name)
        variants = self.manifest.models[name].variants
        if precision not in variants:
            raise BundleError(
                "bundle has no {} variant of {} (it has: {})".format(precision, name, ", ".join(sorted(variants)) or "none"),
                hint="calibrate it (emotrt calibrate) and rebuild the bundle",
            )
        return self.root / variants[precision]

    def calib_cache(self, name: str) -> Optional[Path]:
        self.require(name)
        rel = self.manifest.models[name].calib_cache
        return self.root / rel if rel else None

    def precision_plan(self, name: str) -> Optional[Path]:
        self.require(name)
        rel = self.manifest.models[name].precision_plan
        return self.root / rel if rel else None

    def file_sha256(self, rel: str) -> str:
        """The manifest's sha256 of a bundle-relative path."""
        return self.manifest.files[rel]

    # ------------------------------------------------------------------ tables and vectors

    @property
    def env_dir(self) -> Path:
        return self.root / self.manifest.env

    @property
    def speakers_dir(self) -> Path:
        return self.root / self.manifest.speakers

    @property
    def testvectors_dir(self) -> Path:
        return self.root / self.manifest.testvectors

    def environments(self) -> VectorTable:
        """The environment table (tokens)."""
        return VectorTable(self.env_dir, kind="environment")

    def speakers(self, dim: Optional[int] = None) -> VectorTable:
        """The speaker store; created empty with ``dim`` when the bundle has none yet."""
        return VectorTable(self.speakers_dir, kind="speaker", dim=dim)

    # ------------------------------------------------------------------ engines

    @property
    def engines(self) -> List[EngineEntry]:
        """The manifest's engines, then those built for this bundle on its device root (a plan listed in both: the manifest's)."""
        own = list(self.manifest.engines)
        keys = {e.key for e in own}
        return own + [e for e in self.device_engines if e.key not in keys]

    def plan_path(self, entry: EngineEntry) -> Path:
        """Where ``entry``'s plan is: in the bundle, or in the device root's engine cache."""
        if self.device_root is not None and any(e is entry for e in self.device_engines):
            return self.device_root / entry.plan
        return self.root / entry.plan

    def engine_for(self, name: str, precision: str, device: DeviceFingerprint) -> EngineEntry:
        """The plan of ``name``/``precision`` built for ``device``; never one built for anything else.

        Raises :class:`FingerprintMismatchError` naming the differing field when
        plans exist but none fits, :class:`BundleError` when there are none.
        """
        self.require(name)
        if self.device_root is None:
            rebuild, where = rebuild_command(self.root), "  (on the device)"
        else:  # an installed bundle is never modified: its engines come from the next flash
            rebuild, where = "flash the bundle again from the workstation (emotrt flash BUNDLE --device NAME)", ""
        candidates = [e for e in self.engines if e.model == name and e.precision == precision]
        if not candidates:
            raise BundleError("bundle has no {} TensorRT engine for {}".format(precision, name), hint=rebuild + where)
        variants = self.manifest.models[name].variants
        for entry in candidates:
            if not differences(entry.fingerprint, device, ("tensorrt", "compute_capability", "l4t", "cuda")):
                onnx_sha = self.manifest.files.get(entry.onnx or variants.get(precision, ""))
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
        return self.plan_path(self.engine_for(name, precision, device))

