"""Engines a device built for an installed bundle, kept outside it (docs/contracts.md, "Device layout").

``emotrt flash`` never modifies ``ROOT/bundles/<id>/``; the plans it builds on the device go to the
shared cache ``ROOT/engines/<fingerprint>/`` and their manifest entries to
``ROOT/engines/by-bundle/<id>.json``: a JSON list of :class:`~emotrt.runtime.manifest.EngineEntry`
whose ``plan`` (and ``build_log``) are relative to ROOT and whose ``onnx`` is bundle-relative, each
with the plan's ``sha256``. The writer (:meth:`emotrt.devices.device_root.DeviceRoot.ensure_engines`)
and the reader (:class:`emotrt.runtime.bundle_reader.Bundle`) both go through this module.

    root, entries = read_device_engines("/opt/emotrt/current")   # (None, ()) outside a device root

Torch-free and Python 3.8-valid: this runs on the device.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

from emotrt.runtime.atomic import atomic_write
from emotrt.runtime.errors import BundleError
from emotrt.runtime.manifest import EngineEntry, sha256_file

_REFLASH = "flash the bundle again (emotrt flash BUNDLE --device NAME): its engines are rebuilt"


def by_bundle_path(root: Any, bundle_id: str) -> Path:
    """``ROOT/engines/by-bundle/<id>.json``: the engine entries built on the device for bundle ``bundle_id``."""
    return Path(root) / "engines" / "by-bundle" / (bundle_id + ".json")


def device_root_of(bundle_root: Any) -> Optional[Tuple[Path, str]]:
    """(ROOT, id) when ``bundle_root`` is (a link to) ``ROOT/bundles/<id>``, else None."""
    real = Path(os.path.realpath(str(bundle_root)))
    if real.parent.name != "bundles":
        return None
    return real.parent.parent, real.name


def write_device_engines(root: Any, bundle_id: str, entries: Sequence[EngineEntry]) -> Path:
    """Record ``entries`` (plans relative to ``root``) for ``bundle_id`` atomically, each with its plan's sha256."""
    root = Path(root)
    recorded = [dataclasses.replace(e, sha256=e.sha256 or sha256_file(root / e.plan)) for e in entries]
    path = by_bundle_path(root, bundle_id)
    atomic_write(path, (json.dumps([e.to_json() for e in recorded], indent=1) + "\n").encode())
    return path


def read_device_engines(bundle_root: Any) -> Tuple[Optional[Path], Tuple[EngineEntry, ...]]:
    """(ROOT, entries) recorded for the bundle at ``bundle_root``; (None, ()) outside a device root or before a build."""
    found = device_root_of(bundle_root)
    if found is None:
        return None, ()
    root, bundle_id = found
    path = by_bundle_path(root, bundle_id)
    if not path.is_file():
        return None, ()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError("cannot read {}: {}".format(path, exc), hint=_REFLASH)
    if not isinstance(data, list):
        raise BundleError("{} must hold a JSON list of engine entries".format(path), hint=_REFLASH)
    try:
        return root, tuple(EngineEntry.from_json(e) for e in data)
    except (KeyError, TypeError) as exc:
        raise BundleError("{}: an engine entry lacks {}".format(path, exc), hint=_REFLASH)
