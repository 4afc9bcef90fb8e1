"""TSE checkpoints on a voice they never heard: flite's held-out voice against espeak-ng test speakers.

Targets are the voices corpus' valid split (``emotrt data voices``: flite's ``rms`` at six warps,
kept out of every TSE recipe), each enrolled with one of its enrollment utterances; the other
talker is an utterance of the main corpus' test speakers (espeak-ng) at 0 dB SIR. For reference,
the same number of espeak-ng test targets against espeak-ng test talkers. Prints the mean SI-SDRi
(dB, the latency-aligned offline extraction, as ``emotrt eval``) of every checkpoint given, all on
the same mixtures::

    python benchmarks/tse_voices.py checkpoints/tse_edge runs/tse_edge_v3/best --voices data/voices \\
        --corpus data/synth [--n 96]
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch


def mixtures(voices: str, corpus: str, n: int, seed: int = 0) -> Dict[str, List[Tuple[np.ndarray, ...]]]:
    """(mixture, target, enrollment) triples per condition: ``heldout_voice`` and ``espeak``, ``n`` each."""
    from emotrt.training.corpus import load_manifest
    from emotrt.training.corpus.audio import read_audio
    from emotrt.training.corpus.mixing import compose, pad_or_crop

    rng = np.random.default_rng(seed)
    flite = load_manifest(f"{voices}/manifests/valid.jsonl", voices)
    flite_enroll = load_manifest(f"{voices}/manifests/enroll.jsonl", voices)
    test = load_manifest(f"{corpus}/manifests/test.jsonl", corpus)
    test_enroll = load_manifest(f"{corpus}/manifests/enroll.jsonl", corpus)
    out: Dict[str, List[Tuple[np.ndarray, ...]]] = {}
    for name, targets, enrolls in (("heldout_voice", flite, flite_enroll), ("espeak", test, test_enroll)):
        rows = []
        for i in rng.permutation(len(targets))[:n]:
            utt = targets[int(i)]
            enroll = [u for u in enrolls if u.speaker == utt.speaker]
            other = test[int(rng.integers(len(test)))]
            while other.speaker == utt.speaker:
                other = test[int(rng.integers(len(test)))]
            target = pad_or_crop(read_audio(utt.file), 3 * 16000, rng)
            mixture, _, _ = compose(target, rng, interferer=read_audio(other.file), sir_db=0.0)
            enrollment = pad_or_crop(read_audio(enroll[int(rng.integers(len(enroll)))].file), 3 * 16000, rng)
            rows.append((mixture, target, enrollment))
        out[name] = rows
    return out


def si_sdri(checkpoint: str, rows: Sequence[Tuple[np.ndarray, ...]]) -> float:
    """Mean SI-SDRi of ``checkpoint``'s latency-aligned extraction over ``rows``."""
    from emotrt.training.metrics import si_sdr_improvement
    from emotrt.training.models import load_model

    tse, _ = load_model(checkpoint)
    tse.eval()
    latency = tse.config.latency_samples
    values = []
    with torch.no_grad():
        for mixture, target, enrollment in rows:
            mix = torch.from_numpy(mixture[None])
            out = tse(mix, tse.enroll(torch.from_numpy(enrollment[None])))[:, latency:]
            n = out.shape[-1]
            values.append(float(si_sdr_improvement(out, mix[:, :n], torch.from_numpy(target[None])[:, :n])))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--voices", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--n", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = mixtures(args.voices, args.corpus, args.n)
    result = {ckpt: {name: round(si_sdri(ckpt, rows), 3) for name, rows in sets.items()} for ckpt in args.checkpoints}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
