"""Where a profile goes: ``DIR/profile.json``, ``DIR/report.html`` and a history row per precision."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from emotrt.devices.profile_document import write_profile
from emotrt.runtime.errors import DependencyError


@dataclass
class SavedProfile:
    """Paths written and history rows added; ``notes`` says what was skipped and why."""

    json_path: Path
    html_path: Optional[Path] = None
    history_ids: List[int] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def save_profile(doc: Dict[str, Any], out: Any, history: Optional[Any] = None, html: bool = True,
                 device_name: Optional[str] = None) -> SavedProfile:
    """Write the JSON, the HTML report (skipped with a note where plotly is missing) and append to ``history``."""
    if device_name:
        doc["device_name"] = device_name
    saved = SavedProfile(write_profile(doc, out))
    if html:
        from emotrt.devices.report import write_html

        try:
            saved.html_path = write_html(doc, out)
        except DependencyError as exc:
            saved.notes.append("report.html not written: {}".format(exc))
    if history is not None:
        from emotrt.devices.history import History

        with History(history) as db:
            saved.history_ids = db.append(doc, device_name=device_name)
    return saved
