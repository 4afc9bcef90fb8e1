"""Held-out input conditions: what another device's gain, microphone or room does to the same speech.

``emotrt eval --channels`` scores every stored test set under each condition and reports UA,
CCC and the share of labels equal to the unaltered run. Channel conditions keep the unaltered
RMS (as the issue measured them: only the response changes); gain conditions scale and clip.

None of these comes from the training generators of :mod:`emotrt.training.augment`: the
microphones are Butterworth/Chebyshev/FIR designs (training draws RBJ biquads), and the rooms
are fixed geometries drawn with a seed and ranges the training bank never uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError
from emotrt.training.augment import (SAMPLE_RATE, RoomSpec, apply_gain_db, apply_rir, apply_sos, match_rms,
                                     room_rir)

GAINS_DB = (-20.0, -12.0, -10.0, -6.0, 6.0)


@dataclass(frozen=True)
class Condition:
    """A named input condition: ``kind`` is ``gain`` or ``channel``; ``apply(audio) -> audio``."""

    name: str
    kind: str
    description: str
    apply: Callable[[np.ndarray], np.ndarray]


def _mems_hp200() -> np.ndarray:
    from scipy.signal import butter

    return butter(4, 200.0, "highpass", fs=SAMPLE_RATE, output="sos")


def _telephone() -> np.ndarray:
    from scipy.signal import cheby1

    return cheby1(4, 1.0, [300.0, 3400.0], "bandpass", fs=SAMPLE_RATE, output="sos")


@lru_cache(maxsize=None)
def _treble_fir() -> np.ndarray:
    from scipy.signal import firwin2

    # -6 dB above 3 kHz with a smooth transition from 1.5 kHz (linear phase, 6 ms long)
    return firwin2(97, [0, 1500, 3000, SAMPLE_RATE / 2], [1.0, 1.0, 0.5, 0.5], fs=SAMPLE_RATE).astype(np.float32)


def _fir(audio: np.ndarray, taps: np.ndarray) -> np.ndarray:
    from scipy.signal import lfilter

    delay = (len(taps) - 1) // 2
    out = lfilter(taps, [1.0], np.concatenate([audio, np.zeros(delay, dtype=audio.dtype)]))
    return out[delay:].astype(np.float32)


# Rooms outside the training bank's draws (augment.random_room: sides 3-9 m, RT60 0.15-0.8 s,
# talker 0.3-2.5 m): a small tiled room, a living room, and a hall heard from far.
ROOMS = {
    "small_room": RoomSpec(dims=(2.6, 2.2, 2.4), rt60=0.45, source=(0.8, 0.7, 1.6), mic=(1.9, 1.5, 1.0)),
    "living_room": RoomSpec(dims=(5.5, 4.2, 2.7), rt60=0.55, source=(1.2, 1.0, 1.5), mic=(3.4, 2.6, 0.9)),
    "hall_far": RoomSpec(dims=(14.0, 10.0, 4.5), rt60=1.1, source=(3.0, 3.0, 1.7), mic=(7.5, 6.0, 1.2)),
}


@lru_cache(maxsize=None)
def _room(name: str) -> np.ndarray:
    return room_rir(ROOMS[name], max_order=60)


def _channel(name: str, audio: np.ndarray) -> np.ndarray:
    if name == "mems_hp200":
        out = apply_sos(audio, _mems_hp200())
    elif name == "treble_m6":
        out = _fir(audio, _treble_fir())
    elif name == "telephone":
        out = apply_sos(audio, _telephone())
    elif name in ROOMS:
        out = apply_rir(audio, _room(name))
    else:
        raise ConfigError("unknown channel condition {!r}".format(name))
    return match_rms(out, audio)


CHANNELS: Dict[str, str] = {
    "mems_hp200": "4th-order Butterworth high-pass at 200 Hz (MEMS microphone port)",
    "treble_m6": "-6 dB treble shelf above 3 kHz (linear-phase FIR)",
    "telephone": "300-3400 Hz band (4th-order Chebyshev I)",
    "small_room": "2.6 x 2.2 m room, RT60 0.45 s, talker 1.5 m away",
    "living_room": "5.5 x 4.2 m room, RT60 0.55 s, talker 2.8 m away",
    "hall_far": "14 x 10 m hall, RT60 1.1 s, talker 5.4 m away (beyond the training rooms)",
}
# The "done when" channel conditions (hall_far is reported as a stress case, not a target)
TARGET_CHANNELS = ("mems_hp200", "treble_m6", "telephone", "small_room", "living_room")


def gain_name(gain_db: float) -> str:
    return "gain_{}{:g}db".format("p" if gain_db > 0 else "m", abs(gain_db))


def conditions(gains: Tuple[float, ...] = GAINS_DB, channels: Optional[Tuple[str, ...]] = None) -> Dict[str, Condition]:
    """The conditions by name: one per gain in ``gains``, then each channel (default: all of :data:`CHANNELS`)."""
    out: Dict[str, Condition] = {}
    for gain in gains:
        out[gain_name(gain)] = Condition(gain_name(gain), "gain", "input gain {:+g} dB".format(gain),
                                         lambda a, g=gain: apply_gain_db(a, g))
    for name in channels if channels is not None else tuple(CHANNELS):
        if name not in CHANNELS:
            raise ConfigError("unknown channel condition {!r}".format(name), hint="known: " + ", ".join(CHANNELS))
        out[name] = Condition(name, "channel", CHANNELS[name], lambda a, n=name: _channel(n, a))
    return out
