"""Streaming resampling (soxr) and channel handling: any input rate and layout -> model-rate mono."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from emotrt.runtime.errors import AudioError, DependencyError


def to_mono(block: Any, channel: Optional[int] = None) -> np.ndarray:
    """Downmix a [frames] or [frames, channels] block to float32 mono, or pick one ``channel``."""
    block = np.asarray(block)
    if block.dtype.kind in "iu":
        block = block.astype(np.float32) / float(np.iinfo(block.dtype).max + 1)
    block = block.astype(np.float32, copy=False)
    if block.ndim == 1:
        if channel not in (None, 0):
            raise AudioError("channel {} requested but the audio is mono".format(channel), hint="drop --channel")
        return block
    if block.ndim != 2:
        raise AudioError("audio block must be [frames] or [frames, channels], got shape {}".format(block.shape))
    if channel is None:
        return block.mean(axis=1)
    if not 0 <= channel < block.shape[1]:
        raise AudioError(
            "channel {} requested but the audio has {} channel(s)".format(channel, block.shape[1]),
            hint="pass --channel between 0 and {}".format(block.shape[1] - 1),
        )
    return np.ascontiguousarray(block[:, channel])


class Resampler:
    """Stateful streaming resampler to ``target_rate``; a pass-through when the rates match.

    soxr's ``ResampleStream`` keeps the filter state between blocks, so any block size
    gives the same output as resampling the whole signal at once (up to its delay).
    """

    def __init__(self, target_rate: int) -> None:
        self.target_rate = int(target_rate)
        self.source_rate: Optional[int] = None
        self._stream: Any = None

    def __call__(self, sample_rate: int, samples: np.ndarray) -> np.ndarray:
        """Resample one block of mono float32 audio."""
        sample_rate = int(sample_rate)
        if sample_rate <= 0:
            raise AudioError("sample rate must be positive, got {}".format(sample_rate))
        if self.source_rate is None:
            self.source_rate = sample_rate
            if sample_rate != self.target_rate:
                self._stream = _soxr().ResampleStream(sample_rate, self.target_rate, 1, dtype="float32")
        elif sample_rate != self.source_rate:
            raise AudioError(
                "sample rate changed mid-stream from {} to {} Hz".format(self.source_rate, sample_rate),
                hint="create a new stream for audio at another rate",
            )
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples)

    def flush(self) -> np.ndarray:
        """The resampler's delayed tail at end of input."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def _soxr() -> Any:
    try:
        import soxr
    except ImportError as exc:
        raise DependencyError("soxr is needed to resample audio ({})".format(exc), hint="pip install 'emotrt[audio]'")
    return soxr
