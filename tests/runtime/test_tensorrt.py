"""The TensorRT backend: exercised through a recording TensorRT/pycuda double here, on a real GPU when present.

The numeric assertions (hop-by-hop state carried on the "GPU" reproduces the whole-signal
filter; one-shot runs equal ONNX Runtime) are the same as for ONNX Runtime in test_stream.py.
"""
import shutil
import sys

import numpy as np
import pytest

from emotrt.runtime.backends import load_engine
from tests import trt_double
from tests.runtime import graphs


@pytest.fixture
def fake(monkeypatch):
    """The recording TensorRT/pycuda TEST DOUBLE (tests/trt_double.py) in sys.modules; returns its call list."""
    calls = []
    trt_double.install(monkeypatch, calls)
    return calls


@pytest.fixture
def fake_plans(runtime_models, tmp_path):
    """'Plans' for the double: the ONNX bytes themselves."""
    for name in ("tse_step", "ser"):
        shutil.copy(str(runtime_models / (name + ".onnx")), str(tmp_path / (name + ".plan")))
    return tmp_path


def _contract(runtime_models, name):
    return load_engine(runtime_models / (name + ".onnx")).contract


@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_state_stays_on_the_gpu_and_ping_pongs(fake, fake_plans, runtime_models, speech_like, cuda_graphs):
    engine = load_engine(fake_plans / "tse_step.plan", backend="tensorrt",
                         contract=_contract(runtime_models, "tse_step"), cuda_graphs=cuda_graphs)
    stepper = engine.create_stepper()
    assert stepper.cuda_graphs is cuda_graphs
    emb = np.full((1, graphs.SPK_DIM), 0.5, dtype=np.float32)
    allocations = sum(1 for c in fake if c[0] in ("pagelocked_empty", "mem_alloc"))
    del fake[:]
    audio = speech_like[:3200]
    out = np.concatenate([stepper.step({"audio": audio[None, i:i + 160], "spk_emb": emb})["audio_out"][0]
                          for i in range(0, audio.shape[0], 160)])
    np.testing.assert_allclose(out, graphs.reference_tse(audio, emb[0]), atol=1e-5)
    assert allocations > 0 and not [c for c in fake if c[0] in ("pagelocked_empty", "mem_alloc")]
    runs = [c for c in fake if c[0] in ("execute_async_v3", "graph_launch")]
    assert len(runs) == 20 and {c[1] for c in runs} == {stepper.stream.handle} != {engine.stream.handle}
    in_addr, out_addr = (b.address for b in stepper.state["hist"])
    if cuda_graphs:
        assert all(c[0] == "graph_launch" for c in runs)
    else:
        bound = [(c[2]["state_in.hist"], c[2]["state_out.hist"]) for c in runs]
        assert bound[0::2] == [(in_addr, out_addr)] * 10 and bound[1::2] == [(out_addr, in_addr)] * 10
    uploads = [c for c in fake if c[0] == "htod"]
    assert all(c[1] not in (in_addr, out_addr) for c in uploads), "state must never be re-uploaded"
    assert sum(1 for c in uploads if c[1] == stepper.buffers["spk_emb"].address) == 1
    stepper.close()
    engine.close()


def test_one_shot_run_equals_onnxruntime(fake, fake_plans, runtime_models, speech_like):
    feed = {"audio": speech_like[None, 8000:8000 + graphs.WINDOW], "env_token": np.ones((1, graphs.D_MODEL), np.float32)}
    with load_engine(runtime_models / "ser.onnx") as reference:
        expected = reference.run(feed)
    with load_engine(fake_plans / "ser.plan", backend="tensorrt", contract=_contract(runtime_models, "ser")) as engine:
        got = engine.run(feed)
        assert [s.name for s in engine.outputs] == ["logits", "avd"]
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-6)


def test_streaming_pipeline_on_the_tensorrt_backend_matches_onnxruntime(fake, fake_plans, runtime_models, make_pipeline,
                                                                        speech_like):
    from emotrt.runtime.pipeline import Pipeline
    from emotrt.runtime.tables import VectorTable

    trt_pipeline = Pipeline(
        load_engine(fake_plans / "tse_step.plan", backend="tensorrt", contract=_contract(runtime_models, "tse_step")),
        load_engine(fake_plans / "ser.plan", backend="tensorrt", contract=_contract(runtime_models, "ser")),
        VectorTable(runtime_models / "env", kind="environment"), VectorTable(runtime_models / "speakers", kind="speaker"),
        backend="tensorrt")
    results = {}
    for name, pipeline in (("trt", trt_pipeline), ("ort", make_pipeline())):
        stream = pipeline.create_stream("alice", "busy_cafe")
        stream.accept_waveform(16000, speech_like)
        stream.input_finished()
        results[name] = list(stream.results())
        stream.close()
    trt_pipeline.close()
    assert [r.speech for r in results["trt"]] == [r.speech for r in results["ort"]]
    for a, b in zip(results["trt"], results["ort"]):
        if a.speech:
            np.testing.assert_allclose(a.raw, b.raw, atol=1e-5)


def test_the_double_rejects_what_tensorrt_and_cuda_reject(fake, fake_plans):
    """The double is only useful if it fails: unbound tensors, capture before a warm-up run, sync while capturing."""
    trt, cuda = sys.modules["tensorrt"], sys.modules["pycuda.driver"]
    engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine((fake_plans / "ser.plan").read_bytes())
    context, stream = engine.create_execution_context(), cuda.Stream()
    with pytest.raises(trt_double.DoubleError, match="no address for"):
        context.execute_async_v3(stream.handle)
    for i in range(engine.num_io_tensors):
        context.set_tensor_address(engine.get_tensor_name(i), int(cuda.mem_alloc(1 << 20)))
    stream.begin_capture()
    with pytest.raises(trt_double.DoubleError, match="before one run outside capture"):
        context.execute_async_v3(stream.handle)
    with pytest.raises(trt_double.DoubleError, match="synchronised during capture"):
        stream.synchronize()
    with pytest.raises(trt_double.DoubleError, match="Runtime needs a tensorrt.Logger"):
        trt.Runtime(None)


def test_missing_tensorrt_is_a_clear_error(monkeypatch, tmp_path):
    from emotrt.runtime.errors import DependencyError

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    plan = tmp_path / "x.plan"
    plan.write_bytes(b"plan")
    with pytest.raises(DependencyError, match="TensorRT's Python package is not importable") as exc:
        load_engine(plan, backend="tensorrt")
    assert "--backend onnxruntime" in exc.value.hint


def test_too_old_tensorrt_is_refused(fake, monkeypatch, tmp_path):
    from emotrt.runtime.errors import DependencyError

    monkeypatch.setattr(sys.modules["tensorrt"], "__version__", "8.4.3.1")
    plan = tmp_path / "x.plan"
    plan.write_bytes(b"plan")
    with pytest.raises(DependencyError, match="TensorRT 8.4.3.1 is too old: emotrt needs 8.5"):
        load_engine(plan, backend="tensorrt")


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_real_tensorrt_stepper_matches_the_reference(runtime_models, tmp_path, speech_like):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here (its PyPI wheel is a download stub)")
    pytest.importorskip("pycuda.driver", reason="pycuda needs CUDA to build; not on this host")
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, trt.Logger(trt.Logger.WARNING))
    assert parser.parse((runtime_models / "tse_step.onnx").read_bytes())
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    (tmp_path / "tse_step.plan").write_bytes(bytes(plan))
    engine = load_engine(tmp_path / "tse_step.plan", backend="tensorrt", contract=_contract(runtime_models, "tse_step"),
                         cuda_graphs=True)
    stepper = engine.create_stepper()
    emb = np.full((1, graphs.SPK_DIM), 0.5, dtype=np.float32)
    out = np.concatenate([stepper.step({"audio": speech_like[None, i:i + 160], "spk_emb": emb})["audio_out"][0]
                          for i in range(0, 3200, 160)])
    np.testing.assert_allclose(out, graphs.reference_tse(speech_like[:3200], emb[0]), atol=1e-4)
