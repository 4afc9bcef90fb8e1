"""``emotrt profile``: per-stage latency, power and per-layer times of a bundle; history and regression gate.

    emotrt profile BUNDLE -o DIR [--device NAME] ...   (same as ``emotrt profile run``)
    emotrt profile history
    emotrt profile compare A B      (history ids or profile directories; exit 1 on a regression)
    emotrt profile report DIR       (render DIR/report.html from DIR/profile.json)
"""
from pathlib import Path
from typing import Any, List, Optional

import typer
from typer.core import TyperGroup


class _DefaultRun(TyperGroup):
    """``emotrt profile BUNDLE ...`` means ``emotrt profile run BUNDLE ...``."""

    def parse_args(self, ctx: Any, args: List[str]) -> List[str]:
        if args and args[0] not in getattr(self, "commands", {}) and args[0] not in ("--help", "-h"):
            args = ["run"] + list(args)
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_DefaultRun, no_args_is_help=True,
                  help="Profile a bundle per stage (emotrt profile BUNDLE -o DIR); history, compare, report.")

_HISTORY_HELP = "SQLite history database."


def _slowdowns(values: List[str]) -> Any:
    from emotrt.runtime.errors import ConfigError

    pairs = []
    for value in values:
        stage, _, factor = value.partition("=")
        try:
            pairs.append((stage, float(factor)))
        except ValueError:
            raise ConfigError("--inject-slowdown {!r}: expected STAGE=FACTOR, e.g. tse_step=2".format(value))
    return tuple(pairs)


@app.command("run")
def run(
    bundle: str = typer.Argument(..., help="Bundle directory or .tar (with --device: its path on the device)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for profile.json and report.html."),
    device: Optional[str] = typer.Option(None, "--device", help="Profile on this inventory device over SSH."),
    inventory: Path = typer.Option(Path("devices.toml"), "--inventory", envvar="EMOTRT_INVENTORY",
                                   help="Device inventory (with --device; see emotrt devices add)."),
    accept_new_host_key: bool = typer.Option(False, "--accept-new-host-key", help="Trust a device's first host key."),
    known_hosts: Optional[Path] = typer.Option(None, "--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)."),
    source: str = typer.Option("synth", "--source", help="synth, mic, or an audio file (looped to --duration)."),
    mic: Optional[str] = typer.Option(None, "--mic", help="With --source mic: the input device (name part or index)."),
    speaker: Optional[str] = typer.Option(None, "--speaker", "-s", help="Enrolled speaker (default: the first)."),
    environment: Optional[str] = typer.Option(None, "--environment", "-e", help="Environment (default: the first)."),
    pace: str = typer.Option("max", "--pace", help="max (as fast as possible) or realtime (overruns, dropped hops)."),
    duration: float = typer.Option(10.0, "--duration", help="Seconds of audio measured (after the warm-up)."),
    warmup: float = typer.Option(1.0, "--warmup", help="Seconds of audio fed first and not measured."),
    precision: str = typer.Option("fp32", "--precision", help="Comma list, compared in one interleaved run: fp32,fp16,int8."),
    backend: str = typer.Option("auto", "--backend", help="auto, tensorrt or onnxruntime."),
    ser: str = typer.Option("every", "--ser", help="every: SER on every window (worst case); vad: as the VAD decides."),
    layers: bool = typer.Option(True, "--layers/--no-layers", help="Per-layer times in a separate run."),
    top: int = typer.Option(10, "--top", help="Layers per model in the per-layer table."),
    overhead: bool = typer.Option(True, "--overhead/--no-overhead", help="Also run an untimed stream to measure the profiler's cost (--pace max)."),
    html: bool = typer.Option(True, "--html/--no-html", help="Write report.html."),
    history: Path = typer.Option(Path("profiles.db"), "--history", help=_HISTORY_HELP),
    no_history: bool = typer.Option(False, "--no-history", help="Do not append to the history."),
    inject_slowdown: List[str] = typer.Option([], "--inject-slowdown", hidden=True,
                                              help="Test hook: STAGE=FACTOR really slows that stage."),
) -> None:
    """Profile BUNDLE: per-stage latency percentiles, real-time factor, power, per-layer times."""
    from emotrt.runtime.errors import ConfigError

    if ser not in ("every", "vad"):
        raise ConfigError("--ser {!r}: expected every or vad".format(ser))
    precisions = tuple(p.strip() for p in precision.split(",") if p.strip())
    if device is not None:
        from emotrt.devices.profile_remote import profile_remote

        forwarded = ["--source", source, "--pace", pace, "--duration", str(duration), "--warmup", str(warmup),
                     "--precision", precision, "--backend", backend, "--ser", ser, "--top", str(top),
                     "--layers" if layers else "--no-layers", "--overhead" if overhead else "--no-overhead"]
        forwarded += ["--speaker", speaker] if speaker else []
        forwarded += ["--mic", mic] if mic else []
        forwarded += ["--environment", environment] if environment else []
        for value in inject_slowdown:
            forwarded += ["--inject-slowdown", value]
        saved = profile_remote(device, bundle, out, forwarded, inventory, history=None if no_history else history,
                               html=html, accept_new_host_key=accept_new_host_key, known_hosts=known_hosts)
    else:
        from emotrt.devices.profile_output import save_profile
        from emotrt.devices.profiler import ProfileConfig, profile_bundle

        config = ProfileConfig(source=source, speaker=speaker, environment=environment, pace=pace, duration_s=duration,
                               warmup_s=warmup, precisions=precisions, backend=backend, ser_every_window=ser == "every",
                               layers=layers, top=top, measure_overhead=overhead, mic_device=mic,
                               inject_slowdown=_slowdowns(inject_slowdown))
        typer.echo("profiling {}: {} at pace {}, {:g} s after {:g} s of warm-up{}".format(
            bundle, ",".join(precisions), pace, duration, warmup, ", then per-layer times" if layers else ""), err=True)
        doc = profile_bundle(bundle, config)
        saved = save_profile(doc, out, history=None if no_history else history, html=html)
    _print_summary(saved)


def _console() -> Any:
    """A rich console; 160 columns when the output is not a terminal (files, CI logs)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def _print_summary(saved: Any) -> None:
    from rich.table import Table

    from emotrt.devices.profile_document import read_profile
    from emotrt.devices.report import SUMMARY_COLUMNS, run_lines, summary_rows

    doc = read_profile(saved.json_path)
    table = Table(title="emotrt profile: bundle {} on {}".format(doc["bundle"]["id"], doc.get("device_name") or doc["device"]["hostname"]))
    for column in SUMMARY_COLUMNS:
        table.add_column(column, justify="left" if column in ("precision", "stage") else "right")
    for row in summary_rows(doc):
        table.add_row(*row)
    console = _console()
    console.print(table)
    for line in run_lines(doc):
        console.print(line, highlight=False)
    for run in doc["runs"]:
        for warning in run["warnings"]:
            console.print("[yellow]warning[/] {}: {}".format(run["precision"], warning), highlight=False)
    for note in doc["notes"] + saved.notes:
        console.print("[yellow]note[/] " + note, highlight=False)
    written = [str(saved.json_path)] + ([str(saved.html_path)] if saved.html_path else [])
    console.print("wrote " + ", ".join(written) + (
        "; history rows {}".format(", ".join("#{}".format(i) for i in saved.history_ids)) if saved.history_ids else ""),
        highlight=False)


@app.command("history")
def history_(
    history: Path = typer.Option(Path("profiles.db"), "--history", help=_HISTORY_HELP),
    bundle: Optional[str] = typer.Option(None, "--bundle", help="Only this bundle id (or its prefix)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Only this precision."),
    limit: int = typer.Option(20, "--limit", help="Newest rows to show."),
) -> None:
    """List profiles in the history, newest first."""
    from rich.table import Table

    from emotrt.devices.history import History
    from emotrt.runtime.errors import ConfigError

    if not history.exists():
        raise ConfigError("no history database at {}".format(history), hint="run `emotrt profile BUNDLE -o DIR` first, or pass --history")
    with History(history) as db:
        rows = db.rows(limit=limit, bundle_id=bundle, precision=precision)
    table = Table(title="emotrt profile history ({})".format(history))
    for column in ("id", "created", "bundle", "device", "precision", "backend", "commit", "pace", "RTF", "e2e p50 ms", "e2e p99 ms", "mW"):
        table.add_column(column)
    fmt = lambda v, f: "-" if v is None else f.format(v)  # noqa: E731
    for r in rows:
        table.add_row(str(r["id"]), r["created"], r["bundle_id"], r["device_name"], r["precision"], r["backend"],
                      r["emotrt_commit"], r["pace"], fmt(r["real_time_factor"], "{:.4f}"), fmt(r["end_to_end_p50_ms"], "{:.3f}"),
                      fmt(r["end_to_end_p99_ms"], "{:.3f}"), fmt(r["average_power_mw"], "{:.0f}"))
    _console().print(table)


def _load(ref: str, history: Path, precision: Optional[str]) -> Any:
    from emotrt.devices.history import History
    from emotrt.devices.profile_document import read_profile
    from emotrt.devices.regression import pick_run

    if ref.lstrip("#").isdigit() and not Path(ref).exists():
        with History(history) as db:
            doc = db.get(int(ref.lstrip("#")))
        return "#" + ref.lstrip("#"), pick_run(doc, precision)
    return ref, pick_run(read_profile(ref), precision)


@app.command("compare")
def compare(
    a: str = typer.Argument(..., help="Baseline: a history id or a profile directory / profile.json."),
    b: str = typer.Argument(..., help="Candidate: a history id or a profile directory / profile.json."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Which run of a multi-precision profile (default: the first)."),
    tolerance: float = typer.Option(0.20, "--tolerance", help="Slowdown tolerated beyond the noise (0.20 = 20 %)."),
    history: Path = typer.Option(Path("profiles.db"), "--history", help=_HISTORY_HELP),
) -> None:
    """Per-stage deltas of B against A; exit 1 when a stage is slower beyond the noise-aware threshold."""
    from rich.table import Table

    from emotrt.devices.regression import compare_runs

    label_a, run_a = _load(a, history, precision)
    label_b, run_b = _load(b, history, precision)
    result = compare_runs(run_a, run_b, tolerance=tolerance, label_a=label_a, label_b=label_b)
    table = Table()
    for column in ("stage", "A p50 ms", "B p50 ms", "B/A", "95 % interval", "verdict"):
        table.add_column(column)
    colour = {"regression": "red", "faster": "green", "same": "white", "too few samples": "yellow"}
    for d in result.deltas:
        table.add_row(d.stage, "{:.3f}".format(d.median_a_ms), "{:.3f}".format(d.median_b_ms), "{:.2f}x".format(d.ratio),
                      "{:.2f}-{:.2f}".format(d.low, d.high), "[{}]{}[/]".format(colour[d.verdict], d.verdict))
    console = _console()
    console.print("{} -> {} ({}): a stage regressed when the 95 % interval of its median ratio lies above {:.2f}".format(
        label_a, label_b, run_a["precision"], 1 + tolerance), highlight=False)
    console.print(table)
    if result.regressed:
        console.print("[red]REGRESSION[/] in {}".format(", ".join(result.regressions)), highlight=False)
        raise typer.Exit(1)
    console.print("[green]no regression[/]", highlight=False)


@app.command("report")
def report(
    profile: Path = typer.Argument(..., help="A profile directory (or its profile.json), e.g. fetched from a device."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write report.html (default: beside it)."),
) -> None:
    """Render report.html from profile.json alone (self-contained, nothing fetched)."""
    from emotrt.devices.report import report_for

    typer.echo("wrote {}".format(report_for(profile, out)))
