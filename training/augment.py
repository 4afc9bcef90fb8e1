"""What a deployed device does to speech before the model hears it: input gain, microphone response, room.

Small seeded numpy functions, usable by any task's data path (SER here; the TSE's may import
:func:`apply_gain_db` / :func:`random_gain_db`):

- :func:`apply_gain_db`: a constant gain, then the converter's clipping at full scale.
- :func:`random_mic`: a random microphone/preamp response as a cascade of RBJ biquads (high-pass,
  low-pass, low and high shelves, resonant peaks), applied with ``scipy.signal.sosfilt``.
- :class:`RoomBank`: seeded room impulse responses from pyroomacoustics (image-source shoebox
  rooms, RT60 from Sabine's formula), made once and reused.
- :class:`ChannelAugment`: all of them in the order a device applies them (room, microphone,
  self-noise, gain, clipping), configured by :class:`ChannelConfig` (the SER recipe's ``[augment]``).

The held-out conditions ``emotrt eval --channels`` measures (``emotrt.training.channels``) come
from other filter families and other rooms than these generators draw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError

SAMPLE_RATE = 16000


def apply_gain_db(audio: np.ndarray, gain_db: float, clip: bool = True) -> np.ndarray:
    """``audio`` times ``10**(gain_db/20)``, clipped to [-1, 1] as an ADC or int16 conversion would."""
    out = audio.astype(np.float32) * np.float32(10.0 ** (gain_db / 20.0))
    return np.clip(out, -1.0, 1.0) if clip else out


def random_gain_db(rng: np.random.Generator, low_db: float = -30.0, high_db: float = 6.0) -> float:
    """A gain drawn uniformly in dB over ``[low_db, high_db]``."""
    return float(rng.uniform(low_db, high_db))


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dB re full scale (-inf dB is returned as -200)."""
    power = float(np.mean(np.square(audio, dtype=np.float64))) if len(audio) else 0.0
    return 10.0 * math.log10(power) if power > 1e-20 else -200.0


def match_rms(audio: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``audio`` scaled to the RMS of ``reference`` (silence stays silence)."""
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    if power <= 1e-20:
        return audio.astype(np.float32)
    return (audio * math.sqrt(float(np.mean(np.square(reference, dtype=np.float64))) / power)).astype(np.float32)


# --- microphone responses: RBJ audio-EQ-cookbook biquads as second-order sections --------------

def _sos(b: Sequence[float], a: Sequence[float]) -> np.ndarray:
    return np.array([[b[0] / a[0], b[1] / a[0], b[2] / a[0], 1.0, a[1] / a[0], a[2] / a[0]]])


def biquad(kind: str, freq: float, q: float = 0.7071, gain_db: float = 0.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One RBJ cookbook biquad as an SOS row: ``highpass``, ``lowpass``, ``lowshelf``, ``highshelf``, ``peak``."""
    w0 = 2 * math.pi * freq / sr
    cos, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    amp = 10.0 ** (gain_db / 40.0)
    if kind == "highpass":
        return _sos([(1 + cos) / 2, -(1 + cos), (1 + cos) / 2], [1 + alpha, -2 * cos, 1 - alpha])
    if kind == "lowpass":
        return _sos([(1 - cos) / 2, 1 - cos, (1 - cos) / 2], [1 + alpha, -2 * cos, 1 - alpha])
    if kind == "peak":
        return _sos([1 + alpha * amp, -2 * cos, 1 - alpha * amp], [1 + alpha / amp, -2 * cos, 1 - alpha / amp])
    if kind in ("lowshelf", "highshelf"):
        root = 2 * math.sqrt(amp) * alpha
        sign = 1 if kind == "lowshelf" else -1
        b = [amp * ((amp + 1) - sign * (amp - 1) * cos + root), sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cos),
             amp * ((amp + 1) - sign * (amp - 1) * cos - root)]
        a = [(amp + 1) + sign * (amp - 1) * cos + root, -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos),
             (amp + 1) + sign * (amp - 1) * cos - root]
        return _sos(b, a)
    raise ConfigError("biquad kind {!r}: expected highpass, lowpass, lowshelf, highshelf or peak".format(kind))


def random_mic(rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """SOS of a random microphone + preamp response (each stage present with some probability).

    High-pass 30-250 Hz (MEMS ports, wind filters), low-pass 3-7.5 kHz (codecs, cheap capsules),
    low and high shelves of +-9 dB, and up to three resonances (0.8-7 kHz, +-8 dB, Q 0.7-5).
    """
    rows: List[np.ndarray] = []
    if rng.random() < 0.6:
        rows.append(biquad("highpass", math.exp(rng.uniform(math.log(30), math.log(250))), rng.uniform(0.5, 1.0), sr=sr))
    if rng.random() < 0.4:
        rows.append(biquad("lowpass", math.exp(rng.uniform(math.log(3000), math.log(7500))), rng.uniform(0.5, 1.0), sr=sr))
    if rng.random() < 0.5:
        rows.append(biquad("lowshelf", rng.uniform(150, 600), gain_db=rng.uniform(-9, 9), sr=sr))
    if rng.random() < 0.5:
        rows.append(biquad("highshelf", rng.uniform(1500, 5000), gain_db=rng.uniform(-9, 9), sr=sr))
    for _ in range(int(rng.integers(0, 4))):
        rows.append(biquad("peak", math.exp(rng.uniform(math.log(800), math.log(7000))), rng.uniform(0.7, 5.0),
                           rng.uniform(-8, 8), sr=sr))
    if not rows:
        rows.append(biquad("peak", 1000.0, 1.0, 0.0, sr=sr))  # identity
    return np.concatenate(rows)


def apply_sos(audio: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """``audio`` through the filter ``sos`` (causal, as a device applies it)."""
    from scipy.signal import sosfilt

    return sosfilt(sos, audio.astype(np.float64)).astype(np.float32)


# --- rooms ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoomSpec:
    """A shoebox room: dimensions (m), RT60 (s), source and microphone positions (m)."""

    dims: Tuple[float, float, float]
    rt60: float
    source: Tuple[float, float, float]
    mic: Tuple[float, float, float]


def room_rir(spec: RoomSpec, sr: int = SAMPLE_RATE, max_order: int = 50, seed: int = 0) -> np.ndarray:
    """The room impulse response (float32, direct path near the start, peak normalised to 1).

    Randomised image sources (no sweeping echoes), drawn from pyroomacoustics' package-wide
    generators, which are seeded with ``seed`` for the call (``pra.random.seed``).
    """
    import pyroomacoustics as pra

    absorption, order = pra.inverse_sabine(spec.rt60, list(spec.dims))
    room = pra.ShoeBox(list(spec.dims), fs=sr, materials=pra.Material(min(absorption, 0.99)),
                       max_order=min(order, max_order), use_rand_ism=True, max_rand_disp=0.05)
    room.add_source(list(spec.source))
    room.add_microphone(list(spec.mic))
    pra.random.seed(numpy=seed, libroom=seed)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    start = max(0, int(np.argmax(np.abs(rir))) - int(0.002 * sr))  # keep the alignment: no added latency
    rir = rir[start:]
    return (rir / np.max(np.abs(rir))).astype(np.float32)


def random_room(rng: np.random.Generator, size: Tuple[float, float] = (3.0, 9.0),
                rt60: Tuple[float, float] = (0.15, 0.8), distance: Tuple[float, float] = (0.3, 2.5)) -> RoomSpec:
    """A random room of side ``size`` m, RT60 ``rt60`` s, talker ``distance`` m from the microphone."""
    dims = (rng.uniform(*size), rng.uniform(*size) * rng.uniform(0.6, 1.0), rng.uniform(2.4, 3.5))
    mic = (rng.uniform(0.5, dims[0] - 0.5), rng.uniform(0.5, dims[1] - 0.5), rng.uniform(0.7, 1.5))
    for _ in range(100):
        d = rng.uniform(*distance)
        angle = rng.uniform(0, 2 * math.pi)
        src = (mic[0] + d * math.cos(angle), mic[1] + d * math.sin(angle), rng.uniform(1.1, 1.8))
        if 0.3 < src[0] < dims[0] - 0.3 and 0.3 < src[1] < dims[1] - 0.3:
            break
    else:
        src = (dims[0] / 2, dims[1] / 2, 1.5)
    return RoomSpec(dims=dims, rt60=float(rng.uniform(*rt60)), source=src, mic=mic)


def apply_rir(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``audio`` convolved with ``rir``, cut to the input length and brought back to the input's RMS."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(audio.astype(np.float64), rir.astype(np.float64))[: len(audio)]
    return match_rms(wet.astype(np.float32), audio)


class RoomBank:
    """``count`` seeded room impulse responses (:func:`random_room`), made once (about 40 ms each)."""

    def __init__(self, count: int, seed: int, sr: int = SAMPLE_RATE) -> None:
        rng = np.random.default_rng([seed, 0x500])
        self.rirs = [room_rir(random_room(rng), sr, seed=seed * 100003 + i) for i in range(count)]

    def __len__(self) -> int:
        return len(self.rirs)

    def pick(self, rng: np.random.Generator) -> np.ndarray:
        return self.rirs[int(rng.integers(len(self.rirs)))]


# --- the whole channel --------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelConfig:
    """``[augment]`` of an SER recipe: how often and how far each channel effect is drawn.

    ``gain_db`` is re the corpus level (after mixing); ``noise_floor_db`` is the self-noise of
    the microphone and converter in dB re full scale (white), added after the gain.
    """

    p_room: float = 0.0
    rooms: int = 200
    p_mic: float = 0.0
    p_gain: float = 0.0
    gain_db: Tuple[float, float] = (-30.0, 6.0)
    p_noise_floor: float = 0.0
    noise_floor_db: Tuple[float, float] = (-95.0, -65.0)
    seed: int = 0

    def __post_init__(self) -> None:
        probs = [n for n in ("p_room", "p_mic", "p_gain", "p_noise_floor") if not 0.0 <= getattr(self, n) <= 1.0]
        if probs:
            raise ConfigError("recipe [augment]: {} must be within [0, 1]".format(", ".join(probs)))
        for name in ("gain_db", "noise_floor_db"):
            pair = getattr(self, name)
            if len(pair) != 2 or pair[0] > pair[1]:
                raise ConfigError("recipe [augment]: {} must be [low, high], got {}".format(name, list(pair)))
        if self.p_room > 0 and self.rooms < 1:
            raise ConfigError("recipe [augment]: p_room > 0 needs rooms >= 1", hint="--set augment.rooms=200")

    @property
    def active(self) -> bool:
        return max(self.p_room, self.p_mic, self.p_gain, self.p_noise_floor) > 0


@dataclass(frozen=True)
class Channel:
    """One drawn device: room impulse response, microphone sections, gain (dB), self-noise level (linear).

    :meth:`apply` puts any signal through it, so the enrollment and the window of one training
    example can go through the same device (``[model] level_reference = "enrollment"``).
    """

    rir: Optional[np.ndarray]
    mic: Optional[np.ndarray]
    gain_db: float
    noise_floor: Optional[float]

    def apply(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``audio`` through the room, microphone, gain and self-noise (drawn from ``rng``), clipped."""
        out = audio.astype(np.float32)
        if self.rir is not None:
            out = apply_rir(out, self.rir)
        if self.mic is not None:
            out = match_rms(apply_sos(out, self.mic), out)
        out = apply_gain_db(out, self.gain_db, clip=False)
        if self.noise_floor is not None:
            out = out + rng.standard_normal(len(out)).astype(np.float32) * np.float32(self.noise_floor)
        return np.clip(out, -1.0, 1.0).astype(np.float32)


class ChannelAugment:
    """Room, microphone, self-noise and gain on a window, in a device's order; seeded per call.

    >>> aug = ChannelAugment(ChannelConfig(p_mic=1.0, p_gain=1.0))
    >>> out = aug(np.full(1600, 0.1, dtype=np.float32), np.random.default_rng(0))
    >>> out.shape, out.dtype.name, bool(np.abs(out).max() <= 1.0)
    ((1600,), 'float32', True)
    """

    def __init__(self, config: ChannelConfig, sr: int = SAMPLE_RATE) -> None:
        self.config, self.sr = config, sr
        self.rooms: Optional[RoomBank] = RoomBank(config.rooms, config.seed, sr) if config.p_room > 0 else None

    def draw(self, rng: np.random.Generator) -> Channel:
        """A random device under the configured probabilities and ranges."""
        cfg = self.config
        rir = self.rooms.pick(rng) if self.rooms is not None and rng.random() < cfg.p_room else None
        mic = random_mic(rng, self.sr) if rng.random() < cfg.p_mic else None
        gain = random_gain_db(rng, *cfg.gain_db) if rng.random() < cfg.p_gain else 0.0
        floor = 10.0 ** (rng.uniform(*cfg.noise_floor_db) / 20.0) if rng.random() < cfg.p_noise_floor else None
        return Channel(rir, mic, gain, floor)

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.draw(rng).apply(audio, rng)
