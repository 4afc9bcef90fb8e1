"""End to end on toy checkpoints: graphs, contracts, checker, Polygraphy, bad input."""
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from emotrt.export.exporter import REPORT, ExportConfig, export_checkpoints
from emotrt.export.parity import ParityError
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import ConfigError
from tests.export.toy_models import TSE_CONFIG, ToyTSE, save_toy, toy_loader

GRAPHS = ("tse_step", "tse_offline", "enroll", "ser", "vad")


def _contract(path):
    model = onnx.load(str(path))
    return ModelContract.from_metadata({p.key: p.value for p in model.metadata_props}, source=str(path))


def test_every_graph_carries_its_contract(toy_export):
    out, report = toy_export
    assert sorted(report.graphs) == sorted(GRAPHS)
    step = _contract(out / "tse_step.onnx")
    assert step.chunk_samples == 16 and step.spk_dim == 6 and step.opset == 17
    assert [(s.name, s.shape) for s in step.states] == [("input", (1, 1, 4)), ("dw", (1, 8, 4))]
    ser = _contract(out / "ser.onnx")
    assert ser.labels == ("neutral", "happy", "angry", "sad") and ser.d_model == 8 and ser.window_samples == 400
    for kind in ("tse_step", "tse_offline", "enroll", "ser"):
        contract = _contract(out / (kind + ".onnx"))
        assert contract.model == kind
        assert contract.extra["parity"]["max_abs"] <= contract.extra["parity"]["atol"]
        assert len(contract.extra["checkpoint_sha256"]) == 64 and contract.extra["export_commit"]
    assert json.loads((out / REPORT).read_text())["streaming"]["hops"] == 200


def test_dynamic_graphs_were_checked_at_untraced_lengths(toy_export):
    _, report = toy_export
    assert "1x64" not in report.parity["tse_offline"].shapes  # traced at 4 hops of 16
    assert {"1x16", "1x125", "1x401"} == set(report.parity["tse_offline"].shapes)


def test_onnx_checker_full_check_passes(toy_export):
    out, _ = toy_export
    for kind in GRAPHS:
        onnx.checker.check_model(onnx.load(str(out / (kind + ".onnx"))), full_check=True)


def test_polygraphy_inspects_every_graph(toy_export):
    out, _ = toy_export
    polygraphy = str(Path(sys.executable).with_name("polygraphy"))
    for kind in GRAPHS:
        proc = subprocess.run([polygraphy, "inspect", "model", str(out / (kind + ".onnx"))], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "==== ONNX Model ====" in proc.stdout and "Node(s)" in proc.stdout


def test_trt_8_5_export_has_no_layer_normalization(toy_ckpts, tmp_path):
    report = export_checkpoints(toy_ckpts[:1], tmp_path / "out", ExportConfig(trt="8.5", stream_hops=4, vad=False), loader=toy_loader)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "out" / "tse_step.onnx")).graph.node}
    assert report.opset == 16 and "LayerNormalization" not in ops and "ReduceMean" in ops
    assert all(r.ok for r in report.lint.values())


def test_stale_output_directory_is_refused(toy_ckpts, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old_tse_step.onnx").write_text("stale")
    with pytest.raises(ConfigError, match="not empty .*old_tse_step.onnx") as err:
        export_checkpoints(toy_ckpts[:1], out, ExportConfig(stream_hops=4, vad=False), loader=toy_loader)
    assert "--force" in err.value.hint
    export_checkpoints(toy_ckpts[:1], out, ExportConfig(stream_hops=4, vad=False, force=True), loader=toy_loader)
    assert not (out / "old_tse_step.onnx").exists() and (out / "tse_step.onnx").is_file()


def test_checkpoint_that_does_not_match_its_config(tmp_path):
    ckpt = save_toy(tmp_path / "tse", TSE_CONFIG)
    config = json.loads((ckpt / "config.json").read_text())
    config["channels"] = 12
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="model.safetensors does not match config.json"):
        export_checkpoints([ckpt], tmp_path / "out", loader=toy_loader)
    assert not (tmp_path / "out").exists()


class LengthBakingTSE(ToyTSE):
    """A classic export bug: a Python int taken from a shape is baked into the trace."""

    def forward(self, audio, spk_emb):
        return super().forward(audio, spk_emb) * (int(audio.shape[1]) / 64.0)


def _baking_loader(ckpt):
    model, config = toy_loader(ckpt)
    baked = LengthBakingTSE(config)
    baked.load_state_dict(model.state_dict())
    return baked.eval(), config


def test_parity_failure_lists_the_output_and_leaves_nothing_behind(toy_ckpts, tmp_path):
    with pytest.raises(ParityError, match=r"tse_offline.audio_out: max abs [0-9.e+-]+, max rel"):
        export_checkpoints(toy_ckpts[:1], tmp_path / "out", ExportConfig(stream_hops=4, vad=False), loader=_baking_loader)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, message", [
    (dict(trt="9"), "unknown TensorRT target '9'"),
    (dict(stream_hops=0), "stream_hops=0 must be at least 1"),
    (dict(environments="/nonexistent/envs.json"), "is not a file"),
])
def test_export_options_are_validated_once(options, message):
    with pytest.raises(ConfigError, match=message):
        ExportConfig(**options)


def test_gate_thresholds_travel_from_the_checkpoint_into_the_step_contract():
    from emotrt.export.exporter import contract_for
    from emotrt.export.specs import TSE_OFFLINE, TSE_STEP
    from emotrt.runtime.gate import GateThresholds, thresholds_from_contract

    gate = GateThresholds(use_margin=0.3, bypass_margin=0.0, present_similarity=0.4, noise_norm=2.0)
    config = dict(TSE_CONFIG, gate=gate.to_dict())
    model = ToyTSE(config)
    step = contract_for(TSE_STEP, model, config, 17, {})
    assert thresholds_from_contract(step) == gate
    reread = ModelContract.from_metadata(step.to_metadata())  # the manifest stores the same metadata
    assert thresholds_from_contract(reread) == gate
    assert "gate" not in contract_for(TSE_OFFLINE, model, config, 17, {}).extra
    assert thresholds_from_contract(contract_for(TSE_STEP, model, TSE_CONFIG, 17, {})) is None


def test_an_enrollment_referenced_ser_names_its_reference_level_in_the_contract():
    from emotrt.export.exporter import contract_for
    from emotrt.export.specs import SER
    from emotrt.runtime.level import REFERENCE_LEVEL_DB
    from tests.export.toy_models import SER_CONFIG, ToySER

    config = dict(SER_CONFIG, level_reference="enrollment")
    contract = ModelContract.from_metadata(contract_for(SER, ToySER(config), config, 17, {}).to_metadata())
    assert contract.extra["level_reference_db"] == REFERENCE_LEVEL_DB
    assert "level_reference_db" not in contract_for(SER, ToySER(SER_CONFIG), SER_CONFIG, 17, {}).extra
