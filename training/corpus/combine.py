"""``emotrt data combine``: several prepared corpora as one, with harmonised labels and balanced classes.

The combined corpus is self-contained: every kept utterance is hard-linked (copied across file
systems) to ``OUT/speech/<corpus>/<speaker>/``. Ids and speakers are namespaced ``<corpus>:<id>``
so two corpora never share a speaker, and each row's ``corpus`` names where it came from. Splits
stay speaker-disjoint: a speaker that a source puts in more than one split (ESD's own folders do)
moves wholly to the split :func:`~emotrt.training.corpus.loaders.common.stable_split` gives it.

Balancing touches the train split only (valid and test stay as recorded). ``resample`` repeats
utterances of the smaller classes; ``augment`` writes new audio for them, offline: SoX's ``tempo``
(WSOLA time stretch, pitch kept) and ``pitch``, a train clip of a seen environment of the given
noise corpora at an SNR, then a gain through
:func:`emotrt.training.augment.apply_gain_db`. Each new row records its seed and parameters in
``augment``; :func:`render_augment` rebuilds its audio from them and :func:`draw_augment` the
parameters from the seed.

The noise corpora's clips, ``manifests/noise.jsonl`` and ``environments.json`` are carried over
(linked, merged), so the combined corpus trains an SER as it is (``--set data.corpus=OUT``).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError, CorpusError, DependencyError

from .audio import SAMPLE_RATE, read_audio, write_wav
from .labels import EMOTIONS, FOUR_CLASS
from .loaders.common import stable_split
from .manifest import CORPUS_FILE, SPLITS, Utterance, load_manifest, write_manifest
from .mixing import fit_length, mix_noise
from .output import Progress, collect, corpus_output
from .stats import corpus_stats

log = logging.getLogger(__name__)
BALANCE = ("none", "augment", "resample")
SOX_HINT = "sudo apt-get install -y sox, or run `make setup`"


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Ranges the offline augmentation draws from (uniformly), per new utterance."""

    tempo: Tuple[float, float] = (0.9, 1.1)
    semitones: Tuple[float, float] = (-2.0, 2.0)
    gain_db: Tuple[float, float] = (-6.0, 6.0)
    snr_db: Tuple[float, float] = (5.0, 20.0)


def parse_classes(classes: str) -> Tuple[str, ...]:
    """``four``, ``all`` or comma-separated harmonised names, checked against the label set."""
    if classes == "four":
        return FOUR_CLASS
    if classes == "all":
        return EMOTIONS
    names = tuple(c.strip() for c in classes.split(",") if c.strip())
    unknown = [c for c in names if c not in EMOTIONS]
    if unknown or not names:
        raise ConfigError("unknown class {}".format(", ".join(repr(c) for c in unknown) or "list (empty)"),
                          hint="use four, all or comma-separated names among " + ", ".join(EMOTIONS))
    return names


def _source_manifests(path: Path) -> Tuple[str, List[Utterance]]:
    """(corpus name, clean utterances of every split) of one prepared corpus, or a CorpusError."""
    if not path.is_dir():
        raise CorpusError("corpus directory not found: {}".format(path),
                          hint="give directories made by `emotrt data prepare` or `emotrt data synth`")
    files = [path / "manifests" / (s + ".jsonl") for s in SPLITS]
    if not any(f.is_file() for f in files):
        raise CorpusError("{} has no prepared manifest (manifests/train.jsonl, valid.jsonl or test.jsonl)".format(path),
                          hint="prepare it first: emotrt data prepare <corpus> <copy> --out {}".format(path))
    info = json.loads((path / CORPUS_FILE).read_text()) if (path / CORPUS_FILE).is_file() else {}
    utts = [u for f in files if f.is_file() for u in load_manifest(f, root=path)]
    return str(info.get("corpus") or path.name), utts


def _names(paths: Sequence[Path], corpora: Sequence[str]) -> List[str]:
    """A namespace per input: its corpus name, or its directory name when two inputs share one."""
    names = [c if corpora.count(c) == 1 else p.name for p, c in zip(paths, corpora)]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise CorpusError("two inputs are both corpus {!r}".format(clashes[0]),
                          hint="give each input only once, or rename one of the directories")
    return names


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _namespaced(name: str, utts: List[Utterance], classes: Sequence[str]
                ) -> Tuple[List[Tuple[Utterance, Path]], List[str]]:
    """(row in the combined corpus, its source file) for one input; the speakers moved to keep splits disjoint."""
    splits: Dict[str, set] = {}
    for u in utts:
        if u.speaker is not None:
            splits.setdefault(u.speaker, set()).add(u.split)
    moved = sorted(s for s, found in splits.items() if len(found) > 1)
    rows = []
    for u in utts:
        if u.emotion not in classes:
            continue
        speaker = None if u.speaker is None else "{}:{}".format(name, u.speaker)
        split = stable_split(speaker) if u.speaker in moved else u.split
        path = "speech/{}/{}/{}.wav".format(_safe(name), _safe(u.speaker or "unknown"), _safe(u.id))
        rows.append((dataclasses.replace(u, id="{}:{}".format(name, u.id), speaker=speaker, split=split, corpus=name,
                                         path=path, root=None), u.file))
    return rows, ["{}:{}".format(name, s) for s in moved]


def _link(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source``, or a copy where a link cannot be made (another file system)."""
    if not source.is_file():
        raise CorpusError("audio file listed in a manifest is missing: {}".format(source),
                          hint="prepare that corpus again (emotrt data prepare ... --force)")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(str(source), str(target))
    except OSError:
        shutil.copyfile(str(source), str(target))


def class_table(rows: Sequence[Utterance], classes: Sequence[str]) -> Dict[str, Dict[str, int]]:
    """Counts per class x split (classes in the given order), and the augmented rows per class."""
    counts = Counter((u.emotion, u.split) for u in rows)
    made = Counter(u.emotion for u in rows if u.augment is not None)
    return {c: dict({s: counts[c, s] for s in SPLITS}, augmented=made[c]) for c in classes}


# --- offline augmentation ----------------------------------------------------------------------

def draw_augment(seed: int, source_id: str, noises: Sequence[Utterance], config: AugmentConfig = AugmentConfig(),
                 method: str = "augment") -> Dict[str, Any]:
    """The ``augment`` record of a new row: every parameter drawn from ``seed`` alone (and the noise list)."""
    rng = np.random.default_rng(seed)
    record: Dict[str, Any] = {"method": method, "of": source_id, "seed": int(seed)}
    if method == "resample":
        return record
    record.update(tempo=round(float(rng.uniform(*config.tempo)), 4),
                  semitones=round(float(rng.uniform(*config.semitones)), 3),
                  gain_db=round(float(rng.uniform(*config.gain_db)), 2))
    if noises:
        clip = noises[int(rng.integers(len(noises)))]
        record.update(noise=clip.id, noise_path=_noise_path(clip), snr_db=round(float(rng.uniform(*config.snr_db)), 2))
    return record


def _noise_path(clip: Utterance) -> str:
    return "noise/{}/{}.wav".format(_safe(clip.environment or "noise"), _safe(clip.id))


def noise_corpora(paths: Sequence[Path]) -> Tuple[List[Utterance], Dict[str, Any]]:
    """Every clip of the noise corpora ``paths`` and their environments merged (the first description list wins)."""
    clips: List[Utterance] = []
    environments: Dict[str, Any] = {}
    for path in paths:
        envs_file = path / "environments.json"
        if not envs_file.is_file():
            raise CorpusError("noise corpus {} has no environments.json".format(path),
                              hint="give --noise a corpus made by `emotrt data prepare <noise corpus>` or `data synth`")
        for env, info in json.loads(envs_file.read_text()).items():
            environments.setdefault(env, info)
        clips += load_manifest(path / "manifests" / "noise.jsonl", root=path)
    twice = sorted(k for k, n in Counter(c.id for c in clips).items() if n > 1)
    if twice:
        raise CorpusError("noise clip id {!r} is in two --noise corpora".format(twice[0]), hint="give each noise corpus once")
    return clips, environments


def augment_noises(clips: Sequence[Utterance], environments: Dict[str, Any]) -> List[Utterance]:
    """The clips ``augment`` draws from (the list :func:`draw_augment` takes): train clips of seen environments."""
    return [c for c in clips if c.split == "train" and environments.get(c.environment, {}).get("split") == "seen"]


def find_sox() -> str:
    """The sox executable, or a DependencyError saying how to install it."""
    exe = shutil.which("sox")
    if exe is None:
        raise DependencyError("sox was not found on PATH; --balance augment needs it (tempo, pitch)", hint=SOX_HINT)
    return exe


def sox_tempo_pitch(audio: np.ndarray, tempo: float, semitones: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` through SoX's ``tempo`` (WSOLA: duration / tempo, pitch kept) and ``pitch`` (semitones).

    Raw float32 in and out, ``-D`` (no dither) and ``-R`` (repeatable): the same input and
    parameters give the same samples on every run.
    """
    cmd = [find_sox(), "-R", "-D", "-t", "f32", "-r", str(sr), "-c", "1", "-", "-t", "f32", "-",
           "tempo", "-s", repr(float(tempo)), "pitch", repr(round(100.0 * semitones, 1))]
    proc = subprocess.run(cmd, input=audio.astype(np.float32).tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise DependencyError("sox failed: {}".format(proc.stderr.decode(errors="replace").strip()), hint=SOX_HINT)
    return np.frombuffer(proc.stdout, dtype=np.float32).copy()


def render_augment(audio: np.ndarray, record: Dict[str, Any], root: Any) -> np.ndarray:
    """The audio of an augmented row from its source ``audio`` and its ``augment`` record (noise under ``root``)."""
    from emotrt.training.augment import apply_gain_db

    out = sox_tempo_pitch(audio, record["tempo"], record["semitones"])
    if record.get("noise"):
        noise = read_audio(Path(root) / record["noise_path"])
        out, _ = mix_noise(out, fit_length(noise, len(out), np.random.default_rng([record["seed"], 1])), record["snr_db"])
    return apply_gain_db(out, record["gain_db"])


def _render(job: Tuple[str, Dict[str, Any], str, str]) -> float:
    """Worker: write one augmented file; returns its duration in seconds."""
    source, record, root, target = job
    audio = render_augment(read_audio(source), record, root)
    write_wav(target, audio)
    return len(audio) / SAMPLE_RATE


def _row_seed(seed: int, emotion: str, index: int) -> int:
    return int(np.random.SeedSequence([seed, EMOTIONS.index(emotion), index]).generate_state(1)[0])


def _balance_rows(train: List[Utterance], classes: Sequence[str], method: str, seed: int,
                  noises: Sequence[Utterance], config: AugmentConfig) -> List[Utterance]:
    """New train rows that bring every class present up to the largest class's count."""
    by_class = {c: sorted((u for u in train if u.emotion == c), key=lambda u: u.id) for c in classes}
    target = max((len(v) for v in by_class.values()), default=0)
    new = []
    for emotion, rows in by_class.items():
        if not rows:
            log.warning("class %s has no train utterance to balance from; it stays empty", emotion)
            continue
        order = np.random.default_rng([seed, EMOTIONS.index(emotion)]).permutation(len(rows))
        for j in range(target - len(rows)):
            source = rows[int(order[j % len(rows)])]
            record = draw_augment(_row_seed(seed, emotion, j), source.id, noises, config, method)
            ident = "{}~{}{}".format(source.id, "r" if method == "resample" else "a", j)
            path = source.path if method == "resample" else "augmented/{}/{}.wav".format(
                _safe(source.speaker or "unknown"), _safe(ident))
            new.append(dataclasses.replace(source, id=ident, path=path, augment=record))
    return new


def combine_corpora(
    inputs: Sequence[Any], out: Any, classes: str = "four", balance: str = "none", seed: int = 0,
    noise: Sequence[Any] = (), config: AugmentConfig = AugmentConfig(), workers: Optional[int] = None,
    force: bool = False, progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Combine prepared corpora ``inputs`` into ``out``; returns its statistics with class tables before/after.

    ``noise``: corpus directories with ``manifests/noise.jsonl`` whose train clips ``augment`` adds.
    """
    if balance not in BALANCE:
        raise ConfigError("balance={!r}, expected one of {}".format(balance, ", ".join(BALANCE)))
    chosen = parse_classes(classes)
    if len(inputs) < 1:
        raise ConfigError("data combine needs at least one corpus directory")
    paths = [Path(p) for p in inputs]
    loaded = [_source_manifests(p) for p in paths]
    names = _names(paths, [c for c, _ in loaded])
    linked: List[Tuple[Utterance, Path]] = []
    moved: List[str] = []
    for name, (_, utts) in zip(names, loaded):
        kept, shifted = _namespaced(name, utts, chosen)
        linked += kept
        moved += shifted
    rows = [u for u, _ in linked]
    if not rows:
        raise CorpusError("no utterance of {} has a label in {}".format(", ".join(names), ", ".join(chosen)),
                          hint="pass --classes all or other class names")
    clips, environments = noise_corpora([Path(n) for n in noise])
    noises = augment_noises(clips, environments)
    if balance == "augment":
        find_sox()
    before = class_table(rows, chosen)
    new = [] if balance == "none" else _balance_rows([u for u in rows if u.split == "train"], chosen, balance,
                                                     seed, noises if balance == "augment" else (), config)
    out = Path(out)
    with corpus_output(out, force) as tmp:
        for u, source in linked:
            _link(source, tmp / u.path)
        for clip in clips:
            _link(clip.file, tmp / _noise_path(clip))
        paths_by_id = {u.id: u.path for u in rows}
        jobs = [(str(tmp / paths_by_id[r.augment["of"]]), r.augment, str(tmp), str(tmp / r.path))
                for r in new if r.augment["method"] == "augment"]
        durations = iter(())
        if jobs:
            with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
                durations = iter(collect(pool.map(_render, jobs, chunksize=4), len(jobs), progress))
        new = [dataclasses.replace(r, duration=round(next(durations), 4)) if r.augment["method"] == "augment" else r
               for r in new]
        final = rows + new
        manifests = {split: [u for u in final if u.split == split] for split in SPLITS}
        if clips:
            manifests["noise"] = [dataclasses.replace(c, path=_noise_path(c), root=None) for c in clips]
            (tmp / "environments.json").write_text(json.dumps(environments, indent=2))
        for split, lines in manifests.items():
            write_manifest(tmp / "manifests" / (split + ".jsonl"), lines)
        stats = corpus_stats(manifests, environments, {})
        stats.update(corpus="combined", sources={n: str(p.resolve()) for n, p in zip(names, paths)},
                     noise=[str(Path(n).resolve()) for n in noise], classes=list(chosen), balance=balance, seed=seed,
                     augment=dataclasses.asdict(config), moved_speakers=moved,
                     before=before, after=class_table(final, chosen))
        (tmp / CORPUS_FILE).write_text(json.dumps(stats, indent=2))
    return stats
