"""Speaker enrollment: enrollment audio -> ``enroll.onnx`` -> embedding in the speaker store.

Runs with ONNX Runtime only (numpy, soundfile), so it works on the workstation and the device.
The audio must be at the graph's sample rate: resampling silently would hide a wrong file. It is
read in blocks and judged by the VAD (silero when ``vad.onnx`` sits beside ``enroll.onnx``, else
the energy gate): a recording without enough speech is refused, and a long one streams through
the graph in segments, so memory stays bounded.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator, List, Sequence, Tuple

import numpy as np

from emotrt.runtime.audio import check_complete
from emotrt.runtime.errors import AudioError, ConfigError, DependencyError, ModelContractError
from emotrt.runtime.level import active_level_db, frame_powers
from emotrt.runtime.tables import VectorTable
from emotrt.runtime.vad import VadConfig, make_vad

log = logging.getLogger(__name__)

MIN_SECONDS = 1.0  # of audio
MIN_VOICED_SECONDS = 1.0  # of it that the VAD hears as speech
SEGMENT_SECONDS = 30.0  # audio per pass through enroll.onnx: what bounds memory for long recordings
BLOCK = 512  # samples read (and judged by the VAD) at a time: silero's frame at 16 kHz


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError as exc:
        raise DependencyError("reading audio needs soundfile ({})".format(exc), hint="pip install 'emotrt[audio]'")
    return soundfile


def _open(path: Any, sample_rate: int, min_seconds: float) -> Any:
    """The opened file, checked: readable, ``sample_rate``, at least ``min_seconds`` long."""
    soundfile = _soundfile()
    try:
        f = soundfile.SoundFile(str(path))
    except (RuntimeError, OSError, TypeError) as exc:  # LibsndfileError is a RuntimeError
        raise AudioError("cannot read enrollment audio {}: {}".format(path, str(exc).splitlines()[0] if str(exc) else exc))
    if f.samplerate != sample_rate:
        f.close()
        raise AudioError(
            "enrollment audio {} is {} Hz; the enroll model expects {} Hz".format(path, f.samplerate, sample_rate),
            hint="sox {} -r {} -c 1 enroll_{}k.wav".format(path, sample_rate, sample_rate // 1000),
        )
    try:
        check_complete(path, f.frames, f.samplerate)
    except AudioError:
        f.close()
        raise
    seconds = f.frames / float(f.samplerate)
    if seconds < min_seconds:
        f.close()
        raise AudioError(
            "enrollment audio {} is {:.2f} s; at least {:.1f} s of the speaker is needed".format(path, seconds, min_seconds),
            hint="record a longer sample (3-10 s of speech works best)",
        )
    return f


def read_enrollment_segments(path: Any, sample_rate: int, vad: Any = None, min_seconds: float = MIN_SECONDS,
                             segment_seconds: float = SEGMENT_SECONDS) -> Iterator[Tuple[np.ndarray, float]]:
    """Mono float32 [1, T] segments of ``path`` with the seconds of speech ``vad`` heard in each.

    Reads :data:`BLOCK` samples at a time and keeps at most one segment (``segment_seconds``
    plus a short tail merged into the last one), so memory does not grow with the recording.
    Clear errors for a wrong rate, too little audio, non-finite samples or a truncated file.
    """
    vad = vad if vad is not None else make_vad(sample_rate, VadConfig(hangover_s=0.0))
    seg_blocks = max(1, int(round(segment_seconds * sample_rate / BLOCK))) if np.isfinite(segment_seconds) else 2 ** 62
    tail_blocks = int(np.ceil(min_seconds * sample_rate / BLOCK))
    blocks: List[Tuple[np.ndarray, bool]] = []
    read = 0
    with _open(path, sample_rate, min_seconds) as f:
        declared = f.frames
        try:
            for block in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
                mono = block.mean(axis=1, dtype=np.float32)
                bad = np.flatnonzero(~np.isfinite(mono))
                if bad.size:
                    raise AudioError("enrollment audio {} has non-finite samples (first at {:.3f} s)".format(
                        path, (read + int(bad[0])) / float(sample_rate)), hint="re-record or re-export the file")
                read += mono.shape[0]
                blocks.append((mono, bool(vad.update(mono))))
                if len(blocks) >= seg_blocks + tail_blocks:
                    yield _segment(blocks[:seg_blocks], sample_rate)
                    del blocks[:seg_blocks]
        except (RuntimeError, OSError) as exc:
            raise AudioError("cannot read enrollment audio {} past {:.2f} s: {}".format(path, read / float(sample_rate), exc))
    if read < declared:
        raise AudioError("enrollment audio {} ends at {:.2f} s, before the {:.2f} s it declares".format(
            path, read / float(sample_rate), declared / float(sample_rate)), hint="re-record or re-export the file")
    if blocks:
        yield _segment(blocks, sample_rate)


def _segment(blocks: Sequence[Tuple[np.ndarray, bool]], sample_rate: int) -> Tuple[np.ndarray, float]:
    audio = np.concatenate([b for b, _ in blocks])[None, :]
    return audio, sum(b.shape[0] for b, voiced in blocks if voiced) / float(sample_rate)


def read_enrollment_audio(path: Any, sample_rate: int, min_seconds: float = MIN_SECONDS) -> np.ndarray:
    """Mono float32 [1, T] of the whole of ``path`` (short files; :func:`read_enrollment_segments` streams)."""
    return np.concatenate([a for a, _ in read_enrollment_segments(path, sample_rate, min_seconds=min_seconds,
                                                                  segment_seconds=float("inf"))], axis=1)


def enrollment_vad(enroll_model: Any, sample_rate: int, stack: contextlib.ExitStack) -> Any:
    """The VAD judging enrollment audio: silero from ``vad.onnx`` beside ``enroll_model`` when present, else the
    energy gate; ``stack`` closes silero's engine."""
    from emotrt.runtime.backends import load_engine

    config = VadConfig(hangover_s=0.0)
    silero = Path(enroll_model).with_name("vad.onnx")
    if silero.is_file():
        return make_vad(sample_rate, config, stack.enter_context(load_engine(silero, backend="onnxruntime")))
    return make_vad(sample_rate, config)


def enroll_speaker(
    store_dir: Any, name: str, audio_path: Any, enroll_model: Any, replace: bool = False, min_seconds: float = MIN_SECONDS,
    min_voiced_seconds: float = MIN_VOICED_SECONDS, segment_seconds: float = SEGMENT_SECONDS,
) -> np.ndarray:
    """Compute ``name``'s embedding from ``audio_path`` through ``enroll_model`` and store it.

    The recording streams through in segments of ``segment_seconds``; the embedding is the
    mean of the segments' embeddings weighted by the speech the VAD heard in each (one
    segment, the whole file, up to ``segment_seconds``). Fewer than ``min_voiced_seconds`` of
    speech (silence, noise) is refused.
    """
    from emotrt.runtime.backends import load_engine

    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(load_engine(enroll_model, backend="onnxruntime"))
        contract = engine.contract
        if contract is None or contract.model != "enroll":
            raise ModelContractError(
                "{} is not an enroll graph (emotrt.model={})".format(enroll_model, contract.model if contract else None),
                hint="pass the enroll.onnx written by `emotrt export`",
            )
        store = VectorTable(store_dir, kind="speaker", dim=contract.spk_dim)
        if name in store and not replace:
            raise ConfigError(
                "speaker {!r} is already enrolled in {}".format(name, store.root),
                hint="`emotrt enroll {} AUDIO --replace` to enroll again, or choose another name".format(name),
            )
        vad = enrollment_vad(enroll_model, contract.sample_rate, stack)
        total, voiced, weighted = 0.0, 0.0, np.zeros(contract.spk_dim, dtype=np.float64)
        powers = []  # 20 ms frame powers for the speaker's speech level (emotrt.runtime.level)
        for audio, speech in read_enrollment_segments(audio_path, contract.sample_rate, vad, min_seconds, segment_seconds):
            total += audio.shape[1] / float(contract.sample_rate)
            powers.append(frame_powers(audio[0], contract.sample_rate))
            if speech > 0:
                weighted += speech * engine.run({"audio": audio})["spk_emb"].reshape(-1).astype(np.float64)
                voiced += speech
    if voiced < min_voiced_seconds:
        raise AudioError(
            "enrollment audio {} holds {:.2f} s of speech ({} VAD) in {:.1f} s; at least {:.1f} s is needed".format(
                audio_path, voiced, vad.kind, total, min_voiced_seconds),
            hint="record the speaker talking (3-10 s of speech works best)",
        )
    embedding = (weighted / voiced).astype(np.float32)
    store.add(name, embedding, replace=replace, audio=str(Path(audio_path).name), seconds=round(total, 3),
              voiced_seconds=round(voiced, 3), speech_level_db=round(active_level_db(powers), 2))
    log.info("enrolled %s from %.1f s of audio (%.1f s of speech)", name, total, voiced)
    return embedding
