"""A bundle as a Mender module-image artifact (``.mender``) for the ``emotrt-bundle`` update module (issue 16).

    path = write_artifact("bundle/", "bundle.mender", ["jetson-orin-nano-devkit"], key="mender-private.pem")

The artifact is written by Debian's ``mender-artifact`` (``write module-image``; Mender's own tool, so
the format, checksums and signature are exactly what the Mender client and server expect):

    type           emotrt-bundle (the update module the client runs: :mod:`emotrt.devices.mender_module`)
    device types   one ``-t`` per DEVICE_TYPE (the device's /var/lib/mender/device_type)
    payload        bundle.tar (the bundle packed by :func:`emotrt.devices.bundle_writer.pack_tar`, with
                   manifest.sig and speakers/ when present)
    meta-data      {"emotrt": {bundle_id, targets, files: {rel: [sha256, size]}}} (:func:`mender_module.payload_meta`)
    provides       rootfs-image.emotrt-bundle.version = the bundle id (what Mender's inventory shows)

Signing (``key``) uses Mender's artifact signature (RSA or ECDSA P-256 PEM; devices verify with
``ArtifactVerifyKey`` in mender.conf). emotrt's own ed25519 signature (``emotrt sign``, checked against
ROOT/trusted_keys/) travels inside the payload and is checked too. Reference:
https://docs.mender.io/artifact-creation/create-an-artifact and ``mender-artifact write module-image --help``.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, List, Optional, Sequence

from emotrt.runtime.errors import ConfigError, DependencyError, EmotrtError

TOOL = "mender-artifact"
INSTALL_HINT = "sudo apt-get install mender-artifact (scripts/setup-system.sh installs it)"
_DEVICE_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class MenderToolError(EmotrtError):
    """``mender-artifact`` refused or failed."""


def mender_tool() -> str:
    """Path of ``mender-artifact``; one clear line when it is missing."""
    path = shutil.which(TOOL)
    if path is None:
        raise DependencyError("{} is not installed: it writes and signs Mender artifacts".format(TOOL), hint=INSTALL_HINT)
    return path


def parse_device_types(text: Any) -> List[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]``, each a valid Mender device type."""
    items = [text] if isinstance(text, str) else list(text or [])
    types = [t.strip() for item in items for t in str(item).split(",") if t.strip()]
    bad = [t for t in types if not _DEVICE_TYPE.match(t)]
    if not types or bad:
        raise ConfigError("--mender needs device types like jetson-orin-nano-devkit (comma-separated){}".format(
            ": {!r} is not one".format(bad[0]) if bad else ""), hint="cat /var/lib/mender/device_type on a device shows its type")
    return list(dict.fromkeys(types))


def run_tool(argv: Sequence[str], what: str) -> str:
    """Run ``mender-artifact ARGV``; its last error line becomes one :class:`MenderToolError`."""
    proc = subprocess.run([mender_tool()] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=3600)
    if proc.returncode != 0:
        lines = (proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")).strip().splitlines()
        raise MenderToolError("{}: {} {} failed: {}".format(what, TOOL, argv[0], lines[-1] if lines else "exit {}".format(proc.returncode)))
    return proc.stdout.decode(errors="replace")


def write_artifact(bundle: Any, out: Any, device_types: Any, name: Optional[str] = None, key: Optional[Any] = None,
                   compression: str = "none") -> Path:
    """Write ``bundle`` (directory or .tar) as a module-image artifact at ``out``, signed with ``key`` when given."""
    from emotrt.devices.flash import LocalBundle
    from emotrt.devices.bundle_writer import pack_tar
    from emotrt.devices.mender_module import MODULE_TYPE, PAYLOAD, payload_meta
    from emotrt.runtime.atomic import atomic_file

    types = parse_device_types(device_types)
    if key is not None and not Path(key).is_file():
        raise ConfigError("Mender signing key {} does not exist".format(key),
                          hint="openssl ecparam -genkey -name prime256v1 -noout -out mender-private.pem (a P-256 key)")
    if compression not in ("none", "gzip", "lzma"):
        raise ConfigError("compression {!r}: use none, gzip or lzma".format(compression))
    mender_tool()  # before any work: a missing tool is the first thing said
    local = LocalBundle.open(bundle)
    name = name or "emotrt-{}".format(local.bundle_id)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="emotrt-mender-") as work:
        payload = pack_tar(local.root, Path(work) / PAYLOAD)
        meta = Path(work) / "meta-data.json"
        meta.write_text(json.dumps(payload_meta(local.bundle_id, local.files, list(local.targets))))
        argv = ["write", "module-image", "--type", MODULE_TYPE, "--artifact-name", name, "--file", str(payload),
                "--meta-data", str(meta), "--software-version", local.bundle_id, "--compression", compression]
        for t in types:
            argv += ["--device-type", t]
        if key is not None:
            argv += ["--key", str(key)]
        with atomic_file(out, suffix=".mender") as tmp:
            Path(tmp).unlink()  # the tool writes the file itself
            run_tool(argv + ["--output-path", tmp], "packaging {}".format(local.root))
    return out


def validate_artifact(path: Any, key: Optional[Any] = None) -> str:
    """``mender-artifact validate`` (with the public ``key``: the signature must verify); its output."""
    return run_tool(["validate"] + (["--key", str(key)] if key is not None else []) + [str(path)], "validating {}".format(path))


def read_artifact(path: Any) -> str:
    """``mender-artifact read``: the header as the tool prints it (name, device types, type, provides, files)."""
    return run_tool(["read", "--no-progress", str(path)], "reading {}".format(path))


__all__ = ["write_artifact", "validate_artifact", "read_artifact", "parse_device_types", "mender_tool", "MenderToolError"]
