"""The real TSE and SER (emotrt.training) through export: tiny checkpoints, every TensorRT target."""
import json
import subprocess
import sys

import onnx
import pytest
import torch

from emotrt.export.exporter import ExportConfig, export_checkpoints
from emotrt.export.lint import lint_model
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.tables import VectorTable
from emotrt.training.checkpoint import save_checkpoint
from emotrt.training.ser import SER, SERConfig
from emotrt.training.tse import TSE

GRAPHS = ("tse_step", "tse_offline", "enroll", "ser")


def tiny_ser_config(**overrides):
    return SERConfig(**dict(dict(d_model=16, heads=2, layers=1, ff_dim=32, window_samples=8000), **overrides))


@pytest.fixture(scope="module")
def real_ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    torch.manual_seed(0)
    tse = TSE.from_config("tiny")
    save_checkpoint(root / "tse", tse.state_dict(), tse.checkpoint_config())
    ser = SER.from_config(tiny_ser_config(env_film=True, input_norm="rms"))  # the default SER's front end
    torch.nn.init.normal_(ser.env_film.weight, std=0.1)  # a trained FiLM, not the identity it starts as
    save_checkpoint(root / "ser", ser.state_dict(), ser.checkpoint_config())
    return root / "tse", root / "ser"


@pytest.mark.slow
@pytest.mark.parametrize("trt", ["8.5", "10.3"])
def test_tiny_checkpoints_pass_parity_streaming_and_lint(real_ckpts, tmp_path, trt):
    envs = tmp_path / "environments.json"
    envs.write_text(json.dumps({"busy_cafe": {"descriptions": ["a busy cafe", "a crowded coffee shop"], "split": "seen"}}))
    report = export_checkpoints(real_ckpts, tmp_path / "m", ExportConfig(trt=trt, vad=False, environments=str(envs)))
    assert sorted(report.graphs) == sorted(GRAPHS)
    assert VectorTable(tmp_path / "m" / "env", kind="environment", dim=16).names() == ["busy_cafe", "none"]
    assert all(r.ok for r in report.parity.values())
    assert len(report.parity["tse_offline"].shapes) == 3 and "1x640" not in report.parity["tse_offline"].shapes
    assert report.streaming.hops == 200 and report.streaming.max_abs_vs_torch <= 1e-4
    targets = ["8.5"] if trt == "8.5" else ["10.3", "11"]
    for kind in GRAPHS:
        path = tmp_path / "m" / (kind + ".onnx")
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        for target in targets:
            assert lint_model(path, target).ok, (kind, target)
    assert_front_end_stores_no_table(tmp_path / "m" / "ser.onnx")


def assert_front_end_stores_no_table(path):
    """The log-mel front end stores only small vectors (its DFT basis and filterbank are computed), and every
    Conv kernel is an initializer (TensorRT 8.5/8.6 may refuse a computed one)."""
    from emotrt.calibration.qdq import frontend_nodes

    model = onnx.load(str(path))
    sizes = {i.name: len(i.SerializeToString()) for i in model.graph.initializer}
    sizes.update((n.output[0], len(n.SerializeToString())) for n in model.graph.node if n.op_type == "Constant")
    front = set(frontend_nodes(model))
    read = [sizes[name] for n in model.graph.node if n.name in front for name in n.input if name in sizes]
    assert len(front) > 10 and max(read) <= 4096
    assert {n.op_type for n in model.graph.node if n.name in front} >= {"MatMul", "Cos", "Sin", "Log"}
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert all(n.input[1] in sizes for n in convs)


def test_checkpoint_whose_weights_do_not_fit_its_config(real_ckpts, tmp_path):
    import shutil

    ckpt = tmp_path / "tse"
    shutil.copytree(str(real_ckpts[0]), str(ckpt))
    config = json.loads((ckpt / "config.json").read_text())
    config["n_filters"] += 4
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="model.safetensors does not match config.json"):
        export_checkpoints([ckpt], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_cli_export_prints_the_parity_table(real_ckpts, tmp_path):
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "emotrt", "export", str(real_ckpts[1]), "-o", str(tmp_path / "m"), "--no-vad"],
        capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "parity: ONNX Runtime vs PyTorch" in proc.stdout and "logits" in proc.stdout and "avd" in proc.stdout
    assert "environment table" in proc.stdout and (tmp_path / "m" / "ser.onnx").is_file()
    again = subprocess.run([sys.executable, "-m", "emotrt", "export", str(real_ckpts[1]), "-o", str(tmp_path / "m")], capture_output=True, text=True)
    assert again.returncode == 2 and "is not empty" in again.stderr and len(again.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_wavlm_front_end_exports_inside_the_ser_graph(tmp_path):
    from transformers import WavLMConfig, WavLMModel

    torch.manual_seed(0)
    WavLMModel(WavLMConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        num_buckets=16, max_bucket_distance=32,
    )).save_pretrained(str(tmp_path / "wavlm"))
    ser = SER.from_config(tiny_ser_config(frontend="ssl", frontend_path=str(tmp_path / "wavlm"), window_samples=16000))
    save_checkpoint(tmp_path / "ser", ser.state_dict(), ser.checkpoint_config())
    report = export_checkpoints([tmp_path / "ser"], tmp_path / "m", ExportConfig(trt="8.5", vad=False))
    assert report.parity["ser"].ok and report.lint["ser"].ok
    assert any(n.op_type == "MatMul" for n in onnx.load(str(tmp_path / "m" / "ser.onnx")).graph.node)


def test_the_no_description_token_is_the_models_own(real_ckpts, tmp_path):
    from emotrt.training.models import load_model

    export_checkpoints(real_ckpts[1:], tmp_path / "m", ExportConfig(vad=False))
    model, _ = load_model(real_ckpts[1])
    table = VectorTable(tmp_path / "m" / "env", kind="environment")
    assert table.names() == ["none"]
    assert (table.get("none") == model.null_env(1)[0].detach().numpy()).all()
