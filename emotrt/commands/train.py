"""``emotrt train tse|ser|joint RECIPE.toml [--set key=value]``."""
from typing import List, Optional

import typer

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def _reexec_with_jemalloc() -> None:
    """Restart this command under jemalloc with decay off (REFERENCE.md: glibc malloc page-faults every step)."""
    import os
    import sys

    if "jemalloc" in os.environ.get("LD_PRELOAD", "") or not os.path.exists(JEMALLOC):
        return
    env = dict(os.environ, LD_PRELOAD=(JEMALLOC + " " + os.environ.get("LD_PRELOAD", "")).strip(),
               MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1")
    os.execve(sys.executable, [sys.executable, "-m", "emotrt"] + sys.argv[1:], env)


def train(
    task: str = typer.Argument(..., help="What to train: tse, ser or joint."),
    recipe: str = typer.Argument(..., help="Recipe TOML, or the name of a shipped one (tse_edge, tse_quick)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe key: --set train.steps=100."),
    jemalloc: bool = typer.Option(True, help="Run under jemalloc when installed (much faster on these VMs)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train a model from a recipe; rerunning the same command resumes from the run's last checkpoint."""
    if jemalloc:
        _reexec_with_jemalloc()
    import signal

    from rich.console import Console

    from emotrt.training.recipe import load_recipe
    from emotrt.training.tasks import build_task
    from emotrt.training.trainer import train as run

    loaded = load_recipe(recipe, set_ or [], task=task)
    # SIGTERM (kill, a scheduler's stop) saves the run like Ctrl-C does; rerunning resumes it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = run(build_task(loaded), loaded, progress=progress)
    except KeyboardInterrupt:
        Console().print("interrupted: {} saved; rerun the same command to resume".format(loaded.train.out))
        raise typer.Exit(130)
    best = "none" if result.best_score is None else "{:.3f}".format(result.best_score)
    state = "stopped at time limit (rerun to resume)" if result.stopped_early else "done"
    Console().print("{}: step {} in {}, best score {}".format(state, result.step, result.out, best))
