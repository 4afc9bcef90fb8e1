"""``emotrt flash``: deliver a bundle to one device or a fleet over SSH (issue 13, DESIGN.md §4).

    bundle = LocalBundle.open("bundle/")
    result = flash_device(inventory["bench-1"], bundle, FlashOptions(service=False))
    results = flash_fleet(inventory.select(group="bench"), bundle, FlashOptions(), FleetOptions(parallel=4, canary=1))

Per device: connect (host key checked) -> probe (:mod:`device_probe`, sent to the device's own
Python) -> preflight (target and disk; nothing copied before it passes) -> delta transfer into
``ROOT/staging`` (only content the device lacks; resumes partial files) -> emotrt in ``ROOT/venv``
when its version differs -> commit (every sha256 checked on the device, signature when
``trusted_keys/`` exists) -> engines built on the device -> self-test -> activate (atomic switch,
restart, health check, commit; any failure or a cut rolls back on the device) -> state.json, prune.
The device-side steps are :mod:`emotrt.devices.device_root`, reached through
:mod:`emotrt.devices.on_device`.
"""
from __future__ import annotations

import atexit
import json
import logging
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from emotrt.devices import device_probe
from emotrt.devices.device_root import DeviceStateError, HealthCheckError, TransferCorruptError, bundle_id_of, check_target
from emotrt.devices.device_venv import install_venv
from emotrt.devices.inventory import DeviceEntry
from emotrt.devices.remote import Remote, RemoteCommandError, RemoteError, connect
from emotrt.devices.signing import SignatureError
from emotrt.runtime.errors import ConfigError, EmotrtError

log = logging.getLogger(__name__)

STEPS = ("connect", "probe", "preflight", "transfer", "venv", "commit", "engines", "selftest",
         "switch", "restart", "health", "commit-activation")
DEFAULT_MIN_FREE = 64 << 20
CHUNK = 1 << 18  # bytes per SFTP write; also the granularity a cut transfer resumes at


class PreflightError(EmotrtError):
    """The device cannot take this bundle (no target for it, too little disk, no Python); nothing was copied."""


class FlashError(EmotrtError):
    """A device-side step failed; the device still runs what it ran before (or was rolled back)."""


@dataclass(frozen=True)
class FlashOptions:
    """How each device is flashed; validated once."""

    keep: int = 3
    service: bool = True
    install_service: bool = False
    install_mender_module: bool = False
    wheelhouse: Optional[Path] = None
    dry_run: bool = False
    accept_new_host_key: bool = False
    known_hosts: Optional[Path] = None
    min_free_bytes: int = DEFAULT_MIN_FREE
    health_timeout: float = 60.0
    commit_timeout: float = 120.0
    speaker: Optional[str] = None
    environment: Optional[str] = None

    def __post_init__(self) -> None:
        problems = []
        if self.keep < 1:
            problems.append("keep={} must be at least 1 (current and previous are always kept)".format(self.keep))
        if self.install_service and not self.service:
            problems.append("install_service and no service contradict each other")
        if self.wheelhouse is not None and not Path(self.wheelhouse).is_dir():
            problems.append("wheelhouse {} is not a directory".format(self.wheelhouse))
        if self.health_timeout <= 0 or self.commit_timeout <= 0:
            problems.append("timeouts must be positive")
        if problems:
            raise ConfigError("flash options: " + "; ".join(problems))


@dataclass(frozen=True)
class FleetOptions:
    parallel: int = 4
    canary: int = 0
    max_failures: Optional[int] = None

    def __post_init__(self) -> None:
        problems = []
        if self.parallel < 1:
            problems.append("--parallel {} must be at least 1".format(self.parallel))
        if self.canary < 0:
            problems.append("--canary {} must be 0 or more".format(self.canary))
        if self.max_failures is not None and self.max_failures < 0:
            problems.append("--max-failures {} must be 0 or more".format(self.max_failures))
        if problems:
            raise ConfigError("fleet options: " + "; ".join(problems))


@dataclass
class FlashResult:
    """One device's outcome: a row of the fleet table."""

    device: str
    result: str = "failed"  # ok | no-op | failed | skipped | dry-run
    reason: str = ""
    bytes_sent: int = 0  # file bytes sent
    wire_bytes: int = 0  # every byte sent on the connection
    seconds: float = 0.0
    engines_built: int = 0
    engines_cached: int = 0
    before: Optional[str] = None
    after: Optional[str] = None
    step: str = ""
    files_sent: int = 0
    venv: str = ""

    @property
    def ok(self) -> bool:
        return self.result in ("ok", "no-op", "dry-run")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class Observer:
    """Hooks at each step boundary and after each transferred chunk (progress bars; tests cut the line here)."""

    def step(self, device: str, name: str, remote: Optional[Remote]) -> None:
        pass

    def transfer(self, device: str, total: int) -> None:
        """The transfer of ``total`` bytes to ``device`` begins."""

    def sent(self, device: str, rel: str, n: int, remote: Remote) -> None:
        pass

    def message(self, device: str, line: str) -> None:
        log.info("%s: %s", device, line)


@dataclass
class LocalBundle:
    """A verified bundle on the workstation and what a device needs of it."""

    root: Path
    bundle_id: str
    files: Dict[str, Tuple[str, int]]
    targets: Tuple[str, ...]
    speakers: Tuple[str, ...]
    environments: Tuple[str, ...]

    @classmethod
    def open(cls, path: Any) -> "LocalBundle":
        import tarfile

        from emotrt.runtime.bundle_reader import Bundle, unpack_tar
        from emotrt.runtime.manifest import sha256_file

        path = Path(path)
        if path.is_file() and tarfile.is_tarfile(str(path)):  # a .tar: unpacked once, for the whole flash
            work = Path(tempfile.mkdtemp(prefix="emotrt-flash-"))
            atexit.register(shutil.rmtree, str(work), True)
            path = unpack_tar(path, work / path.stem)
        bundle = Bundle.open(path)
        root = bundle.root
        files = {rel: (sha, (root / rel).stat().st_size) for rel, sha in bundle.manifest.files.items()}
        extra = ["manifest.json", "manifest.sig"] + [p.relative_to(root).as_posix() for p in sorted(bundle.speakers_dir.rglob("*")) if p.is_file()]
        for rel in extra:
            if (root / rel).is_file():
                files[rel] = (sha256_file(root / rel), (root / rel).stat().st_size)
        return cls(root, bundle_id_of((root / "manifest.json").read_bytes()), files, tuple(bundle.manifest.targets),
                   tuple(bundle.speakers().names()) if (bundle.speakers_dir / "index.json").is_file() else (), tuple(bundle.environments().names()))

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files.values())


# ------------------------------------------------------------------------ preflight


def preflight(bundle: LocalBundle, facts: Dict[str, Any], need: Dict[str, int], options: FlashOptions, name: str) -> int:
    """Raise :class:`PreflightError` for a device the bundle has no target for or too little disk; return bytes to send."""
    reason = check_target(bundle.targets, facts)
    if reason:
        raise PreflightError("{}: refused before copying anything: {}".format(name, reason),
                             hint="build the bundle for it: emotrt build ... --target PROFILE (emotrt devices list-targets)")
    to_send = sum(bundle.files[rel][1] - offset for rel, offset in need.items())
    required = to_send + options.min_free_bytes
    if facts.get("free_bytes") is not None and facts["free_bytes"] < required:
        raise PreflightError("{}: refused before copying anything: too little disk at {} ({} MiB free, {} MiB needed)".format(
            name, "ROOT", facts["free_bytes"] >> 20, (required + (1 << 20) - 1) >> 20),
            hint="free space on the device, or prune old bundles: emotrt flash ... --keep 1")
    return to_send


# ------------------------------------------------------------------------ the device's steps


def probe(remote: Remote, bundle: Optional[LocalBundle] = None, link: bool = False) -> Dict[str, Any]:
    """Run :mod:`device_probe` with the device's own Python: facts, and the transfer plan for ``bundle``."""
    src = Path(device_probe.__file__).read_text()
    args: Dict[str, Any] = {"root": remote.entry.root}
    if bundle is not None:
        args.update(bundle_id=bundle.bundle_id, files={k: list(v) for k, v in bundle.files.items()}, link=link)
    payload = json.dumps({"src": src, "args": args}).encode()
    try:
        done = remote.run([remote.entry.python, "-c", device_probe.BOOTSTRAP], input=payload, timeout=120)
    except RemoteCommandError as exc:
        raise PreflightError("{}: probing with {} failed: {}".format(remote.entry.name, remote.entry.python, exc.message),
                             hint="set `python` in the inventory to the device's Python 3.8+")
    return json.loads(done.stdout)


def active_state(remote: Remote) -> Optional[Tuple[str, Optional[str]]]:
    """(current bundle id, emotrt version in ROOT/venv) read over SFTP alone — no process on the device,
    so a re-flash of the active bundle costs one handshake and a few file-system calls. None when
    there is no current bundle or an activation is pending (then the full probe decides)."""
    sftp, root = remote.sftp(), PurePosixPath(remote.entry.root)
    try:
        current = PurePosixPath(sftp.readlink(str(root / "current"))).name
    except (IOError, OSError):
        return None
    try:
        sftp.stat(str(root / "pending.json"))
        return None
    except (IOError, OSError):
        pass
    version = None
    try:
        lib = root / "venv" / "lib"
        for py in sftp.listdir(str(lib)):
            for entry in sftp.listdir(str(lib / py / "site-packages")):
                if entry.startswith("emotrt-") and entry.endswith(".dist-info"):
                    version = entry[len("emotrt-"):-len(".dist-info")]
    except (IOError, OSError):
        pass
    return current, version


_KINDS = {c.__name__: c for c in (TransferCorruptError, HealthCheckError, DeviceStateError, SignatureError)}
_KINDS["BundleError"] = FlashError


def device_op(remote: Remote, op: str, args: Dict[str, Any], observer: Optional[Observer] = None,
              timeout: Optional[float] = None) -> Dict[str, Any]:
    """Run ``op`` of :mod:`emotrt.devices.on_device` from ``ROOT/venv``; device errors come back as their own class."""
    argv = [_venv_python(remote.entry), "-m", "emotrt.devices.on_device", op, remote.entry.root]
    say = (lambda line: observer.message(remote.entry.name, line)) if observer else None
    done = remote.run(argv, input=(json.dumps(args) + "\n").encode(), check=False, timeout=timeout, on_stderr_line=say)
    return _answer(remote.entry, op, done.stdout, done.stderr, done.returncode)


def _answer(entry: DeviceEntry, op: str, stdout: str, stderr: str, code: int) -> Dict[str, Any]:
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except ValueError:
        answer = {}
    if "result" in answer and code == 0:
        return answer["result"]
    if "error" in answer:
        kind = _KINDS.get(answer.get("kind"), FlashError)
        raise kind("{}: {}".format(entry.name, answer["error"]), hint=answer.get("hint"))
    tail = (stderr.strip().splitlines() or ["no output"])[-1]
    raise FlashError("{}: device step {} failed (exit {}): {}".format(entry.name, op, code, tail),
                     hint="see the device's log; the previous bundle is still active")


def _venv_python(entry: DeviceEntry) -> str:
    return str(PurePosixPath(entry.root) / "venv" / "bin" / "python")


def transfer(remote: Remote, bundle: LocalBundle, need: Dict[str, int], observer: Observer) -> Tuple[int, int]:
    """Send the ``need``ed files into ``staging/<id>/partial``, each from its resume offset; (bytes, files) sent."""
    base = PurePosixPath(remote.entry.root) / "staging" / bundle.bundle_id / "partial"
    observer.transfer(remote.entry.name, sum(bundle.files[rel][1] - offset for rel, offset in need.items()))
    sent = 0
    for rel, offset in sorted(need.items()):
        sent += remote.put(bundle.root / rel, str(base / rel), offset=offset, chunk=CHUNK,
                           callback=lambda n, rel=rel: observer.sent(remote.entry.name, rel, n, remote))
    return sent, len(need)


def install(remote: Remote, bundle: LocalBundle, options: FlashOptions, observer: Observer, step: Callable[[str], None],
            files: Optional[Dict[str, Any]], extra: Dict[str, Any]) -> Dict[str, Any]:
    """One device process: commit, engines, self-test; then ``switch`` and ``commit`` from here, each after its check passed.

    The device changes nothing before we say ``switch`` and rolls back by itself unless we say ``commit``
    (a cut connection is end of input there), so no boundary leaves it half-switched.
    """
    argv = [_venv_python(remote.entry), "-m", "emotrt.devices.on_device", "install", remote.entry.root]
    args: Dict[str, Any] = {"bundle_id": bundle.bundle_id, "files": files, "service": options.service, "keep": options.keep,
                            "health_timeout": options.health_timeout, "commit_timeout": options.commit_timeout, "extra": extra}
    if options.speaker or options.environment:
        from emotrt.devices.service import service_env

        args["service_env"] = service_env(options.speaker or (bundle.speakers[0] if bundle.speakers else ""),
                                          options.environment or (bundle.environments[0] if bundle.environments else ""))
    name = remote.entry.name
    say = lambda line: observer.message(name, line)  # noqa: E731
    boundaries = {"step engines": "engines", "step selftest": "selftest", "switched": "restart", "restarted": "health"}
    with remote.process(argv) as proc:
        proc.send_line(json.dumps(args))
        while True:
            line = proc.readline(timeout=options.health_timeout + options.commit_timeout + 3600, on_stderr_line=say)
            if line is None or line.startswith("{"):
                stdout, stderr = proc.communicate(say)
                return _answer(remote.entry, "install", (line or "") + "\n" + stdout, stderr, proc.wait())
            word = line.split(" ", 1)[0]
            if line in boundaries:
                step(boundaries[line])
            elif word == "ready":
                step("switch")
                proc.send_line("switch")
            elif word == "healthy":
                say(line)
                step("commit-activation")
                proc.send_line("commit")
                proc.close_stdin()
            elif word == "engines":
                found = json.loads(line.split(" ", 1)[1])
                say("engines: {} built, {} from the cache{}".format(len(found["built"]), len(found["cached"]),
                                                                     " ({})".format(found["skipped"]) if found["skipped"] else ""))


# ------------------------------------------------------------------------ one device


def flash_device(entry: DeviceEntry, bundle: LocalBundle, options: FlashOptions, observer: Optional[Observer] = None) -> FlashResult:
    """Flash ``bundle`` to one device; a :class:`FlashResult` always comes back (``result="failed"`` with the reason)."""
    observer = observer or Observer()
    result = FlashResult(entry.name, after=bundle.bundle_id)
    start = time.monotonic()
    remote: Optional[Remote] = None

    def step(name: str) -> None:
        result.step = name
        observer.step(entry.name, name, remote)

    try:
        step("connect")
        with connect(entry, accept_new_host_key=options.accept_new_host_key, known_hosts=options.known_hosts) as remote:
            try:
                _flash_steps(remote, bundle, options, observer, result, step)
            finally:
                result.wire_bytes = remote.wire_sent
    except EmotrtError as exc:
        result.result, result.reason = "failed", str(exc)
    result.seconds = round(time.monotonic() - start, 3)
    return result


def _flash_steps(remote: Remote, bundle: LocalBundle, options: FlashOptions, observer: Observer, result: FlashResult,
                 step: Callable[[str], None]) -> None:
    import emotrt

    name = remote.entry.name
    step("probe")
    installs = options.install_service or options.install_mender_module
    if not installs:
        active = active_state(remote)
        if active == (bundle.bundle_id, emotrt.__version__):
            result.before, result.result, result.reason = bundle.bundle_id, "no-op", "already active"
            return
    found = probe(remote, bundle)
    facts, plan = found["facts"], found["transfer"]
    result.before = facts.get("current")
    venv_ok = facts.get("emotrt") == emotrt.__version__
    if facts.get("current") == bundle.bundle_id and venv_ok and not facts.get("pending") and not installs:
        result.result, result.reason = "no-op", "already active"
        return
    step("preflight")
    to_send = preflight(bundle, facts, plan["need"], options, name)
    if options.dry_run:
        result.result = "dry-run"
        result.reason = "would send {} file(s), {} bytes; venv {}".format(len(plan["need"]), to_send, "kept" if venv_ok else "installed")
        return
    step("transfer")
    if not plan["installed"]:
        plan = probe(remote, bundle, link=True)["transfer"]
        result.bytes_sent, result.files_sent = transfer(remote, bundle, plan["need"], observer)
    step("venv")
    result.venv = "kept" if venv_ok else install_venv(remote, options.wheelhouse, lambda line: observer.message(name, line))
    if options.install_service:
        from emotrt.devices.service import install_service, service_unit

        result.step = "install-service"
        install_service(remote, service_unit(remote.entry.root, remote.entry.user or None))
    if options.install_mender_module:
        from emotrt.devices.service import install_mender_module

        result.step = "install-mender-module"
        observer.message(name, "Mender update module: " + install_mender_module(remote, options.service))
    step("commit")
    files = None if plan["installed"] else {k: list(v) for k, v in bundle.files.items()}
    done = install(remote, bundle, options, observer, step, files, {"bytes_sent": result.bytes_sent})
    engines = done["engines"]
    result.engines_built, result.engines_cached = len(engines["built"]), len(engines["cached"])
    if engines.get("skipped"):
        observer.message(name, "engines: none built ({}); the runtime uses ONNX Runtime".format(engines["skipped"]))
    result.result = "ok"
    result.step = "done"


# ------------------------------------------------------------------------ fleet


def flash_fleet(entries: Sequence[DeviceEntry], bundle: LocalBundle, options: FlashOptions, fleet: FleetOptions,
                observer: Optional[Observer] = None) -> List[FlashResult]:
    """Flash every entry, at most ``parallel`` at once: ``canary`` devices first (all must pass), then the rest
    until more than ``max_failures`` have failed (hawkBit's error threshold); untouched devices are ``skipped``."""
    results: Dict[str, FlashResult] = {}
    order = list(entries)
    canaries, rest = order[: fleet.canary], order[fleet.canary:]
    failures = 0
    lock = threading.Lock()
    stop_reason: List[str] = []

    def run(entry: DeviceEntry, canary: bool = False) -> None:
        nonlocal failures
        with lock:
            if stop_reason:
                results[entry.name] = FlashResult(entry.name, "skipped", stop_reason[0], after=bundle.bundle_id)
                return
        res = flash_device(entry, bundle, options, observer)
        with lock:
            results[entry.name] = res
            if not res.ok:
                failures += 1
                if canary:
                    stop_reason.append("rollout stopped: canary {} failed".format(entry.name))
                elif fleet.max_failures is not None and failures > fleet.max_failures and not stop_reason:
                    stop_reason.append("rollout stopped: {} failure(s) > --max-failures {}".format(failures, fleet.max_failures))

    with ThreadPoolExecutor(max(1, fleet.parallel)) as pool:
        list(pool.map(lambda e: run(e, canary=True), canaries))
        list(pool.map(run, rest))
    return [results[e.name] for e in order]


def fleet_summary(results: Sequence[FlashResult]) -> Dict[str, Any]:
    return {"devices": len(results), "ok": sum(r.ok for r in results), "failed": sum(r.result == "failed" for r in results),
            "skipped": sum(r.result == "skipped" for r in results)}


def remote_status(entry: DeviceEntry, options: FlashOptions) -> Dict[str, Any]:
    """Active and previous bundle, service state and last flash of one device."""
    with connect(entry, accept_new_host_key=options.accept_new_host_key, known_hosts=options.known_hosts) as remote:
        return device_op(remote, "status", {})


def remote_rollback(entry: DeviceEntry, options: FlashOptions, reason: str = "") -> Dict[str, Any]:
    """Switch the device back to its previous bundle (and restart the service unless ``options.service`` is off)."""
    with connect(entry, accept_new_host_key=options.accept_new_host_key, known_hosts=options.known_hosts) as remote:
        return device_op(remote, "rollback", {"reason": reason or "emotrt rollback", "service": options.service})


__all__ = ["FlashOptions", "FleetOptions", "FlashResult", "LocalBundle", "Observer", "PreflightError", "FlashError",
           "flash_device", "flash_fleet", "fleet_summary", "remote_status", "remote_rollback", "RemoteError"]
