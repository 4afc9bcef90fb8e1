"""Rich progress and tables of corpus statistics, shared by the ``data`` verbs."""
import contextlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar, yielded as the ``progress(done, total)`` callback the library takes."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def print_stats(stats: Dict[str, Any], out: Path) -> None:
    """Print hours, speakers, per-style and per-environment counts and test sets of a corpus."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    splits = Table(title="corpus {}".format(out))
    for column in ("manifest", "utterances", "hours", "speakers (f/m)", "styles"):
        splits.add_column(column)
    for name, hours in stats["hours"].items():
        spk = stats["speakers"].get(name, {})
        styles = ", ".join("{} {}".format(k, v) for k, v in stats["styles"].get(name, {}).items())
        speakers = "{} ({}/{})".format(spk["total"], spk.get("f", 0), spk.get("m", 0)) if spk else ""
        splits.add_row(name, str(stats["utterances"][name]), "{:.3f}".format(hours), speakers, styles)
    console.print(splits)
    if stats.get("environments"):
        envs = Table(title="environments")
        for column in ("environment", "split", "descriptions", "clips", "seconds"):
            envs.add_column(column)
        for env_id, env in stats["environments"].items():
            envs.add_row(env_id, str(env["split"]), str(env["descriptions"]), str(env["clips"]), str(env["seconds"]))
        console.print(envs)
    if stats.get("testsets"):
        console.print("test sets: " + ", ".join("{} ({})".format(k, v) for k, v in stats["testsets"].items()))
    if "generation_seconds" in stats:
        console.print("generated in {:.1f} s with {} workers".format(stats["generation_seconds"], stats.get("workers")))


def print_class_tables(stats: Dict[str, Any], out: Path) -> None:
    """Print the per class x split counts of a combined corpus before and after balancing."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for when in ("before", "after"):
        table = Table(title="{} {} balancing ({})".format(out, when, stats["balance"]))
        counts = stats[when]
        columns = list(next(iter(counts.values())))
        for column in ["class"] + columns:
            table.add_column(column, justify="left" if column == "class" else "right")
        for name, row in counts.items():
            table.add_row(name, *(str(row[c]) for c in columns))
        console.print(table)
    if stats.get("moved_speakers"):
        console.print("speakers moved to one split (they were in several): " + ", ".join(stats["moved_speakers"]))
