"""``emotrt calibrate``."""
from pathlib import Path
from typing import List, Optional

import typer


def calibrate(
    export_dir: Path = typer.Argument(..., help="Folder of exported FP32 graphs (emotrt export)."),
    data: Path = typer.Option(
        ..., "--data", help="Corpus manifest (JSONL) of utterances for calibration and evaluation; noise clips "
        "come from noise.jsonl next to it, the speakers' enrollment recordings from enroll.jsonl."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (written atomically)."),
    env: Optional[Path] = typer.Option(None, help="Environment table directory (default: EXPORT_DIR/env)."),
    method: str = typer.Option("entropy", help="Activation ranges: entropy, minmax or percentile."),
    percentile: float = typer.Option(99.999, help="Percentile for --method percentile."),
    trt: Optional[List[str]] = typer.Option(
        None, "--trt", help="Target TensorRT version of a calibration cache (repeatable; default 8.5.2, 8.6.2, 10.3.0)."
    ),
    max_sisdr_drop: float = typer.Option(0.3, help="Allowed SI-SDRi drop from FP32 (dB)."),
    max_ua_drop: float = typer.Option(0.01, help="Allowed UA drop from FP32 (fraction: 0.01 = 1 point)."),
    max_ccc_drop: float = typer.Option(0.01, help="Allowed CCC drop from FP32."),
    max_label_change: float = typer.Option(
        0.01, help="Allowed share of SER labels (per scene) that differ from FP32's; bounds the UA drop."),
    seed: int = typer.Option(0, help="Seed of the split, mixtures and levels."),
    calib_utterances: int = typer.Option(48, help="Utterances used for calibration."),
    eval_utterances: int = typer.Option(64, help="Held-out utterances that choose the mixed plan and score the report."),
    ser_eval_utterances: int = typer.Option(
        384, help="Held-out utterances of an SER, each heard clean, with another talker and in noise at a random and "
        "at the lowest SNR; UA is checked per scene."),
    leave_one_out: bool = typer.Option(True, help="Run per-block leave-one-out before choosing the mixed plan."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
) -> None:
    """INT8 (Q/DQ + TensorRT caches) and FP16 plans with sensitivity analysis and an accuracy report."""
    from rich.console import Console

    from emotrt.calibration.cache import DEFAULT_TARGETS
    from emotrt.calibration.pipeline import CalibrateConfig, calibrate as run
    from emotrt.calibration.qdq import QuantConfig
    from emotrt.calibration.sensitivity import Budget
    from emotrt.calibration.sources import SourceConfig, build_jobs
    from emotrt.training.corpus import load_manifest

    console = Console()
    config = CalibrateConfig(
        quant=QuantConfig(method=method, percentile=percentile),
        budget=Budget(sisdri=max_sisdr_drop, ua=max_ua_drop, ccc=max_ccc_drop, agreement=max_label_change),
        trt_versions=tuple(trt or DEFAULT_TARGETS),
        leave_one_out=leave_one_out,
    )
    sources = SourceConfig(seed=seed, calib_utterances=calib_utterances, eval_utterances=eval_utterances,
                           ser_eval_utterances=ser_eval_utterances)
    noises, enrollments = ([] if path == data or not path.is_file() else load_manifest(path)
                           for path in (data.parent / "noise.jsonl", data.parent / "enroll.jsonl"))
    with console.status("reading audio and building calibration feeds"):
        jobs = build_jobs(export_dir, load_manifest(data), noises, sources, env_dir=env, source=str(data),
                          enrollments=enrollments)
    with console.status("calibrating") as status:
        report = run(jobs, out, config, force=force, progress=lambda msg: status.update(msg))
    typer.echo(report.to_markdown())
    typer.echo("wrote {}".format(out))
