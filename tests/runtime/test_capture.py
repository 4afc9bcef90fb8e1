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
