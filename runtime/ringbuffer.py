"""A bounded single-producer/single-consumer float32 ring buffer between the audio thread and inference.

Hand-written on numpy because the producer is a PortAudio callback that must never block
or allocate much, and no maintained Python package offers a numpy ring buffer with overrun
accounting (PortAudio's own pa_ringbuffer is not exposed by sounddevice).
"""
from __future__ import annotations

import threading
from typing import Optional

import numpy as np


class RingBuffer:
    """Fixed-capacity FIFO of float32 samples.

    A non-blocking ``write`` that does not fit drops the oldest audio and counts it as an
    overrun (the microphone never waits); ``write(block=True)`` waits for room instead (files).

    >>> rb = RingBuffer(4)
    >>> rb.write(np.arange(6, dtype=np.float32))
    2
    >>> rb.read(4).tolist(), rb.overruns, rb.dropped_samples
    ([2.0, 3.0, 4.0, 5.0], 1, 2)
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self._start = 0
        self._size = 0
        self._closed = False
        self._cond = threading.Condition()
        self.overruns = 0
        self.dropped_samples = 0
        self.written_samples = 0

    @property
    def available(self) -> int:
        """Samples ready to read."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, samples: np.ndarray, block: bool = False, timeout: Optional[float] = None) -> int:
        """Append ``samples``; return how many old samples were dropped to make room."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        n = samples.shape[0]
        if n == 0:
            return 0
        with self._cond:
            if block:
                while self._size + min(n, self.capacity) > self.capacity and not self._closed:
                    if not self._cond.wait(timeout):
                        break
            if n > self.capacity:
                samples = samples[-self.capacity:]
            dropped = max(0, self._size + samples.shape[0] - self.capacity) + (n - samples.shape[0])
            if dropped:
                self.overruns += 1
                self.dropped_samples += dropped
                drop_stored = min(self._size, dropped)
                self._start = (self._start + drop_stored) % self.capacity
                self._size -= drop_stored
            end = (self._start + self._size) % self.capacity
            first = min(samples.shape[0], self.capacity - end)
            self._data[end:end + first] = samples[:first]
            self._data[:samples.shape[0] - first] = samples[first:]
            self._size += samples.shape[0]
            self.written_samples += n
            self._cond.notify_all()
            return dropped

    def read(self, n: int, timeout: Optional[float] = 0.0) -> Optional[np.ndarray]:
        """Take exactly ``n`` samples, waiting up to ``timeout`` seconds (None: until closed); else None."""
        with self._cond:
            if self._size < n and timeout != 0.0:
                self._cond.wait_for(lambda: self._size >= n or self._closed, timeout)
            if self._size < n:
                return None
            return self._take(n)

    def read_all(self) -> np.ndarray:
        """Take everything buffered (used to drain after the source closed)."""
        with self._cond:
            return self._take(self._size)

    def _take(self, n: int) -> np.ndarray:
        first = min(n, self.capacity - self._start)
        out = np.concatenate((self._data[self._start:self._start + first], self._data[:n - first]))
        self._start = (self._start + n) % self.capacity
        self._size -= n
        self._cond.notify_all()
        return out

    def close(self) -> None:
        """Wake every waiter: no more audio will come."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
