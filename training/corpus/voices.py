"""Extra voices for target speaker extraction (``emotrt data voices``): flite's speakers, warped.

The espeak-ng corpus gives the TSE hundreds of pseudo-speakers of one formant synthesiser, and
the TSE learns *that* synthesiser: on flite's voices (statistical-parametric and diphone voices
made from recordings of real people, CMU ARCTIC) the TSE trained on espeak-ng alone
(``checkpoints/runs/tse_edge_v2_joint``) extracted 3.9 dB SI-SDRi against espeak-ng talkers and
about 0 dB against other flite voices, and harmed on the real recordings of
``benchmarks/tse_real_speech.py``, against 7.1 dB on held-out espeak-ng speakers. This writes a small corpus of other voices for the TSE's ``[data] voices``: each of
flite's voices (Debian's ``flite``) at a few speed/formant warps, base pitches and rates, one
pseudo-speaker each, neutral read speech only (the TSE needs voices, not emotions), with
enrollment utterances; one voice (``VALID_VOICE``, all its warps) is the valid split, a check on
a voice the TSE never heard. Layout and manifests are the corpus's (docs/contracts.md
"Corpus"); noise comes from the main corpus (``MixingSampler.from_corpus(..., noise_root=...)``).
Written into a staged directory and renamed into place, like ``emotrt data synth``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError, DependencyError

from .audio import SAMPLE_RATE, write_wav
from .manifest import CORPUS_FILE, Utterance, write_manifest
from .output import Progress, collect, corpus_output
from .sentences import make_sentences

CORPUS = "voices"
INSTALL_HINT = "sudo apt-get install -y flite, or run `make setup`"
#: flite's English voices (``flite -lv``) by the gender they sound; ``awb_time`` (a talking clock) left out
FLITE_VOICES = {"kal16": "m", "kal": "m", "awb": "m", "rms": "m", "slt": "f"}
VALID_VOICE = "rms"
#: speed/formant warps (the resample trick of the espeak-ng corpus), base F0 (Hz) and duration stretch ranges
WARPS = (0.9, 0.96, 1.0, 1.06, 1.12, 1.2)
F0 = {"m": (85.0, 140.0), "f": (150.0, 210.0)}
STRETCH = (0.85, 1.15)
PEAK = 0.5  # the espeak-ng corpus' level (training/corpus/espeak.py GAIN)


@dataclasses.dataclass(frozen=True)
class Voice:
    """One pseudo-speaker: a flite voice and the settings that make it another voice."""

    id: str
    voice: str
    gender: str
    warp: float
    f0: float
    stretch: float


def find_flite(path: Optional[str] = None) -> str:
    """The flite executable on ``path`` (default: $PATH), or a DependencyError saying how to install it."""
    exe = shutil.which("flite", path=path)
    if exe is None:
        raise DependencyError("flite was not found on PATH; `emotrt data voices` needs it", hint=INSTALL_HINT)
    return exe


def draw_voices(rng: np.random.Generator, voices: Tuple[str, ...] = tuple(FLITE_VOICES),
                warps: Tuple[float, ...] = WARPS) -> List[Voice]:
    """Every voice at every warp, each with a base F0 and a duration stretch drawn from ``rng``."""
    out = []
    for voice in voices:
        gender = FLITE_VOICES[voice]
        for warp in warps:
            out.append(Voice(id="f{}{:03d}".format(voice, int(round(warp * 100))), voice=voice, gender=gender, warp=warp,
                             f0=round(float(rng.uniform(*F0[gender])), 1), stretch=round(float(rng.uniform(*STRETCH)), 3)))
    return out


def speak_flite(exe: str, text: str, voice: Voice) -> np.ndarray:
    """``text`` in ``voice``, float32 at 16 kHz, peak ``PEAK``."""
    import soundfile as sf
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "out.wav")
        cmd = [exe, "-voice", voice.voice, "--setf", "int_f0_target_mean={}".format(voice.f0),
               "--setf", "duration_stretch={}".format(voice.stretch), "-t", text, "-o", wav]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0 or not os.path.isfile(wav) or os.path.getsize(wav) < 100:
            raise DependencyError("flite failed for voice {}: {}".format(voice.voice, proc.stderr.decode(errors="replace").strip()),
                                  hint=INSTALL_HINT)
        audio, rate = sf.read(wav, dtype="float32")
    # played back warp times faster: pitch and formants times warp
    audio = soxr.resample(audio, rate * voice.warp, SAMPLE_RATE)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (PEAK / peak) if peak > 0 else audio).astype(np.float32)


def _render(args: Tuple[str, str, Dict[str, Any]]) -> float:
    exe, root, job = args
    audio = speak_flite(exe, job["text"], job["voice"])
    write_wav(Path(root) / job["path"], audio)
    return len(audio) / SAMPLE_RATE


def make_voices(out: Any, per_speaker: int = 24, enroll_per_speaker: int = 2, seed: int = 0, workers: Optional[int] = None,
                force: bool = False, flite_path: Optional[str] = None, progress: Optional[Progress] = None) -> Dict[str, Any]:
    """Write the voices corpus to ``out``; returns the statistics also written to corpus.json."""
    if per_speaker < 1 or enroll_per_speaker < 1:
        raise ConfigError("per_speaker and enroll_per_speaker must be >= 1, got {} and {}".format(
            per_speaker, enroll_per_speaker), hint="--per-speaker 48")
    exe = find_flite(flite_path)
    rng = np.random.default_rng([seed, 0xF1])
    voices = draw_voices(rng)
    sentences = iter(make_sentences(len(voices) * (per_speaker + enroll_per_speaker), rng))
    jobs = []
    for v in voices:
        for kind, count in (("train", per_speaker), ("enroll", enroll_per_speaker)):
            for k in range(count):
                uid = "{}_{}{}".format(v.id, "enroll" if kind == "enroll" else "u", k)
                jobs.append(dict(kind=kind, voice=v, text=next(sentences), id=uid, path="speech/{}/{}.wav".format(v.id, uid)))
    out = Path(out)
    with corpus_output(out, force) as tmp:
        with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
            durations = collect(pool.map(_render, [(exe, str(tmp), j) for j in jobs], chunksize=8), len(jobs), progress)
        utts = [(j["kind"], Utterance(
            id=j["id"], path=j["path"], sample_rate=SAMPLE_RATE, duration=round(d, 4), corpus=CORPUS,
            split="valid" if j["voice"].voice == VALID_VOICE else "train", speaker=j["voice"].id,
            gender=j["voice"].gender, text=j["text"], emotion="neutral")) for j, d in zip(jobs, durations)]
        write_manifest(tmp / "manifests" / "enroll.jsonl", [u for kind, u in utts if kind == "enroll"])
        for split in ("train", "valid"):
            write_manifest(tmp / "manifests" / (split + ".jsonl"), [u for kind, u in utts if kind == "train" and u.split == split])
        stats = dict(corpus=CORPUS, seed=seed, speakers=len(voices), utterances=len(jobs),
                     hours=round(sum(durations) / 3600.0, 3), voices={v.id: dataclasses.asdict(v) for v in voices})
        text = json.dumps(stats, indent=2)
        (tmp / CORPUS_FILE).write_text(text)
    return json.loads(text)
