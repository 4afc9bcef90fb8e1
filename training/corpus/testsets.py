"""The fixed, stored test sets: clean, two talkers at 0 dB SIR (same/different gender), and noise
at 10/5/0/-5 dB power SNR for seen and unseen environments.

Each set is ``testsets/<name>/mixtures.jsonl`` + WAVs; lines carry the target's labels and the
mixing fields (``target``, ``interferer``, ``noise``, ``environment``, ``snr_db``, ``sir_db``,
``snr_mode``, ``gender_pair``). Mixtures are scaled as a whole when they would clip (metrics such
as SI-SDR are scale-invariant). The clean set points at the clean files themselves.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from .audio import SAMPLE_RATE, read_audio, write_wav
from .manifest import Utterance, write_manifest
from .mixing import compose, headroom

TWO_TALKER_SIR_DB = 0.0
NOISE_SNRS_DB = (10, 5, 0, -5)
CLEAN_ENVIRONMENT = "quiet"


#: Every stored test set, in a stable order.
TESTSET_NAMES = ("clean", "two_talker_same_0db", "two_talker_different_0db") + tuple(
    "noise_{}_{}db".format(split, str(s).replace("-", "m")) for split in ("seen", "unseen") for s in NOISE_SNRS_DB
)


def _write(root: Path, name: str, index: int, target: Utterance, audio: np.ndarray, **fields: Any) -> Utterance:
    rel = "testsets/{}/{}_{:04d}.wav".format(name, name, index)
    write_wav(root / rel, audio * headroom(audio))
    return dataclasses.replace(target, id="{}_{:04d}".format(name, index), path=rel,
                               duration=round(len(audio) / SAMPLE_RATE, 4), target=target.id, **fields)


def build_testsets(
    root: Path, test: Sequence[Utterance], noise: Sequence[Utterance], environments: Mapping[str, Mapping[str, Any]],
    size: int, seed: int,
) -> Dict[str, int]:
    """Write every test set under ``root/testsets``; returns the number of mixtures per set."""
    rng = np.random.default_rng([seed, 1])
    targets = [test[i] for i in rng.permutation(len(test))[:size]]
    cache: Dict[str, np.ndarray] = {}

    def load(u: Utterance) -> np.ndarray:
        if u.id not in cache:
            cache[u.id] = read_audio(root / u.path)
        return cache[u.id]

    sets: Dict[str, List[Utterance]] = {
        "clean": [dataclasses.replace(u, target=u.id, environment=CLEAN_ENVIRONMENT) for u in targets]}
    for pair in ("same", "different"):
        name = "two_talker_{}_0db".format(pair)
        sets[name] = []
        for i, u in enumerate(targets):
            pool = [v for v in test if v.speaker != u.speaker and (v.gender == u.gender) == (pair == "same")]
            v = pool[int(rng.integers(len(pool)))]
            mixture, _, _ = compose(load(u), rng, interferer=load(v), sir_db=TWO_TALKER_SIR_DB)
            sets[name].append(_write(root, name, i, u, mixture, interferer=v.id, sir_db=TWO_TALKER_SIR_DB,
                                     gender_pair=pair, environment=CLEAN_ENVIRONMENT))
    for split in ("seen", "unseen"):
        clips = [c for c in noise if c.split == "test" and environments[c.environment]["split"] == split]
        for snr in NOISE_SNRS_DB:
            name = "noise_{}_{}db".format(split, str(snr).replace("-", "m"))
            sets[name] = []
            for i, u in enumerate(targets):
                clip = clips[int(rng.integers(len(clips)))]
                mixture, _, _ = compose(load(u), rng, noise=load(clip), snr_db=float(snr))
                sets[name].append(_write(root, name, i, u, mixture, noise=clip.id, environment=clip.environment,
                                         snr_db=float(snr), snr_mode="power"))
    for name, lines in sets.items():
        write_manifest(root / "testsets" / name / "mixtures.jsonl", lines)
    return {name: len(lines) for name, lines in sets.items()}
