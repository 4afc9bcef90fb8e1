import threading

import numpy as np
import pytest
import soundfile as sf

from emotrt.runtime.capture import record
from emotrt.runtime.errors import AudioError


def test_non_positive_length_is_refused():
    with pytest.raises(AudioError, match="must be positive"):
        record(0)


@pytest.mark.audio
def test_records_what_the_microphone_hears(pulse_mic, steady_wav):
    player = threading.Timer(0.3, lambda: pulse_mic.play(steady_wav).wait())
    player.start()
    samples, rate = record(4.5, device="pulse", sample_rate=16000)
    player.join()
    assert rate == 16000 and samples.shape == (72000,)
    played, _ = sf.read(str(steady_wav), dtype="float32")
    loud = np.abs(samples) > 0.05
    assert loud.sum() > 0.8 * (np.abs(played) > 0.05).sum()
    assert np.abs(samples).max() == pytest.approx(np.abs(played).max(), abs=0.02)


def test_a_failed_write_leaves_no_part_file(tmp_path, monkeypatch):
    from emotrt.runtime import capture

    monkeypatch.setattr(capture, "record", lambda seconds, device=None, channel=None: (np.zeros(1600, np.float32), 16000))
    monkeypatch.setattr(sf, "write", lambda path, *a, **k: (open(path, "wb").write(b"RIFF"), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        capture.record_wav(tmp_path / "alice.wav", 0.1, 16000)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setattr(capture, "record", lambda seconds, device=None, channel=None: (np.zeros(1600, np.float32), 16000))
    assert capture.record_wav(tmp_path / "alice.wav", 0.1, 16000).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["alice.wav"]
