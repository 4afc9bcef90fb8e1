"""Record a fixed stretch of microphone audio (enrollment on the device: ``emotrt enroll --mic``)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

from emotrt.runtime.atomic import atomic_file
from emotrt.runtime.audio import DeviceSpec, MicSource
from emotrt.runtime.errors import AudioError
from emotrt.runtime.ringbuffer import RingBuffer

log = logging.getLogger(__name__)


def record(seconds: float, device: DeviceSpec = None, sample_rate: Optional[int] = None,
           channel: Optional[int] = None, timeout_margin: float = 5.0) -> Tuple[np.ndarray, int]:
    """Capture ``seconds`` of mono float32 audio; (samples, rate). Errors if the device delivers too little."""
    if seconds <= 0:
        raise AudioError("recording length must be positive, got {} s".format(seconds), hint="pass --seconds 8")
    source = MicSource(device, sample_rate=sample_rate, channel=channel)
    wanted = int(round(seconds * source.sample_rate))
    ring = RingBuffer(wanted + source.sample_rate)
    log.info("recording %.1f s from %s", seconds, source.description)
    source.start(ring)
    try:
        samples = ring.read(wanted, timeout=seconds + timeout_margin)
    finally:
        source.stop()
    if samples is None:
        raise AudioError(
            "{} delivered {:.2f} s of the {:.1f} s asked for".format(
                source.description, ring.available / float(source.sample_rate), seconds),
            hint="check the device with `emotrt audio-devices` and that nothing else holds it",
        )
    if float(np.abs(samples).max()) < 1e-4:
        log.warning("the recording is silent: is the right microphone selected and unmuted?")
    return samples, source.sample_rate


def record_wav(path: Any, seconds: float, target_rate: int, device: DeviceSpec = None,
               channel: Optional[int] = None) -> Path:
    """Record ``seconds`` and write them as a mono PCM16 WAV at ``target_rate`` (resampled with soxr)."""
    import soundfile

    from emotrt.runtime.resample import Resampler

    samples, rate = record(seconds, device=device, channel=channel)
    resampler = Resampler(target_rate)
    audio = np.concatenate((resampler(rate, samples), resampler.flush()))
    path = Path(path)
    with atomic_file(path, suffix=".wav") as tmp:
        soundfile.write(tmp, np.clip(audio, -1.0, 1.0), target_rate, subtype="PCM_16", format="WAV")
    log.info("wrote %.1f s at %d Hz to %s", audio.shape[0] / float(target_rate), target_rate, path)
    return path
