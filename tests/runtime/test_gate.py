"""The do-no-harm TSE gate: thresholds, decisions, and the gate in streams, offline evaluation and extraction."""
import math

import numpy as np
import onnx
import pytest

from emotrt.runtime.backends import load_engine
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.gate import (
    ABSENT, BLEND, BYPASSED, PRESENCE_FEATURES, USED, GateFeatures, GateThresholds, TseGate, decide, gate_audio, resolve_mode,
    thresholds_from_contract, window_features)
from emotrt.runtime.offline import evaluate_offline, gated_signal
from emotrt.runtime.pipeline import Pipeline, PipelineConfig
from emotrt.runtime.tables import VectorTable
from tests.runtime import graphs

T = GateThresholds(use_margin=0.2, bypass_margin=0.0, present_similarity=0.8, present_ratio_db=-20.0,
                   clean_gain_db=3.0, use_weight=1.0, noise_norm=2.0, noise_weight=0.25)


def test_thresholds_round_trip_through_json_with_switched_off_tests():
    t = GateThresholds(use_margin=0.1, bypass_margin=-0.1, present_similarity=0.3)
    data = t.to_dict()
    assert data["present_ratio_db"] is None and data["noise_norm"] is None  # -inf / inf: that test is off
    assert GateThresholds.from_dict(data) == t and math.isinf(GateThresholds.from_dict(data).noise_norm)
    assert GateThresholds.from_dict(T.to_dict()) == T


@pytest.mark.parametrize("fields, message", [
    (dict(use_margin=0.0, bypass_margin=0.1, present_similarity=0.0), "bypass_margin"),
    (dict(use_margin=0.1, bypass_margin=0.0, present_similarity=2.0), "present_similarity"),
    (dict(use_margin=0.1, bypass_margin=0.0, present_similarity=0.0, use_weight=1.5), "use_weight"),
])
def test_invalid_thresholds_name_the_field(fields, message):
    with pytest.raises(ConfigError, match=message):
        GateThresholds(**fields)


def test_presence_model_decides_presence_and_needs_one_weight_per_feature():
    features = GateFeatures(0.9, 0.5, 0.0, 1.0)  # present by T's similarity threshold
    weights = (0.0, 1.0) + (0.0,) * (len(PRESENCE_FEATURES) - 2)  # the mixture's similarity alone
    model = GateThresholds.from_dict(dict(T.to_dict(), presence_weights=list(weights), presence_bias=-0.6))
    assert decide(features, T).present and decide(features, model).mode == ABSENT
    assert decide(GateFeatures(0.9, 0.7, 0.0, 1.0), model).present
    with pytest.raises(ConfigError, match="presence_weights has 2 values"):
        GateThresholds.from_dict(dict(T.to_dict(), presence_weights=[1.0, 2.0]))


def test_unknown_or_missing_threshold_keys_are_errors():
    with pytest.raises(ConfigError, match="unknown keys surprise"):
        GateThresholds.from_dict(dict(T.to_dict(), surprise=1))
    with pytest.raises(ConfigError, match="incomplete"):
        GateThresholds.from_dict({"use_margin": 0.1})


@pytest.mark.parametrize("features, mode, weight", [
    (GateFeatures(0.9, 0.5, 0.0, 1.0), USED, 1.0),          # the extraction sounds much more like the speaker
    (GateFeatures(0.9, 0.95, 0.0, 1.0), BYPASSED, 0.0),     # it sounds less like them: leave the mixture
    (GateFeatures(0.9, 0.8, 0.0, 1.0), BLEND, 0.5),         # in between: a linear ramp
    (GateFeatures(0.9, 0.5, 0.0, 3.0), BLEND, 0.25),        # noise-dominated window: the noise weight
    (GateFeatures(0.7, 0.6, 0.0, 1.0), ABSENT, 0.0),        # neither window sounds like the speaker
    (GateFeatures(0.9, 0.5, -30.0, 1.0), ABSENT, 0.0),      # the TSE suppressed the window
])
def test_decisions(features, mode, weight):
    decision = decide(features, T)
    assert decision.mode == mode and decision.weight == pytest.approx(weight)
    assert decision.present == (mode != ABSENT)


def test_blend_mixes_the_two_windows():
    extracted, mixture = np.ones((1, 4), np.float32), np.zeros((1, 4), np.float32)
    blended = gate_audio(decide(GateFeatures(0.9, 0.8, 0.0, 1.0), T), extracted, mixture)
    assert np.allclose(blended, 0.5) and blended.dtype == np.float32
    assert gate_audio(decide(GateFeatures(0.9, 0.5, 0.0, 1.0), T), extracted, mixture) is extracted


def test_window_features_measure_against_the_tse_scale(tmp_path):
    spk = np.ones(graphs.SPK_DIM, np.float32)
    with _enroll_engine(tmp_path) as engine:
        def embed(audio):
            return engine.run({"audio": audio})["spk_emb"]

        noise = np.random.default_rng(0).normal(0, 0.1, (1, 4000)).astype(np.float32)
        features = window_features(noise * 2.0, noise, spk, embed, clean_gain_db=20 * math.log10(2.0))
    assert features.ratio_db == pytest.approx(0.0, abs=1e-4)  # the TSE passed it through at its usual gain
    assert features.sim_extracted == pytest.approx(features.sim_mixture, abs=1e-5) and features.sim_mixture > 0.99
    assert features.residual_norm < 1e-3  # nothing was removed


def _enroll_engine(tmp_path):
    path = tmp_path / "enroll.onnx"
    onnx.save(graphs.enroll(), str(path))
    return load_engine(path)


def test_modes_off_and_on_need_no_thresholds():
    extracted, mixture = np.full((1, 4), 2.0, np.float32), np.ones((1, 4), np.float32)
    audio, fields = TseGate("off", None, None, None)(extracted, mixture)
    assert audio is mixture and fields == {"tse": BYPASSED, "speaker_present": None}
    audio, fields = TseGate("on", None, None, None)(extracted, mixture)
    assert audio is extracted and fields["tse"] == USED
    with pytest.raises(ConfigError, match="gated TSE needs"):
        TseGate("gated", None, None, None)


def test_mode_resolution():
    assert resolve_mode("auto", None) == "on" and resolve_mode("auto", T) == "gated"
    assert resolve_mode("off", T) == "off"
    with pytest.raises(ConfigError, match="no gate thresholds"):
        resolve_mode("gated", None)
    with pytest.raises(ConfigError, match="tse='sometimes'"):
        PipelineConfig(tse="sometimes")


# -- in the pipeline: a tse_step graph carrying thresholds and a real (tiny) enroll graph ----------------------

GATE = GateThresholds(use_margin=0.05, bypass_margin=-0.05, present_similarity=0.9, clean_gain_db=0.0)


@pytest.fixture
def gated_pipeline(runtime_models, tmp_path):
    made = []

    def make(tse="auto", gate=GATE, with_enroll=True):
        onnx.save(graphs.tse_step(gate=gate.to_dict() if gate else None), str(tmp_path / "tse_step.onnx"))
        onnx.save(graphs.enroll(), str(tmp_path / "enroll.onnx"))
        pipeline = Pipeline(
            load_engine(tmp_path / "tse_step.onnx"), load_engine(runtime_models / "ser.onnx"),
            VectorTable(runtime_models / "env", kind="environment"), VectorTable(runtime_models / "speakers", kind="speaker"),
            tse_offline=load_engine(runtime_models / "tse_offline.onnx"), config=PipelineConfig(tse=tse),
            enroll=load_engine(tmp_path / "enroll.onnx") if with_enroll else None)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()


def _stream(pipeline, audio):
    stream = pipeline.create_stream(speaker="alice", environment="busy_cafe")
    stream.accept_waveform(graphs.RATE, audio)
    stream.input_finished()
    return list(stream.results())


def _noise(seconds=2.0, seed=0):
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * graphs.RATE)).astype(np.float32)


def _tone(seconds=2.0, hz=1000.0):
    t = np.arange(int(seconds * graphs.RATE)) / graphs.RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_bundle_thresholds_gate_the_stream_and_offline_agrees(gated_pipeline):
    pipeline = gated_pipeline()
    assert pipeline.tse_mode == "gated" and thresholds_from_contract(pipeline.tse.contract) == GATE
    present = _stream(pipeline, _noise())  # flat spectrum: sounds like alice's constant embedding
    assert present and all(r.speech and r.speaker_present and r.emotion and r.tse in (USED, BYPASSED, BLEND)
                           for r in present)
    absent = _stream(pipeline, _tone())  # a pure tone: not alice, whatever it is
    assert absent and all(r.speech and r.speaker_present is False and r.emotion is None and r.tse is None
                          for r in absent)
    assert '"speaker_present": false' in absent[0].to_json()
    offline = evaluate_offline(pipeline, graphs.RATE, _noise(), "alice", "busy_cafe")
    assert [(r.tse, r.speaker_present, r.emotion) for r in offline] == [(r.tse, r.speaker_present, r.emotion) for r in present]


def test_auto_without_thresholds_or_enroll_runs_the_tse_ungated(gated_pipeline):
    assert gated_pipeline(gate=None).tse_mode == "on"
    assert gated_pipeline(with_enroll=False).tse_mode == "on"
    results = _stream(gated_pipeline(gate=None), _tone())
    assert results and all(r.tse == USED and r.speaker_present is None and r.emotion for r in results)
    with pytest.raises(ConfigError, match="no gate thresholds"):
        gated_pipeline(tse="gated", gate=None)


def test_tse_off_feeds_the_mixture(gated_pipeline):
    off = _stream(gated_pipeline(tse="off"), _tone())
    assert off and all(r.tse == BYPASSED for r in off)
    reference = gated_pipeline(tse="off").ser.run  # the SER on the raw window gives the same raw posteriors
    window = _tone()[None, -graphs.WINDOW:]
    token = gated_pipeline(tse="off").environment_token("busy_cafe")[None, :]
    from emotrt.runtime.results import softmax

    expected = softmax(reference({"audio": window, "env_token": token})["logits"][0].astype(np.float64))
    assert np.allclose(off[-1].raw, expected, atol=1e-6)


def test_gated_signal_is_aligned_and_silent_where_the_speaker_is_absent(gated_pipeline):
    pipeline = gated_pipeline()
    audio = np.concatenate([_noise(1.5), _tone(1.5)])
    raw = gated_signal(pipeline, graphs.RATE, audio, "alice", gate=False)
    assert raw.shape == audio.shape
    assert np.allclose(raw, graphs.reference_tse(audio, np.ones(graphs.SPK_DIM)), atol=1e-5)  # latency 0 here
    fed = gated_signal(pipeline, graphs.RATE, audio, "alice")
    assert fed.shape == audio.shape
    assert np.abs(fed[: graphs.WINDOW]).max() > 0.01  # noise: alice present, something is fed
    assert np.abs(fed[-graphs.WINDOW // 2:]).max() == 0.0  # the tone alone: nothing for alice
    off = gated_signal(gated_pipeline(tse="off"), graphs.RATE, audio, "alice")
    assert np.array_equal(off, audio)


def test_extract_file_writes_float_wav_at_the_model_rate(gated_pipeline, tmp_path):
    import soundfile as sf

    from emotrt.runtime.offline import extract_file

    audio = np.concatenate([_noise(1.5), _tone(1.5)])
    sf.write(str(tmp_path / "in.wav"), audio, graphs.RATE)
    summary = extract_file(gated_pipeline(), "alice", tmp_path / "in.wav", tmp_path / "out.wav")
    out, rate = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    assert rate == graphs.RATE and out.shape == audio.shape and summary["tse"] == "gated"
    assert 0.1 < summary["silent"] < 0.9  # the tone half is silent for alice
