"""``emotrt export``."""
from pathlib import Path
from typing import List, Optional

import typer


def export(
    checkpoints: List[Path] = typer.Argument(..., help="Checkpoint directories (TSE and/or SER)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory for the ONNX graphs (must be new or empty)."),
    trt: str = typer.Option("10.3", help="Target TensorRT: 8.5 (JetPack 5), 10.3 (JetPack 6.1/6.2) or 11 (JetPack 7)."),
    hops: int = typer.Option(200, help="Hops of the tse_step streaming-equivalence check."),
    vad: bool = typer.Option(True, help="Add silero-vad's graph as vad.onnx when silero-vad is installed."),
    force: bool = typer.Option(False, help="Replace a non-empty output directory."),
    environments: Optional[Path] = typer.Option(
        None, help="JSON of environments to embed into OUT/env (e.g. the corpus' environments.json); needs the SER checkpoint."
    ),
) -> None:
    """Export checkpoints to ONNX graphs with contracts; check parity, streaming and the TensorRT lint."""
    from rich.console import Console
    from rich.table import Table

    from emotrt.export.exporter import ExportConfig, export_checkpoints

    report = export_checkpoints(checkpoints, out, ExportConfig(
        trt=trt, stream_hops=hops, vad=vad, force=force, environments=str(environments) if environments else None
    ))
    table = Table(title="parity: ONNX Runtime vs PyTorch (opset {}, TensorRT {})".format(report.opset, report.trt))
    for column in ("graph", "output", "shapes checked", "max abs", "max rel"):
        table.add_column(column)
    for kind, name, shapes, max_abs, max_rel in report.parity_rows():
        table.add_row(kind, name, shapes, "{:.2e}".format(max_abs), "{:.2e}".format(max_rel))
    console = Console()
    console.print(table)
    if report.streaming:
        s = report.streaming
        console.print("streaming: tse_step x {} hops of {} samples vs offline: max abs {:.2e} (torch), {:.2e} (tse_offline.onnx)".format(
            s.hops, s.chunk_samples, s.max_abs_vs_torch, s.max_abs_vs_offline_onnx or 0.0))
    console.print("TensorRT {} lint: {} passed".format(report.trt, ", ".join(sorted(report.lint))))
    if report.environments:
        console.print("environment table {}/env: {}".format(out, ", ".join(report.environments)))
    console.print("wrote {}".format(out))
