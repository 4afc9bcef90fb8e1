"""The real models (emotrt.training) through export: tiny checkpoints, every TensorRT target."""
import json
import subprocess
import sys

import onnx
import pytest
import torch

from emotrt.export.exporter import ExportConfig, export_checkpoints
from emotrt.export.lint import lint_model
from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import save_checkpoint
from emotrt.training.tse import TSE

GRAPHS = ("tse_step", "tse_offline", "enroll")


@pytest.fixture(scope="module")
def real_ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    torch.manual_seed(0)
    tse = TSE.from_config("tiny")
    save_checkpoint(root / "tse", tse.state_dict(), tse.checkpoint_config())
    return (root / "tse",)


@pytest.mark.slow
@pytest.mark.parametrize("trt", ["8.5", "10.3"])
def test_tiny_checkpoints_pass_parity_streaming_and_lint(real_ckpts, tmp_path, trt):
    report = export_checkpoints(real_ckpts, tmp_path / "m", ExportConfig(trt=trt, vad=False))
    assert sorted(report.graphs) == sorted(GRAPHS)
    assert all(r.ok for r in report.parity.values())
    assert len(report.parity["tse_offline"].shapes) == 3 and "1x640" not in report.parity["tse_offline"].shapes
    assert report.streaming.hops == 200 and report.streaming.max_abs_vs_torch <= 1e-4
    targets = ["8.5"] if trt == "8.5" else ["10.3", "11"]
    for kind in GRAPHS:
        path = tmp_path / "m" / (kind + ".onnx")
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        for target in targets:
            assert lint_model(path, target).ok, (kind, target)


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
        [sys.executable, "-m", "emotrt", "export", str(real_ckpts[0]), "-o", str(tmp_path / "m"), "--no-vad", "--hops", "200"],
        capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "parity: ONNX Runtime vs PyTorch" in proc.stdout and "state_out.dec" in proc.stdout
    assert "streaming: tse_step x 200 hops" in proc.stdout
    assert (tmp_path / "m" / "tse_step.onnx").is_file()
    again = subprocess.run([sys.executable, "-m", "emotrt", "export", str(real_ckpts[0]), "-o", str(tmp_path / "m")], capture_output=True, text=True)
    assert again.returncode == 2 and "is not empty" in again.stderr and len(again.stderr.strip().splitlines()) == 1
