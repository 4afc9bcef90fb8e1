"""Pick one held-out test speaker of a synthetic corpus and write the demo's inputs.

Writes OUT/enroll.wav (an enrollment utterance of that speaker) and OUT/mixture.wav (that
speaker's stored test mixtures: other talkers at 0 dB SIR and environment noise, back to back),
then prints "<speaker> <environment>" for the demo script.
"""
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from emotrt.training.corpus import load_manifest
from emotrt.training.corpus.audio import read_audio, write_wav


def main(corpus: str, out: str) -> None:
    root, out_dir = Path(corpus), Path(out)
    by_speaker = defaultdict(list)
    for manifest in sorted((root / "testsets").glob("*/mixtures.jsonl")):
        if manifest.parent.name.startswith(("two_talker_different", "noise_seen_5db")):
            for utt in load_manifest(manifest, root=root):
                by_speaker[utt.speaker].append(utt)
    enrollments = {u.speaker: u for u in load_manifest(root / "manifests" / "enroll.jsonl") if u.split == "test"}
    speaker = max((s for s in by_speaker if s in enrollments), key=lambda s: (len(by_speaker[s]), s))
    mixtures = sorted(by_speaker[speaker], key=lambda u: u.id)
    gap = np.zeros(8000, dtype=np.float32)
    audio = np.concatenate([np.concatenate([read_audio(u.file), gap]) for u in mixtures])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_wav(out_dir / "mixture.wav", audio)
    write_wav(out_dir / "enroll.wav", read_audio(enrollments[speaker].file))
    environment = next((u.environment for u in mixtures if u.environment not in (None, "quiet")), "quiet")
    print(speaker, environment)


if __name__ == "__main__":
    main(*sys.argv[1:3])
