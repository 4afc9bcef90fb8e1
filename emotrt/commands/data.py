"""``emotrt data synth`` and ``emotrt data prepare``: make or import audio corpora."""
from pathlib import Path
from typing import Optional

import typer

data = typer.Typer(help="Make the synthetic corpus or import a real one into the emotrt manifest format.", no_args_is_help=True)


@data.command("synth")
def synth(
    out: Path = typer.Option(Path("data/synth"), "--out", help="Directory to write the corpus to."),
    size: str = typer.Option("small", help="small (tests, under a minute) or full (training)."),
    seed: int = typer.Option(0, help="Random seed: the same seed makes the same corpus."),
    workers: Optional[int] = typer.Option(None, help="Parallel espeak-ng processes (default: CPU count)."),
    force: bool = typer.Option(False, help="Replace a non-empty output directory."),
) -> None:
    """Synthesise speakers, prosody styles and noise environments with espeak-ng; print corpus statistics."""
    from emotrt.training.corpus.synth import synthesise_corpus

    from ._corpus_tables import print_stats

    stats = synthesise_corpus(out, size=size, seed=seed, workers=workers, force=force)
    print_stats(stats, out)
