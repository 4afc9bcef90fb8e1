import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from emotrt.calibration.qdq import (
    QuantConfig, collect_ranges, frontend_nodes, quantisable_nodes, quantise, tensorrt_problems,
)
from emotrt.runtime.backends import load_engine
from emotrt.runtime.errors import ConfigError


def test_front_end_feeding_log_is_never_quantised(ser_job):
    model = onnx.load(str(ser_job.path))
    front = frontend_nodes(model)
    assert {"/Conv", "/MatMul", "/Log"} <= set(front)
    nodes = quantisable_nodes(model, QuantConfig())
    assert "/frontend/MatMul" in nodes and not set(front) & set(nodes)


def test_qdq_graph_is_what_tensorrt_accepts(ser_job, ser_minmax, tmp_path):
    model = onnx.load(str(ser_job.path))
    out = quantise(ser_job.path, tmp_path / "ser.int8.onnx", ser_minmax, QuantConfig(method="minmax"), quantisable_nodes(model, QuantConfig()))
    q = onnx.load(str(out))
    assert tensorrt_problems(q) == []
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    quantised = [n for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert quantised and all(inits[n.input[2]].dtype == np.int8 and not inits[n.input[2]].any() for n in quantised)
    per_channel = [n for n in q.graph.node if n.op_type == "DequantizeLinear" and inits.get(n.input[1]) is not None
                   and inits[n.input[1]].size > 1]
    assert per_channel, "weights should carry one scale per output channel"
    producers = {o: n for n in q.graph.node for o in n.output}
    front = set(frontend_nodes(model))
    assert {producers[n.input[0]].name for n in quantised if n.input[0] in producers} & front == {"/Log"}, \
        "only the log-mel output may enter INT8"
    dequantised = {n.output[0] for n in q.graph.node if n.op_type == "DequantizeLinear"}
    assert not [n.name for n in q.graph.node if n.name in front and dequantised & set(n.input)], \
        "nothing inside the front end may read a dequantised tensor"
    assert {p.key for p in model.metadata_props} <= {p.key for p in q.metadata_props}
    with load_engine(out) as engine:
        assert engine.contract.model == "ser"
        assert np.isfinite(engine.run(ser_job.calib.feeds[0])["logits"]).all()


def test_methods_give_different_ranges(ser_job, ser_minmax):
    percentile = collect_ranges(ser_job.path, ser_job.calib, QuantConfig(method="percentile", percentile=99.0))
    amax, pamax = ser_minmax.amax(), percentile.amax()
    assert set(amax) == set(pamax) and "audio" in amax
    assert any(pamax[n] < 0.99 * amax[n] for n in amax)


@pytest.mark.parametrize("kwargs,field", [({"method": "kl"}, "method"), ({"percentile": 20.0}, "percentile"),
                                          ({"num_bins": 64}, "num_bins")])
def test_bad_quant_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        QuantConfig(**kwargs)


def test_entropy_settings_do_not_silently_return_minmax_ranges(toy_jobs):
    """REFERENCE.md: ORT's default Entropy settings (equal bin counts) returned the MinMax ranges."""
    job = next(j for j in toy_jobs if j.name == "enroll")
    minmax = collect_ranges(job.path, job.calib, QuantConfig(method="minmax")).amax()
    entropy = collect_ranges(job.path, job.calib, QuantConfig(method="entropy")).amax()
    assert set(entropy) == set(minmax)
    assert any(abs(entropy[n] - minmax[n]) > 1e-3 * minmax[n] for n in minmax)


def test_no_nodes_means_an_unchanged_copy_not_everything(ser_job, ser_minmax, tmp_path):
    out = quantise(ser_job.path, tmp_path / "copy.onnx", ser_minmax, QuantConfig(method="minmax"), [])
    assert out.read_bytes() == ser_job.path.read_bytes()



def test_compacted_names_are_short_and_change_no_result(ser_job, ser_minmax, tmp_path, monkeypatch):
    from emotrt.calibration import qdq

    model = onnx.load(str(ser_job.path))
    nodes = quantisable_nodes(model, QuantConfig())
    out = quantise(ser_job.path, tmp_path / "short.onnx", ser_minmax, QuantConfig(method="minmax"), nodes)
    monkeypatch.setattr(qdq, "compact_names", lambda graph: None)
    long = quantise(ser_job.path, tmp_path / "long.onnx", ser_minmax, QuantConfig(method="minmax"), nodes)
    q = onnx.load(str(out))
    io = {v.name for v in list(q.graph.input) + list(q.graph.output)}
    tensors = {name for n in q.graph.node for name in list(n.input) + list(n.output) if name}
    tensors |= {i.name for i in q.graph.initializer}
    assert max(len(name) for name in tensors - io) <= 6 and not q.graph.value_info
    assert {n.name for n in model.graph.node} <= {n.name for n in q.graph.node}, "the source's node names stay"
    assert out.stat().st_size < 0.9 * long.stat().st_size
    feed = ser_job.calib.feeds[0]
    with load_engine(out) as short_engine, load_engine(long) as long_engine:
        assert short_engine.contract.model == "ser"
        np.testing.assert_array_equal(short_engine.run(feed)["logits"], long_engine.run(feed)["logits"])


@pytest.fixture(scope="module")
def default_size_export(tmp_path_factory):
    """The default TSE (edge preset) and SER sizes with random weights, exported for TensorRT 10.3."""
    import torch

    from emotrt.export.exporter import ExportConfig, export_checkpoints
    from emotrt.training.checkpoint import save_checkpoint
    from emotrt.training.ser import SER, SERConfig
    from emotrt.training.tse import TSE

    root = tmp_path_factory.mktemp("default-sizes")
    torch.manual_seed(0)
    tse, ser = TSE.from_config("edge"), SER.from_config(SERConfig(window_samples=32000))
    save_checkpoint(root / "tse", tse.state_dict(), tse.checkpoint_config())
    save_checkpoint(root / "ser", ser.state_dict(), ser.checkpoint_config())
    export_checkpoints([root / "tse", root / "ser"], root / "export", ExportConfig(vad=False, stream_hops=2))
    return root / "export"


@pytest.mark.parametrize("graph", ["tse_step", "ser"])
def test_int8_graph_of_the_default_sizes_is_at_most_30_percent_of_fp32(default_size_export, graph, tmp_path):
    import onnxruntime as ort

    from emotrt.calibration.data import CalibrationSet

    path = default_size_export / (graph + ".onnx")
    rng = np.random.default_rng(0)
    inputs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()
    feeds = [{i.name: 0.1 * rng.standard_normal(i.shape).astype(np.float32) for i in inputs} for _ in range(8)]
    config = QuantConfig(method="minmax")  # sizes do not depend on the ranges; MinMax collects them quickest
    ranges = collect_ranges(path, CalibrationSet.from_feeds(feeds, graph), config)
    model = onnx.load(str(path))
    out = quantise(path, tmp_path / (graph + ".int8.onnx"), ranges, config, quantisable_nodes(model, config))
    assert out.stat().st_size <= 0.30 * path.stat().st_size
    q = onnx.load(str(out))
    front = set(frontend_nodes(model))
    dequantised = {n.output[0] for n in q.graph.node if n.op_type == "DequantizeLinear"}
    assert not [n.name for n in q.graph.node if n.name in front and dequantised & set(n.input)], "the front end stays FP32"
    assert (graph == "ser") == ("MatMul" in {n.op_type for n in model.graph.node if n.name in front})


def test_mixed_tse_step_of_the_default_size_with_the_decoder_kept_out_is_at_most_30_percent(default_size_export, tmp_path):
    """The kept-out decoder MatMul and the float taps/biases are stored FP16: 0.317 of FP32 before, on main's models."""
    from emotrt.calibration.data import CalibrationSet
    from emotrt.calibration.fp16 import plan_fp16

    path = default_size_export / "tse_step.onnx"
    model = onnx.load(str(path))
    rng = np.random.default_rng(0)
    feeds = [{i.name: 0.1 * rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
              for i in model.graph.input} for _ in range(8)]
    config = QuantConfig(method="minmax")  # sizes do not depend on the ranges; MinMax collects them quickest
    ranges = collect_ranges(path, CalibrationSet.from_feeds(feeds, "tse_step"), config)
    nodes = [n for n in quantisable_nodes(model, config) if not n.startswith("/decoder/")]
    fp32_nodes = plan_fp16(model, ranges.amax()).fp32_nodes
    plain = quantise(path, tmp_path / "plain.onnx", ranges, config, nodes)
    out = quantise(path, tmp_path / "mixed.onnx", ranges, config, nodes, fp32_nodes=fp32_nodes)
    assert plain.stat().st_size > 0.30 * path.stat().st_size >= out.stat().st_size
