"""How separable the synthetic prosody styles are, and how spread the pseudo-speakers' pitch is.

Six simple features per utterance (level, speaking rate, median pitch, pitch range, spectral
centroid, voiced fraction); a logistic regression fitted on the train speakers and scored on the
held-out test speakers. Prints numbers measured in this run; asserts nothing.

    python benchmarks/corpus_styles.py data/synth
"""
import sys
from collections import defaultdict

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emotrt.training.corpus import load_manifest
from emotrt.training.corpus.audio import SAMPLE_RATE, read_audio

FRAME, HOP = 1024, 256


def pitch_track(x):
    """Per-frame F0 (Hz) by autocorrelation for frames loud enough to be voiced."""
    n = 1 + (len(x) - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:n] * np.hanning(FRAME)
    loud = np.sqrt(np.mean(frames ** 2, axis=1)) > 0.1 * np.sqrt(np.mean(x ** 2)) * 2
    spec = np.fft.rfft(frames, 2 * FRAME)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :FRAME]
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    strength = ac[np.arange(len(ac)), lag] / (ac[:, 0] + 1e-9)
    voiced = loud & (strength > 0.4)
    return SAMPLE_RATE / lag[voiced], voiced.mean()


def features(utt):
    x = read_audio(utt.file)
    f0, voiced = pitch_track(x)
    f0 = f0 if len(f0) else np.array([0.0])
    spec = np.abs(np.fft.rfft(x))
    centroid = float(np.sum(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE) * spec) / np.sum(spec))
    return [20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-9), len(utt.text) / utt.duration, np.median(f0),
            np.percentile(f0, 90) - np.percentile(f0, 10), centroid, voiced], float(np.median(f0))


def main(root):
    data = {}
    for split in ("train", "test"):
        utts = load_manifest("{}/manifests/{}.jsonl".format(root, split))
        rows = [features(u) for u in utts]
        data[split] = (np.array([r[0] for r in rows]), np.array([u.emotion for u in utts]), utts, [r[1] for r in rows])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(data["train"][0], data["train"][1])
    accuracy = float(np.mean(model.predict(data["test"][0]) == data["test"][1]))
    print("style accuracy on held-out speakers (6 features, logistic regression): {:.3f}".format(accuracy))
    neutral = defaultdict(list)
    for utt, f0 in zip(data["train"][2], data["train"][3]):
        if utt.emotion == "neutral":
            neutral[utt.gender].append(f0)
    for gender, values in sorted(neutral.items()):
        print("neutral median F0, {} train speakers ({}): 10th-90th percentile {:.0f}-{:.0f} Hz".format(
            len(values), gender, np.percentile(values, 10), np.percentile(values, 90)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/synth")
