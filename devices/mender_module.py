"""``emotrt-bundle``, the Mender update module: Mender's states driven by :class:`DeviceRoot` (issue 16).

The Mender client runs ``/usr/share/mender/modules/v3/emotrt-bundle STATE FILES`` once per state
(Update Modules v3: mender's Documentation/update-modules-v3-file-api.md and
https://docs.mender.io/artifact-creation/create-a-custom-update-module). That file is a two-line
script (:func:`module_script`) that runs this module from ``ROOT/venv``, so a Mender deployment goes
through the same staging, sha256 and signature checks, engine cache, self-test, atomic switch,
health check, ``state.json`` and pruning as ``emotrt flash``:

    SupportsRollback       -> Yes;  NeedsArtifactReboot -> No (a switch is a link and a restart)
    Download               refuse another device type or a bundle for another Jetson (one line); stream the
                           payload (``stream-next``, then ``streams/bundle.tar``) into ROOT/staging/<id>/partial;
                           verify every sha256 (and the signature when ROOT/trusted_keys/ exists); install as
                           ROOT/bundles/<id>, inactive. ``current`` is not touched.
    ArtifactInstall        (from ``files/bundle.tar`` when Download did not stream) build missing engines,
                           self-test, then pending.json (owner "mender") + atomic switch + service restart
    ArtifactVerifyReboot   health check
    ArtifactCommit         health check, then commit: state.json records it, old bundles are pruned
    ArtifactRollback       back to the bundle that was current, service restarted, recorded with the reason
    ArtifactFailure        nothing pending is left switched; ``current`` stays what it was
    Cleanup                remove ROOT/staging/<id>
    anything else          print nothing, exit 0 (the protocol's rule for states added later)

A pending Mender activation spans several processes, so it is marked with ``owner: "mender"``:
``emotrt flash`` refuses to undo it, and only the client's ArtifactCommit or ArtifactRollback ends it.
Failures print one line on stderr and exit 1, which makes the client run the error states.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, Optional

from emotrt.devices import device_probe
from emotrt.devices.device_root import DeviceRoot, DeviceStateError, check_target, device_fingerprint
from emotrt.runtime.errors import BundleError, EmotrtError

MODULE_TYPE = "emotrt-bundle"
MODULE_DIR = "/usr/share/mender/modules/v3"
PAYLOAD = "bundle.tar"
OWNER = "mender"
META_SCHEMA = 1


def payload_meta(bundle_id: str, files: Dict[str, Any], targets: List[str]) -> Dict[str, Any]:
    """The artifact's ``meta-data`` (inside the signed header): what Download checks before a byte is staged."""
    return {"emotrt": {"schema": META_SCHEMA, "bundle_id": bundle_id, "targets": list(targets), "payload": PAYLOAD,
                       "files": {rel: [sha, int(size)] for rel, (sha, size) in sorted(files.items())}}}


class MenderArtifactError(BundleError):
    """The artifact is not an emotrt bundle this device can take (wrong device type, target or meta-data)."""


class UpdateModule:
    """One state call of the module: ``UpdateModule(DeviceRoot(root), files_dir).run("Download")``."""

    def __init__(self, device: DeviceRoot, files_dir: Any, service: bool = True, keep: int = 3,
                 health_timeout: float = 60.0, fs_root: Optional[str] = None) -> None:
        self.device, self.files = device, Path(files_dir)
        self.service, self.keep, self.health_timeout = service, keep, health_timeout
        self.fs_root = fs_root or os.environ.get("EMOTRT_PROBE_ROOT") or "/"

    # ------------------------------------------------------------ what the client passes

    def meta(self) -> Dict[str, Any]:
        path = self.files / "header" / "meta-data"
        try:
            meta = json.loads(path.read_text())["emotrt"]
            if meta["schema"] != META_SCHEMA or not isinstance(meta["files"], dict) or len(meta["bundle_id"]) != 16:
                raise ValueError("schema {}".format(meta.get("schema")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MenderArtifactError("{} has no emotrt meta-data ({}): not an artifact of `emotrt package --mender`".format(
                path, exc), hint="build it with: emotrt package BUNDLE --mender DEVICE_TYPE")
        return meta

    def header_info(self) -> Dict[str, Any]:
        try:
            return json.loads((self.files / "header" / "header-info").read_text())
        except (OSError, ValueError):
            return {}

    def artifact_name(self) -> Optional[str]:
        return (self.header_info().get("artifact_provides") or {}).get("artifact_name")

    def _client_value(self, name: str) -> Optional[str]:
        """``current_<name>`` as Mender 3.x+ clients write it (``<name>`` in the original v3 file API)."""
        for candidate in ("current_" + name, name):
            try:
                return (self.files / candidate).read_text().strip()
            except OSError:
                continue
        return None

    def _tmp(self, name: str) -> Path:
        return self.files / "tmp" / name

    # ------------------------------------------------------------ states

    def run(self, state: str) -> Optional[str]:
        """Run ``state``; returns what to print on stdout (the query states' answers)."""
        handler = getattr(self, "state_" + state, None)
        if state == "SupportsRollback":
            return "Yes"
        if state == "NeedsArtifactReboot":
            return "No"
        if handler is None:
            return None
        try:
            handler()
        except EmotrtError as exc:
            self._tmp("error").parent.mkdir(parents=True, exist_ok=True)
            self._tmp("error").write_text(exc.message)
            raise
        return None

    def state_Download(self) -> None:
        meta = self.meta()
        self.check_device(meta)
        for name in self._streams():
            with open(str(self.files / name), "rb") as stream:
                if Path(name).name == meta["payload"]:
                    self.stage(stream, meta)
                else:  # each announced stream must be read to its end, or the client waits forever
                    shutil.copyfileobj(stream, _Null())

    def state_ArtifactInstall(self) -> None:
        meta = self.meta()
        bundle_id = meta["bundle_id"]
        payload = self.files / "files" / meta["payload"]
        if not self.device.bundle_path(bundle_id).is_dir() and payload.is_file():
            self.check_device(meta)
            with open(str(payload), "rb") as f:
                self.stage(f, meta)
        if not self.device.bundle_path(bundle_id).is_dir():
            raise DeviceStateError("bundle {} was never staged: Download did not complete".format(bundle_id))
        stale = self.device.pending()
        if stale is not None and stale.get("owner") == OWNER:  # an older deployment the client abandoned
            self.device.abort_activation("superseded by Mender deployment of {}".format(self.artifact_name()))
        self.device.recover()
        engines = self.device.ensure_engines(bundle_id, device_fingerprint(self.fs_root), progress=_progress)
        _progress("engines: {} built, {} from the cache{}".format(len(engines["built"]), len(engines["cached"]),
                                                                   " ({})".format(engines["skipped"]) if engines["skipped"] else ""))
        test = self.device.selftest(bundle_id)
        if not test["passed"]:
            raise DeviceStateError("self-test of {} failed ({}); nothing was switched".format(bundle_id, test["verdict"]),
                                   hint="run `emotrt selftest` on the bundle and rebuild it")
        self._tmp("install.json").write_text(json.dumps({"engines_built": engines["built"], "selftest": test}))
        self.device.begin_activation(bundle_id, service=self.service, owner=OWNER, say=_progress)

    def state_ArtifactVerifyReboot(self) -> None:
        self._pending()
        self.device.health_check(timeout=self.health_timeout, service=self.service)

    def state_ArtifactCommit(self) -> None:
        info = self._pending()
        health = self.device.health_check(timeout=self.health_timeout, service=bool(info.get("service")))
        try:
            extra = json.loads(self._tmp("install.json").read_text())
        except (OSError, ValueError):
            extra = {}
        extra.update(via=OWNER, artifact=self.artifact_name())
        self.device.finish_activation(info, health, self.keep, extra)

    def state_ArtifactRollback(self) -> None:
        try:
            reason = self._tmp("error").read_text()
        except OSError:
            reason = "the Mender client rolled back the deployment"
        self.device.abort_activation("Mender {}: {}".format(self.artifact_name(), reason))

    def state_ArtifactFailure(self) -> None:
        info = self.device.pending()
        if info is not None and info.get("owner") == OWNER:
            self.state_ArtifactRollback()

    def state_Cleanup(self) -> None:
        try:
            bundle_id = self.meta()["bundle_id"]
        except MenderArtifactError:
            return
        shutil.rmtree(str(self.device.root / "staging" / bundle_id), ignore_errors=True)

    # ------------------------------------------------------------ steps

    def _pending(self) -> Dict[str, Any]:
        info, bundle_id = self.device.pending(), self.meta()["bundle_id"]
        if info is None or info.get("owner") != OWNER or info.get("to") != bundle_id:
            raise DeviceStateError("{}: no Mender activation of {} is pending (found {})".format(
                self.device.root, bundle_id, json.dumps(info)), hint="deploy the artifact again")
        return info

    def check_device(self, meta: Dict[str, Any]) -> None:
        """One line, before anything is staged, for an artifact of another device type or a bundle for another Jetson."""
        types = (self.header_info().get("artifact_depends") or {}).get("device_type") or []
        mine = self._client_value("device_type")
        if mine is not None and types and mine not in types:
            raise MenderArtifactError("artifact {} is for device type(s) {}, this device is {!r}; nothing was staged".format(
                self.artifact_name(), ", ".join(types), mine), hint="emotrt package BUNDLE --mender {}".format(mine))
        facts = device_probe.probe_facts(str(self.device.root), self.fs_root)
        reason = check_target(meta["targets"], facts)
        if reason:
            raise MenderArtifactError("artifact {} refused before staging anything: {}".format(self.artifact_name(), reason),
                                      hint="build the bundle for it: emotrt build ... --target PROFILE (emotrt devices list-targets)")

    def _streams(self) -> Iterator[str]:
        """The payload streams the client offers in Download: each read of the ``stream-next`` FIFO names one
        (``streams/NAME``, ``streams/NAME SIZE`` for DownloadWithFileSizes), an empty read ends them (mender's
        src/mender-update/update_module/v3/update_module_download.cpp). Without ``stream-next`` the client saves
        the payload under ``files/`` for ArtifactInstall instead."""
        pipe = self.files / "stream-next"
        if not pipe.exists():
            return
        while True:
            with open(str(pipe)) as f:
                line = f.read().strip()
            if not line:
                return
            name = line.split(" ", 1)[0]
            if not name.startswith("streams/") or ".." in Path(name).parts:
                raise MenderArtifactError("stream-next named {!r}, not a stream under streams/".format(line))
            yield name

    def stage(self, stream: BinaryIO, meta: Dict[str, Any]) -> Path:
        """Unpack the payload tar from ``stream`` into ROOT/staging/<id>/partial, then let :meth:`DeviceRoot.commit_staged`
        verify it (sha256 of every file against the signed meta-data, manifest id, signature) and install it, inactive."""
        from emotrt.runtime.manifest import check_member_name

        bundle_id, files = meta["bundle_id"], meta["files"]
        if self.device.bundle_path(bundle_id).is_dir():
            shutil.copyfileobj(stream, _Null())
            return self.device.bundle_path(bundle_id)
        _, partial = (Path(p) for p in device_probe.staging_dirs(str(self.device.root), bundle_id))
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # a stream: one pass, nothing seeks back
                for member in tar:
                    check_member_name(member.name, PAYLOAD)
                    if member.isdir():
                        continue
                    rel = Path(member.name).as_posix()
                    if not member.isfile() or rel not in files:
                        raise MenderArtifactError("payload member {!r} is {} (not in the artifact's meta-data)".format(
                            member.name, "a link or special file" if not member.isfile() else "unexpected"))
                    dest = partial / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    with open(str(dest), "wb") as out:
                        shutil.copyfileobj(source, out)
                shutil.copyfileobj(stream, _Null())  # the tar's end blocks and padding, so the client's writer finishes
        except (tarfile.TarError, EOFError) as exc:
            raise MenderArtifactError("the payload of bundle {} was cut short or is damaged ({}); `current` was not touched".format(
                bundle_id, exc), hint="deploy the artifact again")
        except OSError as exc:  # a full or read-only disk: one line in the client's log, not a traceback
            raise DeviceStateError("cannot stage bundle {} in {}: {}; `current` was not touched".format(
                bundle_id, partial, exc.strerror or exc), hint="free space on the device (emotrt flash ... --keep 1 prunes old bundles)")
        try:
            return self.device.commit_staged(bundle_id, files)
        except DeviceStateError as exc:  # its hints speak of flash's resumable transfer; Mender downloads anew
            raise type(exc)(exc.message, hint="deploy the artifact again")


class _Null:
    def write(self, data: bytes) -> int:
        return len(data)


def _progress(line: str) -> None:
    sys.stderr.write(line.rstrip("\n") + "\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------ the script the client runs


def module_script(root: str, python: Optional[str] = None, service: bool = True) -> str:
    """The text of ``MODULE_DIR/emotrt-bundle``: run this module from ``python`` (default ``ROOT/venv/bin/python``)."""
    python = python or os.path.join(root, "venv", "bin", "python")
    argv = [python, "-m", "emotrt.devices.mender_module", "--root", root] + ([] if service else ["--no-service"])
    return ("#!/bin/sh\n"
            "# Mender update module {} (Update Modules v3) for emotrt bundles: the states run emotrt's\n"
            "# device library on {}. Written by `emotrt flash --install-mender-module` or\n"
            "# `python -m emotrt.devices.mender_module install-module`.\n"
            "exec {} \"$@\"\n").format(MODULE_TYPE, root, " ".join(shlex.quote(a) for a in argv))


def install_module(root: str, directory: str = MODULE_DIR, python: Optional[str] = None, service: bool = True) -> Path:
    """Write the module script into ``directory`` (mode 0755, atomically)."""
    from emotrt.runtime.atomic import atomic_write, make_dirs

    path = make_dirs(directory) / MODULE_TYPE
    atomic_write(path, module_script(root, python, service).encode(), mode=0o755)
    return path


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="emotrt-bundle", description="Mender update module for emotrt bundles.")
    parser.add_argument("--root", default="/opt/emotrt", help="the device's emotrt ROOT")
    parser.add_argument("--no-service", action="store_true", help="do not restart or check emotrt.service")
    parser.add_argument("--keep", type=int, default=3, help="installed bundles kept (current and previous always)")
    parser.add_argument("--health-timeout", type=float, default=60.0)
    parser.add_argument("--dir", default=MODULE_DIR, help="install-module: where the client looks for update modules")
    parser.add_argument("--python", default=None, help="install-module: the Python that has emotrt (default ROOT/venv/bin/python)")
    parser.add_argument("state")
    parser.add_argument("files", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.state == "install-module":
            print(install_module(args.root, args.dir, args.python, service=not args.no_service))
            return 0
        module = UpdateModule(DeviceRoot(args.root), args.files or ".", service=not args.no_service, keep=args.keep,
                              health_timeout=args.health_timeout)
        answer = module.run(args.state)
    except EmotrtError as exc:
        sys.stderr.write("{}: {}: {}\n".format(MODULE_TYPE, args.state, exc))
        return 1
    if answer:
        print(answer)
    return 0


__all__ = ["MODULE_TYPE", "MODULE_DIR", "PAYLOAD", "UpdateModule", "MenderArtifactError", "payload_meta", "module_script",
           "install_module"]

if __name__ == "__main__":
    sys.exit(main())
