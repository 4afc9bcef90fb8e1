"""Record a fixed stretch of microphone audio (enrollment on the device: ``emotrt enroll --mic``)."""
from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np

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
