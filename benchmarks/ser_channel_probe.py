"""Which SER input normalisation and augmentation survive gain, microphone and room? A linear-probe measurement.

For each front-end variant (raw log-mel as the default SER reads it; the window brought to a fixed
RMS first; per-band mean removal over the window (CMN); both; the ReduceMean/Sub of the whole
window's log-mel) a logistic regression on per-band mean and standard deviation over the window
is trained on corpus training windows (mixed as the SER recipe mixes them), with and without the
channel augmentation, then scored on the clean test set unaltered and under each held-out
condition (training/channels.py). Minutes on one core; a proxy for the transformer, not a
substitute.

    python benchmarks/ser_channel_probe.py --corpus /work/data/synth --train 3000
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from emotrt.training.augment import ChannelAugment, ChannelConfig
from emotrt.training.channels import TARGET_CHANNELS, conditions
from emotrt.training.checkpoint_eval import fit_window
from emotrt.training.features import FeatureConfig, LogMel
from emotrt.training.metrics import classification_scores

LABELS = ["neutral", "happy", "angry", "sad"]
WINDOW = 32000
AUGMENT = ChannelConfig(p_room=0.3, rooms=100, p_mic=0.5, p_gain=1.0, p_noise_floor=0.5)


def variants(logmel: LogMel):
    def raw(x):
        return logmel(x)

    def rms(x):
        return logmel(x * (0.05 / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-10)))

    def cmn(x):
        m = logmel(x)
        return m - m.mean(1, keepdim=True)

    def rms_cmn(x):
        m = rms(x)
        return m - m.mean(1, keepdim=True)

    def level(x):
        m = logmel(x)
        return m - m.mean((1, 2), keepdim=True)

    return {"raw": raw, "rms": rms, "cmn": cmn, "rms_cmn": rms_cmn, "level": level}


def pooled(fn, windows: np.ndarray) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(windows), 256):
            m = fn(torch.from_numpy(windows[start:start + 256]))
            out.append(torch.cat([m.mean(1), m.std(1)], -1).numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="/work/data/synth")
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from pathlib import Path

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emotrt.training.corpus import load_manifest
    from emotrt.training.corpus.audio import read_audio
    from emotrt.training.corpus.mixing import headroom
    from emotrt.training.ser_task import SERDataConfig, labelled_sampler

    began = time.time()
    root = Path(args.corpus)
    mix = SERDataConfig(corpus=str(root)).mix_config(WINDOW, 16000)
    sampler = labelled_sampler(root, "train", LABELS, mix, 0)
    rng = np.random.default_rng(0)
    items = [sampler[int(i)] for i in rng.integers(0, 1 << 40, args.train)]
    plain = np.stack([m.mixture * headroom(m.mixture) for m in items]).astype(np.float32)
    y_train = np.array([LABELS.index(m.emotion) for m in items])
    augment = ChannelAugment(AUGMENT)
    aug_rng = np.random.default_rng(1)
    augmented = np.stack([augment(w, aug_rng) for w in plain])
    test = [u for u in load_manifest(root / "testsets" / "clean" / "mixtures.jsonl") if u.emotion in LABELS]
    clean = np.stack([fit_window(read_audio(u.file), WINDOW) for u in test]).astype(np.float32)
    y_test = np.array([LABELS.index(u.emotion) for u in test])
    conds = conditions(channels=TARGET_CHANNELS + ("hall_far",))
    tests = {"unaltered": clean}
    tests.update({name: np.stack([c.apply(w) for w in clean]) for name, c in conds.items()})
    print("data ready in {:.0f} s: {} train windows, {} test windows x {} conditions".format(
        time.time() - began, len(plain), len(clean), len(tests)))

    logmel = LogMel(FeatureConfig(n_fft=512, win_length=400, hop_length=320, normalize=False))
    results = {}
    names = list(tests)
    print("| front end | augment | " + " | ".join(names) + " | worst drop | mean agreement |")
    print("|---|---|" + "---|" * (len(names) + 2))
    for vname, fn in variants(logmel).items():
        for aug_name, train_windows in (("off", plain), ("on", augmented)):
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
            clf.fit(pooled(fn, train_windows), y_train)
            preds = {n: clf.predict(pooled(fn, w)) for n, w in tests.items()}
            ua = {n: classification_scores(y_test, p, len(LABELS))["ua"] for n, p in preds.items()}
            agree = {n: float(np.mean(p == preds["unaltered"])) for n, p in preds.items()}
            results["{}/{}".format(vname, aug_name)] = {"ua": ua, "agreement": agree}
            drop = max(ua["unaltered"] - v for v in ua.values())
            print("| {} | {} | ".format(vname, aug_name) + " | ".join("{:.3f}".format(ua[n]) for n in names)
                  + " | {:.3f} | {:.3f} |".format(drop, np.mean([agree[n] for n in names[1:]])), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    print("total {:.0f} s".format(time.time() - began))


if __name__ == "__main__":
    main()
