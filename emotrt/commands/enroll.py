"""``emotrt enroll``."""
from pathlib import Path
from typing import Optional

import typer


def enroll(
    name: str = typer.Argument(..., help="Speaker id."),
    audio: Optional[Path] = typer.Argument(None, help="Enrollment recording (WAV/FLAC at the model's rate, mono or mixed down)."),
    model: Path = typer.Option(Path("models/enroll.onnx"), "--model", help="enroll.onnx written by `emotrt export`."),
    store: Path = typer.Option(Path("speakers"), "--store", help="Speaker store directory (the bundle's speakers/)."),
    replace: bool = typer.Option(False, "--replace", help="Enroll again over an existing speaker."),
    mic: Optional[str] = typer.Option(None, "--mic", flag_value="", help="Record from a microphone instead of AUDIO: --mic (default input) or --mic=NAME|INDEX; put NAME last."),
    seconds: float = typer.Option(8.0, "--seconds", help="How long to record with --mic."),
) -> None:
    """Compute a speaker embedding through enroll.onnx and store it in the speaker store."""
    import tempfile

    from emotrt.export.enroll import enroll_speaker
    from emotrt.runtime.errors import ConfigError

    if (audio is None) == (mic is None):
        raise ConfigError("give either AUDIO or --mic", hint="emotrt enroll NAME AUDIO, or emotrt enroll --mic --seconds 8 NAME")
    with tempfile.TemporaryDirectory(prefix="emotrt-enroll-") as tmp:
        if mic is not None:
            from emotrt.runtime.backends import load_engine
            from emotrt.runtime.backends.stepper import require_contract
            from emotrt.runtime.capture import record_wav

            with load_engine(model) as engine:
                rate = require_contract(engine).sample_rate
            typer.echo("recording {:.0f} s: speak now".format(seconds), err=True)
            audio = record_wav(Path(tmp) / (name + ".wav"), seconds, rate, device=mic or None)
        embedding = enroll_speaker(store, name, audio, model, replace=replace)
    typer.echo("enrolled {} ({}-d embedding) in {}".format(name, embedding.size, store))
