"""Synthetic noise environments: numpy recipes, text descriptions, seen/unseen split.

Each environment is built from plausible ingredients (babble from other synthetic talkers,
clatter, rumble, hum, tonal music...) and carries three phrases, each written in the three styles of
TG-EAT's prompt templates ("This speech is recorded in {}."). Environments marked ``unseen`` are never
used for training: they test generalisation to new conditions, as TG-EAT's held-out categories do.
Each unseen environment has one seen neighbour close to it both in what its descriptions say and in
how it sounds (music/radio, wind/seaside, tram/bus, construction/workshop): without one, nothing in
the seen environments' text tells the SER what an unseen environment sounds like
(benchmarks/text_transfer.py measures it).
``quiet`` has no clips; it describes clean speech so the SER always gets an environment token.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .audio import SAMPLE_RATE

SR = SAMPLE_RATE
TEMPLATES = ("This speech is recorded in {}.", "The recording was made in {}.", "Someone is speaking in {}.")
Clip = Callable[[int, np.random.Generator, Sequence[np.ndarray]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Environment:
    """A noise environment: id, seen/unseen split, and the phrases its descriptions are made from."""

    id: str
    split: str
    phrases: Tuple[str, ...]
    clip: Optional[Clip] = None  # the generator of its clips; None for ``quiet``

    @property
    def descriptions(self) -> List[str]:
        """Every phrase in every template: the first round puts each phrase in a different template,
        the next rounds rotate them. Many wordings of few environments keep the SER's text projection
        from learning the seen descriptions by heart (TG-EAT also trains on several templates)."""
        n = len(TEMPLATES)
        return [TEMPLATES[(i + shift) % n].format(p) for shift in range(n) for i, p in enumerate(self.phrases)]


def _spectral(n: int, rng: np.random.Generator, exponent: float = 0.0, band: Tuple[float, float] = (0, SR / 2)) -> np.ndarray:
    """Unit-RMS noise with power falling as 1/f**exponent, limited to ``band`` (Hz)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    shape = np.where((freqs >= band[0]) & (freqs <= band[1]), 1.0, 0.0) / np.maximum(freqs, 20.0) ** (exponent / 2)
    x = np.fft.irfft(spec * shape, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def _envelope(n: int, rng: np.random.Generator, rate_hz: float, depth: float) -> np.ndarray:
    """A smooth random gain between 1-depth and 1 varying at about ``rate_hz``."""
    points = max(2, int(n / SR * rate_hz) + 2)
    env = np.interp(np.arange(n), np.linspace(0, n, points), rng.random(points))
    return 1.0 - depth + depth * env


def _events(n: int, rng: np.random.Generator, per_second: float, sound: Callable[[], np.ndarray]) -> np.ndarray:
    """Short sounds made by ``sound()`` dropped at Poisson times."""
    out = np.zeros(n)
    for _ in range(rng.poisson(per_second * n / SR)):
        s = sound()
        start = int(rng.integers(0, n))
        end = min(n, start + len(s))
        out[start:end] += s[: end - start]
    return out


def _decaying(rng: np.random.Generator, ms: float, band: Tuple[float, float], amp: float = 1.0) -> np.ndarray:
    """A band-limited click with an exponential decay of ``ms`` milliseconds."""
    n = int(SR * ms * 5 / 1000)
    return amp * _spectral(n, rng, 0.0, band) * np.exp(-np.arange(n) / (SR * ms / 1000))


def _tone(seconds: float, freqs: Sequence[float], decay: float = 0.0) -> np.ndarray:
    """A sum of sinusoids (harmonics fall as 1/k) with an optional exponential decay rate (1/s)."""
    t = np.arange(int(round(SR * seconds))) / SR
    x = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate(freqs))
    return x * np.exp(-decay * t)


def _babble(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray], talkers: int) -> np.ndarray:
    """Overlapping talkers drawn from ``pool``, each looped from a random offset."""
    out = np.zeros(n)
    for i in rng.choice(len(pool), size=min(talkers, len(pool)), replace=False):
        x = np.tile(pool[i], int(np.ceil(n / len(pool[i]))) + 1)
        start = int(rng.integers(0, len(pool[i])))
        seg = x[start:start + n]
        out += seg / (np.sqrt(np.mean(seg ** 2)) + 1e-12)
    return out


def _harmonics(f0: float, count: int) -> List[float]:
    return [f0 * (k + 1) for k in range(count)]


def _engine(n: int, rng: np.random.Generator, hz: float, drift_hz: float, harmonics: int) -> np.ndarray:
    """An engine hum: ``harmonics`` harmonics (falling as 1/k) of a fundamental near ``hz`` drifting by about ``drift_hz``."""
    rpm = hz + drift_hz * np.cumsum(rng.standard_normal(n)) / np.sqrt(n)
    phase = 2 * np.pi * np.cumsum(rpm) / SR
    return sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))


def _song(n: int, rng: np.random.Generator, beat_s: Tuple[float, float], root_hz: Tuple[float, float],
          scale: Sequence[int], voices: int, bass_hz: float) -> np.ndarray:
    """Random chords of ``voices`` notes from ``scale`` (semitones above a random root), one per beat, on a bass."""
    out = np.zeros(n)
    beat = int(SR * rng.uniform(*beat_s))
    root = rng.uniform(*root_hz)
    for start in range(0, n, beat):
        chord = [root * 2 ** (s / 12) for s in rng.choice(scale, voices, replace=False)]
        note = sum(_tone(beat / SR, _harmonics(f, 4), 3.0) for f in chord)
        out[start:start + beat] += note[: n - start]
        out[start:start + beat] += 2 * _tone(beat / SR, [bass_hz], 25.0)[: n - start]
    return out


# One clip generator per environment with clips, ``(samples, rng, babble pool) -> clip``, held by its
# ENVIRONMENTS entry (whose phrases say what it is meant to sound like). The order of the rng draws
# inside each is part of the corpus: reordering them changes every clip.


def _clip_babble(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    return _babble(n, rng, pool, int(rng.integers(5, 9)))


def _clip_cafe(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    clatter = _events(n, rng, 3.0, lambda: _decaying(rng, 15, (2000, 7000), rng.uniform(1, 4)))
    return _babble(n, rng, pool, 8) + clatter + 0.3 * _spectral(n, rng, 2.0)


def _clip_street(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    horns = _events(n, rng, 0.15, lambda: 2 * _tone(0.4, _harmonics(rng.uniform(330, 450), 6)))
    return _spectral(n, rng, 2.0, (20, 4000)) * _envelope(n, rng, 0.5, 0.8) * 2 + horns


def _clip_car_interior(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    engine = _engine(n, rng, 30, 5, 7)
    return 2 * _spectral(n, rng, 2.0, (20, 400)) + 0.5 * engine


def _clip_rain(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    drops = _events(n, rng, 300.0, lambda: _decaying(rng, 2, (1000, 8000), rng.uniform(0.5, 3)))
    return _spectral(n, rng, 0.5, (800, 8000)) * _envelope(n, rng, 1.0, 0.3) + drops


def _clip_office(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    keys = _events(n, rng, 1.0, lambda: np.concatenate(
        [np.concatenate([_decaying(rng, 3, (1500, 6000), 3), np.zeros(int(SR * rng.uniform(0.06, 0.2)))])
         for _ in range(int(rng.integers(3, 12)))]))
    return _spectral(n, rng, 1.0, (30, 2000)) + keys


def _clip_kitchen(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    seconds = n / SR
    water = _spectral(n, rng, 0.0, (500, 4000)) * (_envelope(n, rng, 0.3, 1.0) > 0.5)
    clatter = _events(n, rng, 1.5, lambda: _decaying(rng, 40, (1500, 6000), rng.uniform(2, 6)))
    return water + clatter + 0.5 * _tone(seconds, _harmonics(50, 4))


def _clip_fan(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    seconds = n / SR
    return _spectral(n, rng, 1.0) + 0.3 * _tone(seconds, _harmonics(rng.uniform(90, 150), 5))


def _clip_radio(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    return _song(n, rng, (0.3, 0.45), (130, 260), (0, 2, 4, 7, 9, 12), 2, 65.0)


def _clip_seaside(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    return _spectral(n, rng, 2.0, (20, 700)) * _envelope(n, rng, 0.25, 1.0) ** 1.5


def _clip_bus(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    engine = _engine(n, rng, 20, 4, 5)
    bumps = _events(n, rng, 0.5, lambda: _decaying(rng, 30, (60, 800), 4))
    hiss = _events(n, rng, 0.1, lambda: _decaying(rng, 300, (2000, 6000), 0.8))
    return 2 * _spectral(n, rng, 2.0, (20, 350)) + 0.4 * engine + bumps + hiss


def _clip_workshop(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    seconds = n / SR
    hammer = _events(n, rng, 1.5, lambda: _decaying(rng, 25, (80, 3500), 7))
    saw = _tone(seconds, _harmonics(rng.uniform(180, 320), 8)) * (_envelope(n, rng, 0.3, 1.0) > 0.6)
    return hammer + saw + 0.4 * _spectral(n, rng, 1.5)


def _clip_music(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    return _song(n, rng, (0.4, 0.6), (110, 220), (0, 3, 4, 5, 7, 9, 12), 3, 55.0)


def _clip_wind(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    return _spectral(n, rng, 2.0, (20, 600)) * _envelope(n, rng, 0.7, 1.0) ** 2


def _clip_tram(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    clacks = _events(n, rng, 1.0, lambda: _decaying(rng, 20, (100, 1500), 6))
    squeal = _events(n, rng, 0.2, lambda: 0.5 * _tone(1.0, [rng.uniform(3000, 5000)]))
    return 2 * _spectral(n, rng, 2.0, (20, 300)) + clacks + squeal


def _clip_construction(n: int, rng: np.random.Generator, pool: Sequence[np.ndarray]) -> np.ndarray:
    seconds = n / SR
    hammer = _events(n, rng, 2.0, lambda: _decaying(rng, 30, (60, 3000), 8))
    drill = _tone(seconds, _harmonics(rng.uniform(150, 250), 8)) * (_envelope(n, rng, 0.4, 1.0) > 0.6)
    return hammer + drill + 0.5 * _spectral(n, rng, 1.5)


ENVIRONMENTS: Dict[str, Environment] = {
    e.id: e
    for e in (
        Environment("quiet", "seen", ("a quiet room", "a silent studio", "a calm place with no background noise")),
        Environment("babble", "seen", ("a crowd of people talking", "a room full of chatter", "a noisy gathering"),
                    _clip_babble),
        Environment("cafe", "seen", ("a busy cafe", "a coffee shop with chatter and clinking dishes",
                                     "a crowded restaurant"), _clip_cafe),
        Environment("street", "seen", ("a busy street", "traffic on a city road", "a street with passing cars"),
                    _clip_street),
        Environment("car_interior", "seen", ("a moving car", "the inside of a car on the highway",
                                             "a vehicle with engine noise"), _clip_car_interior),
        Environment("rain", "seen", ("heavy rain", "a rainstorm", "rain falling on the roof"), _clip_rain),
        Environment("office", "seen", ("an office with air conditioning", "an office with people typing",
                                       "a workplace with humming ventilation"), _clip_office),
        Environment("kitchen", "seen", ("a kitchen", "a kitchen with running water and dishes",
                                        "a home kitchen while cooking"), _clip_kitchen),
        Environment("fan", "seen", ("a room with a fan running", "a room with a noisy fan",
                                    "a place with steady machine hum"), _clip_fan),
        Environment("radio", "seen", ("a radio playing pop songs", "a living room with the radio on",
                                      "a shop with a tune on the speakers"), _clip_radio),
        Environment("seaside", "seen", ("the seaside", "waves breaking on a windy beach",
                                        "an exposed coast with surf and a breeze"), _clip_seaside),
        Environment("bus", "seen", ("a city bus", "passengers riding a bus", "a bus driving through town"), _clip_bus),
        Environment("workshop", "seen", ("a workshop with power tools", "a garage where someone is hammering",
                                         "a carpenter's workshop with a saw"), _clip_workshop),
        Environment("music", "unseen", ("a room with music playing", "a bar with background music",
                                        "a place where a song is playing"), _clip_music),
        Environment("wind", "unseen", ("strong wind", "a windy field", "gusts of wind outdoors"), _clip_wind),
        Environment("tram", "unseen", ("a tram", "a rattling train carriage", "a tram on its rails"), _clip_tram),
        Environment("construction", "unseen", ("a construction site", "a building site with hammering and drills",
                                               "a street under construction"), _clip_construction),
    )
}


def make_noise(env: str, seconds: float, seed: Sequence[int], pool: Sequence[np.ndarray]) -> np.ndarray:
    """A float32 clip of ``env`` of ``seconds``, peak 0.5, deterministic in ``seed``."""
    clip = ENVIRONMENTS[env].clip if env in ENVIRONMENTS else None
    if clip is None:
        raise KeyError(env)
    rng = np.random.default_rng(list(seed))
    x = clip(int(SR * seconds), rng, pool)
    return (0.5 * x / (np.max(np.abs(x)) + 1e-12)).astype(np.float32)
