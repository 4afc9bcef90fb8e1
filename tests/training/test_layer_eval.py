"""``emotrt eval --layers``: per-layer probes and learned layer weights of tiny random ssl/whisper front ends."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training.checkpoint import save_checkpoint
from emotrt.training.layer_eval import LayerEvalConfig, evaluate_layers, format_layers, layer_weights, pooled_layers
from emotrt.training.ser import SER, SERConfig
from tests.training.conftest import TINY_SER

MIX = torch.tensor([0.5, -1.0, 2.0])  # a learned weighting that is not uniform


def tiny_ser(tmp_path, tiny_hf, kind):
    """An SER checkpoint with a tiny random front end (saved with save_pretrained) and set layer weights."""
    torch.manual_seed(0)
    model = SER.from_config(SERConfig(frontend=kind, frontend_path=str(tiny_hf / ("wavlm" if kind == "ssl" else "whisper")),
                                      **TINY_SER))
    with torch.no_grad():
        model.frontend.mix.weights.copy_(MIX)
    return save_checkpoint(tmp_path / kind, model.state_dict(), model.checkpoint_config()), model


def test_pooled_layers_hold_every_layer_and_the_mix_the_ser_uses(tmp_path, tiny_hf):
    _, model = tiny_ser(tmp_path, tiny_hf, "ssl")
    windows = [np.random.default_rng(i).standard_normal(16000).astype(np.float32) * 0.1 for i in range(3)]
    x = pooled_layers(model.frontend.eval(), windows, batch_size=2)
    weights = np.array(layer_weights(model.frontend))
    assert x.shape == (3, 4, 32) and np.allclose(weights, torch.softmax(MIX.double(), 0).numpy())
    assert np.allclose(x[:, -1], np.einsum("l,nld->nd", weights, x[:, :-1]), atol=1e-5)
    assert not np.allclose(x[:, 0], x[:, 1])


def test_layer_report_for_ssl_per_layer_clean_and_minus_5_db(tmp_path, tiny_hf, ser_corpus):
    path, _ = tiny_ser(tmp_path, tiny_hf, "ssl")
    report = evaluate_layers(path, ser_corpus, LayerEvalConfig(train_limit=12))
    assert report["frontend"] == "ssl" and report["layers"] == 3 and report["train_n"] == 12
    assert report["sets"][0] == "clean" and {s for s in report["sets"][1:]} == {"noise_seen_m5db", "noise_unseen_m5db"}
    assert report["weights"] == pytest.approx(torch.softmax(MIX.double(), 0).tolist())
    layers = {(r["set"], r["layer"]) for r in report["rows"]}
    assert layers == {(s, l) for s in report["sets"] for l in (0, 1, 2, "mixed")}
    for row in report["rows"]:
        assert 0.0 <= row["ua"] <= 1.0 and all(-1.0 <= row[k] <= 1.0 for k in ("ccc_a", "ccc_v", "ccc_d"))
        assert row["snr_db"] == (None if row["set"] == "clean" else -5.0)
    table = format_layers(report)
    assert "| 2 | {:.3f} |".format(report["weights"][2]) in table and "UA noise_seen_m5db" in table


def test_cli_layers_on_whisper_end_to_end_and_fbank_is_one_line_error(tmp_path, tiny_hf, ser_corpus):
    path, _ = tiny_ser(tmp_path, tiny_hf, "whisper")
    cmd = [sys.executable, "-m", "emotrt", "eval", str(path), "--corpus", str(ser_corpus), "--layers",
           "--sets", "clean,noise_seen_m5db", "--probe-limit", "12", "--out", str(tmp_path / "layers.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "layers.json").read_text())
    assert report["frontend"] == "whisper" and report["sets"] == ["clean", "noise_seen_m5db"] and len(report["rows"]) == 8
    assert "learned weight" in proc.stdout and "{:.3f}".format(report["weights"][0]) in proc.stdout
    fbank = SER.from_config(SERConfig(**TINY_SER))
    save_checkpoint(tmp_path / "fbank", fbank.state_dict(), fbank.checkpoint_config())
    bad = subprocess.run(cmd[:4] + [str(tmp_path / "fbank")] + cmd[5:8], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "has no ssl or whisper front end (found fbank)" in bad.stderr


def test_limits_below_two_are_config_errors():
    with pytest.raises(ConfigError, match="train_limit must be at least 2"):
        LayerEvalConfig(train_limit=1)
