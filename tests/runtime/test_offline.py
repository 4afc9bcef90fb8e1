"""Streaming equals offline evaluation on the real exported graphs (toy TSE/SER checkpoints, silero VAD)."""
import numpy as np
import pytest

from emotrt.runtime.offline import evaluate_offline
from emotrt.runtime.pipeline import Pipeline, PipelineConfig
from emotrt.runtime.tables import VectorTable


@pytest.fixture(scope="module")
def exported_bundle(toy_export, tmp_path_factory):
    """A bundle of what `emotrt export` wrote for the toy checkpoints, with one speaker enrolled."""
    from emotrt.devices.bundle_writer import collect_models, write_bundle
    from emotrt.runtime.backends import load_engine

    out, _ = toy_export
    root = tmp_path_factory.mktemp("exported")
    rng = np.random.default_rng(0)
    with load_engine(out / "ser.onnx") as ser, load_engine(out / "tse_step.onnx") as tse:
        d_model, spk_dim = ser.contract.d_model, tse.contract.spk_dim
    VectorTable(root / "env", kind="environment", dim=d_model).add("busy_cafe", rng.normal(size=d_model))
    VectorTable(root / "speakers", kind="speaker", dim=spk_dim).add("alice", rng.normal(size=spk_dim))
    (root / "testvectors").mkdir()
    return write_bundle(root / "bundle", collect_models(out), root / "env", root / "testvectors",
                        speakers_dir=root / "speakers")


def test_streaming_equals_offline_on_exported_graphs(exported_bundle, spoken):
    audio, rate = spoken, 16000
    config = PipelineConfig(ser_hop_s=0.25)
    with Pipeline.from_bundle(exported_bundle, backend="onnxruntime", config=config) as pipeline:
        assert pipeline.tse_offline is not None
        environment = pipeline.environments.names()[0]
        stream = pipeline.create_stream("alice", environment)
        for i in range(0, audio.shape[0], 1000):
            stream.accept_waveform(rate, audio[i:i + 1000])
        stream.input_finished()
        streamed = list(stream.results())
        offline = evaluate_offline(pipeline, rate, audio, "alice", environment)
        vad_kind = stream.vad_kind
    assert vad_kind == ("silero" if "vad" in pipeline.bundle.models else "energy")
    assert [r.end for r in streamed] == [r.end for r in offline] and len(streamed) > 4
    assert [r.speech for r in streamed] == [r.speech for r in offline]
    pairs = [(s, o) for s, o in zip(streamed, offline) if s.speech]
    assert pairs and len(pairs) < len(streamed), "speech windows and silent ones"
    for s, o in pairs:
        np.testing.assert_allclose(s.raw, o.raw, atol=1e-3)
        np.testing.assert_allclose(s.avd, o.avd, atol=1e-3)


def test_a_bundle_vad_is_not_loaded_when_the_config_declines_it(exported_bundle):
    from emotrt.runtime.vad import VadConfig

    config = PipelineConfig(vad=VadConfig(use_model=False))
    with Pipeline.from_bundle(exported_bundle, backend="onnxruntime", config=config) as pipeline:
        if "vad" not in pipeline.bundle.models:
            pytest.skip("silero-vad is not installed, so the export carries no VAD graph")
        assert pipeline.vad is None
        assert pipeline.create_stream("alice", pipeline.environments.names()[0]).vad_kind == "energy"
