"""``emotrt lint``."""
from pathlib import Path
from typing import List

import typer


def lint(
    models: List[Path] = typer.Argument(..., help="ONNX files to check."),
    trt: str = typer.Option("10.3", help="Target TensorRT: 8.5, 10.3 or 11, or a release such as 8.6.2 (linted against the newest table not newer)."),
    notes: bool = typer.Option(False, help="Also print the parser's documented restrictions of the ops used."),
) -> None:
    """Check every node against the ONNX-TensorRT parser of one TensorRT version; exit 1 on any problem."""
    from emotrt.export.lint import lint_release
    from emotrt.runtime.errors import ConfigError

    failed = 0
    for model in models:
        if not model.is_file():
            raise ConfigError("no such ONNX file: {}".format(model))
        report = lint_release(model, trt, name=str(model))
        for issue in report.issues:
            if issue.severity == "error" or notes:
                typer.echo("{}: {} {}".format(model, issue.severity, issue.line()))
        typer.echo("{}: {} for TensorRT {} ({} error(s); operators from {})".format(
            model, "ok" if report.ok else "FAILED", trt, len(report.errors), report.source))
        failed += not report.ok
    if failed:
        raise typer.Exit(1)
