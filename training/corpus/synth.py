"""The synthetic corpus (``emotrt data synth``): espeak-ng pseudo-speakers, prosody styles, noise.

Layout and manifest fields are those of docs/contracts.md "Corpus". Everything is written into a
hidden sibling directory and renamed into place at the end, so a failure leaves nothing
half-written. espeak-ng runs in a process pool (the work is mostly subprocess time).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError

from .audio import SAMPLE_RATE, write_wav
from .espeak import find_espeak, speak
from .manifest import CORPUS_FILE, Utterance, write_manifest
from .noises import ENVIRONMENTS, make_noise
from .output import Progress, collect, corpus_output
from .sentences import make_sentences
from .speakers import draw_speakers
from .stats import corpus_stats
from .styles import STYLES
from .testsets import build_testsets

log = logging.getLogger(__name__)
CORPUS = "synth"
BABBLE_ENVS = ("babble", "cafe")


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """How big the synthetic corpus is; ``SIZES`` holds the named presets."""

    train_speakers: int
    valid_speakers: int
    test_speakers: int
    per_style_train: int
    per_style_test: int
    enroll_per_speaker: int
    babble_talkers: int
    noise_clips: Tuple[int, int, int]
    unseen_clips: int
    noise_seconds: float
    testset_size: int

    def __post_init__(self) -> None:
        small = [f.name for f in dataclasses.fields(self) if f.name != "noise_clips" and getattr(self, f.name) < 1]
        if small or min(self.noise_clips) < 1:
            raise ConfigError("SynthConfig fields must be >= 1: {}".format(", ".join(small or ["noise_clips"])))
        if self.test_speakers < 4:
            raise ConfigError("SynthConfig.test_speakers={} is too few for same/different-gender pairs; need >= 4"
                              .format(self.test_speakers))


SIZES: Dict[str, SynthConfig] = {
    "small": SynthConfig(200, 16, 24, 1, 2, 1, 16, (4, 1, 2), 3, 4.0, 48),
    "full": SynthConfig(600, 40, 48, 4, 3, 2, 40, (24, 4, 8), 8, 6.0, 400),
}


def _plan_speech(config: SynthConfig, rng: np.random.Generator) -> List[dict]:
    """Jobs for every clean and enrollment utterance and for the babble talkers (kept out of every split)."""
    groups = [("train", "s", config.train_speakers, config.per_style_train),
              ("valid", "v", config.valid_speakers, config.per_style_test),
              ("test", "t", config.test_speakers, config.per_style_test)]
    per_speaker = max(n for _, _, _, n in groups) * len(STYLES) + config.enroll_per_speaker
    total = sum(count for _, _, count, _ in groups) * per_speaker + config.babble_talkers * 3
    sentences = iter(make_sentences(total, rng))
    jobs = []
    for split, prefix, count, per_style in groups:
        for spk in draw_speakers(prefix, count, rng):
            # Sentences are never reused within a speaker, so enrollment never repeats a test sentence.
            for k in range(per_style):
                for style in STYLES.values():
                    jobs.append(dict(kind=split, speaker=spk, style=style.emotion, text=next(sentences),
                                     id="{}_{}{}".format(spk.id, style.emotion, k)))
            for k in range(config.enroll_per_speaker):
                jobs.append(dict(kind="enroll", split=split, speaker=spk, style="neutral", text=next(sentences),
                                 id="{}_enroll{}".format(spk.id, k)))
    for spk in draw_speakers("b", config.babble_talkers, rng):
        for k in range(3):
            jobs.append(dict(kind="babble", speaker=spk, style="neutral", text=next(sentences), id="{}_{}".format(spk.id, k)))
    return jobs


def _render_speech(args: Tuple[str, str, dict]) -> Any:
    """Worker: synthesise one job; write it (returning its duration) or return the audio for babble."""
    exe, root, job = args
    audio = speak(exe, job["text"], job["speaker"], STYLES[job["style"]])
    if job["kind"] == "babble":
        return audio
    write_wav(Path(root) / "speech" / job["speaker"].id / (job["id"] + ".wav"), audio)
    return len(audio) / SAMPLE_RATE


def _render_noise(args: Tuple[str, str, float, Tuple[int, ...], Sequence[np.ndarray], str]) -> str:
    root, env, seconds, seed, pool, rel = args
    write_wav(Path(root) / rel, make_noise(env, seconds, seed, pool))
    return rel


def _speech_utterance(job: dict, duration: float) -> Utterance:
    spk, style = job["speaker"], STYLES[job["style"]]
    return Utterance(
        id=job["id"], path="speech/{}/{}.wav".format(spk.id, job["id"]), sample_rate=SAMPLE_RATE,
        duration=round(duration, 4), corpus=CORPUS, split=job.get("split", job["kind"]), speaker=spk.id,
        gender=spk.gender, text=job["text"], emotion=style.emotion, arousal=style.arousal, valence=style.valence,
        dominance=style.dominance,
    )


def _plan_noise(config: SynthConfig) -> List[Utterance]:
    """Noise clips: seen environments split train/valid/test, unseen ones test only."""
    clips = []
    for env in ENVIRONMENTS.values():
        if env.id == "quiet":
            continue
        if env.split == "seen":
            splits = ["train"] * config.noise_clips[0] + ["valid"] * config.noise_clips[1] + ["test"] * config.noise_clips[2]
        else:
            splits = ["test"] * config.unseen_clips
        for n, split in enumerate(splits):
            clips.append(Utterance(
                id="{}_{:03d}".format(env.id, n), path="noise/{}/{:03d}.wav".format(env.id, n), sample_rate=SAMPLE_RATE,
                duration=config.noise_seconds, corpus=CORPUS, split=split, environment=env.id,
            ))
    return clips


def _existing(out: Path, config: SynthConfig, seed: int) -> Optional[Dict[str, Any]]:
    """The statistics of a finished corpus in ``out`` made with the same config and seed, if any."""
    try:
        stats = json.loads((out / CORPUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    same = stats.get("seed") == seed and stats.get("config") == json.loads(json.dumps(dataclasses.asdict(config)))
    return stats if same else None


def synthesise_corpus(
    out: Any, size: str = "small", seed: int = 0, workers: Optional[int] = None, force: bool = False,
    espeak_path: Optional[str] = None, config: Optional[SynthConfig] = None, progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """Make the synthetic corpus in ``out``; returns the statistics also written to corpus.json.

    A finished corpus already in ``out`` with the same config and seed is kept as it is (so
    ``make demo`` can run twice); ``force`` remakes it. ``progress(done, total)`` follows the
    speech synthesis, the long part.
    """
    if config is None:
        if size not in SIZES:
            raise ConfigError("size={!r}, expected one of {}".format(size, ", ".join(SIZES)))
        config = SIZES[size]
    out = Path(out)
    existing = _existing(out, config, seed)
    if existing is not None and not force:
        log.info("%s already holds this corpus (same config and seed); pass force=True to remake it", out)
        return existing
    exe = find_espeak(espeak_path)
    with corpus_output(out, force) as tmp:
        started = time.monotonic()
        workers = workers or os.cpu_count() or 1
        rng = np.random.default_rng(seed)
        jobs = _plan_speech(config, rng)
        log.info("synthesising %d utterances with %d workers", len(jobs), workers)
        speech = [j for j in jobs if j["kind"] != "babble"]
        with ProcessPoolExecutor(workers) as pool:
            # The babble talkers and the noise first: a noise recipe error shows in seconds, not after the speech.
            babble = list(pool.map(_render_speech, [(exe, str(tmp), j) for j in jobs if j["kind"] == "babble"]))
            noise = _plan_noise(config)
            noise_jobs = [(str(tmp), c.environment, c.duration, (seed, i), babble if c.environment in BABBLE_ENVS else (), c.path)
                          for i, c in enumerate(noise)]
            list(pool.map(_render_noise, noise_jobs))
            results = collect(pool.map(_render_speech, [(exe, str(tmp), j) for j in speech], chunksize=16), len(speech), progress)
        manifests = {name: [_speech_utterance(j, r) for j, r in zip(speech, results) if j["kind"] == name]
                     for name in ("train", "valid", "test", "enroll")}
        manifests["noise"] = noise
        for name, utts in manifests.items():
            write_manifest(tmp / "manifests" / (name + ".jsonl"), utts)
        envs = {e.id: {"descriptions": e.descriptions, "split": e.split} for e in ENVIRONMENTS.values()}
        (tmp / "environments.json").write_text(json.dumps(envs, indent=2))
        testsets = build_testsets(tmp, manifests["test"], noise, envs, config.testset_size, seed)
        stats = corpus_stats(manifests, envs, testsets)
        stats.update(size=size if config is SIZES.get(size) else "custom", seed=seed, config=dataclasses.asdict(config),
                     speaker_settings={j["speaker"].id: dataclasses.asdict(j["speaker"]) for j in jobs}, workers=workers,
                     generation_seconds=round(time.monotonic() - started, 2))
        text = json.dumps(stats, indent=2)
        (tmp / CORPUS_FILE).write_text(text)
    return json.loads(text)
