"""The profile document (``DIR/profile.json``): identity of bundle, device and code; reading, writing, schema.

Schema 1 is ``devices/schema/profile.schema.json``; validating needs ``jsonschema`` (workstation, CI).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict

from emotrt.runtime.errors import EmotrtError

SCHEMA = 1


class ProfileError(EmotrtError):
    """A profile cannot run as asked (precision, backend, source)."""


def device_info() -> Dict[str, Any]:
    """This machine: the runtime probe (L4T, TensorRT, CUDA, GPU) plus CPU and host; ``fingerprint_id`` omits the host name."""
    from emotrt.runtime.fingerprint import probe_device

    # EMOTRT_PROBE_ROOT: the flash layer's convention for a test bed's fake /etc and /proc (unset on a device)
    info: Dict[str, Any] = dict(probe_device(root=os.environ.get("EMOTRT_PROBE_ROOT") or "/").to_dict())
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.lower().startswith(("model name", "hardware"))]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info.update(cpu=cpu, cpu_count=os.cpu_count(), machine=platform.machine(), python=platform.python_version())
    key = json.dumps({k: v for k, v in info.items() if k != "python"}, sort_keys=True, default=str)
    info["fingerprint_id"] = hashlib.sha256(key.encode()).hexdigest()[:16]
    info["hostname"] = socket.gethostname()
    return info


def emotrt_commit() -> str:
    """The git commit of this emotrt checkout (``-dirty`` when modified), else the package version."""
    from emotrt import __version__

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True, timeout=5)
        if head.returncode == 0 and head.stdout.strip():
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=5)
            return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "v" + __version__


def bundle_id(bundle: Any) -> str:
    """sha256 of the bundle's manifest (it hashes every file), first 16 hex digits."""
    return hashlib.sha256((Path(bundle.root) / "manifest.json").read_bytes()).hexdigest()[:16]


def write_profile(doc: Dict[str, Any], out: Any) -> Path:
    """Write ``DIR/profile.json``; returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "profile.json"
    tmp = out / ".profile.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    os.replace(str(tmp), str(path))
    return path


def read_profile(path: Any) -> Dict[str, Any]:
    """A profile document from ``DIR`` or ``DIR/profile.json``, checked to be one."""
    path = Path(path)
    if path.is_dir():
        path = path / "profile.json"
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ProfileError("cannot read profile {}: {}".format(path, exc.strerror or exc),
                           hint="give a directory written by `emotrt profile BUNDLE -o DIR`")
    except ValueError as exc:
        raise ProfileError("{} is not valid JSON ({})".format(path, exc), hint="re-run the profile")
    if not isinstance(doc, dict) or doc.get("kind") != "emotrt-profile":
        raise ProfileError("{} is not an emotrt profile".format(path), hint="give DIR/profile.json from `emotrt profile`")
    if doc.get("schema", 0) > SCHEMA:
        raise ProfileError("{} has profile schema {}, newer than this emotrt's {}".format(path, doc.get("schema"), SCHEMA),
                           hint="upgrade emotrt")
    return doc


def schema_path() -> Path:
    return Path(__file__).resolve().parent / "schema" / "profile.schema.json"


def validate_profile(doc: Dict[str, Any]) -> None:
    """Check ``doc`` against the shipped JSON Schema (needs ``jsonschema``; a workstation/CI check)."""
    import jsonschema

    jsonschema.validate(doc, json.loads(schema_path().read_text()))
