"""Run a source through a stream on threads until the input ends or SIGINT/SIGTERM, then summarise.

The source's thread (or PortAudio's callback) only writes into a :class:`RingBuffer`; one
inference thread reads hop-sized blocks, feeds the stream and hands results to the sinks.
Overruns (audio dropped because inference fell behind) are counted, logged and reported,
never fatal.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence

from emotrt.runtime.ringbuffer import RingBuffer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What a run did: audio and wall time, results, and every fault it recovered from."""

    source: str
    backend: str
    stopped_by: str
    audio_seconds: float
    wall_seconds: float
    results: int
    speech_results: int
    overruns: int
    dropped_seconds: float
    input_overflows: int
    nonfinite_samples: int
    clipped_samples: int

    @property
    def real_time_factor(self) -> float:
        """Wall time over audio time (only meaningful for sources read as fast as possible)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def to_dict(self) -> Dict[str, Any]:
        return dict(asdict(self), real_time_factor=round(self.real_time_factor, 4))


class Runner:
    """Drive ``source`` through ``stream``; every result goes to each of ``sinks``."""

    def __init__(self, pipeline: Any, stream: Any, source: Any, sinks: Sequence[Any] = (),
                 buffer_seconds: float = 10.0, stall_seconds: float = 5.0) -> None:
        self.pipeline, self.stream, self.source = pipeline, stream, source
        self.sinks = list(sinks)
        self.stall_seconds = stall_seconds
        self.ring = RingBuffer(max(1, int(source.sample_rate * buffer_seconds)))
        self._stop = threading.Event()
        self._stopped_by = "end of input"
        self._error: Optional[BaseException] = None
        self.speech_results = 0
        self.fed_seconds = 0.0

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run to finish (thread- and signal-safe)."""
        self._stopped_by = reason
        self._stop.set()
        self.ring.close()

    def run(self, handle_signals: bool = True, max_seconds: Optional[float] = None) -> RunSummary:
        """Block until the input ends, ``stop``, a signal, or ``max_seconds`` of audio; return the summary."""
        previous = self._install_signals() if handle_signals else {}
        started = time.monotonic()
        worker = threading.Thread(target=self._infer, args=(max_seconds,), name="emotrt-inference", daemon=True)
        try:
            self.source.start(self.ring)
            worker.start()
            self._watch(worker)
        finally:
            self.source.stop()
            self.ring.close()
            if worker.ident:
                worker.join(timeout=5)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        error = self._error or getattr(self.source, "error", None)
        if error is not None:
            raise error
        return self._summary(time.monotonic() - started)

    def _watch(self, worker: threading.Thread) -> None:
        """Wait for the inference thread; stop a live source that delivers nothing for ``stall_seconds``."""
        written, since = self.ring.written_samples, time.monotonic()
        while worker.is_alive():
            worker.join(timeout=0.1)
            if self.ring.written_samples != written:
                written, since = self.ring.written_samples, time.monotonic()
            elif self.source.realtime and time.monotonic() - since > self.stall_seconds:
                # the summary says so (stopped_by); `emotrt run` turns it into its one error line
                log.info("no audio from %s for %.0f s: stopping", self.source.description, self.stall_seconds)
                self.stop("input stalled")
                return

    def _install_signals(self) -> Dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda number, frame: self.stop(signal.Signals(number).name))
        return previous

    def _infer(self, max_seconds: Optional[float]) -> None:
        rate = self.source.sample_rate
        hop = max(1, rate * self.pipeline.layout.chunk // self.pipeline.sample_rate)
        limit = None if max_seconds is None else int(max_seconds * rate)
        fed = 0
        overruns = 0
        try:
            while not self._stop.is_set():
                block = self.ring.read(hop, timeout=None)
                if block is None:
                    block = self.ring.read_all()
                    if block.shape[0]:
                        self.stream.accept_waveform(rate, block)
                        fed += block.shape[0]
                    break
                self.stream.accept_waveform(rate, block)
                fed += block.shape[0]
                if self.ring.overruns != overruns:
                    overruns = self.ring.overruns
                    log.warning("inference fell behind: %d overrun(s), %.2f s of audio dropped so far",
                                overruns, self.ring.dropped_samples / rate)
                self._publish()
                if limit is not None and fed >= limit:
                    self.stop("max_seconds")
            self.stream.input_finished()
            self._publish()
        except BaseException as exc:  # re-raised on the calling thread by run()
            self._error = exc
        finally:
            self.fed_seconds = fed / float(rate)

    def _publish(self) -> None:
        for result in self.stream.results():
            self.speech_results += int(result.speech)
            for sink in self.sinks:
                sink(result)

    def _summary(self, wall: float) -> RunSummary:
        stats = self.stream.stats
        return RunSummary(
            source=self.source.description,
            backend=self.pipeline.backend,
            stopped_by=self._stopped_by,
            audio_seconds=round(self.fed_seconds, 4),
            wall_seconds=round(wall, 4),
            results=stats.results,
            speech_results=self.speech_results,
            overruns=self.ring.overruns,
            dropped_seconds=round(self.ring.dropped_samples / float(self.source.sample_rate), 4),
            input_overflows=self.source.input_overflows,
            nonfinite_samples=stats.nonfinite_samples,
            clipped_samples=stats.clipped_samples,
        )

