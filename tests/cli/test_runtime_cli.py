"""``emotrt audio-devices`` and ``emotrt run`` argument errors (the runs themselves: tests/runtime)."""
import subprocess
import sys

import pytest


def emotrt(*args, env=None):
    return subprocess.run([sys.executable, "-m", "emotrt", *args], capture_output=True, text=True, env=env, timeout=120)


def test_audio_devices_without_any_microphone(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent"}
    proc = emotrt("audio-devices", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no input device" in proc.stdout


@pytest.mark.audio
def test_audio_devices_lists_the_pulse_microphone(pulse_mic):
    import json

    proc = emotrt("audio-devices", "--json", env=pulse_mic.env)
    assert proc.returncode == 0, proc.stderr
    devices = json.loads(proc.stdout)
    assert "pulse" in [d["name"] for d in devices] and any(d["is_default"] for d in devices)


def test_run_needs_exactly_one_input(tmp_path):
    proc = emotrt("run", str(tmp_path), "-s", "alice", "-e", "busy_cafe", "--stdin", "--file", "x.wav")
    assert proc.returncode == 2
    assert "error: give exactly one audio input, found --file, --stdin" in proc.stderr
