"""Backend choice: TensorRT only when the bundle's engines were built for this device."""
import sys

import numpy as np
import pytest

import emotrt.runtime.fingerprint
from emotrt.runtime.errors import BackendError, DependencyError, FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint
from emotrt.runtime.pipeline import Pipeline
from tests import trt_double
from tests.runtime.fixtures import DEVICE

OTHER_DEVICE = dict(DEVICE, tensorrt="8.6.2", l4t="36.3.0", cuda="12.2")


@pytest.fixture
def device_here(monkeypatch):
    """Install the recording TensorRT/pycuda double and make the probe report ``fields``."""
    trt_double.install(monkeypatch)

    def use(fields):
        monkeypatch.setattr(emotrt.runtime.fingerprint, "probe_device", lambda: DeviceFingerprint(**fields))

    return use


def test_auto_without_tensorrt_says_why_it_uses_onnxruntime(runtime_bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with Pipeline.from_bundle(runtime_bundle) as pipeline:
        assert pipeline.backend == "onnxruntime"
        assert "TensorRT not usable here" in pipeline.backend_reason and "tensorrt" in pipeline.backend_reason


def test_forcing_tensorrt_without_it_is_a_dependency_error(runtime_bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(DependencyError, match="TensorRT backend cannot run here") as exc:
        Pipeline.from_bundle(runtime_bundle, backend="tensorrt")
    assert "--backend onnxruntime" in exc.value.hint


def test_bundle_for_another_device_is_never_loaded(runtime_bundle, device_here):
    device_here(OTHER_DEVICE)
    with pytest.raises(FingerprintMismatchError, match=r"tensorrt is '10.3.0' in the plan but '8.6.2' here") as exc:
        Pipeline.from_bundle(runtime_bundle, backend="tensorrt")
    assert "emotrt" in exc.value.hint
    with Pipeline.from_bundle(runtime_bundle, backend="auto") as pipeline:
        assert pipeline.backend == "onnxruntime"
        assert "no TensorRT engine fits this device" in pipeline.backend_reason and "8.6.2" in pipeline.backend_reason


def test_matching_engines_run_on_tensorrt_with_the_same_results(runtime_bundle, device_here, speech_like):
    device_here(DEVICE)
    outputs = {}
    for backend in ("auto", "onnxruntime"):
        with Pipeline.from_bundle(runtime_bundle, backend=backend) as pipeline:
            stream = pipeline.create_stream("bob", "quiet_office")
            stream.accept_waveform(16000, speech_like)
            outputs[pipeline.backend] = [r.raw for r in stream.results() if r.speech]
            stream.close()
    assert set(outputs) == {"tensorrt", "onnxruntime"} and outputs["tensorrt"]
    np.testing.assert_allclose(outputs["tensorrt"], outputs["onnxruntime"], atol=1e-5)


def test_unknown_backend_name(runtime_bundle):
    with pytest.raises(BackendError, match="unknown backend 'cuda'"):
        Pipeline.from_bundle(runtime_bundle, backend="cuda")
