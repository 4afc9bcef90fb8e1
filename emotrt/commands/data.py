"""``emotrt data synth``, ``voices``, ``prepare`` and ``combine``: make, import or combine audio corpora."""
from pathlib import Path
from typing import List, Optional

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

    from ._corpus_tables import print_stats, progress_bar

    with progress_bar("espeak-ng utterances") as progress:
        stats = synthesise_corpus(out, size=size, seed=seed, workers=workers, force=force, progress=progress)
    print_stats(stats, out)


@data.command("voices")
def voices(
    out: Path = typer.Option(Path("data/voices"), "--out", help="Directory to write the voices corpus to."),
    per_speaker: int = typer.Option(24, "--per-speaker", help="Utterances per pseudo-speaker (plus 2 enrollment ones)."),
    seed: int = typer.Option(0, help="Random seed: the same seed makes the same corpus."),
    workers: Optional[int] = typer.Option(None, help="Parallel flite processes (default: CPU count)."),
    force: bool = typer.Option(False, help="Replace a non-empty output directory."),
) -> None:
    """Other synthesisers' voices for the TSE (flite's, warped): a train-split corpus for a TSE recipe's [data] voices."""
    from emotrt.training.corpus.voices import make_voices

    from ._corpus_tables import progress_bar

    with progress_bar("flite utterances") as progress:
        stats = make_voices(out, per_speaker=per_speaker, seed=seed, workers=workers, force=force, progress=progress)
    typer.echo("{}: {} pseudo-speakers of {} flite voices, {} utterances, {:.2f} h".format(
        out, stats["speakers"], len({v["voice"] for v in stats["voices"].values()}), stats["utterances"], stats["hours"]))


@data.command("prepare")
def prepare(
    corpus: str = typer.Argument(..., help="iemocap, msp-podcast, crema-d, ravdess, esd, savee, tess, librispeech, musan, demand, esc-50 or wham."),
    path: Path = typer.Argument(..., help="The root of your local copy of the corpus."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: data/<corpus>)."),
    classes: str = typer.Option("four", help="Emotion classes to keep: four (neutral/happy/angry/sad) or all."),
    drop_neutral: bool = typer.Option(False, "--drop-neutral", help="Leave out neutral utterances."),
    workers: Optional[int] = typer.Option(None, help="Parallel resampling processes (default: CPU count)."),
    force: bool = typer.Option(False, help="Replace a non-empty output directory."),
) -> None:
    """Import a real corpus: harmonised labels, 16 kHz audio, the emotrt manifest; print statistics."""
    from emotrt.training.corpus.prepare import prepare_corpus

    from ._corpus_tables import print_stats, progress_bar

    out = out or Path("data") / corpus
    with progress_bar("resampling to 16 kHz") as progress:
        stats = prepare_corpus(corpus, path, out, classes=classes, drop_neutral=drop_neutral, workers=workers,
                               force=force, progress=progress)
    print_stats(stats, out)


@data.command("combine")
def combine(
    corpora: List[Path] = typer.Argument(..., help="Prepared corpus directories (emotrt data prepare / synth)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the combined corpus to."),
    classes: str = typer.Option("four", help="four (neutral/happy/angry/sad), all, or comma-separated harmonised names."),
    balance: str = typer.Option("none", help="Equal train class counts: none, augment (new audio: time stretch, pitch "
                                "shift, noise, gain; needs sox) or resample (repeat utterances)."),
    noise: List[Path] = typer.Option([], "--noise", help="Noise corpus (manifests/noise.jsonl, environments.json), "
                                     "carried into the output; --balance augment adds its seen train clips "
                                     "(repeatable; without it no noise is added)."),
    seed: int = typer.Option(0, help="Seed of the balancing: the same seed makes the same rows and audio."),
    workers: Optional[int] = typer.Option(None, help="Parallel augmentation processes (default: CPU count)."),
    force: bool = typer.Option(False, help="Replace a non-empty output directory."),
) -> None:
    """One corpus from several: namespaced speakers, speaker-disjoint splits, per-row source; class counts before/after."""
    from emotrt.training.corpus.combine import combine_corpora

    from ._corpus_tables import print_class_tables, progress_bar

    with progress_bar("augmenting") as progress:
        stats = combine_corpora(corpora, out, classes=classes, balance=balance, seed=seed, noise=noise,
                                workers=workers, force=force, progress=progress)
    print_class_tables(stats, out)
