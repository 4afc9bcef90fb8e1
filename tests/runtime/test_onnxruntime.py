import types

from emotrt.runtime.backends import load_engine
from emotrt.runtime.backends.onnxruntime import choose_providers


def test_auto_providers_prefer_gpu_execution_providers_when_built_in():
    gpu_build = types.SimpleNamespace(get_available_providers=lambda: [
        "CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"])
    assert choose_providers(gpu_build, "auto") == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(gpu_build, None) == ["CPUExecutionProvider"]


def test_auto_providers_on_this_cpu_build_load_and_run(runtime_models):
    import onnxruntime

    with load_engine(runtime_models / "ser.onnx", providers="auto") as engine:
        assert engine.providers[-1] == "CPUExecutionProvider"
        expected = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
                    if p in onnxruntime.get_available_providers()]
        assert engine.providers[:-1] == expected
        assert engine.contract.model == "ser"
