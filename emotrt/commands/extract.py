"""``emotrt extract``: write what the pipeline feeds the SER for one speaker, to listen to or to score."""
from pathlib import Path

import typer


def extract(
    bundle: Path = typer.Argument(..., envvar="EMOTRT_BUNDLE", help="Bundle directory or .tar (or $EMOTRT_BUNDLE)."),
    speaker: str = typer.Option(..., "--speaker", "-s", help="Enrolled speaker to extract."),
    file: Path = typer.Option(..., "--file", help="Input WAV/FLAC (any rate; multichannel is downmixed)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output WAV (float, model rate, aligned with the input)."),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="Apply the do-no-harm gate (default) or write the raw extraction."),
    tse: str = typer.Option("auto", "--tse", help="TSE mode with --gate: auto, gated, on or off (PipelineConfig.tse)."),
    backend: str = typer.Option("auto", "--backend", help="auto, tensorrt or onnxruntime."),
) -> None:
    """Write the SER's input for SPEAKER: the extraction, the mixture or their blend per SER hop, silence where
    the enrolled speaker is absent; latency-aligned to the input. --no-gate: the raw extraction."""
    import json

    from emotrt.runtime.offline import extract_file
    from emotrt.runtime.pipeline import Pipeline, PipelineConfig

    with Pipeline.from_bundle(bundle, backend=backend, config=PipelineConfig(tse=tse), verify="cached") as pipeline:
        summary = extract_file(pipeline, speaker, file, out, gate=gate)
    typer.echo(json.dumps(dict(summary, out=str(out)), sort_keys=True))
