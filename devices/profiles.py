"""Jetson device profiles as data (``profiles.json``): what each module offers an engine build.

    profile = get_profile("orin-nano-8gb")
    profile.workspace_mib, profile.releases[-1].tensorrt      # 1024, "10.3.0"

A profile names the JetPack releases its module runs (each fixing L4T, TensorRT,
CUDA and the system Python), its compute capability, memory, DLA cores, the
workspace budget for engine builds and the ``nvpmodel`` power-mode names.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from emotrt.runtime.errors import ConfigError
from emotrt.runtime.fingerprint import DeviceFingerprint
from emotrt.runtime.trt_version import normalise_version

PROFILES_FILE = Path(__file__).with_name("profiles.json")


@dataclass(frozen=True)
class JetPackRelease:
    """One JetPack release: the software an engine for it is built with."""

    jetpack: str
    l4t: str
    tensorrt: str
    cuda: str
    python: str
    verified: bool = True

    @property
    def trt_major(self) -> int:
        return int(self.tensorrt.split(".")[0])


@dataclass(frozen=True)
class DeviceProfile:
    """One Jetson module; validated once when loaded."""

    id: str
    name: str
    compute_capability: str
    memory_mib: int
    dla_cores: int
    workspace_mib: int
    releases: Tuple[JetPackRelease, ...]
    power_modes: Tuple[str, ...]
    default_power_mode: str
    board_patterns: Tuple[str, ...]
    super: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not re.match(r"^[a-z0-9-]+$", self.id):
            problems.append("id must be lower-case letters, digits and '-'")
        if not re.match(r"^\d+\.\d+$", self.compute_capability):
            problems.append("compute_capability={!r} is not like '8.7'".format(self.compute_capability))
        if self.memory_mib <= 0 or self.dla_cores < 0:
            problems.append("memory_mib must be > 0 and dla_cores >= 0")
        if not 0 < self.workspace_mib <= self.memory_mib // 2:
            problems.append("workspace_mib={} must be within half of memory_mib={}".format(self.workspace_mib, self.memory_mib))
        if not self.releases:
            problems.append("no JetPack release")
        if self.default_power_mode not in self.power_modes:
            problems.append("default_power_mode {!r} is not one of power_modes".format(self.default_power_mode))
        if problems:
            raise ConfigError("device profile {}: {}".format(self.id, "; ".join(problems)))

    def release(self, tensorrt: Optional[str] = None) -> JetPackRelease:
        """The release with TensorRT ``tensorrt`` (major.minor match), or the newest verified one."""
        if tensorrt is None:
            verified = [r for r in self.releases if r.verified] or list(self.releases)
            return verified[-1]
        want = normalise_version(tensorrt).split(".")[:2]
        for r in reversed(self.releases):
            if r.tensorrt.split(".")[:2] == want:
                return r
        raise ConfigError(
            "{} has no JetPack release with TensorRT {} (it runs {})".format(
                self.id, tensorrt, ", ".join("JetPack {} / TensorRT {}".format(r.jetpack, r.tensorrt) for r in self.releases)
            ),
            hint="pick one of those TensorRT versions or another --target",
        )

    def to_dict(self) -> Dict[str, object]:
        return {
            "id": self.id, "name": self.name, "compute_capability": self.compute_capability,
            "memory_mib": self.memory_mib, "dla_cores": self.dla_cores, "workspace_mib": self.workspace_mib,
            "jetpacks": [r.jetpack for r in self.releases], "power_modes": list(self.power_modes),
            "default_power_mode": self.default_power_mode,
        }


def load_profiles(path: Path = PROFILES_FILE) -> Dict[str, DeviceProfile]:
    """Every profile in ``path``, by id, validated."""
    data = json.loads(Path(path).read_text())
    releases = {
        name: JetPackRelease(name, r["l4t"], r["tensorrt"], r["cuda"], r["python"], bool(r.get("verified", True)))
        for name, r in data["jetpacks"].items()
    }
    profiles: Dict[str, DeviceProfile] = {}
    for p in data["profiles"]:
        unknown = [j for j in p["jetpacks"] if j not in releases]
        if unknown:
            raise ConfigError("device profile {}: unknown JetPack release(s) {}".format(p["id"], ", ".join(unknown)))
        if p["id"] in profiles:
            raise ConfigError("device profile {} is defined twice in {}".format(p["id"], path))
        profiles[p["id"]] = DeviceProfile(
            id=p["id"], name=p["name"], compute_capability=p["compute_capability"], memory_mib=int(p["memory_mib"]),
            dla_cores=int(p["dla_cores"]), workspace_mib=int(p["workspace_mib"]),
            releases=tuple(releases[j] for j in p["jetpacks"]), power_modes=tuple(p["power_modes"]),
            default_power_mode=p["default_power_mode"], board_patterns=tuple(p["board_patterns"]), super=bool(p.get("super")),
        )
    return profiles


def get_profile(profile_id: str) -> DeviceProfile:
    """The profile ``profile_id``; an unknown id lists the known ones."""
    profiles = load_profiles()
    if profile_id not in profiles:
        raise ConfigError(
            "unknown device {!r}; known: {}".format(profile_id, ", ".join(sorted(profiles))), hint="emotrt devices"
        )
    return profiles[profile_id]


def match_device(device: DeviceFingerprint) -> List[DeviceProfile]:
    """Profiles whose board patterns all appear in the probed board name and whose GPU matches."""
    board = (device.board or "").lower()
    found = []
    for profile in load_profiles().values():
        if device.compute_capability and device.compute_capability != profile.compute_capability:
            continue
        if board and all(p.lower() in board for p in profile.board_patterns[:1]):
            found.append(profile)
    return found
