"""The fleet inventory, ``devices.toml``: which devices ``emotrt flash`` reaches and how (issue 13).

    [devices.bench-1]
    host = "192.168.1.40"
    port = 22
    user = "jetson"
    identity = "~/.ssh/id_ed25519"
    root = "/opt/emotrt"
    groups = ["bench", "orin"]
    python = "/usr/bin/python3"

    inventory = Inventory.load("devices.toml")
    entry = inventory["bench-1"]                    # DeviceEntry
    entries = inventory.select(group="bench")       # or name=..., everything=True

Workstation-only (the device never reads it). Writing keeps the file a plain TOML that a
user may edit by hand: strings go out as JSON-escaped TOML basic strings.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from emotrt.runtime.errors import ConfigError

DEFAULT_INVENTORY = Path("devices.toml")
DEFAULT_ROOT = "/opt/emotrt"
DEFAULT_PYTHON = "/usr/bin/python3"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEYS = ("host", "port", "user", "identity", "root", "groups", "python")


class InventoryError(ConfigError):
    """``devices.toml`` is missing, malformed, or names no such device or group."""


@dataclass(frozen=True)
class DeviceEntry:
    """One device of the inventory; validated once."""

    name: str
    host: str
    port: int = 22
    user: str = ""
    identity: Optional[str] = None
    root: str = DEFAULT_ROOT
    groups: Tuple[str, ...] = ()
    python: str = DEFAULT_PYTHON

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name or ""):
            problems.append("name {!r} must be letters, digits, '.', '_' or '-' (64 at most)".format(self.name))
        if not self.host or any(c.isspace() for c in self.host):
            problems.append("host {!r} must be a host name or address".format(self.host))
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            problems.append("port {!r} must be 1..65535".format(self.port))
        if not str(self.root).startswith("/"):
            problems.append("root {!r} must be an absolute path on the device".format(self.root))
        if not str(self.python).startswith("/"):
            problems.append("python {!r} must be an absolute path on the device".format(self.python))
        if not isinstance(self.groups, tuple) or not all(isinstance(g, str) and _NAME.match(g) for g in self.groups):
            problems.append("groups {!r} must be a list of names".format(self.groups))
        if problems:
            raise InventoryError("device {}: {}".format(self.name, "; ".join(problems)),
                                 hint="fix it in the inventory or re-add it with `emotrt devices add`")

    @property
    def identity_path(self) -> Optional[Path]:
        return Path(os.path.expanduser(self.identity)) if self.identity else None

    @property
    def login(self) -> str:
        return "{}@{}:{}".format(self.user or "(you)", self.host, self.port)

    def to_toml(self) -> str:
        lines = ["[devices.{}]".format(_toml_str(self.name) if not re.match(r"^[A-Za-z0-9_-]+$", self.name) else self.name)]
        lines.append("host = " + _toml_str(self.host))
        lines.append("port = {}".format(self.port))
        if self.user:
            lines.append("user = " + _toml_str(self.user))
        if self.identity:
            lines.append("identity = " + _toml_str(self.identity))
        lines.append("root = " + _toml_str(self.root))
        lines.append("groups = [{}]".format(", ".join(_toml_str(g) for g in self.groups)))
        lines.append("python = " + _toml_str(self.python))
        return "\n".join(lines) + "\n"


def _toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(str(value), ensure_ascii=False)


@dataclass
class Inventory:
    """Devices by name, as read from (and written back to) one ``devices.toml``."""

    path: Path
    devices: Dict[str, DeviceEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Any = DEFAULT_INVENTORY, missing_ok: bool = False) -> "Inventory":
        """Read and validate ``path``; a missing file is an error unless ``missing_ok``."""
        try:
            import tomllib  # novermin  (workstation-only module; Python 3.11+)
        except ImportError:  # Python 3.10 workstations: the same parser, from PyPI (emotrt[flash])
            import tomli as tomllib

        path = Path(path)
        if not path.is_file():
            if missing_ok:
                return cls(path)
            raise InventoryError("no inventory at {}".format(path),
                                 hint="create it with `emotrt devices add NAME --host HOST --inventory {}`".format(path))
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InventoryError("{} is not valid TOML: {}".format(path, exc), hint="fix the file or re-create it with `emotrt devices add`")
        unknown_top = sorted(set(data) - {"devices"})
        if unknown_top:
            raise InventoryError("{}: unknown table(s) {}; only [devices.NAME] tables are read".format(path, ", ".join(unknown_top)))
        tables = data.get("devices") or {}
        if not isinstance(tables, dict):
            raise InventoryError("{}: devices must be [devices.NAME] tables, found {!r}".format(path, tables))
        devices: Dict[str, DeviceEntry] = {}
        for name, values in tables.items():
            devices[name] = _entry(path, name, values)
        return cls(path, devices)

    def save(self) -> Path:
        """Write the inventory atomically."""
        from emotrt.runtime.atomic import atomic_write

        text = "# emotrt device inventory (emotrt devices add|list|remove|probe)\n\n"
        text += "\n".join(e.to_toml() for e in self.devices.values())
        atomic_write(self.path, text.encode("utf-8"))
        return self.path

    def __getitem__(self, name: str) -> DeviceEntry:
        if name not in self.devices:
            raise InventoryError("no device {!r} in {} (it has: {})".format(name, self.path, ", ".join(self.devices) or "none"),
                                 hint="emotrt devices add {} --host HOST --inventory {}".format(name, self.path))
        return self.devices[name]

    def __iter__(self) -> Iterator[DeviceEntry]:
        return iter(self.devices.values())

    def __len__(self) -> int:
        return len(self.devices)

    def add(self, entry: DeviceEntry, replace_existing: bool = False) -> None:
        if entry.name in self.devices and not replace_existing:
            raise InventoryError("device {!r} is already in {}".format(entry.name, self.path),
                                 hint="pass --replace, or remove it first: emotrt devices remove {}".format(entry.name))
        self.devices[entry.name] = entry

    def remove(self, name: str) -> DeviceEntry:
        entry = self[name]
        del self.devices[name]
        return entry

    def groups(self) -> List[str]:
        return sorted({g for e in self for g in e.groups})

    def select(self, name: Optional[str] = None, group: Optional[str] = None, everything: bool = False) -> List[DeviceEntry]:
        """Exactly one of ``name``, ``group``, ``everything`` picks the devices."""
        chosen = [flag for flag, on in (("--device", name), ("--group", group), ("--all", everything)) if on]
        if len(chosen) != 1:
            raise InventoryError("choose the devices with exactly one of --device NAME, --group G, --all (found {})".format(
                ", ".join(chosen) or "none"), hint="emotrt devices list --inventory {}".format(self.path))
        if name:
            return [self[name]]
        if group:
            found = [e for e in self if group in e.groups]
            if not found:
                raise InventoryError("no device of {} is in group {!r} (groups: {})".format(self.path, group, ", ".join(self.groups()) or "none"),
                                     hint="emotrt devices add NAME --host HOST --group {}".format(group))
            return found
        if not self.devices:
            raise InventoryError("{} lists no devices".format(self.path), hint="emotrt devices add NAME --host HOST")
        return list(self)


def _entry(path: Path, name: str, values: Any) -> DeviceEntry:
    if not isinstance(values, dict):
        raise InventoryError("{}: devices.{} must be a table".format(path, name))
    unknown = sorted(set(values) - set(_KEYS))
    if unknown:
        raise InventoryError("{}: device {}: unknown key(s) {} (known: {})".format(path, name, ", ".join(unknown), ", ".join(_KEYS)))
    if "host" not in values:
        raise InventoryError("{}: device {} has no host".format(path, name), hint="add host = \"ADDRESS\" under [devices.{}]".format(name))
    groups = values.get("groups", [])
    if isinstance(groups, str):
        groups = [groups]
    for key in ("host", "user", "identity", "root", "python"):
        if key in values and not isinstance(values[key], str):
            raise InventoryError("{}: device {}: {} must be a string, found {!r}".format(path, name, key, values[key]))
    try:
        return DeviceEntry(name=name, host=values["host"], port=values.get("port", 22), user=values.get("user", ""),
                           identity=values.get("identity"), root=values.get("root", DEFAULT_ROOT),
                           groups=tuple(groups) if isinstance(groups, list) else groups, python=values.get("python", DEFAULT_PYTHON))
    except InventoryError as exc:
        raise InventoryError("{}: {}".format(path, exc.message), hint=exc.hint)

