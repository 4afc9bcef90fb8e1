"""Pseudo-speakers are varied, gender-balanced and reproducible."""
import numpy as np

from emotrt.training.corpus.speakers import VARIANTS, draw_speakers


def test_two_hundred_speakers_are_all_different_and_balanced():
    speakers = draw_speakers("s", 200, np.random.default_rng(0))
    assert len({(s.accent, s.variant, s.pitch, s.rate, s.warp) for s in speakers}) == 200
    assert sum(s.gender == "f" for s in speakers) == 100
    assert all(s.variant in VARIANTS[s.gender] for s in speakers)
    assert len({s.accent for s in speakers}) >= 6 and len({s.variant for s in speakers}) >= 30


def test_same_seed_same_speakers():
    assert draw_speakers("s", 5, np.random.default_rng(1)) == draw_speakers("s", 5, np.random.default_rng(1))
