"""Which layers of a pretrained front end carry emotion, and how robust they are to noise (``emotrt eval --layers``).

For an SER checkpoint with an ``ssl`` (wav2vec2 / HuBERT / WavLM) or ``whisper`` front end: each
hidden layer's frames, mean-pooled per utterance, get a linear probe fitted on the corpus's clean
train utterances — multinomial logistic regression for the emotion (UA) and ridge regression for
arousal/valence/dominance (CCC), both scikit-learn on standardised features — scored on the stored
``clean`` test set and every −5 dB one. A ``mixed`` row probes the weighted sum the SER actually
uses, and the report lists those learned layer weights (the softmax of ``LayerMix.weights``).
The questions of Shi et al. (ASR representations for noise-robust SER) and Mitra et al.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from emotrt.runtime.errors import ConfigError, CorpusError, DependencyError
from emotrt.training.checkpoint_eval import AVD, describe_set, fit_window, list_testsets
from emotrt.training.metrics import ccc, classification_scores

NOISY_TAG = "_m5db"  # stored test sets at -5 dB SNR (corpus.testsets)


@dataclass(frozen=True)
class LayerEvalConfig:
    """Test sets (empty: ``clean`` and every −5 dB set stored), per-set and probe-training limits."""

    sets: Tuple[str, ...] = ()
    limit: Optional[int] = None
    train_limit: Optional[int] = None
    batch_size: int = 8
    ridge_alpha: float = 1.0
    max_iter: int = 2000

    def __post_init__(self) -> None:
        for name in ("limit", "train_limit"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ConfigError("eval --layers: {} must be at least 2, got {}".format(name, value))


def layer_weights(frontend: Any) -> List[float]:
    """The front end's learned layer weighting (softmax of ``mix.weights``), first layer first."""
    return [float(w) for w in torch.softmax(frontend.mix.weights.detach().double(), dim=0)]


def pooled_layers(frontend: Any, windows: Sequence[np.ndarray], batch_size: int = 8,
                  on_item: Optional[Callable[[], None]] = None) -> np.ndarray:
    """Utterance features [N, layers + 1 (the mixed sum), D] (float32): each hidden layer's frames averaged over time."""
    out = []
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            audio = torch.from_numpy(np.stack(windows[start:start + batch_size]))
            states = frontend.hidden_states(audio)
            stacked = torch.stack([s.mean(dim=1) for s in states + [frontend.mix(states)]], dim=1)
            out.append(stacked.float().numpy())  # float32: [N, layers, D] of a large train split stays in memory
            for _ in range(len(audio)):
                if on_item is not None:
                    on_item()
    return np.concatenate(out)


def _sklearn() -> Any:
    try:
        from sklearn import linear_model, preprocessing
    except ImportError as exc:
        raise DependencyError("eval --layers fits its probes with scikit-learn ({})".format(exc),
                              hint="pip install 'emotrt[calibrate]' (or scikit-learn)") from None
    return linear_model, preprocessing


def _avd(utts: Sequence[Any]) -> Optional[np.ndarray]:
    values = [[getattr(u, k) for k in AVD] for u in utts]
    return None if any(v is None for row in values for v in row) else np.array(values, dtype=np.float64)


class Probe:
    """Linear probes of one feature set: emotion classes (logistic) and A/V/D (ridge), on standardised inputs."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, avd: Optional[np.ndarray], config: LayerEvalConfig) -> None:
        linear_model, preprocessing = _sklearn()
        self.scaler = preprocessing.StandardScaler().fit(features)
        x = self.scaler.transform(features)
        self.classes = linear_model.LogisticRegression(max_iter=config.max_iter).fit(x, labels)
        self.avd = linear_model.Ridge(alpha=config.ridge_alpha).fit(x, avd) if avd is not None else None

    def score(self, features: np.ndarray, labels: np.ndarray, avd: Optional[np.ndarray], num_classes: int) -> Dict[str, Any]:
        x = self.scaler.transform(features)
        row: Dict[str, Any] = {"ua": classification_scores(labels, self.classes.predict(x), num_classes)["ua"]}
        if self.avd is not None and avd is not None:
            concord = ccc(torch.from_numpy(self.avd.predict(x)), torch.from_numpy(avd))
            row.update({"ccc_" + k[0]: float(v) for k, v in zip(AVD, concord)})
        return row


def evaluate_layers(ser_dir: Any, corpus: Any, config: LayerEvalConfig = LayerEvalConfig(),
                    on_item: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """Per-layer probe UA/CCC on the clean and −5 dB test sets and the learned layer weights of ``ser_dir``."""
    from emotrt.training.corpus import load_manifest
    from emotrt.training.corpus.audio import read_audio
    from emotrt.training.models import load_model

    ser, _ = load_model(ser_dir)
    kind = ser.config.frontend if ser.__class__.__name__ == "SER" else None
    if kind not in ("ssl", "whisper"):
        raise ConfigError("{} has no ssl or whisper front end (found {}); --layers probes a pretrained encoder's layers"
                          .format(ser_dir, kind or "a non-SER checkpoint"),
                          hint="pass an SER trained with --set model.frontend=ssl or whisper")
    frontend, labels, window = ser.frontend.eval(), list(ser.config.labels), ser.config.window_samples
    root = Path(corpus)
    stored = list_testsets(root)
    names = list(config.sets) or [n for n in stored if n == "clean" or n.endswith(NOISY_TAG)]
    missing = [n for n in names if n not in stored]
    if missing or not names:
        raise CorpusError("test sets not in {}: {}".format(root, ", ".join(missing) or "clean or -5 dB"),
                          hint="stored sets: " + ", ".join(stored))

    def features(utts: Sequence[Any]) -> np.ndarray:
        return pooled_layers(frontend, [fit_window(read_audio(u.file), window) for u in utts], config.batch_size, on_item)

    train = [u for u in load_manifest(root / "manifests" / "train.jsonl") if u.emotion in labels][: config.train_limit]
    truth = np.array([labels.index(u.emotion) for u in train])
    if len(set(truth.tolist())) < 2:
        raise CorpusError("the train split of {} has fewer than two of the SER's classes ({}) to fit a probe"
                          .format(root, ", ".join(labels)))
    train_x, train_avd = features(train), _avd(train)
    probes = [Probe(train_x[:, i], truth, train_avd, config) for i in range(train_x.shape[1])]
    rows = []
    for name in names:
        items = [u for u in load_manifest(root / "testsets" / name / "mixtures.jsonl") if u.emotion in labels][: config.limit]
        if not items:
            raise CorpusError("test set {} has no utterance with a label in {}".format(name, labels))
        x, y, avd = features(items), np.array([labels.index(u.emotion) for u in items]), _avd(items)
        for i, probe in enumerate(probes):
            rows.append(dict(describe_set(name), set=name, layer=i if i < len(probes) - 1 else "mixed", n=len(items),
                             **probe.score(x[:, i], y, avd, len(labels))))
    # "layers": the hidden states probed (the input of the first layer counts), the mixed sum left out
    return {"frontend": kind, "layers": len(probes) - 1, "weights": layer_weights(frontend),
            "train_n": len(train), "sets": names, "rows": rows}


def count_layer_items(corpus: Any, config: LayerEvalConfig) -> int:
    """Utterances :func:`evaluate_layers` reads (for progress bars): probe training plus test sets."""
    root = Path(corpus)

    def lines(path: Path, limit: Optional[int]) -> int:
        n = sum(1 for line in path.open() if line.strip()) if path.is_file() else 0
        return min(n, limit or n)

    names = list(config.sets) or [n for n in list_testsets(root) if n == "clean" or n.endswith(NOISY_TAG)]
    return lines(root / "manifests" / "train.jsonl", config.train_limit) + sum(
        lines(root / "testsets" / n / "mixtures.jsonl", config.limit) for n in names)


def format_layers(report: Dict[str, Any]) -> str:
    """The report as Markdown: layer weights, then probe UA/CCC per layer with one column pair per test set."""
    sets = report["sets"]
    lines = ["{} front end, {} hidden states (0 = before the first layer); probes fitted on {} clean train utterances".format(
        report["frontend"], report["layers"], report["train_n"]), "",
        "| layer | learned weight | " + " | ".join("UA {0} | CCC {0}".format(s) for s in sets) + " |",
        "|" + "---|" * (2 + 2 * len(sets))]
    by_key = {(r["set"], r["layer"]): r for r in report["rows"]}
    for layer in list(range(report["layers"])) + ["mixed"]:
        weight = "" if layer == "mixed" else "{:.3f}".format(report["weights"][layer])
        cells = []
        for name in sets:
            r = by_key[name, layer]
            mean_ccc = np.mean([r[k] for k in ("ccc_a", "ccc_v", "ccc_d")]) if "ccc_a" in r else float("nan")
            cells += ["{:.3f}".format(r["ua"]), "{:.3f}".format(mean_ccc)]
        lines.append("| {} | {} | {} |".format(layer, weight, " | ".join(cells)))
    lines += ["", "CCC: mean of arousal, valence, dominance (each in the JSON report)."]
    return "\n".join(lines)
