"""The TensorRT lint: data provenance, every rule on small hand-made graphs, and the exported toys."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from emotrt.export.lint import TRT_TARGETS, TensorRTLintError, lint_model, load_operator_table
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import ConfigError


def _graph(nodes, inputs, outputs, opset=17, initializers=(), kind=None):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if kind:
        contract = ModelContract(model=kind, sample_rate=16000, chunk_samples=16)
        for k, v in contract.to_metadata().items():
            model.metadata_props.add(key=k, value=v)
    return model


def _io(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.mark.parametrize("trt", TRT_TARGETS)
def test_tables_record_where_they_were_read(trt):
    table = load_operator_table(trt)
    assert "onnx-tensorrt" in table["source"] and "docs/operators.md" in table["source"]
    assert table["operators"]["Conv"]["supported"]
    assert not table["operators"]["STFT" if trt != "11" else "DFT"]["supported"]


def test_layernorm_is_refused_by_8_5_only():
    model = _graph([helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")], [_io("x", [1, 4]), _io("s", [4])], [_io("y", [1, 4])])
    assert [i.rule for i in lint_model(model, "8.5").errors] == ["unsupported-op"]
    assert lint_model(model, "10.3").ok and lint_model(model, "11").ok


def test_every_offending_node_is_named_and_the_error_lists_them():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="fine"),
        helper.make_node("Loop", ["", "", "a"], ["b"], name="my_loop", body=helper.make_graph([], "body", [], [])),
        helper.make_node("Gelu", ["b"], ["c"], name="custom_gelu", domain="com.example"),
    ]
    model = _graph(nodes, [_io("x", [1, 4])], [_io("c", [1, 4])])
    report = lint_model(model, "10.3", name="toy.onnx")
    assert {(i.rule, i.node) for i in report.errors} == {("emotrt-policy", "my_loop"), ("custom-domain", "custom_gelu")}
    with pytest.raises(TensorRTLintError) as err:
        report.raise_for_errors()
    assert "my_loop (Loop)" in str(err.value) and "custom_gelu (Gelu)" in str(err.value)
    assert "emotrt lint toy.onnx --trt 10.3" in err.value.hint


def test_opset_outside_the_parser_range():
    model = _graph([helper.make_node("Relu", ["x"], ["y"])], [_io("x", [1, 4])], [_io("y", [1, 4])], opset=18)
    assert [i.rule for i in lint_model(model, "8.5").errors] == ["opset"]
    assert lint_model(model, "10.3").ok


def test_int64_io_and_big_constants_fail_on_8_5():
    big = numpy_helper.from_array(np.array([2 ** 40], dtype=np.int64), "big")
    nodes = [helper.make_node("Add", ["n", "big"], ["m"], name="add64")]
    model = _graph(nodes, [_io("n", [1], TensorProto.INT64)], [_io("m", [1], TensorProto.INT64)], initializers=[big])
    rules = sorted(i.rule for i in lint_model(model, "8.5").errors)
    assert rules == ["int64-io", "int64-io", "int64-range"]
    assert lint_model(model, "10.3").ok


def test_fixed_shape_graphs_and_dynamic_batch():
    relu = [helper.make_node("Relu", ["audio"], ["y"])]
    step = _graph(relu, [_io("audio", [1, "n"])], [_io("y", [1, "n"])], kind="tse_step")
    assert [i.rule for i in lint_model(step, "10.3").errors] == ["dynamic-shape"]
    offline = _graph(relu, [_io("audio", [1, "n"])], [_io("y", [1, "n"])], kind="tse_offline")
    assert lint_model(offline, "10.3").ok
    batch = _graph(relu, [_io("audio", ["b", 16])], [_io("y", ["b", 16])])
    assert [i.rule for i in lint_model(batch, "10.3").errors] == ["dynamic-batch"]


def test_unknown_target_is_a_user_error():
    with pytest.raises(ConfigError, match="expected one of 8.5, 10.3, 11"):
        load_operator_table("9.9")


@pytest.mark.parametrize("trt", TRT_TARGETS)
def test_exported_toy_graphs_pass_every_target(toy_export, trt):
    out, _ = toy_export
    for name in ("tse_step", "tse_offline", "enroll", "ser", "vad"):
        report = lint_model(out / (name + ".onnx"), trt)
        if trt == "8.5" and name != "vad":
            # graphs exported for 10.3 (opset 17) are outside 8.5's parser; the 8.5 export is tested below
            assert {i.rule for i in report.errors} <= {"opset", "unsupported-op"}
        else:
            assert report.ok, [i.line() for i in report.errors]


def test_table_json_is_plain_data():
    table = load_operator_table("8.5")
    assert json.loads(json.dumps(table)) == table and table["commit"]


def test_inputs_the_parser_needs_constant_are_checked():
    x = _io("x", [1, 4, 6])
    axes_in = _io("axes", [1], TensorProto.INT64)
    runtime_axes = _graph([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="pool")], [x, axes_in], [_io("y", [1, 4, 1])], opset=18)
    errors = lint_model(runtime_axes, "10.3").errors
    assert [(i.rule, i.node) for i in errors] == [("restriction", "pool")] and "axes" in errors[0].message
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    constant_axes = _graph([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="pool")], [x], [_io("y", [1, 4, 1])], opset=18, initializers=[axes])
    assert lint_model(constant_axes, "10.3").ok


@pytest.mark.parametrize("trt", TRT_TARGETS)
def test_a_computed_conv_kernel_is_refused_but_a_stored_or_dequantized_one_is_not(trt):
    kernel = numpy_helper.from_array(np.ones((2, 1, 3), np.float32), "k")
    scale, zero = numpy_helper.from_array(np.ones(2, np.float32), "s"), numpy_helper.from_array(np.zeros(2, np.int8), "z")
    q = numpy_helper.from_array(np.ones((2, 1, 3), np.int8), "q")
    nodes = [helper.make_node("Cos", ["k"], ["computed"], name="cos"),
             helper.make_node("Conv", ["x", "computed"], ["y1"], name="computed_conv"),
             helper.make_node("Conv", ["x", "k"], ["y2"], name="stored_conv"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["w"], name="dq", axis=0),
             helper.make_node("Conv", ["x", "w"], ["y3"], name="qdq_conv")]
    model = _graph(nodes, [_io("x", [1, 1, 8])], [_io(n, [1, 2, 6]) for n in ("y1", "y2", "y3")],
                   initializers=[kernel, scale, zero, q])
    errors = lint_model(model, trt).errors
    assert [(e.node, e.rule) for e in errors] == [("computed_conv", "emotrt-policy")]
    assert "MatMul" in errors[0].message


@pytest.mark.parametrize("release,table", [("8.5.2", "8.5"), ("8.6.2", "8.5"), ("10.3.0", "10.3"), ("10.13.3", "10.3"),
                                           ("11.4.1", "11"), ("8.5", "8.5"), ("11", "11")])
def test_each_release_lints_against_the_newest_table_not_newer(release, table):
    from emotrt.export.lint import lint_target

    assert lint_target(release) == table


@pytest.mark.parametrize("release", ["8.4.1", "7", "abc", ""])
def test_a_release_older_than_every_table_is_one_config_error(release):
    from emotrt.export.lint import lint_target

    with pytest.raises(ConfigError, match="unknown TensorRT target"):
        lint_target(release)


def test_layernorm_fails_8_5_2_and_passes_from_8_6_which_parses_it(tmp_path):
    from emotrt.export.lint import lint_release, plan_check

    model = _graph([helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")],
                   [_io("x", [1, 4]), _io("s", [4])], [_io("y", [1, 4])])
    path = tmp_path / "ln.onnx"
    onnx.save(model, str(path))
    assert [i.op for i in lint_release(path, "8.5.2").errors] == ["LayerNormalization"]
    assert lint_release(path, "8.6.2").ok and lint_release(path, "10.13.3").ok
    assert plan_check(path, "8.5.2") and plan_check(path, "8.6.2") == ()
