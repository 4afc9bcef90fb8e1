import numpy as np
import onnx
import pytest

from emotrt.calibration.fp16 import FLAG_LIMIT, convert_fp16, flag_ranges, plan_fp16
from emotrt.calibration.qdq import QuantConfig, collect_ranges
from emotrt.runtime.backends import load_engine


@pytest.fixture(scope="module")
def amax(ser_job):
    return collect_ranges(ser_job.path, ser_job.calib, QuantConfig()).amax()


def test_plan_keeps_norms_softmax_reductions_and_front_end_fp32(ser_job, amax):
    plan = plan_fp16(onnx.load(str(ser_job.path)), amax)
    assert {"/layers.0/norm1/LayerNormalization", "/layers.0/norm2/LayerNormalization", "/layers.0/Softmax", "/ReduceMean", "/Conv", "/Log"} <= set(plan.fp32_nodes)
    assert "/layers.0/qkv/MatMul" not in plan.fp32_nodes
    assert plan.to_json()["flag_limit"] == FLAG_LIMIT


def test_large_activations_are_flagged_and_kept_fp32(ser_job, amax):
    hot = dict(amax, **{"/layers.0/qkv/MatMul_output_0": 7.0e4})
    assert flag_ranges(hot) == [("/layers.0/qkv/MatMul_output_0", 7.0e4)]
    plan = plan_fp16(onnx.load(str(ser_job.path)), hot)
    assert plan.flagged == (("/layers.0/qkv/MatMul_output_0", 7.0e4),)
    assert "/layers.0/qkv/MatMul" in plan.fp32_nodes and "/layers.0/qkv/Add" in plan.fp32_nodes


def test_fp16_graph_runs_in_onnxruntime_close_to_fp32(ser_job, amax, tmp_path):
    plan = plan_fp16(onnx.load(str(ser_job.path)), amax)
    out = convert_fp16(ser_job.path, tmp_path / "ser.fp16.onnx", plan)
    types = {i.data_type for i in onnx.load(str(out)).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types
    feed = ser_job.calib.feeds[-1]
    with load_engine(ser_job.path) as fp32, load_engine(out) as fp16:
        assert fp16.contract == fp32.contract
        np.testing.assert_allclose(fp16.run(feed)["logits"], fp32.run(feed)["logits"], atol=2e-2)


def test_duplicated_value_info_does_not_break_the_fp16_graph(ser_job, amax, tmp_path):
    model = onnx.shape_inference.infer_shapes(onnx.load(str(ser_job.path)))
    reduce_out = next(n.output[0] for n in model.graph.node if n.op_type == "ReduceMean")
    info = next(v for v in model.graph.value_info if v.name == reduce_out)
    model.graph.value_info.append(info)
    onnx.save(model, str(tmp_path / "dup.onnx"))
    out = convert_fp16(tmp_path / "dup.onnx", tmp_path / "dup.fp16.onnx", plan_fp16(model, amax))
    with load_engine(out) as engine:
        assert np.isfinite(engine.run(ser_job.calib.feeds[0])["avd"]).all()


def test_fp32_nodes_pass_large_values_to_each_other_without_fp16_round_trips(tmp_path):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from emotrt.calibration.fp16 import Fp16Plan

    consts = [helper.make_tensor("scale", TensorProto.FLOAT, [], [1000.0]),
              helper.make_tensor("offset", TensorProto.FLOAT, [], [99990.0])]
    nodes = [helper.make_node("Mul", ["x", "scale"], ["big"], name="big"),  # 1e5 exceeds the FP16 maximum
             helper.make_node("Div", ["big", "scale"], ["y"], name="down"),
             helper.make_node("Sub", ["big", "offset"], ["v"], name="shift"),
             helper.make_node("Mul", ["y", "y"], ["square"], name="square"),
             helper.make_node("Mul", ["v", "v"], ["v2"], name="v2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("square", "v2")], consts)
    src = tmp_path / "big.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(src))
    out = convert_fp16(src, tmp_path / "big.fp16.onnx", Fp16Plan((), ("big", "down", "shift"), ()))
    x = np.array([100.0, 99.995], dtype=np.float32)
    square, v2 = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(square, x * x, rtol=1e-3)
    np.testing.assert_allclose(v2, [100.0, 25.0], rtol=1e-2)
    nodes = {n.name: n for n in onnx.load(str(out)).graph.node}
    assert nodes["down"].input[0] == nodes["shift"].input[0] == nodes["big"].output[0]
    assert nodes["square"].input[0] != nodes["down"].output[0]  # the FP16 node still gets a Cast


def test_a_constant_shared_by_fp32_and_fp16_nodes_is_converted_for_the_fp16_side_only(tmp_path):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from emotrt.calibration.fp16 import Fp16Plan

    # The exporter shares one 0.5 between the front end's Hann window (FP32) and every GELU (FP16).
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [helper.make_node("Mul", ["x", "half"], ["window"], name="window"),
             helper.make_node("Mul", ["window", "half"], ["gelu"], name="gelu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("gelu", TensorProto.FLOAT, [2])], [half])
    src = tmp_path / "shared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(src))
    out = convert_fp16(src, tmp_path / "shared.fp16.onnx", Fp16Plan((), ("window",), ()))
    x = np.array([3.0, -5.0], dtype=np.float32)
    (gelu,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(gelu, x / 4)
    inits = {i.name: i.data_type for i in onnx.load(str(out)).graph.initializer}
    nodes = {n.name: n for n in onnx.load(str(out)).graph.node}
    assert inits[nodes["window"].input[1]] == TensorProto.FLOAT and inits[nodes["gelu"].input[1]] == TensorProto.FLOAT16
