"""``emotrt build``."""
from pathlib import Path
from typing import List, Optional

import typer


def build(
    source: Path = typer.Argument(..., help="An export output directory, or a bundle (directory or .tar, unpacked beside it) "
                                            "to build this device's engines into."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Bundle directory to write (required for an export directory)."),
    calibration: Optional[Path] = typer.Option(None, help="Calibration output directory (Q/DQ, FP16 graphs, caches, plans)."),
    target: List[str] = typer.Option(["orin-nano-8gb"], help="Device profile(s) to plan builds for (see `emotrt devices`)."),
    precision: List[str] = typer.Option(["fp32", "fp16", "int8"], help="Precisions to plan and build."),
    env: Optional[Path] = typer.Option(None, help="Environment table directory (default: SOURCE/env)."),
    speakers: Optional[Path] = typer.Option(None, help="Speaker store to include (default: empty)."),
    require_engines: bool = typer.Option(False, help="Fail unless TensorRT engines can be built here."),
    dla_core: Optional[int] = typer.Option(None, help="Build for this DLA core, with GPU fallback."),
    opt_level: int = typer.Option(3, help="TensorRT builder optimisation level (0-5; 8.6+)."),
    tar: bool = typer.Option(False, help="Also pack the bundle into BUNDLE.tar."),
    force: bool = typer.Option(False, help="Replace an existing --out."),
) -> None:
    """Export + calibration outputs -> a self-verifying bundle; TensorRT engines where this machine can build them."""
    from rich.console import Console
    from rich.progress import Progress

    from emotrt.devices.bundle_build import BuildOptions, build_bundle, build_device_engines
    from emotrt.export.lint import plan_check
    from emotrt.runtime.errors import ConfigError

    console = Console()
    with Progress(console=console, transient=True) as bar:
        tasks = {}

        def progress(phase: str, step: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(total, 1))
            bar.update(tasks[phase], completed=step)

        if (source / "manifest.json").is_file() or source.suffix == ".tar":
            summary = build_device_engines(source, precisions=tuple(precision), dla_core=dla_core, opt_level=opt_level,
                                           progress=progress)
        else:
            if out is None:
                raise ConfigError("building a bundle from {} needs --out BUNDLE".format(source),
                                  hint="emotrt build {} --out bundle".format(source))
            summary = build_bundle(BuildOptions(
                export_dir=source, out=out, calibration_dir=calibration, targets=tuple(target), precisions=tuple(precision),
                env_dir=env, speakers_dir=speakers, require_engines=require_engines, dla_core=dla_core,
                opt_level=opt_level, tar=tar, force=force, graph_check=plan_check,
            ), progress=progress)
    console.print("bundle: {}".format(summary.bundle))
    if summary.archive:
        console.print("archive: {}".format(summary.archive))
    console.print("engines built: {}; reused from cache: {}".format(
        ", ".join(summary.engines_built) or "none", ", ".join(summary.engines_cached) or "none"))
    if summary.no_engines_reason:
        console.print("[yellow]no TensorRT engines built here ({}).[/] The bundle carries the ONNX graphs, calibration "
                      "artefacts and {} trtexec build plans; on the device run: emotrt build {}".format(
                          summary.no_engines_reason, summary.build_plans, summary.bundle))
    for line in summary.lint_warnings():
        typer.echo("warning: " + line, err=True)
    for line in summary.skipped_by_model():
        console.print("skipped " + line)
