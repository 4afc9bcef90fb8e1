"""``emotrt enroll``."""
from pathlib import Path

import typer


def enroll(
    name: str = typer.Argument(..., help="Speaker id."),
    audio: Path = typer.Argument(..., help="Enrollment recording (WAV/FLAC at the model's rate, mono or mixed down)."),
    model: Path = typer.Option(Path("models/enroll.onnx"), "--model", help="enroll.onnx written by `emotrt export`."),
    store: Path = typer.Option(Path("speakers"), "--store", help="Speaker store directory (the bundle's speakers/)."),
    replace: bool = typer.Option(False, "--replace", help="Enroll again over an existing speaker."),
) -> None:
    """Compute a speaker embedding through enroll.onnx and store it in the speaker store."""
    from emotrt.export.enroll import enroll_speaker

    embedding = enroll_speaker(store, name, audio, model, replace=replace)
    typer.echo("enrolled {} ({}-d embedding) in {}".format(name, embedding.size, store))
