"""``emotrt lint``: names the offending nodes and exits non-zero; passes clean graphs."""
import subprocess
import sys

import onnx
from onnx import TensorProto, helper


def emotrt(*args):
    return subprocess.run([sys.executable, "-m", "emotrt", *args], capture_output=True, text=True)


def test_lint_names_offending_nodes_and_fails(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, [16])
    nodes = [helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="enc_norm")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x, s], [y]), opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    bad = emotrt("lint", str(path), "--trt", "8.5")
    assert bad.returncode == 1
    assert "unsupported-op: enc_norm (LayerNormalization)" in bad.stdout and "FAILED for TensorRT 8.5" in bad.stdout
    good = emotrt("lint", str(path), "--trt", "10.3")
    assert good.returncode == 0 and "ok for TensorRT 10.3" in good.stdout


def test_lint_unknown_target_is_one_line_error(tmp_path):
    proc = emotrt("lint", str(tmp_path / "missing.onnx"), "--trt", "7")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1
