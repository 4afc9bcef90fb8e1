"""Four speaking styles standing in for neutral / happy / angry / sad.

These are prosody styles (pitch level and range, rate, loudness) rendered by espeak-ng, not acted
emotions: a model trained on them learns prosody, which is what lets the pipeline be tested
end to end without a licensed emotional corpus. Each style carries arousal/valence/dominance
targets on IEMOCAP's 1-5 scale, placed where IEMOCAP's categories sit on average. Above
amplitude ~170 espeak-ng starts limiting its output, so angry stops there.
"""
from __future__ import annotations

import dataclasses
from typing import Dict


@dataclasses.dataclass(frozen=True)
class Style:
    """How a style changes a speaker's espeak-ng settings, and its label targets."""

    emotion: str
    pitch_shift: int
    pitch_range: str
    rate_factor: float
    amplitude: int
    arousal: float
    valence: float
    dominance: float


STYLES: Dict[str, Style] = {
    s.emotion: s
    for s in (
        Style("neutral", 0, "medium", 1.0, 100, 2.8, 3.0, 2.9),
        Style("happy", 18, "x-high", 1.08, 125, 3.8, 4.3, 3.3),
        Style("angry", 6, "high", 1.28, 175, 4.4, 1.7, 4.1),
        Style("sad", -12, "x-low", 0.75, 55, 1.8, 1.7, 2.0),
    )
}
