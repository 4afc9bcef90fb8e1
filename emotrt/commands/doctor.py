"""``emotrt doctor``."""
import typer


def doctor(
    role: str = typer.Option("workstation", help="What this machine is for: workstation or device."),
    strict: bool = typer.Option(False, help="Exit non-zero when something the role requires is missing."),
) -> None:
    """Check Python, ML runtimes, TensorRT/CUDA, Jetson, audio and disk; say how to fix what is missing."""
    from rich.console import Console
    from rich.table import Table

    from emotrt.devices.doctor import ROLES, failures, run_checks
    from emotrt.runtime.errors import ConfigError

    if role not in ROLES:
        raise ConfigError("unknown role {!r}; expected one of {}".format(role, ", ".join(ROLES)))
    checks = run_checks()
    table = Table(title="emotrt doctor ({})".format(role))
    for column in ("check", "verdict", "detail", "fix"):
        table.add_column(column, overflow="fold")
    colour = {"ok": "green", "warn": "yellow", "missing": "red"}
    for c in checks:
        table.add_row(c.name, "[{}]{}[/]".format(colour[c.verdict], c.verdict), c.detail, c.fix)
    console = Console()
    console.print(table)
    failed = failures(checks, role)
    if failed:
        console.print("missing for {}: {}".format(role, ", ".join(c.name for c in failed)))
        if strict:
            raise typer.Exit(1)
    else:
        console.print("[green]ready for the {} role[/]".format(role))
