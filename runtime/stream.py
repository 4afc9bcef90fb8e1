"""One audio stream through the pipeline: resample, TSE every hop, VAD, SER every window hop, results.

A :class:`Stream` holds only per-stream state (TSE state, buffers, VAD, smoother); the
engines belong to the :class:`~emotrt.runtime.pipeline.Pipeline` that created it, so many
streams (one per enrolled speaker, say) share one set of engines.
"""
from __future__ import annotations

import collections
import logging
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, Deque, Dict, Iterator

import numpy as np

from emotrt.runtime.resample import to_mono
from emotrt.runtime.results import Result, Smoother, make_result

log = logging.getLogger(__name__)
_F32 = np.dtype(np.float32)
_PEAK = np.maximum.reduce  # the ufunc itself: ndarray.max() adds a Python wrapper frame per hop


def _log_due(count: int) -> bool:
    """Rate limit for per-block warnings: the 1st, 10th, 100th, ... occurrence."""
    while count % 10 == 0:
        count //= 10
    return count == 1


@dataclass
class StreamStats:
    """Counters of what a stream has seen: hops, SER runs and audio faults it recovered from."""

    samples: int = 0
    hops: int = 0
    ser_runs: int = 0
    results: int = 0
    nonfinite_blocks: int = 0
    nonfinite_samples: int = 0
    clipped_blocks: int = 0
    clipped_samples: int = 0
    dropped_results: int = 0


class Stream:
    """Per-stream state. Create with :meth:`Pipeline.create_stream`, feed with :meth:`accept_waveform`."""

    def __init__(self, pipeline: Any, speaker: str, environment: str) -> None:
        self.pipeline = pipeline
        self.speaker = speaker
        self.environment = environment
        layout = pipeline.layout
        self.sample_rate = layout.sample_rate
        self._chunk = layout.chunk
        self._window = layout.window
        self._hop = layout.ser_hop
        self._next_end = layout.first_end
        self._labels = layout.labels
        self._resampler = pipeline.make_resampler()
        self._native_rate = -1  # the model rate once the resampler has seen it (then rates may not change)
        self._pending = np.zeros(0, dtype=np.float32)
        # Extracted speech, appended in place; the last ``window`` samples are moved to the front only
        # when the buffer is full, so a hop costs one small copy instead of shifting a whole window.
        self._speech = np.zeros(self._window + max(self._window, 64 * self._chunk), dtype=np.float32)
        # The TSE input delayed by the TSE's latency, so it lines up sample for sample with the extraction:
        # the gate blends the two and match_level projects one onto the other (a 2 ms lag decorrelates them).
        self._mixture = np.zeros_like(self._speech)
        self._delay = np.zeros(pipeline.tse_latency, dtype=np.float32)
        self._fill = self._window
        self._stepper = pipeline.tse.create_stepper()
        self._tse_in: Dict[str, np.ndarray] = {"spk_emb": pipeline.speaker_embedding(speaker)[None, :]}
        self._ser_in: Dict[str, np.ndarray] = {"env_token": pipeline.environment_token(environment)[None, :]}
        self._vad = pipeline.make_vad()
        # what the SER hears per window (extraction, mixture or the gate's blend); copies for the SER thread
        self._gate = pipeline.make_gate(speaker, copy=pipeline.config.ser_async)
        self._smoother = Smoother(pipeline.config.smoothing)
        # Results in window order; with ``ser_async`` speech windows are futures until SER finishes.
        self._results: Deque[Any] = collections.deque(maxlen=pipeline.config.max_pending_results)
        self._done = 0
        self.stats = StreamStats()

    @property
    def vad_kind(self) -> str:
        return self._vad.kind

    def set_environment(self, environment: str) -> None:
        """Condition SER on another environment token from the next window on; no reload."""
        self._ser_in["env_token"] = self.pipeline.environment_token(environment)[None, :]
        self.environment = environment

    def accept_waveform(self, sample_rate: int, samples: Any) -> None:
        """Feed audio of any rate and block size (mono, or [frames, channels] downmixed)."""
        if sample_rate == self._native_rate and type(samples) is np.ndarray and samples.dtype == _F32 and samples.ndim == 1:
            # hot path (mono float32 at the model rate, e.g. the runner's hop-sized blocks): nothing to convert,
            # and one in-range hop with nothing pending goes straight to TSE (each Python call costs after a run)
            if samples.shape[0] == self._chunk and not self._pending.shape[0] and _PEAK(np.abs(samples)) < 1.0:
                self._hop_once(samples)
            else:
                self._push(self._sanitize(samples))
            return
        block = self._sanitize(to_mono(samples))
        self._push(self._resampler(sample_rate, block))
        if self._resampler.source_rate == self.sample_rate:
            self._native_rate = self.sample_rate

    def input_finished(self) -> None:
        """End of audio: flush the resampler, zero-pad the last partial hop, wait for pending SER."""
        if self.stats.nonfinite_blocks:
            log.warning("stream %s: %d NaN/Inf sample(s) in %d block(s) were replaced by silence in all",
                        self.speaker, self.stats.nonfinite_samples, self.stats.nonfinite_blocks)
        self._push(self._resampler.flush())
        if self._pending.shape[0]:
            pad = self._chunk - self._pending.shape[0]
            self._push(np.zeros(pad, dtype=np.float32))
        wait([entry for entry in self._results if isinstance(entry, Future)])

    def results(self) -> Iterator[Result]:
        """Yield (and remove) the results produced so far, oldest first (with ``ser_async``: those whose SER finished)."""
        while self._results:
            head = self._results[0]
            if isinstance(head, Future):
                if not head.done():
                    return
                head = head.result()
            self._results.popleft()
            yield head

    def _sanitize(self, block: np.ndarray) -> np.ndarray:
        if block.size == 0 or _PEAK(np.abs(block)) < 1.0:  # False for NaN, so faults take the slow path
            return block
        finite = np.isfinite(block)
        if not finite.all():
            bad = int(block.size - np.count_nonzero(finite))
            self.stats.nonfinite_blocks += 1
            self.stats.nonfinite_samples += bad
            if _log_due(self.stats.nonfinite_blocks):  # blocks 1, 10, 100, ...: not one line per 20 ms block
                log.warning("stream %s: %d NaN/Inf samples replaced by silence (%d block(s) so far; "
                            "further warnings at 10x that count, the total at the end)",
                            self.speaker, bad, self.stats.nonfinite_blocks)
            block = np.where(finite, block, np.float32(0.0))
        clipped = np.abs(block) >= 1.0
        if clipped.any():
            self.stats.clipped_blocks += 1
            self.stats.clipped_samples += int(np.count_nonzero(clipped))
            if self.stats.clipped_blocks == 1:
                log.warning("stream %s: audio is clipping (full-scale samples); lower the input gain", self.speaker)
            block = np.clip(block, -1.0, 1.0)
        return block

    def _push(self, audio: np.ndarray) -> None:
        chunk = self._chunk
        if self._pending.shape[0]:
            audio = np.concatenate((self._pending, audio))
        elif audio.shape[0] == chunk:
            self._hop_once(audio)
            return
        usable = audio.shape[0] - audio.shape[0] % chunk
        for offset in range(0, usable, chunk):
            self._hop_once(audio[offset:offset + chunk])
        self._pending = audio[usable:]

    def _hop_once(self, audio: np.ndarray) -> None:
        self._tse_in["audio"] = audio[None, :]
        extracted = self._stepper.step(self._tse_in)["audio_out"][0]
        n = extracted.shape[0]
        if self._fill + n > self._speech.shape[0]:
            self._speech[: self._window] = self._speech[self._fill - self._window:self._fill]
            self._mixture[: self._window] = self._mixture[self._fill - self._window:self._fill]
            self._fill = self._window
        self._speech[self._fill:self._fill + n] = extracted
        if self._delay.shape[0]:
            delayed = np.concatenate((self._delay, audio))
            audio, self._delay = delayed[:n], delayed[n:]
        self._mixture[self._fill:self._fill + n] = audio
        self._fill += n
        speech = self._vad.update(extracted)
        self._done += n
        self.stats.samples += n
        self.stats.hops += 1
        if self._done >= self._next_end:
            self._emit(speech)
            self._next_end += self._hop

    def _emit(self, speech: bool) -> None:
        fields = dict(
            index=self.stats.results,
            start=(self._done - self._window) / self.sample_rate,
            end=self._done / self.sample_rate,
            speaker=self.speaker,
            environment=self.environment,
            speech=speech,
            vad_probability=self._vad.probability,
            labels=self._labels,
        )
        executor = self.pipeline.ser_executor
        audio = None
        entry: Any
        if speech:
            window = slice(self._fill - self._window, self._fill)
            audio, gate_fields = self._gate(self._speech[None, window], self._mixture[None, window])
            fields.update(gate_fields)
        if audio is None:  # not speech, or the gate found the enrolled speaker absent
            entry = make_result(None, self._smoother, **fields)
        else:
            if executor is None:
                self._ser_in["audio"] = audio
                entry = self._score(self._ser_in, fields)
            else:  # the worker gets its own copy of the window and token; one worker keeps the order
                entry = executor.submit(self._score, {"audio": audio, "env_token": self._ser_in["env_token"]}, fields)
        if len(self._results) == self._results.maxlen:
            self.stats.dropped_results += 1
        self._results.append(entry)
        self.stats.results += 1

    def _score(self, feed: Dict[str, np.ndarray], fields: Dict[str, Any]) -> Result:
        result = make_result(self.pipeline.ser._run(feed), self._smoother, **fields)
        self.stats.ser_runs += 1
        return result

    def close(self) -> None:
        """Release per-stream backend state (GPU buffers of the TensorRT stepper)."""
        self._stepper.close()
