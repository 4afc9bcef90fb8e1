import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from emotrt.calibration.qdq import (
    QuantConfig, collect_ranges, frontend_nodes, quantisable_nodes, quantise, tensorrt_problems,
)
from emotrt.runtime.backends import load_engine
from emotrt.runtime.errors import ConfigError


@pytest.fixture(scope="module")
def ser_job(toy_jobs):
    return next(j for j in toy_jobs if j.name == "ser")


@pytest.fixture(scope="module")
def minmax(ser_job):
    return collect_ranges(ser_job.path, ser_job.calib, QuantConfig())


def test_front_end_feeding_log_is_never_quantised(ser_job):
    model = onnx.load(str(ser_job.path))
    front = frontend_nodes(model)
    assert {"/Conv", "/MatMul", "/Log"} <= set(front)
    nodes = quantisable_nodes(model, QuantConfig())
    assert "/frontend/MatMul" in nodes and not set(front) & set(nodes)


def test_qdq_graph_is_what_tensorrt_accepts(ser_job, minmax, tmp_path):
    model = onnx.load(str(ser_job.path))
    out = quantise(ser_job.path, tmp_path / "ser.int8.onnx", minmax, QuantConfig(), quantisable_nodes(model, QuantConfig()))
    q = onnx.load(str(out))
    assert tensorrt_problems(q) == []
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    quantised = [n for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert quantised and all(inits[n.input[2]].dtype == np.int8 and not inits[n.input[2]].any() for n in quantised)
    per_channel = [n for n in q.graph.node if n.op_type == "DequantizeLinear" and inits.get(n.input[1]) is not None
                   and inits[n.input[1]].size > 1]
    assert per_channel, "weights should carry one scale per output channel"
    consumers = {n.input[0] for n in quantised}
    front = set(frontend_nodes(model)) - {"/Log"}
    inside = {o for n in model.graph.node if n.name in front for o in n.output} | {"mel"}
    assert not consumers & inside, "only the log-mel output may enter INT8, nothing inside the front end"
    assert {p.key for p in model.metadata_props} <= {p.key for p in q.metadata_props}
    with load_engine(out) as engine:
        assert engine.contract.model == "ser"
        assert np.isfinite(engine.run(ser_job.calib.feeds[0])["logits"]).all()


def test_methods_give_different_ranges(ser_job, minmax):
    percentile = collect_ranges(ser_job.path, ser_job.calib, QuantConfig(method="percentile", percentile=99.0))
    amax, pamax = minmax.amax(), percentile.amax()
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
    minmax = collect_ranges(job.path, job.calib, QuantConfig()).amax()
    entropy = collect_ranges(job.path, job.calib, QuantConfig(method="entropy")).amax()
    assert set(entropy) == set(minmax)
    assert any(abs(entropy[n] - minmax[n]) > 1e-3 * minmax[n] for n in minmax)


def test_no_nodes_means_an_unchanged_copy_not_everything(ser_job, minmax, tmp_path):
    out = quantise(ser_job.path, tmp_path / "copy.onnx", minmax, QuantConfig(), [])
    assert out.read_bytes() == ser_job.path.read_bytes()
