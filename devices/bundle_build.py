"""``emotrt build``: export + calibration outputs -> bundle, with engines where TensorRT is present.

    summary = build_bundle(BuildOptions(export_dir="out/export", out="bundle",
                                        calibration_dir="out/calibration", targets=("orin-nano-8gb",)))
    summary = build_device_engines("bundle")        # on the Jetson: engines for this device

Every bundle carries the exact trtexec lines for each target's JetPack releases
(``build_plans``). Engines are built only where TensorRT and a GPU are present
(never faked); elsewhere the bundle says so and ``require_engines`` turns that
into an error before anything is written. Every bundle also records what FP16/INT8
cost on each graph (``testvectors/expected.json``, measured with ONNX Runtime), the
figures ``emotrt selftest`` holds the device's engines to.
"""
from __future__ import annotations

import hashlib
import json
import logging
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from emotrt.devices import trt_compat
from emotrt.devices.engine_build import BuildConfig, EngineJob, Progress, build_engine, trtexec_for
from emotrt.devices.bundle_writer import collect_models, pack_tar, provenance, read_onnx_io, update_manifest, write_bundle
from emotrt.devices.engine_cache import EngineCache
from emotrt.devices.expected import write_expected
from emotrt.devices.profiles import DeviceProfile, get_profile, match_device
from emotrt.runtime.bundle_reader import Bundle, rebuild_command, unpack_tar
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import ConfigError, DependencyError
from emotrt.runtime.fingerprint import DeviceFingerprint, EngineFingerprint, probe_device
from emotrt.runtime.tables import atomic_write

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MIB = 1024


@dataclass(frozen=True)
class BuildOptions:
    """What ``emotrt build`` makes; validated once."""

    export_dir: Path
    out: Path
    calibration_dir: Optional[Path] = None
    targets: Tuple[str, ...] = ("orin-nano-8gb",)
    precisions: Tuple[str, ...] = PRECISIONS
    env_dir: Optional[Path] = None
    speakers_dir: Optional[Path] = None
    require_engines: bool = False
    dla_core: Optional[int] = None
    opt_level: int = 3
    enroll_seconds: float = 3.0
    tar: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        problems = []
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown or not self.precisions:
            problems.append("precisions {} must be a non-empty subset of {}".format(list(self.precisions), ", ".join(PRECISIONS)))
        if not self.targets:
            problems.append("targets must name at least one device (emotrt devices lists them)")
        if not 0 <= self.opt_level <= 5:
            problems.append("opt_level={} must be 0..5".format(self.opt_level))
        if self.enroll_seconds <= 0:
            problems.append("enroll_seconds must be positive")
        if problems:
            raise ConfigError("build options: " + "; ".join(problems))
        for target in self.targets:
            profile = get_profile(target)
            if self.dla_core is not None and self.dla_core >= profile.dla_cores:
                raise ConfigError(
                    "--dla-core {}: {} has {} DLA core(s)".format(self.dla_core, target, profile.dla_cores),
                    hint="drop --dla-core or pick a core below {}".format(profile.dla_cores) if profile.dla_cores else "drop --dla-core",
                )


@dataclass(frozen=True)
class Skipped:
    """A model/precision one TensorRT version cannot build from the bundle's artefacts, and why."""

    model: str
    precision: str
    tensorrt: str
    reason: str


@dataclass
class BuildSummary:
    """What a build produced, for the CLI to report."""

    bundle: Path
    engines_built: List[str] = field(default_factory=list)
    engines_cached: List[str] = field(default_factory=list)
    build_plans: int = 0
    skipped: List["Skipped"] = field(default_factory=list)

    def skipped_by_model(self) -> List[str]:
        """One line per model/precision that some TensorRT version cannot build, naming those versions."""
        groups: Dict[Tuple[str, str], List["Skipped"]] = {}
        for item in self.skipped:
            groups.setdefault((item.model, item.precision), []).append(item)
        return ["{}/{} on TensorRT {}: {}".format(m, p, ", ".join(dict.fromkeys(i.tensorrt for i in items)), items[0].reason)
                for (m, p), items in groups.items()]
    no_engines_reason: Optional[str] = None
    archive: Optional[Path] = None


def _sha256(path: Path) -> str:
    from emotrt.runtime.bundle_reader import sha256_file

    return sha256_file(path)


def model_shapes(io: Dict[str, Any], contract: ModelContract, enroll_seconds: float) -> Tuple[Dict[str, Tuple[int, ...]], Tuple[str, ...]]:
    """Fixed input shapes from a manifest ``io`` entry (batch 1; dynamic audio ``enroll_seconds`` long) and the dynamic inputs."""
    fixed: Dict[str, Tuple[int, ...]] = {}
    dynamic = []
    for name, shape in io["inputs"].items():
        dims = [d if d else (1 if axis == 0 else int(round(enroll_seconds * contract.sample_rate))) for axis, d in enumerate(shape)]
        if not all(shape):
            dynamic.append(name)
        fixed[name] = tuple(dims)
    return fixed, tuple(dynamic)


def _recipe_hash(root: Path, entry: Dict[str, Any], job: EngineJob) -> str:
    """The fingerprint's ``precision_recipe``: the build recipe plus the precision plan and the cache it reads."""
    digest = hashlib.sha256(job.recipe.name.encode())
    if entry.get("precision_plan"):
        digest.update((root / entry["precision_plan"]).read_bytes())
    if job.calib_cache is not None:
        digest.update(Path(job.calib_cache).read_bytes())
    return "{}:{}".format(job.recipe.name, digest.hexdigest()[:12])


def ensure_version_caches(root: Path, models: Dict[str, Any], versions: Sequence[str]) -> None:
    """Give each model with a calibration cache one cache per TensorRT version that reads caches.

    The header carries the TensorRT version (REFERENCE.md); trtexec ``--calib`` on the
    device needs a matching one. Caches calibration wrote per version are kept as they are.
    """
    for name, entry in sorted(models.items()):
        if not entry.get("calib_cache"):
            continue
        caches = entry.setdefault("calib_caches", {})
        for version in versions:
            f = trt_compat.features(version)
            code = str(f.calib_cache_code)
            if f.calibrator and code not in caches:
                rel = "models/{}.trt-{}.calib.cache".format(name, code)
                atomic_write(root / rel, trt_compat.rewrite_cache_header((root / entry["calib_cache"]).read_bytes(), f))
                caches[code] = rel


Shapes = Dict[str, Tuple[Dict[str, Tuple[int, ...]], Tuple[str, ...]]]


def bundle_shapes(root: Path, models: Dict[str, Any], enroll_seconds: float) -> Shapes:
    """:func:`model_shapes` of every model, from the manifest's ``io`` (read from the FP32 graph when absent)."""
    return {
        name: model_shapes(entry.get("io") or read_onnx_io(root / entry["variants"]["fp32"]),
                           ModelContract.from_metadata(entry["contract"], source=name), enroll_seconds)
        for name, entry in models.items()
    }


def _precision_plan(root: Path, entry: Dict[str, Any]) -> Dict[str, Any]:
    """The calibration stage's precision plan of a model (calibration/plan.py), {} when there is none."""
    return json.loads((root / entry["precision_plan"]).read_text()) if entry.get("precision_plan") else {}


def _rel(root: Path, path: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def _jobs(root: Path, models: Dict[str, Any], shapes: Shapes, tensorrt: str, precisions: Sequence[str],
          skipped: List[Skipped]) -> List[Tuple[EngineJob, Dict[str, Any]]]:
    """One job per (model, precision) the bundle can build on TensorRT ``tensorrt``."""
    jobs = []
    for name, entry in sorted(models.items()):
        fixed, dynamic = shapes[name]
        plan = _precision_plan(root, entry)
        fp32_layers = tuple(plan.get("fp32", {}).get("fp32_nodes", []))
        kept_layers = tuple(plan.get("fp16", {}).get("nodes", []))  # blocks the mixed-precision search kept out of INT8
        for precision in precisions:
            try:
                recipe = trt_compat.choose_recipe(tensorrt, precision, sorted(entry["variants"]), bool(entry.get("calib_cache")))
            except ConfigError as exc:
                skipped.append(Skipped(name, precision, tensorrt, exc.message))
                continue
            code = str(trt_compat.features(tensorrt).calib_cache_code)
            cache_rel = entry.get("calib_caches", {}).get(code) or entry.get("calib_cache")
            cache = root / cache_rel if recipe.calib_cache else None
            job = EngineJob(name, precision, root / entry["variants"][recipe.onnx_variant], recipe, fixed, dynamic, cache,
                            fp32_layers if recipe.onnx_variant == "fp32" else (), kept_layers if recipe.calib_cache else ())
            jobs.append((job, entry))
    return jobs


def plan_builds(root: Path, models: Dict[str, Any], profiles: Sequence[DeviceProfile], options: BuildOptions,
                skipped: List[Skipped]) -> List[Dict[str, Any]]:
    """The ``build_plans`` entries: one trtexec line per target, JetPack release, model and precision.

    Paths are relative to the bundle root, where the line is meant to run.
    """
    shapes = bundle_shapes(root, models, options.enroll_seconds)
    plans = []
    for profile in profiles:
        for release in profile.releases:
            config = BuildConfig(release.tensorrt, profile.workspace_mib, options.opt_level, options.dla_core)
            folder = "engines/{}-jp{}/".format(profile.id, release.jetpack)
            for job, _ in _jobs(root, models, shapes, release.tensorrt, options.precisions, skipped):
                line = trtexec_for(
                    job, config, folder + "{}.{}.plan".format(job.model, job.precision), folder + "timing.cache",
                    onnx=_rel(root, job.onnx), calib_cache=_rel(root, job.calib_cache) if job.calib_cache else None,
                )
                plans.append({"model": job.model, "precision": job.precision, "target": profile.id,
                              "jetpack": release.jetpack, "tensorrt": release.tensorrt, "trtexec": line})
    return plans


def build_engines_into(root: Path, models: Dict[str, Any], device: DeviceFingerprint, config: BuildConfig,
                       precisions: Sequence[str], enroll_seconds: float = 3.0, trt: Any = None,
                       progress: Optional[Progress] = None, summary: Optional[BuildSummary] = None,
                       hashes: Optional[Dict[str, str]] = None,
                       entries: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, Any]]:
    """Build (or reuse from ``root/engines``) every plan for ``device``; return the manifest entries.

    ``hashes`` (bundle-relative path -> sha256, the manifest's ``files``) saves
    rehashing graphs a verified bundle already hashed. Entries are appended to
    ``entries`` as plans finish, so a caller still has the finished ones when a
    later build fails.
    """
    summary = summary if summary is not None else BuildSummary(root)
    hashes = hashes or {}
    cache = EngineCache(root / "engines", rebuild=rebuild_command(root))
    shapes = bundle_shapes(root, models, enroll_seconds)
    entries = entries if entries is not None else []
    for job, entry in _jobs(root, models, shapes, device.tensorrt, precisions, summary.skipped):
        onnx = _rel(root, job.onnx)
        fp = EngineFingerprint(
            tensorrt=device.tensorrt, compute_capability=device.compute_capability, l4t=device.l4t, cuda=device.cuda,
            onnx_sha256=hashes.get(onnx) or _sha256(job.onnx), precision_recipe=_recipe_hash(root, entry, job),
            shapes=job.shapes, dla_core=config.dla_core, opt_level=config.opt_level,
            flags=job.recipe.flags + (("strongly_typed",) if job.recipe.strongly_typed else ()),
        )
        plan, hit = cache.get_or_build(
            fp, job.model, lambda p, t, job=job: build_engine(job, config, p, timing_cache=t, trt=trt, progress=progress)
        )
        (summary.engines_cached if hit else summary.engines_built).append("{}/{}".format(job.model, job.precision))
        entries.append({
            "model": job.model, "precision": job.precision, "fingerprint": fp.to_dict(), "fingerprint_id": fp.fingerprint_id,
            "plan": _rel(root, plan), "onnx": onnx, "trtexec": plan.with_suffix(".trtexec.txt").read_text().strip(),
            "build_log": _rel(root, plan.with_suffix(".build.log")),
        })
    return entries


def _workspace(profiles: Sequence[DeviceProfile]) -> int:
    """The workspace budget of the device's profile (the smallest when several match)."""
    return min(p.workspace_mib for p in profiles) if profiles else DEFAULT_WORKSPACE_MIB


def _engine_capability(device: DeviceFingerprint, trt: Any) -> Optional[str]:
    """None when this machine can build engines, else why not."""
    if not device.can_build:
        missing = [n for n in ("tensorrt", "compute_capability") if getattr(device, n) is None]
        return "no {} on this machine".format(" and no ".join("TensorRT" if m == "tensorrt" else "CUDA GPU" for m in missing))
    if trt is None:
        try:
            trt_compat.import_tensorrt()
        except DependencyError as exc:
            return exc.message
    return None


def build_bundle(options: BuildOptions, device: Optional[DeviceFingerprint] = None, trt: Any = None,
                 progress: Optional[Progress] = None) -> BuildSummary:
    """Write the bundle of ``options``; engines too when this machine has TensorRT and a GPU."""
    device = device if device is not None else probe_device()
    reason = _engine_capability(device, trt)
    if reason and options.require_engines:
        raise DependencyError(
            "--require-engines: cannot build TensorRT engines here ({})".format(reason),
            hint="run `emotrt build {}` on the target device, or drop --require-engines".format(options.out),
        )
    export_dir = Path(options.export_dir)
    models = collect_models(export_dir, options.calibration_dir)
    profiles = [get_profile(t) for t in options.targets]
    summary = BuildSummary(Path(options.out), no_engines_reason=reason)

    def stage(root: Path, section: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
        versions = [r.tensorrt for p in profiles for r in p.releases] + ([device.tensorrt] if device.tensorrt else [])
        ensure_version_caches(root, section, versions)
        write_expected(root, section)
        plans = plan_builds(root, section, profiles, options, summary.skipped)
        summary.build_plans = len(plans)
        if reason:
            log.info("no engines built: %s; the bundle carries ONNX and trtexec build plans", reason)
            return {"build_plans": plans}
        matched = [p for p in profiles if p.compute_capability == device.compute_capability] or match_device(device)
        config = BuildConfig(device.tensorrt, _workspace(matched), options.opt_level, options.dla_core)
        engines = build_engines_into(root, section, device, config, options.precisions, options.enroll_seconds,
                                     trt, progress, summary)
        return {"build_plans": plans, "engines": engines}

    write_bundle(
        options.out, models, options.env_dir or export_dir / "env", export_dir / "testvectors",
        speakers_dir=options.speakers_dir, targets=options.targets, stage=stage,
        prov=provenance(models), force=options.force,
    )
    summary.skipped = list(dict.fromkeys(summary.skipped))
    if options.tar:
        summary.archive = pack_tar(options.out, Path(str(options.out).rstrip("/") + ".tar"))
    return summary


def build_device_engines(bundle_path: Any, device: Optional[DeviceFingerprint] = None, precisions: Sequence[str] = PRECISIONS,
                         dla_core: Optional[int] = None, opt_level: int = 3, trt: Any = None,
                         progress: Optional[Progress] = None) -> BuildSummary:
    """On the device: build (or reuse) the bundle's engines for this device and record them in the manifest.

    The manifest is rewritten (atomically) even when a build fails: it then lists
    the plans that were finished and the failed build's log, so the bundle still
    verifies and the log can be read. A ``.tar`` is first unpacked beside itself
    (``bundle.tar`` -> ``bundle/``), where the engines then stay.
    """
    bundle_path = Path(bundle_path)
    if bundle_path.is_file() and tarfile.is_tarfile(str(bundle_path)):
        bundle_path = unpack_tar(bundle_path, bundle_path.with_suffix(""))
    bundle = Bundle.open(bundle_path)
    device = device if device is not None else probe_device()
    reason = _engine_capability(device, trt)
    if reason:
        raise DependencyError("cannot build TensorRT engines here ({})".format(reason),
                              hint="run this on the Jetson the bundle targets (emotrt doctor --role device)")
    config = BuildConfig(device.tensorrt, _workspace(match_device(device)), opt_level, dla_core)
    summary = BuildSummary(bundle.root)
    entries: List[Dict[str, Any]] = []
    try:
        build_engines_into(bundle.root, bundle.manifest["models"], device, config, precisions, trt=trt,
                           progress=progress, summary=summary, hashes=bundle.manifest["files"], entries=entries)
    finally:
        update_manifest(bundle.root, entries)
    return summary
