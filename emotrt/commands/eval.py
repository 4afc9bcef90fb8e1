"""``emotrt eval``."""
from pathlib import Path
from typing import Optional

import typer


def eval_(
    ser: Path = typer.Argument(..., help="SER checkpoint directory (config.json + model.safetensors)."),
    corpus: Path = typer.Option(..., "--corpus", help="Corpus directory with stored test sets (emotrt data synth)."),
    tse: Optional[Path] = typer.Option(None, "--tse", help="TSE checkpoint: adds the TSE-on rows and SI-SDRi."),
    against: Optional[Path] = typer.Option(None, "--against", help="A second SER checkpoint scored on the same windows: "
                                           "its UA/CCC and the differences with 95 % paired bootstrap intervals."),
    sets: str = typer.Option("", "--sets", help="Comma-separated test sets (default: all stored)."),
    text: str = typer.Option("text,none,wrong", "--text", help="Environment-text modes: text, none, wrong."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many utterances per test set."),
    channels: bool = typer.Option(False, "--channels", help="Score under held-out input gains, microphones and rooms "
                                  "instead: UA, CCC and label agreement with the unaltered run."),
    channel_list: str = typer.Option("", "--channel-list", help="With --channels: comma-separated conditions "
                                     "(default: all of emotrt.training.channels.CHANNELS)."),
    gains: str = typer.Option("-20,-12,-10,-6,6", "--gains", help="With --channels: input gains in dB."),
    layers: bool = typer.Option(False, "--layers", help="For an ssl/whisper front end instead: per-layer linear-probe "
                                "UA/CCC (fitted on the clean train split) on the clean and -5 dB test sets, and the "
                                "learned layer weights."),
    probe_limit: Optional[int] = typer.Option(None, "--probe-limit", help="With --layers: at most this many train "
                                              "utterances to fit the probes on."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the report as JSON here."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write the tables as Markdown here."),
    calibrate_gate: bool = typer.Option(False, "--calibrate-gate", help="Calibrate the TSE gate on the valid split "
                                        "first and store its thresholds in the --tse checkpoint's config.json."),
    gate_per_condition: int = typer.Option(96, "--gate-per-condition", help="Valid mixtures per condition for --calibrate-gate."),
) -> None:
    """SER UA/WA/F1/CCC per SNR x condition x TSE off/on/gated x environment text; TSE SI-SDRi.

    The gated rows appear when the --tse checkpoint carries gate thresholds (--calibrate-gate).
    --channels and --layers print their own tables instead."""
    from rich.progress import Progress

    from emotrt.runtime.errors import ConfigError
    from emotrt.training.checkpoint_eval import EvalConfig, count_items, save_report

    config = EvalConfig(sets=tuple(s for s in sets.split(",") if s), text_modes=tuple(t for t in text.split(",") if t),
                        limit=limit)
    if calibrate_gate:
        import json

        from emotrt.training.tse_gate import CONDITIONS, calibrate_checkpoints, store_thresholds

        if tse is None:
            raise ConfigError("--calibrate-gate needs --tse", hint="emotrt eval SER --corpus C --tse TSE --calibrate-gate")
        with Progress(transient=True) as progress:
            bar = progress.add_task("calibrating the gate", total=gate_per_condition * len(CONDITIONS))
            thresholds, summary = calibrate_checkpoints(ser, tse, corpus, gate_per_condition,
                                                        on_item=lambda: progress.advance(bar))
        typer.echo("gate thresholds -> {}: {}".format(store_thresholds(tse, thresholds),
                                                      json.dumps(thresholds.to_dict(), sort_keys=True)))
        for name, row in summary.items():
            typer.echo("  valid {}: {}".format(name, json.dumps({k: round(v, 3) for k, v in row.items()})))
    if layers and (channels or tse is not None):
        raise ConfigError("--layers probes the SER's front end alone; it takes neither --channels nor --tse",
                          hint="emotrt eval SER --corpus C --layers")
    if against is not None and (channels or layers):
        raise ConfigError("--against compares two SERs on the stored test sets; it takes neither --channels nor --layers",
                          hint="run `emotrt eval SER --corpus C --against OTHER` without them")
    if layers:
        from emotrt.training.layer_eval import LayerEvalConfig, count_layer_items, evaluate_layers, format_layers

        layer_config = LayerEvalConfig(sets=config.sets, limit=limit, train_limit=probe_limit)
        total = count_layer_items(corpus, layer_config)
        run, fmt = (lambda tick: evaluate_layers(ser, corpus, layer_config, on_item=tick)), format_layers
    elif channels:
        from emotrt.training.channel_eval import ChannelEvalConfig, evaluate_channels, format_channels
        from emotrt.training.channels import CHANNELS

        chosen = tuple(c for c in channel_list.split(",") if c) or tuple(CHANNELS)
        try:
            gain_values = tuple(float(g) for g in gains.split(",") if g.strip())
        except ValueError:
            raise typer.BadParameter("--gains takes comma-separated numbers of dB, got {!r}".format(gains))
        run_config = ChannelEvalConfig(sets=config.sets, gains=gain_values, channels=chosen,
                                       text_mode=config.text_modes[0], limit=limit)
        run, fmt = (lambda tick: evaluate_channels(ser, corpus, tse, run_config, on_item=tick)), format_channels
    else:
        from emotrt.training.checkpoint_eval import evaluate_checkpoints, format_table

        run, fmt = (lambda tick: evaluate_checkpoints(ser, corpus, tse, config, on_item=tick, against_dir=against)), format_table
    with Progress(transient=True) as progress:
        bar = progress.add_task("evaluating", total=total if layers else count_items(corpus, config))
        report = run(lambda: progress.advance(bar))
    save_report(report, out, None)
    text_out = fmt(report)
    if markdown is not None:
        from emotrt.runtime.atomic import atomic_write

        atomic_write(Path(markdown), (text_out + "\n").encode())
    typer.echo(text_out)
