"""A real PulseAudio null-sink microphone for tests (REFERENCE.md "Test beds"); a pytest plugin.

pulseaudio runs in the foreground of its own process with a private XDG_RUNTIME_DIR; a
null sink ``vsink`` is remapped to the source ``vmic`` (the default input), and whatever
``play`` sends to the sink is what the "microphone" hears. It is stopped by its PID.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest


class PulseMic:
    """Start/stop the server; ``env`` makes child processes (and PortAudio) use it."""

    def __init__(self, rate: int = 16000) -> None:
        self.rate = rate
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="emotrt-pulse-"))
        self.env: Dict[str, str] = dict(os.environ, XDG_RUNTIME_DIR=str(self.runtime_dir),
                                        PULSE_SERVER="unix:{}/pulse/native".format(self.runtime_dir))
        self._procs: List[subprocess.Popen] = []

    def start(self) -> "PulseMic":
        server = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--system=false", "--exit-idle-time=-1", "-n", "--use-pid-file=no",
             "--load=module-native-protocol-unix"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._procs.append(server)
        socket = self.runtime_dir / "pulse" / "native"
        deadline = time.monotonic() + 10
        while not socket.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("pulseaudio did not start (exit code {})".format(server.returncode))
            time.sleep(0.05)
        self.plug()
        return self

    def plug(self) -> None:
        """Add the sink and the microphone that hears it (the default input)."""
        for args in (
            ["load-module", "module-null-sink", "sink_name=vsink", "rate={}".format(self.rate), "channels=1"],
            ["load-module", "module-remap-source", "master=vsink.monitor", "source_name=vmic"],
            ["set-default-source", "vmic"],
        ):
            self._pactl(args)
        # An idle null sink can deliver its first callback ~2 s late; a reader keeps it running.
        self._procs.append(subprocess.Popen(["parec", "-d", "vsink.monitor", "--latency-msec=10"], env=self.env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def unplug(self) -> None:
        """Remove the microphone and its sink, as a USB microphone pulled out: PulseAudio has no source left to
        move a recording to (removing only vmic moves it to vsink.monitor), so a reader's stream ends."""
        modules = self._pactl(["list", "short", "modules"]).splitlines()
        for name in ("module-remap-source", "module-null-sink"):
            self._pactl(["unload-module", next(line.split()[0] for line in modules if name in line)])

    def _pactl(self, args: List[str]) -> str:
        return subprocess.run(["pactl"] + args, env=self.env, check=True, capture_output=True, text=True, timeout=10).stdout

    def play(self, wav: Path) -> subprocess.Popen:
        """Play ``wav`` into the sink (returns at once; wait on the process to know it ended)."""
        return subprocess.Popen(["paplay", "-d", "vsink", str(wav)], env=self.env)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._procs = []
        shutil.rmtree(str(self.runtime_dir), ignore_errors=True)


def missing() -> Optional[str]:
    """Why the null-sink microphone cannot run here, or None."""
    absent = [tool for tool in ("pulseaudio", "pactl", "paplay", "parec") if shutil.which(tool) is None]
    return "needs {} (scripts/setup-system.sh installs pulseaudio)".format(", ".join(absent)) if absent else None


@pytest.fixture(scope="session")
def pulse_mic():
    """A running PulseAudio null-sink microphone; PortAudio in this process is re-initialised to see it."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    mic = PulseMic().start()
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
