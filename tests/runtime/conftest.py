"""Runtime fixtures: one session-wide directory of tiny graphs and tables, pipelines built on it."""
import os
from pathlib import Path

import numpy as np
import pytest

from emotrt.runtime.backends import load_engine
from emotrt.runtime.pipeline import Pipeline
from emotrt.runtime.tables import VectorTable
from tests.runtime import graphs


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    return graphs.write_export_dir(tmp_path_factory.mktemp("runtime-export"))


@pytest.fixture
def make_pipeline(export_dir):
    """Factory: a Pipeline from the tiny graphs (closed at teardown)."""
    made = []

    def make(**kwargs) -> Pipeline:
        pipeline = Pipeline(
            load_engine(export_dir / "tse_step.onnx"),
            load_engine(export_dir / "ser.onnx"),
            VectorTable(export_dir / "env", kind="environment"),
            VectorTable(export_dir / "speakers", kind="speaker"),
            **kwargs
        )
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()


@pytest.fixture(scope="session")
def speech_like() -> np.ndarray:
    """1.5 s at 16 kHz: 0.5 s silence, 0.75 s of a modulated harmonic tone, 0.25 s silence (seeded)."""
    rng = np.random.default_rng(3)
    t = np.arange(12000) / graphs.RATE
    voiced = 0.2 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    voiced += 0.02 * rng.normal(size=t.shape)
    out = np.concatenate([np.zeros(8000), voiced, np.zeros(4000)]).astype(np.float32)
    return out


@pytest.fixture(scope="session")
def pulse_mic():
    """A running PulseAudio null-sink microphone; PortAudio in this process is re-initialised to see it."""
    from tests.runtime import pulse

    reason = pulse.missing()
    if reason:
        pytest.skip(reason)
    mic = pulse.PulseMic().start()
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "PULSE_SERVER")}
    os.environ.update({k: mic.env[k] for k in saved})
    import sounddevice

    # PortAudio scans devices when initialised; sounddevice documents _terminate/_initialize to rescan.
    sounddevice._terminate()
    sounddevice._initialize()
    yield mic
    mic.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    sounddevice._terminate()
    sounddevice._initialize()


@pytest.fixture(scope="session")
def steady_wav(tmp_path_factory) -> Path:
    """0.5 s silence, 3 s of a steady noisy tone, 0.5 s silence at 16 kHz PCM16: windows inside look alike."""
    import soundfile as sf

    rng = np.random.default_rng(5)
    t = np.arange(48000) / 16000.0
    tone = 0.25 * np.sin(2 * np.pi * 200 * t) + 0.03 * rng.normal(size=t.shape)
    audio = np.concatenate([np.zeros(8000), tone, np.zeros(8000)])
    path = tmp_path_factory.mktemp("mic") / "steady.wav"
    sf.write(str(path), audio, 16000, subtype="PCM_16")
    return path
