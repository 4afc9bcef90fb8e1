"""``emotrt export``: checkpoints -> validated ONNX graphs with contracts, lint and test vectors.

For every graph of every checkpoint: trace (TorchScript exporter, opset per TensorRT target),
check parity, simplify with onnxslim, check parity again, stream ``tse_step`` against the
offline model, stamp the contract (with the parity achieved), lint for the target, write test
vectors. Everything is written into a temporary sibling of the output directory and renamed
into place at the end, so a failure leaves no half-written export.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from emotrt.export.lint import LintReport, lint_model
from emotrt import source_commit
from emotrt.export.onnx_export import export_graph, opset_for, write_contract
from emotrt.export.parity import ParityResult, compare_graph, require_parity, run_torch, to_numpy
from emotrt.export.slim import slim_validated
from emotrt.export.specs import FAMILY_SPECS, GraphSpec, config_value, speaker_dim, specs_for_family
from emotrt.export.streaming import StreamingResult, check_streaming
from emotrt.export.testvectors import write_testvectors
from emotrt.export.vad import copy_vad, vad_testvector
from emotrt.runtime.level import REFERENCE_LEVEL_DB
from emotrt.runtime.manifest import sha256_file
from emotrt.runtime.contract import ModelContract, StateSpec
from emotrt.runtime.atomic import staged_dir
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.gate import GateThresholds

log = logging.getLogger(__name__)

REPORT = "export_report.json"
Loader = Callable[[Any], Tuple[Any, Any]]


@dataclass(frozen=True)
class ExportConfig:
    """Options of one export run, validated once."""

    trt: str = "10.3"
    stream_hops: int = 200
    slim: bool = True
    vad: bool = True
    force: bool = False
    environments: Optional[str] = None

    def __post_init__(self) -> None:
        opset_for(self.trt)  # raises ConfigError naming the valid targets
        if self.environments and not Path(self.environments).is_file():
            raise ConfigError("environments={} is not a file".format(self.environments),
                              hint="pass a JSON file such as the corpus' environments.json")
        if self.stream_hops < 1:
            raise ConfigError("stream_hops={} must be at least 1".format(self.stream_hops))


@dataclass
class ExportReport:
    """What an export produced and measured: parity table, streaming check, lint verdicts."""

    out_dir: Path
    trt: str
    opset: int
    graphs: Dict[str, str] = field(default_factory=dict)
    parity: Dict[str, ParityResult] = field(default_factory=dict)
    streaming: Optional[StreamingResult] = None
    lint: Dict[str, LintReport] = field(default_factory=dict)
    nodes: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    slim: Dict[str, str] = field(default_factory=dict)
    environments: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "trt": self.trt,
            "opset": self.opset,
            "graphs": self.graphs,
            "parity": {k: v.to_dict() for k, v in self.parity.items()},
            "streaming": self.streaming.to_dict() if self.streaming else None,
            "lint": {k: {"ok": r.ok, "errors": [i.line() for i in r.errors]} for k, r in self.lint.items()},
            "onnxslim_nodes": {k: list(v) for k, v in self.nodes.items()},
            "onnxslim_recipe": self.slim,
            "environments": self.environments,
        }

    def parity_rows(self) -> List[Tuple[str, str, str, float, float]]:
        """(graph, output, shapes, max abs, max rel) for the printed parity table."""
        return [
            (kind, o.name, ", ".join(r.shapes), o.max_abs, o.max_rel)
            for kind, r in self.parity.items()
            for o in r.outputs
        ]


def default_loader(ckpt_dir: Any) -> Tuple[Any, Any]:
    """``emotrt.training.models.load_model``, imported only when exporting."""
    from emotrt.training.models import load_model

    return load_model(ckpt_dir)


def load_for_export(ckpt_dir: Any, loader: Loader) -> Tuple[Any, Any, Tuple[GraphSpec, ...]]:
    """(model, config, graph specs) of a checkpoint; weights that do not fit its config are one clear error."""
    from emotrt.training.checkpoint import read_config

    family = read_config(ckpt_dir).get("family")
    specs = specs_for_family(family)
    if not specs:
        raise ConfigError(
            "checkpoint {}: family {!r} has no export specs (known: {})".format(ckpt_dir, family, ", ".join(sorted(FAMILY_SPECS)))
        )
    try:
        model, config = loader(ckpt_dir)
    except (RuntimeError, KeyError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            "checkpoint {}: model.safetensors does not match config.json ({})".format(ckpt_dir, first),
            hint="export the checkpoint directory exactly as training wrote it (config.json and weights together)",
        ) from exc
    return model.eval(), config, specs


def _check_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("output {} exists and is not a directory".format(out_dir), hint="choose another -o")
    stale = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    if stale and not force:
        raise ConfigError(
            "output directory {} is not empty ({}): an export would mix with stale files".format(
                out_dir, ", ".join(stale[:5]) + (", ..." if len(stale) > 5 else "")
            ),
            hint="choose an empty -o, or pass --force to replace the directory",
        )


def contract_for(spec: GraphSpec, model: Any, config: Any, opset: int, provenance: Dict[str, Any]) -> ModelContract:
    """The contract of ``spec``'s graph, from the model's own dimensions."""
    facts: Dict[str, Any] = {"model": spec.kind, "sample_rate": int(config_value(config, "sample_rate")), "opset": opset}
    if spec.kind.startswith("tse") or spec.kind == "enroll":
        facts["chunk_samples"] = int(config_value(config, "chunk_samples"))
        facts["spk_dim"] = speaker_dim(model, config)
    extra = dict(provenance)
    if spec.kind.startswith("tse"):
        # the causal extractor's output lags its input: scoring against the target must align for it
        extra["latency_samples"] = int(_config_get(config, "latency_samples", 0))
    if spec.kind == "tse_step":
        facts["states"] = tuple(StateSpec(name, tuple(int(d) for d in shape)) for name, shape in model.state_specs())
        gate = _config_get(config, "gate", None)
        if gate:  # the do-no-harm gate's thresholds (emotrt.training.tse_gate), read by the runtime from here
            extra["gate"] = GateThresholds.from_dict(gate).to_dict()
    if spec.kind == "ser":
        facts["window_samples"] = int(config_value(config, "window_samples"))
        facts["d_model"] = int(config_value(config, "d_model"))
        facts["labels"] = tuple(config_value(config, "labels"))
        if _config_get(config, "level_reference", "none") == "enrollment":  # the runtime scales each speaker's windows
            extra["level_reference_db"] = REFERENCE_LEVEL_DB
    return ModelContract(extra=extra, **facts)


def _config_get(config: Any, key: str, default: Any) -> Any:
    try:
        return config_value(config, key)
    except (KeyError, AttributeError):
        return default


def _export_one(
    spec: GraphSpec, model: Any, config: Any, work: Path, opset: int, options: ExportConfig, report: ExportReport,
    provenance: Dict[str, Any],
) -> Path:
    raw, path = work / (spec.kind + ".raw.onnx"), work / (spec.kind + ".onnx")
    export_graph(spec, model, config, raw, opset)
    exported = compare_graph(spec, model, config, raw)
    require_parity([exported], stage="export")
    if options.slim:
        recipe, report.nodes[spec.kind], result = slim_validated(raw, path, lambda p: compare_graph(spec, model, config, p))
        raw.unlink()
        require_parity([result], stage="simplification")
    else:
        recipe, result = "none", exported
        os.replace(str(raw), str(path))
    report.slim[spec.kind] = recipe
    report.parity[spec.kind] = result
    contract = contract_for(spec, model, config, opset, dict(provenance, parity=result.to_dict(), simplified=recipe))
    write_contract(path, contract)
    feed = spec.cases(model, config, seed=100)[0]
    write_testvectors(work / "testvectors", spec.kind, to_numpy(feed), run_torch(spec, model, feed), spec.atol)
    return path


def export_checkpoints(
    ckpt_dirs: Sequence[Any], out_dir: Any, options: Optional[ExportConfig] = None, loader: Optional[Loader] = None
) -> ExportReport:
    """Export every graph of ``ckpt_dirs`` into ``out_dir``; raise on any parity, streaming or lint failure."""
    options = options or ExportConfig()
    loader = loader or default_loader
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, options.force)
    opset = opset_for(options.trt)
    report = ExportReport(out_dir, options.trt, opset)
    with staged_dir(out_dir, "export") as work:
        models = {}
        for ckpt in ckpt_dirs:
            model, config, specs = load_for_export(ckpt, loader)
            provenance = {
                "export_commit": source_commit() or "unknown",
                "checkpoint": str(ckpt),
                "checkpoint_sha256": sha256_file(Path(ckpt) / "model.safetensors"),
                "trt_target": options.trt,
            }
            for spec in specs:
                if spec.kind in models:
                    raise ConfigError("two checkpoints export {} ({} and {})".format(spec.kind, models[spec.kind][2], ckpt))
                models[spec.kind] = (model, config, ckpt)
                path = _export_one(spec, model, config, work, opset, options, report, provenance)
                report.graphs[spec.kind] = path.name
        if "tse_step" in models:
            model, config, _ = models["tse_step"]
            report.streaming = check_streaming(
                model, config, work / "tse_step.onnx", hops=options.stream_hops, offline_path=work / "tse_offline.onnx"
            )
            report.streaming.require()
        if "ser" in models:
            report.environments = _write_environments(work / "env", models["ser"], options)
        elif options.environments:
            raise ConfigError("environments need the SER checkpoint among the exported checkpoints",
                              hint="add the SER checkpoint to `emotrt export`")
        if options.vad and copy_vad(work / "vad.onnx") is not None:
            report.graphs["vad"] = "vad.onnx"
            write_testvectors(work / "testvectors", "vad", *vad_testvector(work / "vad.onnx"), atol=1e-5)
        for kind, name in report.graphs.items():
            report.lint[kind] = lint_model(work / name, options.trt, name=name)
        for lint in report.lint.values():
            lint.raise_for_errors()
        (work / REPORT).write_text(json.dumps(report.to_dict(), indent=1, sort_keys=True))
    return report


def _write_environments(table_dir: Path, ser: Tuple[Any, Any, Any], options: ExportConfig) -> List[str]:
    """The export's env/ table: the model's no-description token plus ``options.environments``."""
    from emotrt.export.environments import NO_ENVIRONMENT, EnvironmentEmbedder, add_no_environment, import_environments

    model, config, ckpt = ser
    embedder = EnvironmentEmbedder(model, config, sha256_file(Path(ckpt) / "model.safetensors"))
    names = [NO_ENVIRONMENT] if add_no_environment(table_dir, embedder) else []
    if options.environments:
        names += import_environments(table_dir, embedder, options.environments, replace=True)
    return names
