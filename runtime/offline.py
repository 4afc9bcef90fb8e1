"""Offline evaluation: the results a stream would give, computed on the whole signal at once.

It uses the bundle's ``tse_offline`` graph when there is one (else the step graph over all
hops), the same VAD hop by hop, and SER on exactly the windows a stream would see. Streaming
output is checked against it (tests) and it scores recordings without a live source.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List

import numpy as np

from emotrt.runtime.resample import Resampler, to_mono
from emotrt.runtime.results import Result, Smoother, make_result

log = logging.getLogger(__name__)


def extract_offline(pipeline: Any, audio: np.ndarray, speaker: str) -> np.ndarray:
    """TSE over a whole model-rate signal (length a multiple of the hop)."""
    emb = pipeline.speaker_embedding(speaker)[None, :]
    if pipeline.tse_offline is not None:
        return pipeline.tse_offline.run({"audio": audio[None, :], "spk_emb": emb})["audio_out"][0]
    stepper = pipeline.tse.create_stepper()
    chunk = pipeline.layout.chunk
    try:
        hops = [stepper.step({"audio": audio[None, i:i + chunk], "spk_emb": emb})["audio_out"][0]
                for i in range(0, audio.shape[0], chunk)]
    finally:
        stepper.close()
    return np.concatenate(hops) if hops else np.zeros(0, dtype=np.float32)


def evaluate_offline(pipeline: Any, sample_rate: int, samples: Any, speaker: str, environment: str) -> List[Result]:
    """Results for every window a stream fed ``samples`` (then ``input_finished``) would report."""
    layout = pipeline.layout
    resampler = Resampler(layout.sample_rate)
    audio = resampler(sample_rate, to_mono(samples))
    audio = np.concatenate((audio, resampler.flush()))
    audio = np.pad(audio, (0, -audio.shape[0] % layout.chunk))
    speech = extract_offline(pipeline, audio, speaker)
    # the mixture as the stream keeps it: delayed by the TSE's latency, sample for sample with the extraction
    mixture = np.concatenate((np.zeros(pipeline.tse_latency, dtype=audio.dtype), audio))[: audio.shape[0]]
    vad = pipeline.make_vad()
    states = [(vad.update(speech[i:i + layout.chunk]), vad.probability) for i in range(0, speech.shape[0], layout.chunk)]
    smoother = Smoother(pipeline.config.smoothing)
    token = pipeline.environment_token(environment)[None, :]
    gate = pipeline.make_gate(speaker)
    results = []
    for end in layout.window_ends(speech.shape[0]):
        is_speech, probability = states[end // layout.chunk - 1]
        out, fields = None, {}
        if is_speech:
            window = slice(end - layout.window, end)
            window_audio, fields = gate(speech[None, window], mixture[None, window])
            if window_audio is not None:
                out = pipeline.ser.run({"audio": window_audio, "env_token": token})
        results.append(make_result(
            out, smoother, index=len(results), start=(end - layout.window) / layout.sample_rate,
            end=end / layout.sample_rate, speaker=speaker, environment=environment, speech=is_speech,
            vad_probability=probability, labels=layout.labels, **fields
        ))
    return results


def gated_signal(pipeline: Any, sample_rate: int, samples: Any, speaker: str, gate: bool = True) -> np.ndarray:
    """What the pipeline feeds the SER, as one signal at the model rate aligned with the input (``emotrt extract``).

    The TSE output is shifted by its latency; each SER hop takes the decision of the window ending
    there (the first window covers its whole span): the level-matched extraction, the mixture or
    their blend, and silence where the gate finds the enrolled speaker absent. ``gate=False``
    writes the raw extraction, latency-aligned, at the TSE's own scale. VAD is not applied: every
    window is shown as if the target were talking.
    """
    layout = pipeline.layout
    resampler = Resampler(layout.sample_rate)
    audio = resampler(sample_rate, to_mono(samples))
    audio = np.concatenate((audio, resampler.flush()))
    length = audio.shape[0]
    latency = pipeline.tse_latency
    padded = np.pad(audio, (0, -(length + latency) % layout.chunk + latency))
    extracted = extract_offline(pipeline, padded, speaker)[latency:latency + length]
    if not gate:
        return extracted.astype(np.float32)
    if pipeline.tse_mode != "gated":
        log.info("extract: the pipeline's TSE mode is %r, not gated", pipeline.tse_mode)
    chooser = pipeline.make_gate(speaker)
    out = np.zeros(length, dtype=np.float32)
    start = 0
    ends = [e for e in range(layout.window, length + 1, layout.ser_hop)] or [length]
    if ends[-1] < length:
        ends.append(length)
    for end in ends:
        window = slice(max(0, end - layout.window), end)
        fed, _ = chooser(extracted[None, window], audio[None, window])
        if fed is not None:
            out[start:end] = fed[0, start - window.start:]
        start = end
    return out


def extract_file(pipeline: Any, speaker: str, source: Any, out: Any, gate: bool = True) -> Dict[str, Any]:
    """``emotrt extract``: write :func:`gated_signal` of the audio file ``source`` to ``out``.

    The output is float WAV at the model rate, as long as the input (in time); without the gate
    the raw extraction is brought to the input's RMS so it can be listened to (SI-SDR is
    scale-invariant). Returns a summary: rates, seconds, TSE mode and the share of silent samples.
    """
    from emotrt.runtime.audio import _soundfile
    from emotrt.runtime.errors import AudioError

    sf = _soundfile()
    try:
        samples, rate = sf.read(str(source), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:
        raise AudioError("cannot read {}: {}".format(source, exc), hint="give a WAV or FLAC file")
    signal = gated_signal(pipeline, int(rate), samples, speaker, gate=gate)
    if not gate:  # the TSE's own scale is arbitrary: bring it to the input's RMS (any rate: a mean, not a sum)
        mono = to_mono(samples).astype(np.float64)
        power = float(np.mean(signal.astype(np.float64) ** 2)) if signal.size else 0.0
        if power > 1e-20:
            signal = (signal * np.sqrt(float(np.mean(mono ** 2)) / power)).astype(np.float32)
    sf.write(str(out), signal, pipeline.sample_rate, subtype="FLOAT")
    return {"input_rate": int(rate), "rate": pipeline.sample_rate, "seconds": signal.shape[0] / pipeline.sample_rate,
            "tse": pipeline.tse_mode if gate else "raw", "silent": float(np.mean(signal == 0.0)) if signal.size else 0.0}
