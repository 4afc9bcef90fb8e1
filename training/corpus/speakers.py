"""Pseudo-speakers: random draws of espeak-ng voice, variant, base pitch, rate and a formant warp.

A target-speaker extractor only generalises to new voices when it has seen many (REFERENCE.md:
18 training speakers extracted nothing from unseen ones), so each speaker combines one of several
English accents with a voice variant of its gender, a base pitch and rate, and a speed/formant
warp applied by resampling (``warp`` > 1 raises pitch and formants and speeds up).
"""
from __future__ import annotations

import dataclasses
from typing import List

import numpy as np

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# espeak-ng voice variants (espeak-ng --voices=variant) by the gender they sound; robotic,
# whispering and novelty variants are left out.
VARIANTS = {
    "f": ("f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "aunty", "belinda", "linda", "steph", "steph2",
          "steph3", "anika"),
    "m": ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "adam", "Alex", "Andy", "benjamin", "caleb", "david", "ed",
          "edward", "john", "max", "Michael", "paul", "rob", "robert", "travis", "victor", "norbert", "Lee"),
}
# (low, high) of the base pitch (espeak-ng -p, 0-99), rate (words per minute) and warp, per gender
PITCH = {"f": (40, 80), "m": (15, 55)}
RATE = (145, 195)
WARP = {"f": (0.96, 1.14), "m": (0.86, 1.04)}


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One pseudo-speaker: the espeak-ng settings that make its voice."""

    id: str
    gender: str
    accent: str
    variant: str
    pitch: int
    rate: int
    warp: float

    @property
    def voice(self) -> str:
        """The espeak-ng ``-v`` argument."""
        return "{}+{}".format(self.accent, self.variant)


def draw_speakers(prefix: str, count: int, rng: np.random.Generator) -> List[Speaker]:
    """``count`` speakers named ``<prefix><nnn>``, alternating genders, settings drawn from ``rng``."""
    speakers = []
    for i in range(count):
        gender = "fm"[i % 2]
        speakers.append(
            Speaker(
                id="{}{:03d}".format(prefix, i),
                gender=gender,
                accent=str(rng.choice(ACCENTS)),
                variant=str(rng.choice(VARIANTS[gender])),
                pitch=int(rng.integers(*PITCH[gender], endpoint=True)),
                rate=int(rng.integers(*RATE, endpoint=True)),
                warp=round(float(rng.uniform(*WARP[gender])), 3),
            )
        )
    return speakers
