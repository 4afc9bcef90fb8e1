import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emotrt.calibration.fp16 import plan_fp16
from emotrt.calibration.fp16_weights import store_fp16_weights
from emotrt.calibration.qdq import QuantConfig, collect_ranges, quantisable_nodes, quantise, tensorrt_problems
from emotrt.export.lint import TRT_TARGETS, lint_model
from emotrt.runtime.backends import load_engine


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _hand_graph() -> onnx.ModelProto:
    """MatMul + bias + depthwise-style taps (castable), LayerNorm and a Conv (not), a scalar and a shared constant."""
    rng = np.random.default_rng(0)
    f = lambda *shape: (0.3 * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (f(8, 16), "w"), (f(16), "b"), (f(16), "taps"), (f(16), "shared"), (np.float32(0.5) * np.ones(1, np.float32), "half"),
        (1 + f(16), "gamma"), (f(16), "beta"), (f(16, 16, 1), "kernel"), (np.array([1, 4, 16], np.int64), "shape"),
    ]]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="/kept/MatMul"),
        helper.make_node("Add", ["b", "m"], ["a"], name="/kept/Add"),
        helper.make_node("Mul", ["a", "taps"], ["t"], name="/dw/Mul"),
        helper.make_node("Mul", ["t", "half"], ["h"], name="/dw/Mul_1"),
        helper.make_node("Add", ["h", "shared"], ["s"], name="/dw/Add"),
        helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["n"], name="/norm/LayerNormalization", axis=-1),
        helper.make_node("Add", ["n", "shared"], ["n2"], name="/norm/Add"),
        helper.make_node("Transpose", ["n2"], ["nt"], name="/T", perm=[0, 2, 1]),
        helper.make_node("Conv", ["nt", "kernel"], ["y"], name="/out/Conv"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_only_weights_read_outside_the_fp32_plan_become_fp16_and_a_cast():
    model = _hand_graph()
    changed = store_fp16_weights(model, fp32_nodes=["/norm/LayerNormalization", "/norm/Add"])
    # LayerNorm is FP32 by plan but computes from FP16-rounded gamma/beta; "shared" also feeds an FP32 Add
    assert sorted(changed) == ["b", "beta", "gamma", "taps", "w"]
    types = {i.name: i.data_type for i in model.graph.initializer}
    assert [types[n + "h"] for n in changed] == [TensorProto.FLOAT16] * 5
    assert types["kernel"] == types["shared"] == types["half"] == TensorProto.FLOAT
    casts = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Cast"}
    assert casts == {"w": "wh", "b": "bh", "taps": "tapsh", "gamma": "gammah", "beta": "betah"}
    onnx.checker.check_model(model)


def test_fp16_weights_change_outputs_by_fp16_rounding_only():
    x = np.random.default_rng(1).standard_normal((1, 4, 8)).astype(np.float32)
    original = _hand_graph()
    reference = _run(original, x)
    model = _hand_graph()
    store_fp16_weights(model, fp32_nodes=["/norm/LayerNormalization", "/norm/Add"])
    got = _run(model, x)
    assert not np.array_equal(got, reference), "the weights were rounded"
    np.testing.assert_allclose(got, reference, rtol=0, atol=4e-3 * np.abs(reference).max())
    rounded = _hand_graph()
    for init in rounded.graph.initializer:
        if init.name in ("w", "b", "taps", "gamma", "beta"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16).astype(np.float32), init.name))
    np.testing.assert_allclose(got, _run(rounded, x), rtol=1e-6, atol=1e-6)


def test_mixed_graph_stores_a_kept_out_matmul_fp16_and_passes_the_lint(ser_job, ser_minmax, tmp_path):
    model = onnx.load(str(ser_job.path))
    plan = plan_fp16(model, ser_minmax.amax())
    kept = "/layers.0/qkv/MatMul"
    nodes = [n for n in quantisable_nodes(model, QuantConfig()) if n != kept]
    out = quantise(ser_job.path, tmp_path / "mixed.onnx", ser_minmax, QuantConfig(method="minmax"), nodes, fp32_nodes=plan.fp32_nodes)
    plain = quantise(ser_job.path, tmp_path / "plain.onnx", ser_minmax, QuantConfig(method="minmax"), nodes)
    q = onnx.load(str(out))
    producers = {o: n for n in q.graph.node for o in n.output}
    inits = {i.name: i for i in q.graph.initializer}
    matmul = next(n for n in q.graph.node if n.name == kept)
    cast = producers[matmul.input[1]]
    assert cast.op_type == "Cast" and inits[cast.input[0]].data_type == TensorProto.FLOAT16
    assert out.stat().st_size < plain.stat().st_size
    assert not tensorrt_problems(q)
    for trt in TRT_TARGETS:  # the toy's LayerNormalization op fails 8.5 either way: no new finding
        assert lint_model(q, trt).errors == lint_model(plain, trt).errors
    feed = ser_job.calib.feeds[0]
    with load_engine(out) as mixed, load_engine(plain) as fp32_weights:
        a, b = mixed.run(feed)["logits"], fp32_weights.run(feed)["logits"]
    np.testing.assert_allclose(a, b, rtol=0, atol=0.05 * np.abs(b).max())


def test_float_graph_with_fp16_weights_is_within_fp16_rounding_of_fp32(ser_job, ser_minmax, tmp_path):
    plan = plan_fp16(onnx.load(str(ser_job.path)), ser_minmax.amax())
    out = quantise(ser_job.path, tmp_path / "none.onnx", ser_minmax, QuantConfig(method="minmax"), [], fp32_nodes=plan.fp32_nodes)
    assert TensorProto.FLOAT16 in {i.data_type for i in onnx.load(str(out)).graph.initializer}
    feed = ser_job.calib.feeds[1]
    with load_engine(out) as half, load_engine(ser_job.path) as full:
        a, b = half.run(feed)["logits"], full.run(feed)["logits"]
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, rtol=0, atol=5e-3 * np.abs(b).max())


def test_conv_kernels_are_never_cast(toy_jobs, tmp_path):
    job = next(j for j in toy_jobs if j.name == "tse_step")
    ranges = collect_ranges(job.path, job.calib, QuantConfig())
    model = onnx.load(str(job.path))
    nodes = [n for n in quantisable_nodes(model, QuantConfig()) if not n.startswith(("/encoder/", "/decoder/", "/mask/"))]
    out = quantise(job.path, tmp_path / "tse.onnx", ranges, QuantConfig(), nodes, fp32_nodes=())
    q = onnx.load(str(out))
    inits = {i.name: i for i in q.graph.initializer}
    dequantised = {n.output[0] for n in q.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits}
    convs = [n for n in q.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert {"/encoder/Conv", "/decoder/ConvTranspose"} <= {n.name for n in convs}
    for conv in convs:
        assert conv.input[1] in dequantised or inits[conv.input[1]].data_type == TensorProto.FLOAT, conv.name
    for trt in TRT_TARGETS:
        assert lint_model(q, trt).ok, lint_model(q, trt).errors
