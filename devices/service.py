"""The systemd unit that runs ``emotrt run`` on the device's active bundle (issue 13).

    text = service_unit("/opt/emotrt", user="jetson")     # the unit file's text
    install_service(remote, text)                          # sudo -n: write, daemon-reload, enable

The unit runs ``ROOT/current`` through ``ROOT/venv``: a switch of ``current`` plus a restart is an
update. Speaker, environment and microphone come from ``ROOT/service.env``
(``EMOTRT_SPEAKER``, ``EMOTRT_ENVIRONMENT``, ``EMOTRT_MIC``). Hardening: ProtectSystem=strict with
ROOT the only writable path, NoNewPrivileges, PrivateTmp, the ``audio`` group for the microphone.
No watchdog: the runner has no heartbeat hook yet, and a WatchdogSec that a timer thread feeds
regardless of the audio loop would only pretend (Restart=on-failure covers crashes and the
non-zero exit ``emotrt run`` makes when its input stalls).
"""
from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any, List, Optional

UNIT_NAME = "emotrt.service"
UNIT_PATH = "/etc/systemd/system/" + UNIT_NAME


def _systemd_path(path: str) -> str:
    """A path for a unit file: systemd takes '%' as a specifier and splits on whitespace."""
    if any(c.isspace() for c in path) or '"' in path or "\\" in path:
        raise ValueError("ROOT {!r} cannot be used in a systemd unit (whitespace, quotes or backslashes)".format(path))
    return path.replace("%", "%%")


def service_unit(root: str, user: Optional[str] = None, group: str = "audio") -> str:
    """The text of ``emotrt.service`` for a device whose emotrt lives in ``root``."""
    r = _systemd_path(str(PurePosixPath(root)))
    lines = [
        "[Unit]",
        "Description=emotrt: speech emotion recognition on the active bundle ({}/current)".format(r),
        "After=sound.target network.target",
        "",
        "[Service]",
        "Type=simple",
        "EnvironmentFile=-{}/service.env".format(r),
        "Environment=XDG_CACHE_HOME={}/cache".format(r),
        "ExecStart={r}/venv/bin/emotrt run {r}/current --speaker ${{EMOTRT_SPEAKER}} --environment ${{EMOTRT_ENVIRONMENT}} "
        "--mic --jsonl {r}/results.jsonl".format(r=r),
        "Restart=on-failure",
        "RestartSec=2",
        "TimeoutStopSec=10",
    ]
    if user:
        lines.append("User={}".format(user))
    lines += [
        "SupplementaryGroups={}".format(group),
        "ProtectSystem=strict",
        "ReadWritePaths={}".format(r),
        "ProtectHome=read-only",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def service_env(speaker: str, environment: str, mic: str = "") -> str:
    """``ROOT/service.env``: what the unit passes to ``emotrt run`` (systemd EnvironmentFile syntax)."""
    for name, value in (("speaker", speaker), ("environment", environment), ("mic", mic)):
        if "\n" in value or "\x00" in value:
            raise ValueError("{} {!r} cannot hold a newline".format(name, value))
    return "EMOTRT_SPEAKER={}\nEMOTRT_ENVIRONMENT={}\nEMOTRT_MIC={}\n".format(
        shlex.quote(speaker), shlex.quote(environment), shlex.quote(mic))


def install_service(remote: Any, text: str) -> None:
    """Write the unit with ``sudo -n`` (the only step that needs it), reload systemd and enable the unit."""
    tmp = str(PurePosixPath(remote.entry.root) / "staging" / UNIT_NAME)
    remote.run(["mkdir", "-p", str(PurePosixPath(tmp).parent)])
    remote.sftp().putfo(__import__("io").BytesIO(text.encode()), tmp)
    for argv in (["install", "-m", "0644", tmp, UNIT_PATH], ["systemctl", "daemon-reload"], ["systemctl", "enable", UNIT_NAME]):
        sudo(remote, argv, "installing " + UNIT_NAME, "copy the unit by hand")


def install_mender_module(remote: Any, service: bool = True) -> str:
    """Write the Mender update module ``emotrt-bundle`` for this device's ROOT (``sudo -n``: the client's module directory is root's)."""
    from emotrt.devices.mender_module import MODULE_DIR, MODULE_TYPE

    root = PurePosixPath(remote.entry.root)
    argv = [str(root / "venv" / "bin" / "python"), "-m", "emotrt.devices.mender_module", "--root", str(root)]
    sudo(remote, argv + ([] if service else ["--no-service"]) + ["install-module"], "installing the Mender update module",
         "copy it by hand: python -m emotrt.devices.mender_module --root ROOT install-module (as root, on the device)")
    return str(PurePosixPath(MODULE_DIR) / MODULE_TYPE)


def sudo(remote: Any, argv: List[str], what: str, otherwise: str) -> None:
    """Run ``sudo -n ARGV`` on the device; a refusal is one line saying what needed it and how else to do it."""
    from emotrt.devices.remote import RemoteCommandError
    from emotrt.runtime.errors import EmotrtError

    try:
        remote.run(["sudo", "-n"] + argv)
    except RemoteCommandError as exc:
        raise EmotrtError("{}: {} needs `sudo -n {}` on the device, which failed: {}".format(
            remote.entry.name, what, argv[0], (exc.result.stderr.strip().splitlines() or ["exit {}".format(exc.result.returncode)])[-1]),
            hint="allow {} passwordless sudo for it (visudo), or {}; nothing was switched".format(remote.entry.user or "the user", otherwise))
