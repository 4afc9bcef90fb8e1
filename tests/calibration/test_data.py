import numpy as np
import pytest

from emotrt.calibration.data import (
    CalibrationDataError, CalibrationSet, audio_feeds, feeds_sha256, fit_length, mix_at, ser_feeds, span_levels,
    stream_tse_step, tse_step_feeds,
)
from emotrt.runtime.backends import load_engine


def feed(value=0.0):
    return {"x": np.full((1, 4), value, np.float32)}


def test_empty_set_is_refused():
    with pytest.raises(CalibrationDataError, match="at least 8 feeds, found 0"):
        CalibrationSet.from_feeds([], model="ser")


def test_too_small_set_is_refused():
    with pytest.raises(CalibrationDataError, match="found 3"):
        CalibrationSet.from_feeds([feed()] * 3, model="ser")


def test_feeds_of_different_shapes_are_refused():
    feeds = [feed()] * 8 + [{"x": np.zeros((1, 5), np.float32)}]
    with pytest.raises(CalibrationDataError, match="feed 8"):
        CalibrationSet.from_feeds(feeds, model="ser")


def test_hash_is_stable_and_sees_every_value():
    feeds = [feed(i) for i in range(8)]
    assert CalibrationSet.from_feeds(feeds, "m").sha256 == feeds_sha256([feed(i) for i in range(8)])
    changed = [feed(i) for i in range(8)]
    changed[5]["x"][0, 2] = np.nextafter(np.float32(5), np.float32(6))
    assert feeds_sha256(changed) != feeds_sha256(feeds)


def test_reader_is_an_ort_calibration_reader():
    reader = CalibrationSet.from_feeds([feed(i) for i in range(8)], "m").reader()
    got = [reader.get_next() for _ in range(9)]
    assert got[-1] is None and float(got[7]["x"][0, 0]) == 7.0
    reader.rewind()
    assert float(reader.get_next()["x"][0, 0]) == 0.0


def test_levels_span_up_to_full_scale():
    rng = np.random.default_rng(0)
    out = span_levels([rng.standard_normal(100) * 0.01 for _ in range(5)], low=0.1, high=0.99)
    assert np.allclose([np.abs(s).max() for s in out], np.linspace(0.1, 0.99, 5), atol=1e-6)


def test_mix_sets_interferer_and_noise_power_ratios():
    rng = np.random.default_rng(1)
    target, other, noise = (rng.standard_normal(16000) for _ in range(3))
    mixed = mix_at(target, np.zeros_like(other), noise, sir_db=0.0, snr_db=10.0)
    assert 10 * np.log10(np.mean(target ** 2) / np.mean((mixed - target) ** 2)) == pytest.approx(10.0, abs=1e-3)


def test_fit_length_crops_and_pads():
    assert fit_length(np.ones(10), 4).shape == (4,)
    assert fit_length(np.ones(2), 4).tolist() == [1, 1, 0, 0]
    assert fit_length(np.arange(1, 8), 3, centred=True).tolist() == [3, 4, 5]
    assert fit_length(np.ones(2), 5, centred=True).tolist() == [0, 1, 1, 0, 0]


def test_tse_step_states_come_from_streaming_not_zeros(calib_export):
    rng = np.random.default_rng(2)
    audio = (0.3 * rng.standard_normal(160 * 6)).astype(np.float32)
    emb = rng.standard_normal((1, 16)).astype(np.float32)
    with load_engine(calib_export / "tse_step.onnx") as engine:
        contract = engine.contract
        steps = list(stream_tse_step(engine, contract, audio, emb))
        feeds = list(tse_step_feeds(engine, contract, [(audio, emb)], every=2))
    assert len(steps) == 6 and len(feeds) == 3
    for spec in contract.states:
        assert np.array_equal(steps[3][0][spec.input_name], steps[2][1][spec.output_name])
        assert np.abs(feeds[1][spec.input_name]).max() > 0
    assert np.array_equal(feeds[1]["audio"], audio[None, 320:480])


def test_ser_and_audio_feeds_have_one_shape(calib_export):
    with load_engine(calib_export / "ser.onnx") as engine:
        feeds = list(ser_feeds(engine.contract, [(np.ones(10), np.ones(32)), (np.ones(9000), np.ones(32))]))
    assert {f["audio"].shape for f in feeds} == {(1, 4000)}
    assert [f["audio"].shape for f in audio_feeds([{"audio": np.ones(5)}, {"audio": np.ones(50)}], 20)] == [(1, 20)] * 2
