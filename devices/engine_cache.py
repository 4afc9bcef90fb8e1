"""Engines cached by their full fingerprint (DESIGN.md §2.4): a hit skips the build, a mismatch never loads.

Layout (the bundle's ``engines/`` folder, or any directory):

    <root>/<fingerprint_id>/<model>.plan
    <root>/<fingerprint_id>/<model>.fingerprint.json   the full fingerprint the plan was built for
    <root>/<fingerprint_id>/<model>.build.log, <model>.trtexec.txt, timing.cache

The folder name is a hash of the fingerprint; the JSON beside the plan is compared
field by field anyway, so a renamed, copied or hand-edited folder is caught with
the name of the field that differs.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

from emotrt.runtime.errors import FingerprintMismatchError
from emotrt.runtime.fingerprint import ENGINE_FIELDS, DeviceFingerprint, EngineFingerprint, check_match
from emotrt.runtime.atomic import atomic_write

log = logging.getLogger(__name__)


class EngineCache:
    """A directory of plans keyed by :class:`EngineFingerprint`."""

    def __init__(self, root: Any, rebuild: str = "emotrt build BUNDLE") -> None:
        self.root = Path(root)
        self.rebuild = rebuild

    def folder(self, fingerprint: EngineFingerprint) -> Path:
        return self.root / fingerprint.fingerprint_id

    def plan_path(self, fingerprint: EngineFingerprint, model: str) -> Path:
        return self.folder(fingerprint) / (model + ".plan")

    def timing_cache(self, fingerprint: EngineFingerprint) -> Path:
        return self.folder(fingerprint) / "timing.cache"

    def stored_fingerprint(self, plan: Path) -> EngineFingerprint:
        """The fingerprint recorded beside ``plan``; a plan without one is never trusted."""
        meta = plan.with_suffix(".fingerprint.json")
        if not meta.is_file():
            raise FingerprintMismatchError(
                "{} has no {} beside it; its fingerprint is unknown, so it will not be loaded".format(plan, meta.name),
                hint=self.rebuild,
            )
        return EngineFingerprint.from_dict(json.loads(meta.read_text()))

    def lookup(self, fingerprint: EngineFingerprint, model: str) -> Optional[Path]:
        """The cached plan for exactly ``fingerprint``, None when absent; raises on a mismatching plan."""
        plan = self.plan_path(fingerprint, model)
        if not plan.is_file():
            return None
        check_match(self.stored_fingerprint(plan), fingerprint, self.rebuild, ENGINE_FIELDS)
        return plan

    def get_or_build(self, fingerprint: EngineFingerprint, model: str, build: Callable[[Path, Path], Any]) -> Tuple[Path, bool]:
        """(plan, hit). On a miss ``build(plan_path, timing_cache_path)`` writes the plan, then the fingerprint is recorded."""
        found = self.lookup(fingerprint, model)
        if found is not None:
            log.info("engine cache hit: %s", found)
            return found, True
        plan = self.plan_path(fingerprint, model)
        plan.parent.mkdir(parents=True, exist_ok=True)
        build(plan, self.timing_cache(fingerprint))
        atomic_write(plan.with_suffix(".fingerprint.json"), (json.dumps(fingerprint.to_dict(), indent=1, sort_keys=True) + "\n").encode())
        return plan, False

    def load_plan(self, plan: Any, device: DeviceFingerprint) -> bytes:
        """The plan's bytes, only when its recorded fingerprint matches ``device``."""
        plan = Path(plan)
        check_match(self.stored_fingerprint(plan), device, self.rebuild)
        return plan.read_bytes()
