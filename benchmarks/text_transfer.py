"""Does the environment text say anything about how an unseen environment sounds?

For each environment of a corpus: the mean of its descriptions' text embeddings, and its noise's
acoustic profile (mean and standard deviation of each log-mel band, the SER's own front end).
A ridge map text -> profile is fitted on the seen environments and scored on the unseen ones,
against the trivial guess "the mean seen profile". If the map does no better than the guess, no
SER can learn from these seen environments a text conditioning that helps on the unseen ones.
Prints numbers measured in this run; asserts nothing.

    python benchmarks/text_transfer.py data/synth [wordllama]
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import Ridge

from emotrt.training.corpus.audio import read_audio
from emotrt.training.features import FeatureConfig, LogMel
from emotrt.training.text import DescriptionBank, load_text_encoder

SECONDS = 10.0


def acoustic_profile(files, front_end):
    """Mean over files of [band means, band stds] of the level-normalised log-mel."""
    rows = []
    for f in files:
        audio = read_audio(f)[: int(16000 * SECONDS)]
        audio = audio / (np.sqrt(np.mean(audio ** 2)) + 1e-9)
        mel = front_end(torch.from_numpy(audio.astype(np.float32))[None])[0]
        rows.append(torch.cat([mel.mean(0), mel.std(0)]).numpy())
    return np.mean(rows, axis=0)


def main(corpus: str, encoder: str = "wordllama") -> None:
    root = Path(corpus)
    environments = json.loads((root / "environments.json").read_text())
    bank = DescriptionBank(load_text_encoder(encoder, None), environments)
    front_end = LogMel(FeatureConfig(n_fft=512, win_length=400, hop_length=320, normalize=False))
    noisy = [e for e in bank.ids if (root / "noise" / e).is_dir()]
    profile = {e: acoustic_profile(sorted((root / "noise" / e).glob("*.wav"))[:4], front_end) for e in noisy}
    seen = [e for e in noisy if bank.splits[e] == "seen"]
    unseen = [e for e in noisy if bank.splits[e] == "unseen"]
    text = {e: bank.embeddings[e].mean(0).numpy() for e in noisy}
    guess = np.mean([profile[e] for e in seen], axis=0)
    print("environment   nearest seen by sound       nearest seen by text        ridge error / mean-guess error")
    for alpha in (0.1, 1.0, 10.0):
        fit = Ridge(alpha=alpha).fit(np.stack([text[e] for e in seen]), np.stack([profile[e] for e in seen]))
        for e in unseen:
            by_sound = min(seen, key=lambda s: np.linalg.norm(profile[e] - profile[s]))
            by_text = max(seen, key=lambda s: float(np.dot(text[e], text[s]) / np.linalg.norm(text[e]) / np.linalg.norm(text[s])))
            ratio = np.linalg.norm(fit.predict(text[e][None])[0] - profile[e]) / np.linalg.norm(guess - profile[e])
            print("{:13} {:27} {:27} {:.2f}  (alpha {})".format(e, by_sound, by_text, ratio, alpha))


if __name__ == "__main__":
    main(*sys.argv[1:])
