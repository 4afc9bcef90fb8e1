"""The device side of a flash: one ROOT, its bundles, the atomic switch, health check and rollback (issue 13).

The layout (docs/contracts.md, "Device layout"):

    ROOT/bundles/<id>/        complete, verified bundles (<id> = first 16 hex of sha256(manifest.json))
    ROOT/engines/<fp>/        engine cache shared by every bundle
    ROOT/current, previous    symlinks to bundles/<id>, replaced by new link + rename(2)
    ROOT/staging/<id>/        files/ (verified) and partial/ (resumable) transfers; never read by the runtime
    ROOT/venv -> venvs/<v>    emotrt and its device dependencies
    ROOT/trusted_keys/        when present, only signed bundles are switched to
    ROOT/state.json           every flash and rollback
    ROOT/pending.json         an activation not yet committed (rolled back when its process is gone)

Everything here runs on the device (Python 3.8, no workstation library) and is called both by
``emotrt flash`` (through :mod:`emotrt.devices.on_device` over SSH) and, later, by a Mender update
module (issue 16). Nothing under ``current`` is ever modified in place.

    device = DeviceRoot("/opt/emotrt")
    device.commit_staged(bundle_id)            # verify staged files, install as bundles/<id>
    device.selftest(bundle_id)
    device.switch(bundle_id)                   # previous <- current, current <- bundles/<id>
    device.health_check()                      # the pipeline produces results on a short input
    device.rollback("health check failed")
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from emotrt.devices import device_probe
from emotrt.runtime.atomic import atomic_write
from emotrt.runtime.errors import EmotrtError

log = logging.getLogger(__name__)

SERVICE_UNIT = "emotrt.service"
STATE_HISTORY = 200


class DeviceStateError(EmotrtError):
    """The device's ROOT is not in a state this step can work from."""


class TransferCorruptError(DeviceStateError):
    """A staged file does not match its sha256: corrupted in transit."""


class HealthCheckError(DeviceStateError):
    """The newly active bundle did not pass the health check."""


def bundle_id_of(manifest_bytes: bytes) -> str:
    """The id of a bundle: first 16 hex digits of its manifest's sha256."""
    import hashlib

    return hashlib.sha256(manifest_bytes).hexdigest()[:16]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class DeviceRoot:
    """One device's ROOT directory."""

    def __init__(self, root: Any) -> None:
        self.root = Path(root)

    # ---------------------------------------------------------------- paths and links

    @property
    def bundles(self) -> Path:
        return self.root / "bundles"

    @property
    def engines(self) -> Path:
        return self.root / "engines"

    def bundle_path(self, bundle_id: str) -> Path:
        return self.bundles / bundle_id

    def link(self, name: str) -> Optional[str]:
        """The bundle id ``current``/``previous`` points at, None when absent."""
        return device_probe.link_target(str(self.root), name)

    def set_link(self, name: str, bundle_id: Optional[str]) -> None:
        """Point ``name`` at ``bundles/<id>`` atomically: a new symlink renamed over the old (rename(2))."""
        path = self.root / name
        if bundle_id is None:
            if path.is_symlink():
                path.unlink()
            return
        if not self.bundle_path(bundle_id).is_dir():
            raise DeviceStateError("{}: no installed bundle {}".format(self.root, bundle_id))
        tmp = self.root / ".{}.new-{}".format(name, os.getpid())
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.join("bundles", bundle_id), str(tmp))
        os.replace(str(tmp), str(path))
        _fsync_dir(self.root)

    # ---------------------------------------------------------------- staging -> bundles

    def commit_staged(self, bundle_id: str, files: Dict[str, Sequence[Any]]) -> Path:
        """Verify every staged file against ``files`` ({rel: [sha256, size]}) and install the bundle.

        Partial files that are complete are hashed and moved next to the verified ones; a mismatch
        removes the file (it is resent) and raises :class:`TransferCorruptError`. The complete set is
        then opened with :class:`emotrt.runtime.bundle_reader.Bundle` (every sha256 checked again, the
        manifest's own hash must be the id), its signature checked against ``trusted_keys/``, and
        renamed to ``bundles/<id>`` in one step.
        """
        final = self.bundle_path(bundle_id)
        if final.is_dir():
            return final
        done, partial = (Path(p) for p in device_probe.staging_dirs(str(self.root), bundle_id))
        bad, missing = [], []
        for rel, (sha, size) in sorted(files.items()):
            dest, part = done / rel, partial / rel
            if dest.is_file():
                continue
            if not part.is_file() or part.stat().st_size < int(size):
                missing.append(rel)
                continue
            if part.stat().st_size != int(size) or device_probe.sha256_file(str(part)) != sha:
                part.unlink()
                bad.append(rel)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(str(part), str(dest))
        if bad:
            raise TransferCorruptError(
                "{} staged file(s) do not match their sha256 (corrupted in transit): {}; they were removed".format(
                    len(bad), ", ".join(bad[:5])), hint="flash again: only these files are resent")
        if missing:
            raise DeviceStateError("{} file(s) of bundle {} have not arrived: {}".format(len(missing), bundle_id, ", ".join(missing[:5])),
                                   hint="flash again: the transfer resumes")
        manifest = done / "manifest.json"
        if bundle_id_of(manifest.read_bytes()) != bundle_id:
            raise TransferCorruptError("staged manifest.json does not hash to bundle id {}".format(bundle_id))
        from emotrt.runtime.bundle_reader import Bundle

        with Bundle.open(done, verify=True):
            pass
        self.check_signature(done)
        self.bundles.mkdir(parents=True, exist_ok=True)
        os.replace(str(done), str(final))
        _fsync_dir(self.bundles)
        shutil.rmtree(str(self.root / "staging" / bundle_id), ignore_errors=True)
        return final

    def check_signature(self, bundle_dir: Path) -> Optional[str]:
        """With ``trusted_keys/`` present, the bundle must carry a signature by one of them; returns the key's name."""
        keys = self.root / "trusted_keys"
        if not keys.is_dir():
            return None
        from emotrt.devices.signing import verify_manifest

        return verify_manifest(bundle_dir, keys)

    # ---------------------------------------------------------------- engines and self-test

    def ensure_engines(self, bundle_id: str, device: Any, trt: Any = None,
                       progress: Optional[Callable[[str], None]] = None) -> Dict[str, List[str]]:
        """Build the bundle's missing engines for ``device`` into the shared ``engines/`` cache.

        The cache is keyed by the full fingerprint, so an unchanged model is never rebuilt. The
        builder sees a work view ``staging/.engines-<id>`` whose ``models`` links into the (read-only)
        bundle and whose ``engines`` links to ``ROOT/engines``; the plans' manifest entries go to
        ``engines/by-bundle/<id>.json`` (:mod:`emotrt.runtime.device_engines`, where the runtime finds
        them). Without TensorRT nothing is built and the reason is returned.
        """
        from emotrt.devices.bundle_build import BuildSummary, EngineRun, build_engines, device_build_config, engine_capability
        from emotrt.runtime.bundle_reader import Bundle
        from emotrt.runtime.device_engines import write_device_engines
        from emotrt.runtime.manifest import EngineEntry

        reason = engine_capability(device, trt)
        if reason:
            return {"built": [], "cached": [], "skipped": reason}
        bundle = Bundle.open(self.bundle_path(bundle_id), verify=False)
        view = self.root / "staging" / ".engines-{}".format(bundle_id)
        shutil.rmtree(str(view), ignore_errors=True)
        view.mkdir(parents=True)
        self.engines.mkdir(exist_ok=True)
        os.symlink(str(self.engines), str(view / "engines"))
        for name in os.listdir(str(bundle.root)):
            if name != "engines":
                os.symlink(str(bundle.root / name), str(view / name))
        summary = BuildSummary(view)
        entries: List[EngineEntry] = []
        run = EngineRun(device, device_build_config(device), trt=trt)
        report = None
        if progress is not None:
            def report(phase: str, step: int, steps: int) -> None:
                progress("engine build: {} {}/{}".format(phase, step, steps))
        run = dataclasses.replace(run, progress=report)
        try:
            for built in build_engines(view, bundle.manifest.models, run, summary, hashes=dict(bundle.manifest.files)):
                entries.append(built)
        finally:
            shutil.rmtree(str(view), ignore_errors=True)
            write_device_engines(self.root, bundle_id, entries)
        return {"built": summary.engines_built, "cached": summary.engines_cached, "skipped": None}

    def selftest(self, bundle_id: str) -> Dict[str, Any]:
        """Run ``emotrt selftest`` on an installed bundle (every sha256 re-checked first)."""
        from emotrt.devices.selftest import run_selftest
        from emotrt.runtime.bundle_reader import Bundle

        with Bundle.open(self.bundle_path(bundle_id)) as bundle:
            report = run_selftest(bundle)
        return {"passed": report.passed, "verdict": report.verdict}

    # ---------------------------------------------------------------- switch, health, rollback

    def switch(self, bundle_id: str) -> Optional[str]:
        """Make ``bundle_id`` current; the old current becomes previous. Returns the old current."""
        old = self.link("current")
        if old == bundle_id:
            return old
        if old is not None:
            self.set_link("previous", old)
        self.set_link("current", bundle_id)
        return old

    def rollback(self, reason: str, service: bool = False) -> Dict[str, Any]:
        """Switch back to ``previous`` (the bundle before the last switch); the rolled-back one becomes previous."""
        current, previous = self.link("current"), self.link("previous")
        if previous is None or not self.bundle_path(previous).is_dir():
            raise DeviceStateError("{}: no previous bundle to roll back to".format(self.root),
                                   hint="flash a bundle: emotrt flash BUNDLE --device NAME")
        self.set_link("current", previous)
        if current is not None:
            self.set_link("previous", current)
        if service:
            restart_service()
        entry = self.record("rollback", current, previous, "ok", reason)
        return entry

    def service_settings(self) -> Dict[str, str]:
        path = self.root / "service.env"
        out = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                key, eq, value = line.partition("=")
                if eq and not key.startswith("#"):
                    words = shlex.split(value)
                    out[key.strip()] = words[0] if words else ""
        return out

    def write_service_env(self, text: str) -> None:
        """Replace ``service.env`` (speaker, environment) atomically."""
        atomic_write(self.root / "service.env", text.encode("utf-8"))

    def health_check(self, seconds: float = 3.0, timeout: float = 60.0, service: bool = False) -> Dict[str, Any]:
        """The service is active (when managed) and the current bundle's pipeline yields results on a short test input."""
        import numpy as np

        from emotrt.runtime.pipeline import Pipeline

        start = time.monotonic()
        if service:
            wait_active(timeout)
        settings = self.service_settings()
        current = self.root / "current"
        if not current.is_dir():
            raise HealthCheckError("{} points at no bundle".format(current))
        try:
            with Pipeline.from_bundle(str(current), backend="auto", verify=False) as pipeline:
                speakers, envs = pipeline.speakers.names(), pipeline.environments.names()
                speaker = settings.get("EMOTRT_SPEAKER") or (speakers[0] if speakers else None)
                env = settings.get("EMOTRT_ENVIRONMENT") or (envs[0] if envs else None)
                if speaker is None or env is None:
                    raise HealthCheckError("health check: the bundle has no {} to run with".format("enrolled speaker" if speaker is None else "environment"),
                                           hint="enroll one (emotrt enroll) before building the bundle")
                stream = pipeline.create_stream(speaker=speaker, environment=env)
                rate = pipeline.sample_rate
                t = np.arange(int(seconds * rate)) / float(rate)
                audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
                stream.accept_waveform(rate, audio)
                results = []
                while time.monotonic() - start < timeout:
                    results += list(stream.results())
                    if results:
                        break
                    time.sleep(0.05)
                stream.close()
                backend = pipeline.backend
        except HealthCheckError:
            raise
        except EmotrtError as exc:
            raise HealthCheckError("health check: {}".format(exc.message), hint=exc.hint)
        if not results:
            raise HealthCheckError("health check: no result within {:.0f} s".format(timeout))
        return {"results": len(results), "backend": backend, "seconds": round(time.monotonic() - start, 3)}

    # ---------------------------------------------------------------- state

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def state(self) -> Dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {"history": []}

    def record(self, action: str, before: Optional[str], after: Optional[str], result: str, reason: str = "",
               **extra: Any) -> Dict[str, Any]:
        """Append one entry to ``state.json`` (atomically)."""
        state = self.state()
        entry = dict(action=action, time=_now(), before=before, after=after, result=result, reason=reason, **extra)
        state["history"] = (state.get("history", []) + [entry])[-STATE_HISTORY:]
        state["current"], state["previous"] = self.link("current"), self.link("previous")
        atomic_write(self.state_path, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())
        return entry

    def prune(self, keep: int) -> List[str]:
        """Remove installed bundles beyond the ``keep`` newest; never ``current`` or ``previous``."""
        if keep < 1:
            raise DeviceStateError("--keep {} must be at least 1".format(keep))
        protected = {self.link("current"), self.link("previous")}
        if not self.bundles.is_dir():
            return []
        ids = sorted(os.listdir(str(self.bundles)), key=lambda b: self.bundle_path(b).stat().st_mtime, reverse=True)
        removed = []
        for bid in ids[keep:]:
            if bid in protected:
                continue
            trash = self.root / "staging" / ".trash-{}".format(bid)
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(str(self.bundle_path(bid)), str(trash))
            shutil.rmtree(str(trash), ignore_errors=True)
            removed.append(bid)
        return removed

    def status(self) -> Dict[str, Any]:
        history = self.state().get("history", [])
        flashes = [h for h in history if h.get("action") == "flash"]
        return {
            "root": str(self.root), "current": self.link("current"), "previous": self.link("previous"),
            "bundles": sorted(os.listdir(str(self.bundles))) if self.bundles.is_dir() else [],
            "service": service_state(), "pending": (self.root / "pending.json").is_file(),
            "last_flash": flashes[-1] if flashes else None, "last": history[-1] if history else None,
        }

    # ---------------------------------------------------------------- activation (switch -> restart -> health -> commit)

    def pending(self) -> Optional[Dict[str, Any]]:
        """The activation that has switched but not committed (``pending.json``), None when there is none."""
        path = self.root / "pending.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:
            return {}

    def recover(self) -> Optional[Dict[str, Any]]:
        """Roll back an activation whose process died before it was committed (a cut, a crash, a power loss).

        An activation owned by an update client (``owner``: the Mender update module) spans several
        processes and is the client's to commit or roll back: it is refused here, never undone.
        """
        info = self.pending()
        if info is None:
            return None
        if info.get("owner"):
            raise DeviceStateError("{}: a {} deployment of {} is in progress (switched, not yet committed)".format(
                self.root, info["owner"], info.get("to")), hint="let the {} client commit or roll it back, then try again".format(info["owner"]))
        pid = info.get("pid")
        if pid and _alive(int(pid)):
            raise DeviceStateError("{}: another activation (pid {}) is still running".format(self.root, pid),
                                   hint="wait for it to finish, then flash again")
        entry = self._undo(info, "activation of {} was never committed (interrupted)".format(info.get("to")),
                           service=bool(info.get("service")))
        return entry

    def _undo(self, info: Dict[str, Any], reason: str, service: bool) -> Dict[str, Any]:
        before, after = info.get("from"), info.get("to")
        if before is not None and self.bundle_path(before).is_dir():
            self.set_link("current", before)
        elif before is None:
            self.set_link("current", None)
        self.set_link("previous", info.get("previous") if info.get("previous") and self.bundle_path(info["previous"]).is_dir() else None)
        if service:
            try:
                restart_service()
            except EmotrtError as exc:
                reason += "; restart after rollback failed: " + exc.message
        (self.root / "pending.json").unlink()
        return self.record("rollback", after, before, "rolled back", reason)

    def begin_activation(self, bundle_id: str, service: bool = False, owner: Optional[str] = None,
                         say: Callable[[str], None] = lambda step: None) -> Dict[str, Any]:
        """Write ``pending.json``, then switch to ``bundle_id`` and restart the service: the first half of an activation.

        Until :meth:`finish_activation` the switch is provisional: :meth:`abort_activation` (or
        :meth:`recover`, when the process that began it is gone and no ``owner`` holds it) undoes it.
        """
        if not self.bundle_path(bundle_id).is_dir():
            raise DeviceStateError("bundle {} is not installed on {}".format(bundle_id, self.root))
        info = {"from": self.link("current"), "to": bundle_id, "previous": self.link("previous"), "pid": os.getpid(),
                "service": service, "time": _now()}
        if owner:
            info["owner"] = owner
        atomic_write(self.root / "pending.json", json.dumps(info).encode())
        self.switch(bundle_id)
        say("switched")
        if service:
            restart_service()
        say("restarted")
        return info

    def finish_activation(self, info: Dict[str, Any], health: Dict[str, Any], keep: int = 3,
                          extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Commit the pending activation: drop ``pending.json``, record it in ``state.json``, prune to ``keep``."""
        (self.root / "pending.json").unlink()
        entry = self.record("flash", info.get("from"), info["to"], "ok", "", health=health, **(extra or {}))
        entry["pruned"] = self.prune(keep)
        return entry

    def abort_activation(self, reason: str) -> Optional[Dict[str, Any]]:
        """Undo the pending activation (back to the bundle that was current, service restarted); None when none is pending."""
        info = self.pending()
        if info is None:
            return None
        return self._undo(info, reason, service=bool(info.get("service")))

    def activate(self, bundle_id: str, say: Callable[[str], None], confirm: Callable[[float], bool],
                 service: bool = False, health_timeout: float = 60.0, commit_timeout: float = 120.0,
                 keep: int = 3, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Switch to ``bundle_id``, restart, health-check, then wait for ``confirm`` to commit.

        ``say(step)`` reports each step boundary ("switched", "restarted", "healthy ..."); ``confirm(timeout)``
        returns True when the workstation commits. Any failure, a False, or a vanished workstation
        rolls back to the bundle that was current, restarts, and records why. A ``pending.json``
        written before the switch lets :meth:`recover` finish the rollback if this process dies.
        """
        self.recover()
        if not self.bundle_path(bundle_id).is_dir():
            raise DeviceStateError("bundle {} is not installed on {}".format(bundle_id, self.root))
        info: Dict[str, Any] = {"from": self.link("current")}
        try:
            info = self.begin_activation(bundle_id, service=service, say=say)
            health = self.health_check(timeout=health_timeout, service=service)
            say("healthy " + json.dumps(health))
            if not confirm(commit_timeout):
                raise DeviceStateError("the workstation did not commit within {:.0f} s".format(commit_timeout))
        except BaseException as exc:
            before = info.get("from")
            reason = exc.message if isinstance(exc, EmotrtError) else "{}: {}".format(type(exc).__name__, exc)
            self.abort_activation(reason)
            if isinstance(exc, EmotrtError):
                raise type(exc)(exc.message + " (rolled back to {})".format(before or "nothing"), hint=exc.hint)
            if not isinstance(exc, Exception):
                raise
            raise HealthCheckError(reason + " (rolled back to {})".format(before or "nothing")) from exc
        return self.finish_activation(info, health, keep, extra)


# -------------------------------------------------------------------- service (systemd)


def _systemctl(*args: str) -> List[str]:
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return prefix + ["systemctl"] + list(args) + [SERVICE_UNIT]


def restart_service() -> None:
    try:
        proc = subprocess.run(_systemctl("restart"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceStateError("cannot restart {}: {}".format(SERVICE_UNIT, exc), hint="install it: emotrt flash ... --install-service, or pass --no-service")
    if proc.returncode != 0:
        raise DeviceStateError("systemctl restart {} failed: {}".format(SERVICE_UNIT, " ".join(proc.stderr.decode(errors="replace").split())),
                               hint="emotrt flash ... --install-service (needs sudo), or --no-service")


def service_state() -> str:
    try:
        proc = subprocess.run(_systemctl("is-active"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (no systemctl)"
    return proc.stdout.decode(errors="replace").strip() or "unknown"


def wait_active(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = service_state()
    while state != "active" and time.monotonic() < deadline:
        time.sleep(0.5)
        state = service_state()
    if state != "active":
        raise HealthCheckError("{} is {} after the restart".format(SERVICE_UNIT, state), hint="journalctl -u " + SERVICE_UNIT)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)





def check_target(targets: Sequence[str], facts: Dict[str, Any]) -> Optional[str]:
    """None when one of a bundle's ``targets`` is this device (board and JetPack release in the probe's ``facts``), else why not.

    The one compatibility rule of both delivery paths: ``emotrt flash`` asks it before copying, the Mender
    update module before staging.
    """
    from emotrt.devices.profiles import get_profile, match_device
    from emotrt.runtime.fingerprint import DeviceFingerprint

    if not facts.get("l4t") or not facts.get("board"):
        return "not a Jetson (no /etc/nv_tegra_release or /proc/device-tree/model)"
    device = DeviceFingerprint(l4t=facts["l4t"], board=facts["board"], tensorrt=facts.get("tensorrt"), cuda=facts.get("cuda"))
    matched = {p.id for p in match_device(device)}
    for target in targets:
        if target not in matched:
            continue
        profile = get_profile(target)
        for release in profile.releases:
            if _l4t_matches(release.l4t, facts["l4t"]):
                return None
        return "{} runs L4T {}, but target {} covers JetPack {} only".format(
            facts["board"], facts["l4t"], target, ", ".join(r.jetpack for r in profile.releases))
    return "the bundle targets {} but the device is {!r} (matches {})".format(
        ", ".join(targets) or "nothing", facts["board"], ", ".join(sorted(matched)) or "no known profile")


def _l4t_matches(release: str, found: str) -> bool:
    want = release.split(".")
    return found.split(".")[: len(want)] == want


def device_fingerprint(fs_root: Optional[str] = None) -> Any:
    """This device's :class:`DeviceFingerprint`: the files :mod:`device_probe` reads, completed by the runtime probe.

    ``fs_root`` defaults to ``$EMOTRT_PROBE_ROOT`` or ``/``. The GPU's compute capability comes from
    the CUDA driver when it answers, else from the board's profile (a Jetson module has one GPU).
    """
    import dataclasses

    from emotrt.devices.profiles import match_device
    from emotrt.runtime.fingerprint import probe_device

    fs_root = fs_root or os.environ.get("EMOTRT_PROBE_ROOT") or "/"
    found = probe_device(fs_root)
    facts = device_probe.probe_facts(fs_root, fs_root)
    # JetPack's installed packages first (what the files under fs_root say), the loaded libraries second
    found = dataclasses.replace(found, tensorrt=facts["tensorrt"] or found.tensorrt, cuda=facts["cuda"] or found.cuda,
                                l4t=facts["l4t"] or found.l4t, board=facts["board"] or found.board)
    if found.compute_capability is None and found.board:
        capabilities = {p.compute_capability for p in match_device(found)}
        if len(capabilities) == 1:
            found = dataclasses.replace(found, compute_capability=capabilities.pop())
    return found
