"""What a stream reports: one :class:`Result` per SER window hop, plus posterior smoothing."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError


@dataclass(frozen=True)
class Result:
    """Emotion estimate for the window ``[start, end)`` seconds of stream time.

    ``speech`` is the VAD state at the window's end; when it is False SER did not run and
    ``posteriors``/``avd``/``emotion`` are None. ``posteriors`` are smoothed, ``raw`` are the
    window's own softmax; both follow ``labels``. ``tse`` says what the SER heard (``used``: the
    extraction, ``bypassed``: the mixture, ``blend``; see :mod:`emotrt.runtime.gate`);
    ``speaker_present`` is the gate's verdict (None when not gated): False means the enrolled
    speaker is not talking, so there is no emotion for them, whoever else talks.
    """

    index: int
    start: float
    end: float
    speaker: str
    environment: str
    speech: bool
    vad_probability: float
    labels: Tuple[str, ...]
    emotion: Optional[str] = None
    posteriors: Optional[Tuple[float, ...]] = None
    raw: Optional[Tuple[float, ...]] = None
    avd: Optional[Tuple[float, float, float]] = None
    tse: Optional[str] = None
    speaker_present: Optional[bool] = None

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready mapping (posteriors keyed by label)."""
        data = asdict(self)
        del data["labels"]
        for key in ("posteriors", "raw"):
            if data[key] is not None:
                data[key] = {label: round(p, 6) for label, p in zip(self.labels, data[key])}
        if self.avd is not None:
            data["avd"] = dict(zip(("arousal", "valence", "dominance"), (round(v, 6) for v in self.avd)))
        data["start"], data["end"] = round(self.start, 4), round(self.end, 4)
        data["vad_probability"] = round(self.vad_probability, 4)
        return data

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(self.to_dict(), sort_keys=True)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Smoother:
    """Exponential moving average of posteriors over speech windows: ``p = a*p_prev + (1-a)*p_new``."""

    def __init__(self, alpha: float) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ConfigError("smoothing={} must be in [0, 1)".format(alpha))
        self.alpha = alpha
        self._state: Optional[np.ndarray] = None

    def __call__(self, posteriors: Sequence[float]) -> np.ndarray:
        new = np.asarray(posteriors, dtype=np.float64)
        self._state = new if self._state is None else self.alpha * self._state + (1.0 - self.alpha) * new
        return self._state

    def reset(self) -> None:
        self._state = None


def make_result(ser_out: Optional[Dict[str, np.ndarray]], smoother: Smoother, **fields: Any) -> Result:
    """A :class:`Result` from one SER call's outputs (None: the window was not speech)."""
    if ser_out is None:
        return Result(**fields)
    raw = softmax(ser_out["logits"][0].astype(np.float64))
    smooth = smoother(raw)
    return Result(
        emotion=fields["labels"][int(np.argmax(smooth))],
        posteriors=tuple(float(p) for p in smooth),
        raw=tuple(float(p) for p in raw),
        avd=tuple(float(v) for v in ser_out["avd"][0]),
        **fields
    )


def match_level(extracted: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """``extracted`` scaled to the part of ``mixture`` it explains, over the same samples.

    An extractor trained with SI-SNR leaves its output scale arbitrary (the default TSE comes out
    100-250x louder than its input), and an SER that reads level (``input_norm`` "none"; with
    ``level_reference`` "enrollment" relative to the speaker's enrollment) needs the target's own
    level. The gain is the least-squares one, <mixture, extracted> / <extracted, extracted>
    (clamped at 0): the level of the target inside the mixture when the extraction is the target,
    where bringing it to the mixture's RMS would add the other talker's and the noise's power
    (+3 dB at 0 dB SIR, +6.2 dB at -5 dB SNR: a sad voice heard as a neutral one). A silent
    extraction is returned as it is. ``emotrt eval``, the joint fine-tuning (in torch) and the
    stream all scale each SER window this way, so they agree.
    """
    e = extracted.ravel().astype(np.float64)
    power = float(np.dot(e, e))
    if power <= 1e-12:
        return extracted
    gain = max(float(np.dot(mixture.ravel(), e)) / power, 0.0)
    return (extracted * np.float32(gain)).astype(np.float32, copy=False)

