"""espeak-ng speech: 16 kHz float32, styles differ in loudness and length, the warp changes speed."""
import numpy as np
import pytest

from emotrt.runtime.errors import DependencyError
from emotrt.training.corpus.espeak import find_espeak, speak
from emotrt.training.corpus.speakers import Speaker
from emotrt.training.corpus.styles import STYLES

TEXT = "The museum guide carried a warm blanket by the river."


@pytest.fixture(scope="module")
def exe():
    return find_espeak()


def rms(x):
    return float(np.sqrt(np.mean(x ** 2)))


def test_styles_differ_in_loudness_and_rate(exe):
    spk = Speaker("s000", "f", "en-us", "f3", 60, 170, 1.0)
    audio = {name: speak(exe, TEXT, spk, style) for name, style in STYLES.items()}
    assert all(a.dtype == np.float32 and np.max(np.abs(a)) < 1.0 for a in audio.values())
    assert rms(audio["angry"]) > rms(audio["neutral"]) > rms(audio["sad"])
    assert len(audio["sad"]) > len(audio["neutral"]) > len(audio["angry"])


def test_warp_keeps_the_rate_but_changes_the_voice(exe):
    slow = speak(exe, TEXT, Speaker("a", "m", "en-gb", "m3", 40, 170, 0.9), STYLES["neutral"])
    fast = speak(exe, TEXT, Speaker("b", "m", "en-gb", "m3", 40, 170, 1.1), STYLES["neutral"])
    assert abs(len(slow) - len(fast)) / len(slow) < 0.1  # the rate is compensated for the warp
    assert len(slow) != len(fast) or not np.allclose(slow, fast)


def test_espeak_missing_from_a_path_is_a_dependency_error(tmp_path):
    with pytest.raises(DependencyError, match="espeak-ng was not found"):
        find_espeak(str(tmp_path))
