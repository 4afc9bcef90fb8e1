import numpy as np
from onnx import TensorProto, helper, numpy_helper

from emotrt.calibration.sizes import float_summary, initializer_bytes


def test_bytes_are_grouped_by_type_and_the_op_behind_a_dequantize():
    inits = [numpy_helper.from_array(np.zeros((4, 8), np.int8), "w"),
             numpy_helper.from_array(np.ones(4, np.float32), "scale"),
             numpy_helper.from_array(np.zeros(4, np.int8), "zero"),
             numpy_helper.from_array(np.ones(4, np.float32), "bias"),
             numpy_helper.from_array(np.ones(8, np.float32), "gamma"),
             numpy_helper.from_array(np.zeros(8, np.float32), "beta")]
    nodes = [helper.make_node("DequantizeLinear", ["w", "scale", "zero"], ["wf"], axis=0),
             helper.make_node("Gemm", ["x", "wf", "bias"], ["y"], transB=1),
             helper.make_node("LayerNormalization", ["y", "gamma", "beta"], ["z"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph)
    rows = {(dtype, op): (size, count) for dtype, op, size, count in initializer_bytes(model)}
    assert rows == {("int8", "DQ->Gemm"): (36, 2), ("float32", "DQ->Gemm"): (16, 1), ("float32", "Gemm"): (16, 1),
                    ("float32", "LayerNormalization"): (64, 2)}
    assert float_summary(model, top=2).startswith("LayerNormalization 0 KB, ")


def test_fp16_weights_behind_a_cast_are_counted_under_their_reader():
    nodes = [helper.make_node("Cast", ["wh"], ["w"], to=TensorProto.FLOAT), helper.make_node("MatMul", ["x", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.ones((8, 4), np.float16), "wh")])
    model = helper.make_model(graph)
    assert initializer_bytes(model) == [("float16", "Cast->MatMul", 64, 1)]
    assert float_summary(model) == "" and float_summary(model, dtype="float16") == "Cast->MatMul 0 KB"
