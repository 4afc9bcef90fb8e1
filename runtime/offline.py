"""Offline evaluation: the results a stream would give, computed on the whole signal at once.

It uses the bundle's ``tse_offline`` graph when there is one (else the step graph over all
hops), the same VAD hop by hop, and SER on exactly the windows a stream would see. Streaming
output is checked against it (tests) and it scores recordings without a live source.
"""
from __future__ import annotations

from typing import Any, List

import numpy as np

from emotrt.runtime.resample import Resampler, to_mono
from emotrt.runtime.results import Result, Smoother, make_result


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
            window_audio, fields = gate(speech[None, window], audio[None, window])
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
    latency = int((pipeline.tse.contract.extra or {}).get("latency_samples", 0))
    padded = np.pad(audio, (0, -(length + latency) % layout.chunk + latency))
    extracted = extract_offline(pipeline, padded, speaker)[latency:latency + length]
    if not gate:
        return extracted.astype(np.float32)
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
