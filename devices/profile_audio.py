"""Audio for a profile: a synthetic speech-like signal, a file looped to the duration, or a microphone."""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np

from emotrt.devices.profile_document import ProfileError


def synth_speech(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-paced harmonic signal with noise (deterministic): stands in for speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / float(rate)
    envelope = (np.sin(2 * np.pi * 3.0 * t) > -0.2).astype(np.float32) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t))
    f0 = 140 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(0.15 / k * np.sin(k * phase) for k in range(1, 6))
    return (envelope * voice + 0.01 * rng.normal(size=t.shape)).astype(np.float32)


def load_source(source: str, model_rate: int, seconds: float, seed: int = 0) -> Tuple[int, np.ndarray, str]:
    """(rate, samples, description) for ``synth`` or an audio file, looped to ``seconds``."""
    if source == "synth":
        return model_rate, synth_speech(seconds, model_rate, seed), "synthetic speech-like signal"
    from emotrt.runtime.audio import FileSource, _soundfile

    opened = FileSource(source)  # checks the file and reports unreadable ones clearly
    data, rate = _soundfile().read(opened.path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1).astype(np.float32)
    if mono.size == 0:
        raise ProfileError("audio file {} is empty".format(source), hint="give a WAV/FLAC with speech")
    return int(rate), np.resize(mono, int(seconds * rate)), opened.description


class MicBlocks:
    """Hop-sized blocks from a microphone for ``seconds`` (real time by nature); ``dropped`` counts lost blocks."""

    def __init__(self, device: Optional[str], seconds: float, buffer_s: float = 1.0) -> None:
        from emotrt.runtime.audio import MicSource
        from emotrt.runtime.ringbuffer import RingBuffer

        self.source = MicSource(device)
        self.sample_rate = self.source.sample_rate
        self.ring = RingBuffer(int(self.sample_rate * max(buffer_s, 0.1)))
        self.block = max(1, int(self.sample_rate * 0.02))
        self.count = int(seconds / 0.02)

    @property
    def dropped(self) -> int:
        return self.ring.dropped_samples // self.block

    def __iter__(self) -> Iterator[np.ndarray]:
        self.source.start(self.ring)
        try:
            for _ in range(self.count):
                block = self.ring.read(self.block, timeout=5.0)
                if block is None:
                    raise ProfileError("no audio from {} for 5 s".format(self.source.description),
                                       hint="check the microphone with `emotrt audio-devices`")
                yield block
        finally:
            self.source.stop()
