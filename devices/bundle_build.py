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

import dataclasses
import hashlib
import logging
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from emotrt.devices import trt_compat
from emotrt.devices.bundle_writer import (Staged, collect_models, pack_tar, provenance, read_onnx_io, update_manifest,
                                          write_bundle)
from emotrt.devices.engine_build import BuildConfig, EngineJob, Progress, build_engine, trtexec_for
from emotrt.devices.engine_cache import EngineCache
from emotrt.devices.expected import write_expected
from emotrt.devices.profiles import DeviceProfile, get_profile, match_device
from emotrt.runtime import trt_version
from emotrt.runtime.atomic import atomic_write
from emotrt.runtime.bundle_reader import Bundle, rebuild_command, unpack_tar
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import ConfigError, DependencyError
from emotrt.runtime.fingerprint import DeviceFingerprint, EngineFingerprint, probe_device
from emotrt.runtime.manifest import BuildPlan, EngineEntry, ModelEntry, ModelIO, sha256_file
from emotrt.runtime.precision_plan import PrecisionPlan
from emotrt.runtime.tables import VectorTable

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MIB = 1024

#: ``(onnx_path, tensorrt_release) -> lint error lines`` (none: the parser takes the graph).
#: ``emotrt build`` passes :func:`emotrt.export.lint.plan_check`; the device side has no ``onnx``.
GraphCheck = Callable[[Path, str], Sequence[str]]


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
    graph_check: Optional[GraphCheck] = None  # lint per planned TensorRT release; failing plans are dropped

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
    lint: bool = False  # dropped because the graph fails the lint for this release


@dataclass
class BuildSummary:
    """What a build produced, for the CLI to report."""

    bundle: Path
    engines_built: List[str] = field(default_factory=list)
    engines_cached: List[str] = field(default_factory=list)
    build_plans: int = 0
    skipped: List["Skipped"] = field(default_factory=list)

    def lint_warnings(self) -> List[str]:
        """One line per TensorRT release whose plans were dropped because their graphs fail the lint."""
        groups: Dict[str, List["Skipped"]] = {}
        for item in self.skipped:
            if item.lint:
                groups.setdefault(item.tensorrt, []).append(item)
        return ["TensorRT {}: dropped {} plan(s) ({}): {}; {}".format(
            version, len(items), ", ".join("{}/{}".format(i.model, i.precision) for i in items), items[0].reason,
            _JP5_HINT if version.startswith("8.") else "change the export so those graphs pass")
            for version, items in groups.items()]

    def skipped_by_model(self) -> List[str]:
        """One line per model/precision that some TensorRT version cannot build, naming those versions."""
        groups: Dict[Tuple[str, str], List["Skipped"]] = {}
        for item in self.skipped:
            if not item.lint:  # lint_warnings() reports those
                groups.setdefault((item.model, item.precision), []).append(item)
        return ["{}/{} on TensorRT {}: {}".format(m, p, ", ".join(dict.fromkeys(i.tensorrt for i in items)), items[0].reason)
                for (m, p), items in groups.items()]
    no_engines_reason: Optional[str] = None
    archive: Optional[Path] = None


def model_shapes(io: ModelIO, contract: ModelContract, enroll_seconds: float) -> Tuple[Dict[str, Tuple[int, ...]], Tuple[str, ...]]:
    """Fixed input shapes from a model's I/O dims (batch 1; dynamic audio ``enroll_seconds`` long) and the dynamic inputs."""
    fixed: Dict[str, Tuple[int, ...]] = {}
    dynamic = []
    for name, shape in io.inputs.items():
        dims = [d if d else (1 if axis == 0 else int(round(enroll_seconds * contract.sample_rate))) for axis, d in enumerate(shape)]
        if not all(shape):
            dynamic.append(name)
        fixed[name] = tuple(dims)
    return fixed, tuple(dynamic)


def _recipe_hash(root: Path, entry: ModelEntry, job: EngineJob) -> str:
    """The fingerprint's ``precision_recipe``: the build recipe plus the precision plan and the cache it reads."""
    digest = hashlib.sha256(job.recipe.name.encode())
    if entry.precision_plan:
        digest.update((root / entry.precision_plan).read_bytes())
    if job.calib_cache is not None:
        digest.update(Path(job.calib_cache).read_bytes())
    return "{}:{}".format(job.recipe.name, digest.hexdigest()[:12])


Models = Dict[str, ModelEntry]


def ensure_version_caches(root: Path, models: Models, versions: Sequence[str]) -> Models:
    """Give each model with a calibration cache one cache per TensorRT version that reads caches.

    The header carries the TensorRT version (REFERENCE.md); trtexec ``--calib`` on the
    device needs a matching one. Caches calibration wrote per version are kept as they are.
    Returns the models section with the added caches listed.
    """
    out = dict(models)
    for name, entry in sorted(models.items()):
        if not entry.calib_cache:
            continue
        caches = dict(entry.calib_caches)
        for version in versions:
            f = trt_compat.features(version)
            code = str(f.calib_cache_code)
            if f.calibrator and code not in caches:
                rel = "models/{}.trt-{}.calib.cache".format(name, code)
                atomic_write(root / rel, trt_compat.rewrite_cache_header((root / entry.calib_cache).read_bytes(), f))
                caches[code] = rel
        out[name] = dataclasses.replace(entry, calib_caches=caches)
    return out


Shapes = Dict[str, Tuple[Dict[str, Tuple[int, ...]], Tuple[str, ...]]]


def bundle_shapes(root: Path, models: Models, enroll_seconds: float) -> Shapes:
    """:func:`model_shapes` of every model, from the manifest's ``io`` (read from the FP32 graph when absent)."""
    return {
        name: model_shapes(entry.io or read_onnx_io(root / entry.variants["fp32"]),
                           ModelContract.from_metadata(dict(entry.contract), source=name), enroll_seconds)
        for name, entry in models.items()
    }


def _rel(root: Path, path: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def _lint_skip(check: Optional[GraphCheck], root: Path, name: str, precision: str, onnx: Path,
               tensorrt: str) -> Optional[Skipped]:
    """A :class:`Skipped` when ``check`` finds lint errors in ``onnx`` for ``tensorrt``."""
    problems = list(check(onnx, tensorrt)) if check is not None else []
    if not problems:
        return None
    return Skipped(name, precision, tensorrt, "{} fails `emotrt lint --trt {}` ({} error(s), first: {})".format(
        _rel(root, onnx), tensorrt, len(problems), problems[0]), lint=True)


def _jobs(root: Path, models: Models, shapes: Shapes, tensorrt: str, precisions: Sequence[str],
          skipped: List[Skipped], check: Optional[GraphCheck] = None) -> List[Tuple[EngineJob, ModelEntry]]:
    """One job per (model, precision) the bundle can build on TensorRT ``tensorrt`` (and whose graph passes ``check``)."""
    jobs = []
    for name, entry in sorted(models.items()):
        fixed, dynamic = shapes[name]
        plan = PrecisionPlan.read(root / entry.precision_plan) if entry.precision_plan else None
        fp32_layers = plan.fp32_nodes if plan is not None else ()
        kept_layers = plan.kept_nodes if plan is not None else ()  # blocks the mixed-precision search kept out of INT8
        for precision in precisions:
            try:
                recipe = trt_compat.choose_recipe(tensorrt, precision, sorted(entry.variants), bool(entry.calib_cache))
            except ConfigError as exc:
                skipped.append(Skipped(name, precision, tensorrt, exc.message))
                continue
            refused = _lint_skip(check, root, name, precision, root / entry.variants[recipe.onnx_variant], tensorrt)
            if refused is not None:
                skipped.append(refused)
                continue
            code = str(trt_compat.features(tensorrt).calib_cache_code)
            cache_rel = entry.calib_caches.get(code) or entry.calib_cache
            cache = root / cache_rel if recipe.calib_cache else None
            job = EngineJob(name, precision, root / entry.variants[recipe.onnx_variant], recipe, fixed, dynamic, cache,
                            fp32_layers if recipe.onnx_variant == "fp32" else (), kept_layers if recipe.calib_cache else ())
            jobs.append((job, entry))
    return jobs


def plan_builds(root: Path, models: Models, profiles: Sequence[DeviceProfile], options: BuildOptions,
                skipped: List[Skipped]) -> List[BuildPlan]:
    """The ``build_plans`` entries: one trtexec line per target, JetPack release, model and precision.

    Paths are relative to the bundle root, where the line is meant to run. With
    ``options.graph_check`` every planned graph is linted for its release: a plan the
    lint fails is dropped (listed in ``skipped``, logged as a warning), and a target
    left with no plan at all is a :class:`ConfigError`.
    """
    shapes = bundle_shapes(root, models, options.enroll_seconds)
    plans = []
    for profile in profiles:
        before = len(plans)
        for release in profile.releases:
            config = BuildConfig(release.tensorrt, profile.workspace_mib, options.opt_level, options.dla_core)
            folder = "engines/{}-jp{}/".format(profile.id, release.jetpack)
            dropped = len(skipped)
            jobs = _jobs(root, models, shapes, release.tensorrt, options.precisions, skipped, options.graph_check)
            lint_dropped = [s for s in skipped[dropped:] if s.lint]
            if lint_dropped:
                log.info("%s JetPack %s (TensorRT %s): %d plan(s) dropped, their graphs fail the lint: %s",
                            profile.id, release.jetpack, release.tensorrt, len(lint_dropped),
                            ", ".join("{}/{}".format(s.model, s.precision) for s in lint_dropped))
            for job, _ in jobs:
                line = trtexec_for(
                    job, config, folder + "{}.{}.plan".format(job.model, job.precision), folder + "timing.cache",
                    onnx=_rel(root, job.onnx), calib_cache=_rel(root, job.calib_cache) if job.calib_cache else None,
                )
                plans.append(BuildPlan(job.model, job.precision, profile.id, line, release.jetpack, release.tensorrt))
        if len(plans) == before:
            raise ConfigError(
                "no build for {} passes the TensorRT lint of its JetPack releases ({})".format(
                    profile.id, ", ".join(r.tensorrt for r in profile.releases)),
                hint=_JP5_HINT,
            )
    return plans


_JP5_HINT = ("for JetPack 5 (TensorRT 8.5) export with `emotrt export --trt 8.5` (opset 16, layer norm written out), "
             "calibrate that export and build a bundle from it")


def prune_version_caches(root: Path, models: Models, plans: Sequence[BuildPlan], skipped: Sequence[Skipped]) -> Models:
    """Drop per-version calibration caches that only lint-dropped INT8 plans would have read."""
    used = {token.split("=", 1)[1] for p in plans for token in p.trtexec.split() if token.startswith("--calib=")}
    refused = {(s.model, str(trt_compat.features(s.tensorrt).calib_cache_code)) for s in skipped if s.lint and s.precision == "int8"}
    out = dict(models)
    for name, entry in models.items():
        gone = {code: rel for code, rel in entry.calib_caches.items() if (name, code) in refused and rel not in used}
        for rel in gone.values():
            (root / rel).unlink()
        if gone:
            out[name] = dataclasses.replace(entry, calib_caches={c: r for c, r in entry.calib_caches.items() if c not in gone})
    return out


@dataclass(frozen=True)
class EngineRun:
    """How to build a bundle's engines on this device: for which device, with what builder settings."""

    device: DeviceFingerprint
    config: BuildConfig
    precisions: Sequence[str] = PRECISIONS
    enroll_seconds: float = 3.0
    trt: Any = None  # the ``tensorrt`` module (or the test double); imported when None
    progress: Optional[Progress] = None
    graph_check: Optional[GraphCheck] = None  # e.g. :func:`planned_only`: builds the bundle refused are not tried


def build_engines(root: Path, models: Models, run: EngineRun, summary: BuildSummary,
                  hashes: Optional[Dict[str, str]] = None) -> Iterator[EngineEntry]:
    """Build (or reuse from ``root/engines``) every plan for ``run.device``; yield each manifest entry as it finishes.

    ``hashes`` (bundle-relative path -> sha256, the manifest's ``files``) saves
    rehashing graphs a verified bundle already hashed. ``summary`` counts built and
    cached plans. A caller collecting the entries still has the finished ones when a
    later build fails.
    """
    hashes = hashes or {}
    cache = EngineCache(root / "engines", rebuild=rebuild_command(root))
    shapes = bundle_shapes(root, models, run.enroll_seconds)
    device, config = run.device, run.config
    for job, entry in _jobs(root, models, shapes, device.tensorrt, run.precisions, summary.skipped, run.graph_check):
        onnx = _rel(root, job.onnx)
        fp = EngineFingerprint(
            tensorrt=device.tensorrt, compute_capability=device.compute_capability, l4t=device.l4t, cuda=device.cuda,
            onnx_sha256=hashes.get(onnx) or sha256_file(job.onnx), precision_recipe=_recipe_hash(root, entry, job),
            shapes=job.shapes, dla_core=config.dla_core, opt_level=config.opt_level,
            flags=job.recipe.flags + (("strongly_typed",) if job.recipe.strongly_typed else ()),
        )
        plan, hit = cache.get_or_build(
            fp, job.model,
            lambda p, t, job=job: build_engine(job, config, p, timing_cache=t, trt=run.trt, progress=run.progress),
        )
        (summary.engines_cached if hit else summary.engines_built).append("{}/{}".format(job.model, job.precision))
        yield EngineEntry(job.model, job.precision, fp, _rel(root, plan), plan.with_suffix(".trtexec.txt").read_text().strip(),
                          onnx=onnx, build_log=_rel(root, plan.with_suffix(".build.log")))


def planned_only(plans: Sequence[BuildPlan]) -> GraphCheck:
    """On the device (no ``onnx`` to lint with): refuse a graph the bundle planned for other releases of this
    TensorRT version but not for it, i.e. one ``emotrt build`` dropped because it fails that release's lint."""
    planned: Dict[str, set] = {}
    for plan in plans:
        onnx = next((t.split("=", 1)[1] for t in plan.trtexec.split() if t.startswith("--onnx=")), None)
        if plan.tensorrt and onnx:
            planned.setdefault(trt_version.normalise_version(plan.tensorrt), set()).add(onnx)

    def check(path: Path, tensorrt: str) -> Sequence[str]:
        graphs = planned.get(trt_version.normalise_version(tensorrt))
        rel = Path(path).as_posix().rsplit("/models/", 1)[-1]
        if graphs is None or "models/" + rel in graphs:
            return ()
        return ("the bundle plans no TensorRT {} build of models/{}: `emotrt build` dropped it".format(tensorrt, rel),)
    return check


def _workspace(profiles: Sequence[DeviceProfile]) -> int:
    """The workspace budget of the device's profile (the smallest when several match)."""
    return min(p.workspace_mib for p in profiles) if profiles else DEFAULT_WORKSPACE_MIB


def device_build_config(device: DeviceFingerprint, opt_level: int = 3, dla_core: Optional[int] = None) -> BuildConfig:
    """The build settings for this device: its TensorRT, its profile's workspace, the builder options."""
    return BuildConfig(device.tensorrt, _workspace(match_device(device)), opt_level, dla_core)


def engine_capability(device: DeviceFingerprint, trt: Any) -> Optional[str]:
    """None when this machine can build engines, else why not."""
    if not device.can_build:
        missing = [n for n in ("tensorrt", "compute_capability") if getattr(device, n) is None]
        return "no {} on this machine".format(" and no ".join("TensorRT" if m == "tensorrt" else "CUDA GPU" for m in missing))
    if trt is None:
        try:
            trt_version.import_tensorrt()
        except DependencyError as exc:
            return exc.message
    return None


def build_bundle(options: BuildOptions, device: Optional[DeviceFingerprint] = None, trt: Any = None,
                 progress: Optional[Progress] = None) -> BuildSummary:
    """Write the bundle of ``options``; engines too when this machine has TensorRT and a GPU."""
    device = device if device is not None else probe_device()
    reason = engine_capability(device, trt)
    if reason and options.require_engines:
        raise DependencyError(
            "--require-engines: cannot build TensorRT engines here ({})".format(reason),
            hint="run `emotrt build {}` on the target device, or drop --require-engines".format(options.out),
        )
    export_dir = Path(options.export_dir)
    models = collect_models(export_dir, options.calibration_dir)
    env_dir = Path(options.env_dir or export_dir / "env")
    if env_dir.is_dir():  # write_bundle names a missing table; a broken one is named here, before anything is written
        VectorTable(env_dir, kind="environment").check()
    profiles = [get_profile(t) for t in options.targets]
    summary = BuildSummary(Path(options.out), no_engines_reason=reason)

    def stage(root: Path, section: Models) -> Staged:
        versions = [r.tensorrt for p in profiles for r in p.releases] + ([device.tensorrt] if device.tensorrt else [])
        section = ensure_version_caches(root, section, versions)
        write_expected(root, section)
        plans = plan_builds(root, section, profiles, options, summary.skipped)
        section = prune_version_caches(root, section, plans, summary.skipped)
        summary.build_plans = len(plans)
        if reason:
            log.info("no engines built: %s; the bundle carries ONNX and trtexec build plans", reason)
            return Staged(section, build_plans=tuple(plans))
        matched = [p for p in profiles if p.compute_capability == device.compute_capability] or match_device(device)
        config = BuildConfig(device.tensorrt, _workspace(matched), options.opt_level, options.dla_core)
        run = EngineRun(device, config, options.precisions, options.enroll_seconds, trt, progress)
        return Staged(section, tuple(build_engines(root, section, run, summary)), tuple(plans))

    write_bundle(
        options.out, models, env_dir, export_dir / "testvectors",
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
    reason = engine_capability(device, trt)
    if reason:
        raise DependencyError("cannot build TensorRT engines here ({})".format(reason),
                              hint="run this on the Jetson the bundle targets (emotrt doctor --role device)")
    config = device_build_config(device, opt_level, dla_core)
    run = EngineRun(device, config, precisions, trt=trt, progress=progress,
                    graph_check=planned_only(bundle.manifest.build_plans))
    summary = BuildSummary(bundle.root)
    entries: List[EngineEntry] = []
    try:
        for entry in build_engines(bundle.root, dict(bundle.manifest.models), run, summary, hashes=bundle.manifest.files):
            entries.append(entry)
    finally:
        update_manifest(bundle.root, entries)
    return summary
