"""Where results go: JSON lines (stdout or a file), a Python callback, a live terminal view (rich)."""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import IO, Any, Callable, Dict, Optional

from emotrt.runtime.errors import ConfigError
from emotrt.runtime.results import Result

Sink = Callable[[Result], None]


class JsonlSink:
    """One JSON object per line to ``target`` (a path, ``-`` for stdout, or an open text file); flushed per line."""

    def __init__(self, target: Any = "-") -> None:
        self._own = False
        if target == "-" or target is None:
            self.file: IO[str] = sys.stdout
        elif hasattr(target, "write"):
            self.file = target
        else:
            try:
                self.file = open(os.fspath(target), "a", encoding="utf-8")
            except OSError as exc:
                raise ConfigError("cannot write results to {}: {}".format(target, exc.strerror or exc),
                                  hint="pass --jsonl a file in an existing, writable directory")
            self._own = True

    def __call__(self, result: Result) -> None:
        self.file.write(result.to_json() + "\n")
        self.file.flush()

    def close(self) -> None:
        if self._own:
            self.file.close()


class LiveView:
    """A rich live table: latest emotion, posteriors as bars, AVD and VAD state, per speaker."""

    def __init__(self, console: Optional[Any] = None, refresh_per_second: float = 8.0) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(stderr=True)
        self._latest: Dict[str, Result] = {}
        self._live = Live(self._render(), console=self.console, refresh_per_second=refresh_per_second, transient=False)
        self._live.start()

    def __call__(self, result: Result) -> None:
        previous = self._latest.get(result.speaker)
        if result.speech or previous is None:
            self._latest[result.speaker] = result
        else:  # keep showing the last emotion, with the current time and VAD state
            self._latest[result.speaker] = dataclasses.replace(previous, speech=False, end=result.end)
        self._live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(title="emotrt live", expand=False)
        for column in ("speaker", "time", "VAD", "emotion", "posteriors", "arousal/valence/dominance"):
            table.add_column(column)
        for speaker, r in sorted(self._latest.items()):
            bars = ""
            if r.posteriors is not None:
                bars = "\n".join("{:<8} {:<20} {:.2f}".format(label, "#" * int(round(p * 20)), p)
                                 for label, p in zip(r.labels, r.posteriors))
            avd = "" if r.avd is None else "{:.2f} / {:.2f} / {:.2f}".format(*r.avd)
            vad = "[green]speech[/]" if r.speech else "[dim]silence[/]"
            table.add_row(speaker, "{:.1f} s".format(r.end), vad, r.emotion or "", bars, avd)
        return table

    def close(self) -> None:
        self._live.stop()
