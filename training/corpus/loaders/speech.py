"""Clean read speech used as TSE targets and interferers: LibriSpeech."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from .common import Source, corpus_dir, nonempty

LIBRI_LAYOUT = "<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac with SPEAKERS.TXT"
LIBRI_SPLITS = {"train": "train", "dev": "valid", "test": "test"}


def _libri_genders(root: Path) -> Dict[str, str]:
    """Speaker sex from SPEAKERS.TXT (``ID | SEX | SUBSET | MINUTES | NAME``, ';' comments)."""
    genders = {}
    for name in ("SPEAKERS.TXT", "../SPEAKERS.TXT"):
        table = root / name
        if table.is_file():
            for line in table.read_text(encoding="utf-8", errors="replace").splitlines():
                fields = [f.strip() for f in line.split("|")]
                if not line.startswith(";") and len(fields) >= 2 and fields[1].lower() in ("f", "m"):
                    genders[fields[0]] = fields[1].lower()
    return genders


def load_librispeech(path: Path) -> List[Source]:
    """LibriSpeech: speakers and sex from SPEAKERS.TXT, transcripts, split from the subset name."""
    root = corpus_dir(path, "librispeech")
    genders = _libri_genders(root)
    sources = []
    for flac in sorted(root.glob("*/*/*/*.flac")):
        subset, speaker, chapter = flac.parts[-4:-1]
        split = LIBRI_SPLITS.get(subset.split("-")[0])
        if split is None or not flac.stem.startswith("{}-{}-".format(speaker, chapter)):
            continue
        sources.append(Source(file=flac, id="libri_" + flac.stem, split=split, speaker="libri_" + speaker,
                              gender=genders.get(speaker), text=_transcript(flac)))
    return nonempty(sources, root, "librispeech", LIBRI_LAYOUT)


def _transcript(flac: Path) -> Optional[str]:
    speaker, chapter, _ = flac.stem.split("-")
    trans = flac.with_name("{}-{}.trans.txt".format(speaker, chapter))
    if trans.is_file():
        for line in trans.read_text(encoding="utf-8", errors="replace").splitlines():
            utt, _, text = line.partition(" ")
            if utt == flac.stem:
                return text.strip().lower()
    return None
