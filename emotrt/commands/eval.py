"""``emotrt eval``."""
from pathlib import Path
from typing import Optional

import typer


def eval_(
    ser: Path = typer.Argument(..., help="SER checkpoint directory (config.json + model.safetensors)."),
    corpus: Path = typer.Option(..., "--corpus", help="Corpus directory with stored test sets (emotrt data synth)."),
    tse: Optional[Path] = typer.Option(None, "--tse", help="TSE checkpoint: adds the TSE-on rows and SI-SDRi."),
    sets: str = typer.Option("", "--sets", help="Comma-separated test sets (default: all stored)."),
    text: str = typer.Option("text,none,wrong", "--text", help="Environment-text modes: text, none, wrong."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many utterances per test set."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the report as JSON here."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the tables as Markdown here."),
) -> None:
    """SER UA/WA/F1/CCC per SNR x condition x TSE on/off x environment text; TSE SI-SDRi."""
    from rich.progress import Progress

    from emotrt.training.checkpoint_eval import EvalConfig, count_items, evaluate_checkpoints, format_table, save_report

    config = EvalConfig(sets=tuple(s for s in sets.split(",") if s), text_modes=tuple(t for t in text.split(",") if t),
                        limit=limit)
    with Progress(transient=True) as progress:
        bar = progress.add_task("evaluating", total=count_items(corpus, config))
        report = evaluate_checkpoints(ser, corpus, tse, config, on_item=lambda: progress.advance(bar))
    save_report(report, out, markdown)
    typer.echo(format_table(report))
