"""Audio corpora for training and testing (docs/contracts.md "Corpus"): numpy, soundfile and soxr only.

Manifests (:func:`load_manifest`, :class:`Utterance`), mixing at an SNR/SIR, the synthetic
espeak-ng corpus, the seeded on-the-fly mixing sampler, the stored test sets and loaders for
real corpora over local copies. No torch here, so calibration and the CLI can use it.
"""
from __future__ import annotations

from .labels import EMOTIONS, FOUR_CLASS, harmonise
from .manifest import SCHEMA_PATH, Utterance, check_line, load_manifest, write_manifest
from .mixing import compose, measured_snr, mix_interferer, mix_noise, noise_gain
from .sampler import MixConfig, Mixture, MixingSampler

__all__ = [
    "EMOTIONS",
    "FOUR_CLASS",
    "MixConfig",
    "Mixture",
    "MixingSampler",
    "SCHEMA_PATH",
    "Utterance",
    "check_line",
    "compose",
    "harmonise",
    "load_manifest",
    "measured_snr",
    "mix_interferer",
    "mix_noise",
    "noise_gain",
    "write_manifest",
]
