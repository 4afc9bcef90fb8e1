"""How well a TSE's enrollment embeddings tell the test speakers apart, before any gate.

Each test utterance's centred SER window (clean, 2 s) is embedded by the TSE's enrollment network and
compared (cosine) with every test speaker's enrollment embedding, as the gate compares a window with
the enrolled speaker. Prints, for thresholds keeping 95 / 99 % of the speakers' own windows, the share
of other speakers' windows that pass::

    python benchmarks/speaker_embeddings.py checkpoints/tse_edge --corpus data/synth
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

import numpy as np
import torch


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tse")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--window-s", type=float, default=2.0)
    args = parser.parse_args(argv)

    from emotrt.training.checkpoint_eval import fit_window
    from emotrt.training.corpus import load_manifest
    from emotrt.training.corpus.audio import read_audio
    from emotrt.training.models import load_model

    tse, _ = load_model(args.tse)
    tse.eval()

    def embed(audio: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = tse.enroll(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None])[0].numpy()
        return out / np.linalg.norm(out)

    test = load_manifest(f"{args.corpus}/manifests/test.jsonl", args.corpus)
    enrollments = {}
    for row in load_manifest(f"{args.corpus}/manifests/enroll.jsonl", args.corpus):
        enrollments.setdefault(row.speaker, row)
    speakers = sorted({u.speaker for u in test})
    enrolled = np.stack([embed(read_audio(enrollments[s].file)) for s in speakers])
    window = int(args.window_s * tse.config.sample_rate)
    scores = np.stack([enrolled @ embed(fit_window(read_audio(u.file), window)) for u in test])  # [utterances, speakers]
    own = np.array([speakers.index(u.speaker) for u in test])
    mine = scores[np.arange(len(test)), own]
    others = scores[np.arange(len(speakers))[None, :] != own[:, None]]
    print("{} test speakers, {} windows of {} s".format(len(speakers), len(test), args.window_s))
    for keep in (0.95, 0.99):
        threshold = float(np.quantile(mine, 1.0 - keep))
        print("own windows kept {:.0%}: cosine >= {:.3f}, other speakers' windows passing {:.1%}".format(
            keep, threshold, float(np.mean(others >= threshold))))


if __name__ == "__main__":
    main()
