"""Accuracy of a graph variant against its FP32 original on held-out items, per model kind.

``tse_step`` is streamed chunk by chunk with its own state (as on the device) and scored
by SI-SDR of its output against the FP32 output and by SI-SDRi against the clean target;
``ser`` by UA (macro recall) and CCC of arousal/valence/dominance against the labels (or
against FP32's own predictions when the items carry none); graphs of other kinds by the
cosine similarity of their outputs to FP32's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from emotrt.calibration.data import Feed, stream_tse_step
from emotrt.runtime.backends import load_engine
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import ConfigError

Outputs = List[Dict[str, np.ndarray]]


@dataclass(frozen=True)
class EvalItem:
    """One held-out example: the graph feed (whole utterance for ``tse_step``) and its references.

    ``reference`` is the clean target of a TSE mixture, ``label`` the SER class index (-1 when
    unknown), ``avd`` its arousal/valence/dominance and ``group`` the condition it was heard in
    (an SER's UA is also scored per group).
    """

    feed: Feed
    reference: Optional[np.ndarray] = None
    label: int = -1
    avd: Optional[np.ndarray] = None
    group: str = ""


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR in dB (REFERENCE.md's definition), capped at 100 dB.

    Written out because fast_bss_eval raises on an estimate identical to its reference,
    which is exactly the FP32-vs-FP32 row.
    """
    s = np.asarray(reference, np.float64).reshape(-1)
    e = np.asarray(estimate, np.float64).reshape(-1)
    alpha = np.dot(e, s) / max(np.dot(s, s), 1e-20)
    error = np.sum((alpha * s - e) ** 2)
    return float(min(100.0, 10.0 * np.log10(max(np.sum((alpha * s) ** 2), 1e-20) / max(error, 1e-20))))


def ccc(predicted: np.ndarray, target: np.ndarray) -> float:
    """Concordance correlation coefficient with population variances (no torch-free library has it)."""
    x, y = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    return float(2.0 * covariance / denominator) if denominator > 0 else 1.0


def unweighted_accuracy(predicted: Sequence[int], labels: Sequence[int]) -> float:
    """UA: recall averaged over the classes present in ``labels``."""
    from sklearn.metrics import recall_score

    return float(recall_score(list(labels), list(predicted), average="macro", zero_division=0))


def shorten(items: Sequence[EvalItem], contract: ModelContract, seconds: float) -> List[EvalItem]:
    """``tse_step`` items cut to ``seconds`` (whole chunks); other kinds have fixed-size feeds already."""
    if contract.model != "tse_step":
        return list(items)
    chunk = int(contract.chunk_samples or 1)
    keep = max(chunk, int(seconds * contract.sample_rate) // chunk * chunk)
    out = []
    for item in items:
        feed = dict(item.feed, audio=np.asarray(item.feed["audio"]).reshape(-1)[:keep])
        reference = None if item.reference is None else np.asarray(item.reference).reshape(-1)[:keep]
        out.append(replace(item, feed=feed, reference=reference))
    return out


def run_items(model_path: Path, contract: ModelContract, items: Sequence[EvalItem], threads: int = 1) -> Outputs:
    """Every item's outputs; ``tse_step`` items are streamed and their ``audio_out`` concatenated."""
    results = []
    with load_engine(model_path, threads=threads) as engine:
        for item in items:
            if contract.model == "tse_step":
                chunks = [out["audio_out"] for _, out in
                          stream_tse_step(engine, contract, item.feed["audio"], item.feed["spk_emb"])]
                results.append({"audio_out": np.concatenate(chunks, axis=1)})
            else:
                results.append(engine.run(item.feed))
    return results


def score(contract: ModelContract, items: Sequence[EvalItem], fp32: Outputs, outputs: Outputs) -> Dict[str, float]:
    """Metrics of ``outputs`` (FP32's own outputs give the reference row)."""
    if contract.model == "tse_step":
        return _score_tse(items, fp32, outputs, int(contract.extra.get("latency_samples", 0) or 0))
    if contract.model == "ser":
        return _score_ser(items, fp32, outputs)
    cosines = []
    for ref, out in zip(fp32, outputs):
        for name, value in ref.items():
            a, b = value.reshape(-1).astype(np.float64), out[name].reshape(-1).astype(np.float64)
            norm = np.linalg.norm(a) * np.linalg.norm(b)
            cosines.append(float(np.dot(a, b) / norm) if norm > 0 else 1.0)
    return {"cosine": float(np.mean(cosines))}


def _score_tse(items: Sequence[EvalItem], fp32: Outputs, outputs: Outputs, latency: int = 0) -> Dict[str, float]:
    """SI-SDR vs the FP32 output, and SI-SDRi vs the clean target with the output moved back by
    the extractor's ``latency`` samples (a causal TSE lags its input; 2 ms of lag alone ruins SI-SDR)."""
    vs_fp32, improvement = [], []
    for item, ref, out in zip(items, fp32, outputs):
        estimate = out["audio_out"].reshape(-1)
        vs_fp32.append(si_sdr(estimate, ref["audio_out"].reshape(-1)))
        if item.reference is None:
            raise ConfigError("tse_step evaluation items need the clean target as reference")
        estimate = estimate[latency:]
        target = item.reference.reshape(-1)[: estimate.shape[0]]
        mixture = item.feed["audio"].reshape(-1)[: estimate.shape[0]]
        improvement.append(si_sdr(estimate, target) - si_sdr(mixture, target))
    return {"sisdr_vs_fp32": float(np.mean(vs_fp32)), "sisdri": float(np.mean(improvement))}


def _score_ser(items: Sequence[EvalItem], fp32: Outputs, outputs: Outputs) -> Dict[str, float]:
    """UA, CCC and agreement with FP32; with items of several groups also ``ua.<group>`` and
    ``agreement.<group>`` of each."""
    predicted = [int(np.argmax(o["logits"])) for o in outputs]
    reference = [int(np.argmax(o["logits"])) for o in fp32]
    labels = [item.label for item in items]
    labelled = all(label >= 0 for label in labels)
    truth = labels if labelled else reference
    groups = sorted({item.group for item in items})
    per_group: Dict[str, float] = {}
    for g in groups if len(groups) > 1 else ():
        chosen, own, fp32_own = zip(*[(p, t, r) for p, t, r, i in zip(predicted, truth, reference, items)
                                      if i.group == g])
        per_group.update({"ua." + g: unweighted_accuracy(chosen, own),
                          "agreement." + g: float(np.mean(np.asarray(chosen) == np.asarray(fp32_own)))})
    avd = np.stack([o["avd"].reshape(-1) for o in outputs])
    if all(item.avd is not None for item in items):
        target = np.stack([np.asarray(item.avd, np.float64).reshape(-1) for item in items])
    else:
        target = np.stack([o["avd"].reshape(-1) for o in fp32])
    return {
        "ua": unweighted_accuracy(predicted, truth),
        "ccc": float(np.mean([ccc(avd[:, d], target[:, d]) for d in range(avd.shape[1])])),
        "agreement": float(np.mean(np.asarray(predicted) == np.asarray(reference))),
        **per_group,
    }
