"""Reading any rate/channel count as 16 kHz mono; clear errors for unreadable files."""
import numpy as np
import pytest
import soundfile as sf

from emotrt.runtime.errors import AudioError
from emotrt.training.corpus.audio import read_audio, write_wav


def test_stereo_48k_becomes_16k_mono(tmp_path):
    t = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 300 * t), np.zeros_like(t)], axis=1) * 0.5
    sf.write(str(tmp_path / "a.wav"), stereo, 48000)
    audio = read_audio(tmp_path / "a.wav")
    assert audio.shape == (16000,) and audio.dtype == np.float32
    assert np.max(np.abs(audio)) == pytest.approx(0.25, abs=0.01)


def test_write_clips_and_is_pcm16(tmp_path):
    path = write_wav(tmp_path / "b.wav", np.array([2.0, -2.0, 0.5], dtype=np.float32))
    assert sf.info(str(path)).subtype == "PCM_16"
    np.testing.assert_allclose(sf.read(str(path))[0], [1.0, -1.0, 0.5], atol=1e-4)


def test_unreadable_file_is_an_audio_error(tmp_path):
    (tmp_path / "c.wav").write_text("not audio")
    with pytest.raises(AudioError, match="cannot read audio"):
        read_audio(tmp_path / "c.wav")
