"""``emotrt run``: stream a microphone, a file or stdin through a bundle and report emotions."""
from pathlib import Path
from typing import Optional

import typer


def run(
    bundle: Path = typer.Argument(..., envvar="EMOTRT_BUNDLE", help="Bundle directory or .tar (or $EMOTRT_BUNDLE)."),
    speaker: str = typer.Option(..., "--speaker", "-s", help="Enrolled speaker to extract."),
    environment: str = typer.Option(..., "--environment", "-e", help="Environment id from the bundle's table."),
    mic: Optional[str] = typer.Option(None, "--mic", flag_value="", help="Microphone: --mic (default input) or --mic NAME|INDEX (a name part or an index)."),
    file: Optional[Path] = typer.Option(None, "--file", help="WAV/FLAC file to read."),
    realtime: bool = typer.Option(False, "--realtime", help="Pace --file in real time instead of as fast as possible."),
    stdin: bool = typer.Option(False, "--stdin", help="Read raw interleaved PCM from stdin."),
    rate: Optional[int] = typer.Option(None, "--rate", help="Sample rate of --stdin (required) or --mic (default: device's)."),
    channels: int = typer.Option(1, "--channels", help="Channels of --stdin or --mic."),
    pcm_format: str = typer.Option("s16le", "--format", help="--stdin sample format: s16le, s32le or f32le."),
    channel: Optional[int] = typer.Option(None, "--channel", help="Use this channel instead of the downmix."),
    jsonl: Optional[str] = typer.Option(None, "--jsonl", help="Write JSON lines to this file ('-' = stdout, the default without --live)."),
    live: bool = typer.Option(False, "--live", help="Show a live view on the terminal."),
    backend: str = typer.Option("auto", "--backend", help="auto, tensorrt or onnxruntime."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Stop after this much audio."),
    ser_hop: Optional[float] = typer.Option(None, "--ser-hop", help="Seconds between SER windows (default half a window)."),
    smoothing: float = typer.Option(0.5, "--smoothing", help="Posterior smoothing weight of the past, 0..1."),
    tse: str = typer.Option("auto", "--tse", help="What the SER hears: auto, gated, on (extraction) or off (mixture)."),
) -> None:
    """Run TSE -> SER on live or recorded audio; Ctrl-C (or SIGTERM) stops with a summary."""
    import json
    import sys

    from emotrt.runtime.audio import FileSource, MicSource, StdinSource
    from emotrt.runtime.errors import ConfigError
    from emotrt.runtime.pipeline import Pipeline, PipelineConfig
    from emotrt.runtime.runner import Runner
    from emotrt.runtime.sinks import JsonlSink, LiveView

    chosen = [name for name, on in (("--mic", mic is not None), ("--file", file), ("--stdin", stdin)) if on]
    if len(chosen) != 1:
        raise ConfigError("give exactly one audio input, found {}".format(", ".join(chosen) or "none"),
                          hint="emotrt run BUNDLE -s NAME -e ENV --mic | --file F | --stdin --rate R")
    if stdin and rate is None:
        raise ConfigError("--stdin needs --rate (raw PCM carries no header)", hint="add --rate 16000")
    config = PipelineConfig(ser_hop_s=ser_hop, smoothing=smoothing, ser_async=True, tse=tse)
    # Hash each bundle file once per content; `emotrt selftest` always re-hashes everything.
    with Pipeline.from_bundle(bundle, backend=backend, config=config, verify="cached") as pipeline:
        typer.echo("backend: {} ({})".format(pipeline.backend, pipeline.backend_reason), err=True)
        window_s = pipeline.ser.contract.window_samples / float(pipeline.sample_rate)
        stream = pipeline.create_stream(speaker=speaker, environment=environment)
        if mic is not None:
            source = MicSource(mic or None, sample_rate=rate, channels=channels, channel=channel)
        elif file is not None:
            source = FileSource(file, realtime=realtime, channel=channel)
        else:
            source = StdinSource(rate, channels=channels, sample_format=pcm_format, channel=channel)
        typer.echo("input: " + source.description, err=True)
        sinks = []
        if jsonl is not None or not live:
            sinks.append(JsonlSink(jsonl or "-"))
        if live:
            sinks.append(LiveView())
        runner = Runner(pipeline, stream, source, sinks)
        try:
            summary = runner.run(max_seconds=seconds)
        finally:
            for sink in sinks:
                sink.close()
        stream.close()
    sys.stderr.write("summary: " + json.dumps(summary.to_dict(), sort_keys=True) + "\n")
    if file is not None and summary.to_dict().get("results") == 0:
        from emotrt.runtime.errors import AudioError

        raise AudioError("{} gave no result: its {:.2f} s are shorter than one SER window ({:.2f} s)".format(
            file, summary.to_dict().get("audio_seconds", 0.0), window_s), hint="give a recording of at least one window")
    if summary.stopped_by == "input stalled":  # a microphone unplugged or its audio server gone; non-zero for a service manager
        from emotrt.runtime.errors import AudioError

        kept = "in {}".format(jsonl) if jsonl not in (None, "-") else "written"
        raise AudioError("{} delivered no audio for {:.0f} s (unplugged, or its audio server stopped): stopped after {:.1f} s of "
                         "audio; the {} result(s) so far are {}".format(summary.source, runner.stall_seconds, summary.audio_seconds,
                                                                      summary.results, kept),
                         hint="plug it back in and rerun; `emotrt audio-devices` lists what PortAudio sees")
