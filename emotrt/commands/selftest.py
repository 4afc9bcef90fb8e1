"""``emotrt selftest``."""
from pathlib import Path
from typing import List

import typer


def selftest(
    bundle: Path = typer.Argument(..., help="Bundle directory or .tar."),
    backend: List[str] = typer.Option([], help="Backends to run (default: every backend available here)."),
) -> None:
    """Run every model of BUNDLE on each backend with its test vectors; compare with the FP32 references."""
    from rich.console import Console
    from rich.table import Table

    from emotrt.devices.selftest import run_selftest
    from emotrt.runtime.bundle_reader import Bundle

    with Bundle.open(bundle) as opened:
        report = run_selftest(opened, backends=backend or None)
    table = Table(title="emotrt selftest {}".format(bundle))
    columns = ("model", "precision", "backend", "max |error|", "at build", "limit", "SNR dB", "at build", "status", "detail")
    for column in columns:
        table.add_column(column, overflow="fold")
    colour = {"pass": "green", "fail": "red", "skip": "yellow"}
    for r in report.rows:
        fmt = lambda v: "-" if v is None else "{:.3g}".format(v)  # noqa: E731
        snr = lambda v: "-" if v is None else "{:.1f}".format(v)  # noqa: E731
        table.add_row(r.model, r.precision, r.backend, fmt(r.max_abs_error), fmt(r.expected), fmt(r.limit),
                      snr(r.snr_db), snr(r.expected_snr_db), "[{}]{}[/]".format(colour[r.status], r.status), r.detail)
    console = Console()
    console.print(table)
    console.print("[{}]{}[/]".format("green" if report.passed else "red", report.verdict))
    if not report.passed:
        raise typer.Exit(1)
