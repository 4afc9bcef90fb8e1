"""``emotrt data prepare``: a real corpus from a local copy into the emotrt manifest format.

Audio is resampled to 16 kHz mono PCM16 under ``OUT/speech/<speaker>/`` or
``OUT/noise/<environment>/``; speech corpora get ``manifests/{train,valid,test}.jsonl``, noise
corpora ``manifests/noise.jsonl`` and ``environments.json``. Emotion labels are harmonised and,
by default, limited to the four-class set (neutral, happy, angry, sad), optionally without neutral.
"""
from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from emotrt.runtime.errors import ConfigError, CorpusError

from .audio import SAMPLE_RATE, read_audio, write_wav
from .labels import AVD_SCALE, EMOTIONS, FOUR_CLASS, keep_label
from .loaders import LOADERS, Source
from .manifest import CORPUS_FILE, SPLITS, Utterance, write_manifest
from .noises import ENVIRONMENTS, TEMPLATES
from .output import Progress, collect, corpus_output
from .stats import corpus_stats

log = logging.getLogger(__name__)
CLASS_SETS = {"four": FOUR_CLASS, "all": EMOTIONS}


def _rel_path(source: Source) -> str:
    if source.environment is not None:
        return "noise/{}/{}.wav".format(source.environment, source.id)
    return "speech/{}/{}.wav".format(source.speaker or "unknown", source.id)


def _convert(args: Tuple[Source, str]) -> float:
    """Worker: resample one file to 16 kHz PCM16; returns its duration in seconds (0 when empty)."""
    source, target = args
    audio = read_audio(source.file)
    if len(audio):
        write_wav(target, audio)
    return len(audio) / SAMPLE_RATE


def _utterance(corpus: str, source: Source, duration: float) -> Utterance:
    lo, hi = AVD_SCALE
    a, v, d = (min(hi, max(lo, x)) for x in source.avd) if source.avd else (None, None, None)
    return Utterance(
        id=source.id, path=_rel_path(source), sample_rate=SAMPLE_RATE, duration=round(duration, 4), corpus=corpus,
        split=source.split, speaker=source.speaker, gender=source.gender, text=source.text, emotion=source.emotion,
        arousal=a, valence=v, dominance=d, environment=source.environment,
    )


def select(sources: List[Source], kind: str, classes: str, drop_neutral: bool) -> List[Source]:
    """Keep the emotion corpus files whose harmonised label is in the chosen class set."""
    if classes not in CLASS_SETS:
        raise ConfigError("classes={!r}, expected one of {}".format(classes, ", ".join(CLASS_SETS)))
    if kind != "emotion":
        return sources
    return [s for s in sources if keep_label(s.emotion, CLASS_SETS[classes], drop_neutral)]


def prepare_corpus(
    name: str, path: Any, out: Any, classes: str = "four", drop_neutral: bool = False,
    workers: Optional[int] = None, force: bool = False, progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Import the local copy ``path`` of corpus ``name`` into ``out``; returns its statistics.

    ``progress(done, total)`` is called as files are resampled.
    """
    if name not in LOADERS:
        raise ConfigError("unknown corpus {!r}; expected one of {}".format(name, ", ".join(LOADERS)))
    loader, kind = LOADERS[name]
    started = time.monotonic()
    sources = select(loader(Path(path)), kind, classes, drop_neutral)
    if not sources:
        raise CorpusError("no {} utterance has a label in the {} class set".format(name, classes),
                          hint="pass --classes all, or drop --drop-neutral")
    out = Path(out)
    with corpus_output(out, force) as tmp:
        with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
            jobs = [(s, str(tmp / _rel_path(s))) for s in sources]
            durations = collect(pool.map(_convert, jobs, chunksize=8), len(jobs), progress)
        empty = [s.id for s, d in zip(sources, durations) if d == 0]
        if empty:
            log.warning("skipped %d empty files, e.g. %s", len(empty), empty[0])
        utts = [_utterance(name, s, d) for s, d in zip(sources, durations) if d > 0]
        manifests: Dict[str, List[Utterance]] = {}
        environments: Dict[str, Any] = {}
        if kind == "noise":
            manifests["noise"] = utts
            phrases = {s.environment: s.description for s in sources}
            environments = {env: {"descriptions": [t.format(p) for t in TEMPLATES], "split": "seen"}
                            for env, p in sorted(phrases.items())}
            environments["quiet"] = {"descriptions": ENVIRONMENTS["quiet"].descriptions, "split": "seen"}
            (tmp / "environments.json").write_text(json.dumps(environments, indent=2))
        else:
            manifests = {split: [u for u in utts if u.split == split] for split in SPLITS}
        for manifest, lines in manifests.items():
            write_manifest(tmp / "manifests" / (manifest + ".jsonl"), lines)
        stats = corpus_stats(manifests, environments, {})
        stats.update(corpus=name, source=str(Path(path).resolve()), classes=classes, drop_neutral=drop_neutral,
                     skipped_empty=len(empty), generation_seconds=round(time.monotonic() - started, 2))
        (tmp / CORPUS_FILE).write_text(json.dumps(stats, indent=2))
    return stats
