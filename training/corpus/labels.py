"""The harmonised emotion label set and the arousal/valence/dominance scale of every corpus.

Categorical labels of all corpora map onto one set (the combined-corpora convention: IEMOCAP's
excited joins happy, RAVDESS's calm joins neutral). Dimensional labels use IEMOCAP's 1-5 scale;
corpora on other scales are mapped linearly onto it.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

#: Every harmonised label, the four-class core first (logit order of the default SER).
EMOTIONS = ("neutral", "happy", "angry", "sad", "fear", "disgust", "surprise", "contempt", "frustrated", "other")
FOUR_CLASS = EMOTIONS[:4]
AVD_SCALE = (1.0, 5.0)

_ALIASES: Dict[str, str] = {
    # IEMOCAP
    "neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad", "fea": "fear",
    "dis": "disgust", "sur": "surprise", "fru": "frustrated", "oth": "other", "xxx": "other",
    # MSP-Podcast single letters
    "n": "neutral", "h": "happy", "a": "angry", "s": "sad", "f": "fear", "d": "disgust", "u": "surprise",
    "c": "contempt", "o": "other", "x": "other",
    # words used by RAVDESS / ESD / synthetic styles
    "neutral": "neutral", "calm": "neutral", "happy": "happy", "happiness": "happy", "joy": "happy",
    "angry": "angry", "anger": "angry", "sad": "sad", "sadness": "sad", "fear": "fear", "fearful": "fear",
    "disgust": "disgust", "surprise": "surprise", "surprised": "surprise", "contempt": "contempt",
    "frustrated": "frustrated", "frustration": "frustrated", "other": "other",
}


def harmonise(label: str) -> str:
    """The harmonised name of a corpus label (case-insensitive), ``other`` when unknown."""
    return _ALIASES.get(label.strip().lower(), "other")


def keep_label(emotion: Optional[str], classes: Iterable[str], drop_neutral: bool = False) -> bool:
    """Whether an utterance with ``emotion`` belongs to the chosen class set."""
    if emotion is None:
        return False
    if drop_neutral and emotion == "neutral":
        return False
    return emotion in tuple(classes)


def rescale_avd(values: Tuple[float, float, float], low: float, high: float) -> Tuple[float, float, float]:
    """Map arousal/valence/dominance from the scale ``[low, high]`` linearly onto 1-5."""
    lo, hi = AVD_SCALE
    return tuple(round(lo + (float(v) - low) * (hi - lo) / (high - low), 4) for v in values)  # type: ignore[return-value]
