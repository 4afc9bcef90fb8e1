import types

import numpy as np
import pytest

from emotrt.runtime.backends import load_engine
from emotrt.runtime.backends.onnxruntime import BoundStepper, choose_providers
from emotrt.runtime.backends.stepper import HostStepper
from emotrt.runtime.errors import BackendError

from .graphs import CHUNK, SPK_DIM, reference_tse


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


def _hops(stepper, audio, emb, chunk=CHUNK):
    return [stepper.step({"audio": audio[None, i:i + chunk], "spk_emb": emb})["audio_out"][0]
            for i in range(0, audio.shape[0] - chunk + 1, chunk)]


def test_bound_stepper_matches_the_host_stepper_exactly(runtime_models, speech_like):
    emb = np.full((1, SPK_DIM), 0.5, dtype=np.float32)
    audio = speech_like[:20 * CHUNK]
    with load_engine(runtime_models / "tse_step.onnx") as engine:
        bound, host = engine.create_stepper(), HostStepper(engine)
        assert isinstance(bound, BoundStepper)
        got, want = _hops(bound, audio, emb), _hops(host, audio, emb)
        np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))
        np.testing.assert_allclose(np.concatenate(got), reference_tse(audio, emb), atol=1e-5)
        bound.reset()
        np.testing.assert_array_equal(_hops(bound, audio[:CHUNK], emb)[0], want[0])


def test_bound_stepper_takes_a_new_speaker_embedding(runtime_models, speech_like):
    hop = speech_like[None, :CHUNK]
    with load_engine(runtime_models / "tse_step.onnx") as engine:
        stepper = engine.create_stepper()
        one = stepper.step({"audio": hop, "spk_emb": np.full((1, SPK_DIM), 1.0, dtype=np.float32)})["audio_out"]
        stepper.reset()
        two = stepper.step({"audio": hop, "spk_emb": np.full((1, SPK_DIM), 2.0, dtype=np.float32)})["audio_out"]
        np.testing.assert_allclose(two, 2 * one, rtol=1e-5)


def test_bound_stepper_rejects_missing_and_misshaped_inputs(runtime_models, speech_like):
    emb = np.ones((1, SPK_DIM), dtype=np.float32)
    with load_engine(runtime_models / "tse_step.onnx") as engine:
        with pytest.raises(BackendError, match="spk_emb"):
            engine.create_stepper().step({"audio": speech_like[None, :CHUNK]})
        with pytest.raises(BackendError, match="audio of shape"):
            engine.create_stepper().step({"audio": speech_like[None, :CHUNK + 1], "spk_emb": emb})


def test_graphs_with_dynamic_shapes_get_the_host_stepper(runtime_models):
    with load_engine(runtime_models / "tse_offline.onnx") as engine:
        assert isinstance(engine.create_stepper(), HostStepper)
