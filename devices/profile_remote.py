"""``emotrt profile --device NAME``: profile on a flashed device over SSH and bring the results home.

Built on the flash layer (issue 13): ``emotrt.devices.inventory.Inventory.load(path)`` gives the
device entry and ``with emotrt.devices.remote.connect(entry, accept_new_host_key=...) as remote`` a
session with ``run(argv, timeout=None, check=True)``, ``get(remote, local)`` and ``emotrt(argv)``
(the device's own ``ROOT/venv/bin/emotrt``); its errors are already one line each.
The device runs ``emotrt profile BUNDLE -o TMP --no-history --no-html`` (its own emotrt, its own
TensorRT); the workstation fetches ``profile.json``, renders ``report.html`` and appends the
profile to its local history under the device's name.
"""
from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

from emotrt.devices.profile_output import SavedProfile, save_profile
from emotrt.devices.profile_document import ProfileError, read_profile
from emotrt.runtime.errors import EmotrtError

log = logging.getLogger(__name__)


def find_entry(inventory: Any, name: str) -> Any:
    """The inventory entry called ``name`` (``Inventory[name]``); the error lists the names it has."""
    devices = getattr(inventory, "devices", {})
    entries = list(devices.values()) if isinstance(devices, dict) else list(devices)
    for entry in entries:
        if getattr(entry, "name", None) == name:
            return entry
    names = ", ".join(sorted(str(getattr(e, "name", e)) for e in entries)) or "none"
    raise ProfileError("no device {!r} in the inventory (it has: {})".format(name, names),
                       hint="add it with `emotrt devices add {} --host HOST` or pick one of those".format(name))


def _describe(entry: Any) -> str:
    host = getattr(entry, "host", None) or getattr(entry, "hostname", None) or "?"
    user, port = getattr(entry, "user", None), getattr(entry, "port", None)
    return "{}{}{}".format(user + "@" if user else "", host, ":{}".format(port) if port else "")


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, EOFError)) or type(exc).__module__.split(".")[0] in ("paramiko", "fabric", "asyncssh")


@contextlib.contextmanager
def connect_device(entry: Any, name: str, connect: Callable[..., Any], accept_new_host_key: bool = False,
                   known_hosts: Optional[Any] = None) -> Iterator[Any]:
    """``with connect(entry) as remote``; network failures the SSH layer did not word become one line naming the device."""
    extra = {"known_hosts": known_hosts} if known_hosts is not None else {}
    try:
        session = connect(entry, accept_new_host_key=accept_new_host_key, **extra)
        remote = session.__enter__() if hasattr(session, "__enter__") else session
    except EmotrtError:
        raise
    except Exception as exc:  # noqa: BLE001 - only network/SSH failures are converted, others re-raised
        if not _unreachable(exc):
            raise
        raise ProfileError("cannot reach device {} ({}): {}".format(name, _describe(entry), exc or type(exc).__name__),
                           hint="check that it is on and reachable (ssh {}), or fix its inventory entry".format(
                               _describe(entry).split(":")[0])) from exc
    try:
        yield remote
    finally:
        if hasattr(session, "__exit__"):
            session.__exit__(None, None, None)
        elif callable(getattr(remote, "close", None)):
            remote.close()


def _failed(result: Any) -> Optional[str]:
    code = getattr(result, "returncode", 0)
    if not code:
        return None
    err = (getattr(result, "stderr", "") or getattr(result, "stdout", "") or "").strip().splitlines()
    return err[-1] if err else "exit code {}".format(code)


def _flash_layer(module: str, name: str) -> Any:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ProfileError("--device needs the SSH layer of `emotrt flash` ({} is missing: {})".format(module, exc),
                           hint="install an emotrt with `emotrt flash`, or run `emotrt profile` on the device itself") from exc


def profile_remote(name: str, bundle: str, out: Any, options: Sequence[str], inventory_path: Any,
                   history: Optional[Any] = None, html: bool = True, accept_new_host_key: bool = False,
                   known_hosts: Optional[Any] = None, connect: Optional[Callable[..., Any]] = None,
                   load_inventory: Optional[Callable[[Any], Any]] = None) -> SavedProfile:
    """Run ``emotrt profile BUNDLE`` (``bundle`` is a path on the device) with ``options`` on device ``name``."""
    if load_inventory is None:
        load_inventory = _flash_layer("emotrt.devices.inventory", "Inventory").load
    entry = find_entry(load_inventory(inventory_path), name)
    if connect is None:
        connect = _flash_layer("emotrt.devices.remote", "connect")
    folder = "/tmp/emotrt-profile-" + uuid.uuid4().hex[:12]
    local = Path(out) / "profile.json"
    with connect_device(entry, name, connect, accept_new_host_key, known_hosts) as remote:
        try:
            argv: List[str] = ["profile", bundle, "-o", folder, "--no-history", "--no-html"] + list(options)
            log.info("on %s: emotrt %s", name, " ".join(argv))
            try:
                result = remote.emotrt(argv)
            except EmotrtError:  # the SSH layer's one-line errors (lost connection, failed command)
                raise
            except Exception as exc:  # noqa: BLE001 - network failures in one line, bugs re-raised
                if not _unreachable(exc):
                    raise
                raise ProfileError("connection to {} lost while profiling: {}".format(name, exc),
                                   hint="check the device and run the same command again") from exc
            problem = _failed(result)
            if problem:
                raise ProfileError("`emotrt profile` failed on {}: {}".format(name, problem),
                                   hint="run it there by hand: ssh {} emotrt profile {} -o /tmp/p".format(
                                       _describe(entry).split(":")[0], bundle))
            Path(out).mkdir(parents=True, exist_ok=True)
            remote.get(folder + "/profile.json", str(local))
        finally:
            try:
                remote.run(["rm", "-rf", folder], check=False)
            except Exception as exc:  # noqa: BLE001 - cleanup only
                log.warning("could not remove %s on %s: %s", folder, name, exc)
    return save_profile(read_profile(local), out, history=history, html=html, device_name=name)
