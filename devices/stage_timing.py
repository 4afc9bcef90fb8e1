"""Per-stage timers for the profiler: thin proxies around what a stream calls each hop.

A :class:`ProfiledPipeline` hands its streams a timed resampler, VAD, TSE stepper and SER engine
(the hooks :class:`~emotrt.runtime.pipeline.Pipeline` offers: ``make_resampler``, ``make_vad``,
``tse.create_stepper``, ``ser._run``); each proxy adds one ``perf_counter`` pair and a list append
per call, the runtime's code is unchanged. ``StageClock.slowdown`` is the test hook that really
slows one stage (it spins inside the stage's timer).
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import numpy as np

from emotrt.runtime.pipeline import Pipeline

TIMED_STAGES = ("resample", "tse_step", "vad", "ser")
STAGES = TIMED_STAGES + ("host", "end_to_end")


class StageClock:
    """Per-stage seconds of the current call and every measured call; ``add`` is the only per-hop cost."""

    def __init__(self, slowdown: Optional[Dict[str, float]] = None) -> None:
        self.slowdown = dict(slowdown or {})
        self.samples: Dict[str, List[float]] = {s: [] for s in STAGES}
        self._in_call = 0.0

    def add(self, stage: str, seconds: float) -> None:
        self.samples[stage].append(seconds)
        self._in_call += seconds

    def end_call(self, seconds: float, latency: float) -> None:
        self.samples["host"].append(seconds - self._in_call)
        self.samples["end_to_end"].append(latency)
        self._in_call = 0.0

    def reset(self) -> None:
        for values in self.samples.values():
            del values[:]
        self._in_call = 0.0


def _spin(t0: float, elapsed: float, factor: float) -> None:
    until = t0 + elapsed * factor
    while time.perf_counter() < until:
        pass


class _Timed:
    """Forward everything to ``inner``; time the one method the stream calls per hop."""

    def __init__(self, inner: Any, stage: str, clock: StageClock) -> None:
        self._inner, self._stage, self._clock = inner, stage, clock
        self._factor = clock.slowdown.get(stage, 1.0)

    def _time(self, method: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        out = method(*args)
        elapsed = time.perf_counter() - t0
        if self._factor > 1.0:
            _spin(t0, elapsed, self._factor)
            elapsed = time.perf_counter() - t0
        self._clock.add(self._stage, elapsed)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TimedResampler(_Timed):
    def __call__(self, sample_rate: int, samples: np.ndarray) -> np.ndarray:
        return self._time(self._inner, sample_rate, samples)


class TimedStepper(_Timed):
    def step(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return self._time(self._inner.step, inputs)


class TimedVad(_Timed):
    """Times the VAD; with ``always`` the stream scores every window (worst case) while the VAD still runs."""

    def __init__(self, inner: Any, stage: str, clock: Optional[StageClock], always: bool) -> None:
        self._inner, self._clock, self._always = inner, clock, always
        if clock is not None:
            super().__init__(inner, stage, clock)

    def update(self, audio: np.ndarray) -> bool:
        speech = self._inner.update(audio) if self._clock is None else self._time(self._inner.update, audio)
        return True if self._always else speech


class TimedEngine(_Timed):
    """An engine whose ``_run`` (SER windows) is timed and whose steppers (TSE hops) are timed."""

    def _run(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return self._time(self._inner._run, feed)

    def create_stepper(self) -> TimedStepper:
        return TimedStepper(self._inner.create_stepper(), "tse_step", self._clock)


class ProfiledPipeline(Pipeline):
    """A :class:`Pipeline` whose streams report per-stage times to ``clock`` (None: untimed baseline)."""

    def __init__(self, *args: Any, clock: Optional[StageClock] = None, ser_every_window: bool = True,
                 **kwargs: Any) -> None:
        self.clock = clock
        self.ser_every_window = ser_every_window
        if clock is not None:
            args = (TimedEngine(args[0], "tse_step", clock), TimedEngine(args[1], "ser", clock)) + tuple(args[2:])
        super().__init__(*args, **kwargs)

    def make_resampler(self) -> Any:
        inner = super().make_resampler()
        return inner if self.clock is None else TimedResampler(inner, "resample", self.clock)

    def make_vad(self) -> Any:
        inner = super().make_vad()
        if self.clock is None and not self.ser_every_window:
            return inner
        return TimedVad(inner, "vad", self.clock, self.ser_every_window)
