import subprocess
import sys
import threading

import numpy as np
import pytest

from emotrt.runtime.audio import MicSource, StdinSource, check_input_rate, list_input_devices, resolve_input_device
from emotrt.runtime.errors import AudioError, DependencyError
from emotrt.runtime.runner import Runner

NO_PORTAUDIO = r"""
import sys
class NoPortAudio:
    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
sys.meta_path.insert(0, NoPortAudio())
from emotrt.runtime.audio import list_input_devices
from emotrt.runtime.errors import DependencyError
try:
    list_input_devices()
except DependencyError as exc:
    print(exc)
"""


def test_missing_portaudio_library_is_a_dependency_error():
    proc = subprocess.run([sys.executable, "-c", NO_PORTAUDIO], capture_output=True, text=True, timeout=60)
    assert "PortAudio library is missing" in proc.stdout and "apt-get install libportaudio2" in proc.stdout


def test_no_input_device_is_one_clear_error(tmp_path):
    """No sound card here and PulseAudio unreachable: PortAudio sees no input at all."""
    code = ("from emotrt.runtime.audio import resolve_input_device\n"
            "from emotrt.runtime.errors import AudioError\n"
            "try:\n    resolve_input_device(None)\nexcept AudioError as exc:\n    print(exc)\n")
    env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert "no input device" in proc.stdout and "emotrt audio-devices" in proc.stdout


def test_stdin_rejects_unknown_format_and_bad_rate():
    with pytest.raises(AudioError, match="unknown PCM format 'u8'"):
        StdinSource(16000, sample_format="u8")
    with pytest.raises(AudioError, match="positive --rate"):
        StdinSource(0)


@pytest.mark.audio
def test_pulse_microphone_is_listed_and_resolved_by_name_and_index(pulse_mic):
    devices = list_input_devices()
    assert any(d.is_default for d in devices)
    by_name = resolve_input_device("pulse")
    assert resolve_input_device(str(by_name.index)) == by_name
    assert resolve_input_device(None).is_default


@pytest.mark.audio
def test_device_name_matching_nothing_lists_the_inputs(pulse_mic):
    with pytest.raises(AudioError, match=r"no input device matching 'usb-array' \(inputs: .*pulse") as exc:
        resolve_input_device("usb-array")
    assert "emotrt audio-devices" in exc.value.hint
    with pytest.raises(AudioError, match="no input device with index 999"):
        resolve_input_device(999)


@pytest.mark.audio
def test_sample_rate_the_device_refuses(pulse_mic):
    with pytest.raises(AudioError, match=r"refuses 1 Hz") as exc:
        MicSource("pulse", sample_rate=1)
    assert "omit --rate" in exc.value.hint
    check_input_rate(resolve_input_device("pulse"), 16000)


@pytest.mark.audio
def test_microphone_run_matches_the_file_run(pulse_mic, steady_wav, make_pipeline):
    """Tolerance: the capture starts at an unknown offset, so compare per-class medians of the raw
    posteriors over speech windows (0.03) and the number of speech windows (within 2)."""
    import soundfile as sf

    from emotrt.runtime.offline import evaluate_offline

    pipeline = make_pipeline()
    audio, rate = sf.read(str(steady_wav), dtype="float32")
    offline = [r for r in evaluate_offline(pipeline, rate, audio, "alice", "busy_cafe") if r.speech]
    live = []
    source = MicSource("pulse", sample_rate=16000)
    runner = Runner(pipeline, pipeline.create_stream("alice", "busy_cafe"), source, sinks=[live.append])
    player = threading.Timer(0.5, lambda: pulse_mic.play(steady_wav).wait())
    player.start()
    summary = runner.run(handle_signals=False, max_seconds=6.0)
    player.join()
    spoken = [r for r in live if r.speech]
    assert summary.overruns == 0 and summary.audio_seconds >= 5.9
    assert abs(len(spoken) - len(offline)) <= 2, (len(spoken), len(offline))
    np.testing.assert_allclose(np.median([r.raw for r in spoken], axis=0),
                               np.median([r.raw for r in offline], axis=0), atol=0.03)
