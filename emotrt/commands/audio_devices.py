"""``emotrt audio-devices``."""
import typer


def audio_devices(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the microphones PortAudio sees (index, name, channels, default rate); * marks the default."""
    import json
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from emotrt.runtime.audio import list_input_devices

    devices = list_input_devices()
    if as_json:
        typer.echo(json.dumps([asdict(d) for d in devices], indent=1))
        return
    table = Table(title="input devices")
    for column in ("index", "name", "channels", "default rate", "host API"):
        table.add_column(column)
    for d in devices:
        table.add_row("{}{}".format(d.index, " *" if d.is_default else ""), d.name, str(d.channels),
                      str(d.default_rate), d.hostapi)
    Console().print(table if devices else "no input device (start PulseAudio/PipeWire or plug in a microphone)")
