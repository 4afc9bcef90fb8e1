"""Speech from espeak-ng: one subprocess per utterance, warped and resampled to 16 kHz with soxr."""
from __future__ import annotations

import io
import shutil
import subprocess
from typing import Optional
from xml.sax.saxutils import escape

import numpy as np

from emotrt.runtime.errors import DependencyError

from .audio import SAMPLE_RATE
from .speakers import Speaker
from .styles import Style

# espeak-ng peaks near full scale at amplitude 100; a fixed gain keeps the loud styles unclipped
# while preserving the loudness differences between styles.
GAIN = 0.5
INSTALL_HINT = "sudo apt-get install -y espeak-ng, or run `make setup`"


def find_espeak(path: Optional[str] = None) -> str:
    """The espeak-ng executable on ``path`` (default: $PATH), or a DependencyError saying how to install it."""
    exe = shutil.which("espeak-ng", path=path)
    if exe is None:
        raise DependencyError("espeak-ng was not found on PATH; the synthetic corpus needs it", hint=INSTALL_HINT)
    return exe


def speak(exe: str, text: str, speaker: Speaker, style: Style) -> np.ndarray:
    """``text`` in ``speaker``'s voice and ``style``, as float32 at 16 kHz."""
    import soundfile as sf
    import soxr

    ssml = '<speak><prosody range="{}">{}</prosody></speak>'.format(style.pitch_range, escape(text))
    pitch = int(np.clip(speaker.pitch + style.pitch_shift, 0, 99))
    rate = int(round(speaker.rate * style.rate_factor / speaker.warp))
    cmd = [exe, "-m", "-v", speaker.voice, "-p", str(pitch), "-s", str(rate), "-a", str(style.amplitude), "--stdout", ssml]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) < 100:
        raise DependencyError(
            "espeak-ng failed for voice {}: {}".format(speaker.voice, proc.stderr.decode(errors="replace").strip()),
            hint=INSTALL_HINT,
        )
    audio, rate_in = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    # Playing the samples back warp times faster scales pitch and formants by warp (the resample trick).
    return (GAIN * soxr.resample(audio, rate_in * speaker.warp, SAMPLE_RATE)).astype(np.float32)
