"""Channel augmentation (gain, microphone, room, self-noise) and the held-out eval conditions."""
import doctest

import numpy as np
import pytest
import torch

from emotrt.runtime.errors import ConfigError
from emotrt.training import augment as augment_module
from emotrt.training.augment import (ChannelAugment, ChannelConfig, RoomBank, apply_gain_db, apply_sos, biquad,
                                     random_mic, rms_db)
from emotrt.training.channels import CHANNELS, TARGET_CHANNELS, conditions, gain_name


def _tone(freq, seconds=1.0, amp=0.1):
    t = np.arange(int(16000 * seconds)) / 16000.0
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_docstring_example_runs():
    assert doctest.testmod(augment_module).failed == 0


def test_gain_scales_in_db_and_clips_at_full_scale():
    x = _tone(440, amp=0.5)
    assert rms_db(apply_gain_db(x, -20.0)) == pytest.approx(rms_db(x) - 20.0, abs=1e-3)
    loud = apply_gain_db(x, 12.0)
    assert float(np.abs(loud).max()) == 1.0 and loud.dtype == np.float32


@pytest.mark.parametrize("kind, freq, passes, stops", [
    ("highpass", 300.0, 3000.0, 50.0),
    ("lowpass", 1000.0, 100.0, 6000.0),
])
def test_biquads_pass_and_stop_where_they_should(kind, freq, passes, stops):
    sos = biquad(kind, freq)
    assert rms_db(apply_sos(_tone(passes), sos)[4000:]) == pytest.approx(rms_db(_tone(passes)), abs=1.0)
    assert rms_db(apply_sos(_tone(stops), sos)[4000:]) < rms_db(_tone(stops)) - 9.0


@pytest.mark.parametrize("kind", ["lowshelf", "highshelf", "peak"])
def test_shelves_and_peaks_reach_their_gain(kind):
    sos = biquad(kind, 1000.0, q=1.0, gain_db=6.0)
    probe = {"lowshelf": 60.0, "highshelf": 7000.0, "peak": 1000.0}[kind]
    assert rms_db(apply_sos(_tone(probe), sos)[4000:]) - rms_db(_tone(probe)) == pytest.approx(6.0, abs=0.5)


def test_random_mics_are_stable_seeded_filters():
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    for seed in range(20):
        sos = random_mic(np.random.default_rng(seed))
        assert np.all(np.abs(np.roots([1.0, *sos[0, 4:]])) < 1.0) if len(sos) else True
        y = apply_sos(x, sos)
        assert np.all(np.isfinite(y)) and float(np.abs(y).max()) < 10.0
    assert np.array_equal(random_mic(np.random.default_rng(3)), random_mic(np.random.default_rng(3)))


def test_room_bank_is_seeded_and_keeps_the_direct_path_at_the_start():
    a, b = RoomBank(3, seed=5), RoomBank(3, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.rirs, b.rirs))
    for rir in a.rirs:
        assert int(np.argmax(np.abs(rir))) <= 40 and float(np.abs(rir).max()) == pytest.approx(1.0)


def test_channel_augment_is_seeded_keeps_length_and_spans_the_gain_range():
    aug = ChannelAugment(ChannelConfig(p_room=0.5, rooms=4, p_mic=0.5, p_gain=1.0, p_noise_floor=0.5))
    x = _tone(300, amp=0.05)
    outs = [aug(x, np.random.default_rng(s)) for s in range(40)]
    assert all(o.shape == x.shape and o.dtype == np.float32 and np.abs(o).max() <= 1.0 for o in outs)
    assert np.array_equal(aug(x, np.random.default_rng(7)), outs[7])
    levels = [rms_db(o) - rms_db(x) for o in outs]
    assert min(levels) < -20.0 and max(levels) > 0.0


def test_inactive_config_and_bad_settings():
    assert not ChannelConfig().active
    with pytest.raises(ConfigError, match="p_mic"):
        ChannelConfig(p_mic=1.5)
    with pytest.raises(ConfigError, match="gain_db"):
        ChannelConfig(gain_db=(6.0, -30.0))


def test_eval_conditions_keep_level_for_channels_and_change_it_for_gains():
    x = np.random.default_rng(1).standard_normal(32000).astype(np.float32) * 0.05
    conds = conditions()
    assert set(TARGET_CHANNELS) <= set(CHANNELS) <= set(conds)
    for name in CHANNELS:
        y = conds[name].apply(x)
        assert y.shape == x.shape and rms_db(y) == pytest.approx(rms_db(x), abs=0.01)
        assert not np.allclose(y, x, atol=1e-3)
    assert rms_db(conds[gain_name(-20.0)].apply(x)) == pytest.approx(rms_db(x) - 20.0, abs=0.01)
    with pytest.raises(ConfigError, match="unknown channel"):
        conditions(channels=("no_such_mic",))


def test_augmented_ser_task_batches_change_level_and_are_seeded(ser_corpus, wordllama):
    from emotrt.training.ser import SERConfig
    from emotrt.training.ser_task import SERDataConfig, SERTask

    from .conftest import TINY_SER

    data = SERDataConfig(corpus=str(ser_corpus), batch_size=8, valid_size=8)
    plain = SERTask(SERConfig(**TINY_SER), data, text_encoder=wordllama)
    task = SERTask(SERConfig(**TINY_SER), data, text_encoder=wordllama,
                   augment=ChannelConfig(p_room=0.5, rooms=2, p_mic=0.5, p_gain=1.0))
    a, b = next(task.train_batches(5)), next(task.train_batches(5))
    assert torch.equal(a["audio"], b["audio"])
    ref = next(plain.train_batches(5))
    assert torch.equal(a["label"], ref["label"]) and not torch.allclose(a["audio"], ref["audio"])
    assert not torch.allclose(task.valid["audio"], plain.valid["audio"])
    assert task.checkpoint_config(task.build_model())["augment"]["p_gain"] == 1.0


def test_a_level_referenced_ser_hears_the_same_windows_at_any_input_gain(ser_corpus, wordllama):
    """The enrollment goes through the same device as the window, so the drawn gain cancels."""
    from emotrt.training.ser import SERConfig
    from emotrt.training.ser_task import SERDataConfig, SERTask

    from .conftest import TINY_SER

    data = SERDataConfig(corpus=str(ser_corpus), batch_size=8, valid_size=8)
    referenced = SERConfig(**dict(TINY_SER, level_reference="enrollment"))
    quiet = SERTask(referenced, data, text_encoder=wordllama, augment=ChannelConfig(p_gain=1.0, gain_db=(-20.0, -20.0)))
    unity = SERTask(referenced, data, text_encoder=wordllama, augment=ChannelConfig(p_gain=1.0, gain_db=(0.0, 0.0)))
    plain = SERTask(SERConfig(**TINY_SER), data, text_encoder=wordllama, augment=ChannelConfig(p_gain=1.0, gain_db=(-20.0, -20.0)))
    torch.testing.assert_close(quiet.valid["audio"], unity.valid["audio"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(next(quiet.train_batches(3))["audio"], next(unity.train_batches(3))["audio"], rtol=1e-4, atol=1e-6)
    assert not torch.allclose(plain.valid["audio"], unity.valid["audio"], rtol=1e-2)


def test_channel_draws_put_two_signals_through_one_device():
    x = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.05
    full = ChannelAugment(ChannelConfig(p_room=1.0, rooms=2, p_mic=1.0, p_gain=1.0, p_noise_floor=1.0))
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    np.testing.assert_array_equal(full(x, rng_a), full.draw(rng_b).apply(x, rng_b))  # same draws as before the split
    device = ChannelAugment(ChannelConfig(p_gain=1.0, gain_db=(-30.0, 0.0))).draw(np.random.default_rng(1))
    y = x[::-1].copy() * 3
    gain = np.float32(10 ** (device.gain_db / 20))
    np.testing.assert_allclose(device.apply(x, np.random.default_rng(2)), x * gain, rtol=1e-6)
    np.testing.assert_allclose(device.apply(y, np.random.default_rng(3)), y * gain, rtol=1e-6)
