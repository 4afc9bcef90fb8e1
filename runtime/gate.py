"""The do-no-harm TSE gate: per SER window, the SER hears the extraction, the mixture or a blend.

The TSE helps where it was trained and harms elsewhere (environment noise it never saw, voices
unlike its training speakers). Each SER window, the gate compares what the device already has:

- ``sim_extracted`` / ``sim_mixture``: cosine similarity of the enrolled embedding with the
  enroll graph's embedding of the extracted window and of the raw (mixture) window;
- ``ratio_db``: extracted/mixture energy over the window, minus the TSE's own gain on the target
  alone (``clean_gain_db``), so 0 dB means "passed through", strongly negative "suppressed";
- ``residual_norm``: the norm of the embedding of what the TSE removed (mixture − extraction, at
  the level :func:`~emotrt.runtime.results.match_level` gives it) over the enrolled embedding's norm. Speech gives norms like the enrolled
  one; environment noise gives much larger ones, so it tells a competing talker (where the
  extraction helps the SER) from noise (where the noise-trained SER may do better on the mixture).

Decision (thresholds calibrated on the valid split by :mod:`emotrt.training.tse_gate`, stored in
the ``tse_step`` contract's ``extra["gate"]`` and hence in the bundle manifest):

- the enrolled speaker is *absent* when the presence model says so, or when the extraction
  suppressed the window (``ratio_db < present_ratio_db``; off in new calibrations): no emotion for
  that speaker, whoever else talks. The model is a logistic score over :func:`presence_features`
  (``presence_weights``, ``presence_bias``; fitted on the valid split's windows with and without the
  enrolled speaker, the bias set so every condition where they talk keeps its share). It weighs what
  thresholds cannot: a quiet window the TSE passed whole holds one talker, and only the *mixture's*
  similarity tells who (a TSE conditioned on the enrolled speaker pulls a voice close to theirs
  further towards them). Bundles calibrated before the model carry similarity thresholds instead:
  absent when neither window sounds like them (``max(sim_extracted, sim_mixture) <
  present_similarity``; in a noisy window, ``residual_norm >= present_noise_norm``, the lower
  ``present_similarity_noisy``);
- in a noise-dominated window (``residual_norm >= noise_norm``) the SER hears the blend
  ``noise_weight`` (0: the mixture);
- otherwise it hears the extraction (weight ``use_weight``) when the extraction moved the window
  towards the enrolled speaker (``sim_extracted - sim_mixture >= use_margin``), the mixture when it
  did not (``<= bypass_margin``), and a linear ramp between.

numpy only: it runs on the device (:class:`~emotrt.runtime.stream.Stream`) and in ``emotrt eval``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from emotrt.runtime.errors import ConfigError
from emotrt.runtime.results import match_level

#: ``PipelineConfig.tse``: ``gated`` needs thresholds, ``auto`` gates when the bundle has them.
TSE_MODES = ("auto", "gated", "on", "off")
USED, BYPASSED, BLEND, ABSENT = "used", "bypassed", "blend", "absent"
_EPS = 1e-12
_OPTIONAL = {"present_ratio_db": -math.inf, "noise_norm": math.inf, "present_noise_norm": math.inf}  # None: test off


@dataclass(frozen=True)
class GateThresholds:
    """The gate's calibrated thresholds (see the module docstring); ``calibration`` records how.

    >>> t = GateThresholds(use_margin=0.1, bypass_margin=0.0, present_similarity=0.3)
    >>> GateThresholds.from_dict(t.to_dict()) == t
    True
    """

    use_margin: float
    bypass_margin: float
    present_similarity: float
    present_ratio_db: float = -math.inf
    clean_gain_db: float = 0.0
    use_weight: float = 1.0
    noise_norm: float = math.inf
    noise_weight: float = 0.0
    present_noise_norm: float = math.inf
    present_similarity_noisy: float = -1.0
    presence_weights: Optional[Tuple[float, ...]] = None
    presence_bias: float = 0.0
    calibration: Dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.bypass_margin <= self.use_margin:
            raise ConfigError("gate thresholds: bypass_margin={} must be <= use_margin={}".format(
                self.bypass_margin, self.use_margin))
        bad = [n for n in ("present_similarity", "present_similarity_noisy") if not -1.0 <= getattr(self, n) <= 1.0]
        if bad:
            raise ConfigError("gate thresholds: {} must be a cosine in [-1, 1]".format(", ".join(bad)))
        bad = [n for n in ("use_weight", "noise_weight") if not 0.0 <= getattr(self, n) <= 1.0]
        if bad:
            raise ConfigError("gate thresholds: {} must be in [0, 1]".format(", ".join(bad)))
        if self.presence_weights is not None:
            object.__setattr__(self, "presence_weights", tuple(float(w) for w in self.presence_weights))
            if len(self.presence_weights) != len(PRESENCE_FEATURES):
                raise ConfigError("gate thresholds: presence_weights has {} values, the presence model {} ({})".format(
                    len(self.presence_weights), len(PRESENCE_FEATURES), ", ".join(PRESENCE_FEATURES)),
                    hint="calibrate the gate with this emotrt version")

    def present(self, sim_extracted: Any, sim_mixture: Any, ratio_db: Any, residual_norm: Any) -> Any:
        """Whether the enrolled speaker talks (see the module docstring), for one window's features or
        arrays of them (``ratio_db`` after ``clean_gain_db``): the presence model, else the similarity
        thresholds, and the energy-ratio test."""
        if self.presence_weights is not None:
            heard = presence_features(sim_extracted, sim_mixture, ratio_db, residual_norm) @ np.asarray(self.presence_weights)
            similar = heard + self.presence_bias >= 0.0
        else:
            threshold = np.where(np.asarray(residual_norm) >= self.present_noise_norm, self.present_similarity_noisy,
                                 self.present_similarity)
            similar = np.maximum(sim_extracted, sim_mixture) >= threshold
        return similar & (np.asarray(ratio_db) >= self.present_ratio_db)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready (infinite thresholds, i.e. switched off, as None)."""
        data = asdict(self)
        for key in _OPTIONAL:
            if math.isinf(data[key]):
                data[key] = None
        if self.presence_weights is not None:
            data["presence_weights"] = list(self.presence_weights)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "GateThresholds":
        """From :meth:`to_dict` output (a contract's ``extra["gate"]``); unknown keys are errors."""
        data = dict(data)
        for key, off in _OPTIONAL.items():
            if key in data and data[key] is None:
                data[key] = off
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("gate thresholds: unknown keys {}".format(", ".join(unknown)),
                              hint="calibrate the gate with this emotrt version")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError("gate thresholds incomplete: {}".format(exc))


@dataclass(frozen=True)
class GateFeatures:
    """The cheap signals of one SER window (see the module docstring)."""

    sim_extracted: float
    sim_mixture: float
    ratio_db: float
    residual_norm: float = 0.0


@dataclass(frozen=True)
class GateDecision:
    """What the SER hears: ``weight`` of the extraction (1 used, 0 bypassed); ``mode`` absent: nothing."""

    mode: str
    weight: float
    features: Optional[GateFeatures] = None

    @property
    def present(self) -> bool:
        return self.mode != ABSENT


#: what the presence model reads, in order (:func:`presence_features`)
PRESENCE_FEATURES = ("sim_extracted", "sim_mixture", "ratio_db", "residual_norm", "sim_extracted*sim_mixture",
                     "max(sim_extracted,sim_mixture)", "ratio_db*sim_mixture", "residual_norm*sim_mixture",
                     "passed_whole*sim_mixture")
_PASSED_WHOLE_DB = -0.5  # an extraction within half a dB of the TSE's gain on the target alone: one talker


def presence_features(sim_extracted: Any, sim_mixture: Any, ratio_db: Any, residual_norm: Any) -> np.ndarray:
    """[..., len(PRESENCE_FEATURES)]: the presence model's inputs from the window features (scalars or
    arrays; ``ratio_db`` after ``clean_gain_db``, clipped to [−30, 3] dB: beyond, the TSE suppressed or
    boosted the window and by how much no longer matters).

    >>> presence_features(0.9, 0.8, 0.0, 1.0).round(2).tolist()
    [0.9, 0.8, 0.0, 1.0, 0.72, 0.9, 0.0, 0.8, 0.8]
    """
    se, sm = np.asarray(sim_extracted, dtype=np.float64), np.asarray(sim_mixture, dtype=np.float64)
    r = np.clip(np.asarray(ratio_db, dtype=np.float64), -30.0, 3.0)
    res = np.asarray(residual_norm, dtype=np.float64)
    return np.stack([se, sm, r, res, se * sm, np.maximum(se, sm), r * sm, res * sm, (r >= _PASSED_WHOLE_DB) * sm], axis=-1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / denom if denom > _EPS else 0.0


def energy_ratio_db(extracted: np.ndarray, mixture: np.ndarray) -> float:
    """10·log10 of the extracted over the mixture energy (−120 dB floor)."""
    num = float(np.dot(extracted.ravel().astype(np.float64), extracted.ravel()))
    den = float(np.dot(mixture.ravel().astype(np.float64), mixture.ravel()))
    return 10.0 * math.log10(max(num, _EPS) / max(den, _EPS)) if den > _EPS else 0.0


def window_features(extracted: np.ndarray, mixture: np.ndarray, spk_emb: np.ndarray,
                    embed: Callable[[np.ndarray], np.ndarray], clean_gain_db: float = 0.0,
                    matched: Optional[np.ndarray] = None) -> GateFeatures:
    """Features of one window: ``extracted`` at the TSE's own scale, ``mixture`` its input; ``embed``
    maps audio [1, T] to an embedding [1, D] (the enroll graph). Three ``embed`` calls. ``matched``:
    ``match_level(extracted, mixture)`` when the caller has it already."""
    extracted = np.asarray(extracted, dtype=np.float32).reshape(1, -1)
    mixture = np.asarray(mixture, dtype=np.float32).reshape(1, -1)
    ratio = energy_ratio_db(extracted, mixture)
    if matched is None:
        matched = match_level(extracted, mixture)  # as the SER hears it
    matched = np.asarray(matched, dtype=np.float32).reshape(1, -1)
    norm = math.sqrt(float(np.dot(np.ravel(spk_emb), np.ravel(spk_emb)))) or 1.0
    return GateFeatures(
        sim_extracted=cosine(embed(extracted), spk_emb),
        sim_mixture=cosine(embed(mixture), spk_emb),
        ratio_db=ratio - clean_gain_db,
        residual_norm=float(np.linalg.norm(embed(mixture - matched))) / norm,
    )


def decide(features: GateFeatures, thresholds: GateThresholds) -> GateDecision:
    """The gate's decision for one window (see the module docstring)."""
    f, t = features, thresholds
    if not t.present(f.sim_extracted, f.sim_mixture, f.ratio_db, f.residual_norm):
        return GateDecision(ABSENT, 0.0, f)
    if f.residual_norm >= t.noise_norm:
        weight = t.noise_weight
    else:
        margin = f.sim_extracted - f.sim_mixture
        if margin >= t.use_margin:
            weight = t.use_weight
        elif margin <= t.bypass_margin:
            weight = 0.0
        else:
            weight = t.use_weight * (margin - t.bypass_margin) / (t.use_margin - t.bypass_margin)
    mode = USED if weight >= 1.0 else BYPASSED if weight <= 0.0 else BLEND
    return GateDecision(mode, float(weight), f)


def gate_audio(decision: GateDecision, extracted: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """What the SER hears: ``extracted`` (already through ``match_level``), ``mixture`` or their blend."""
    if decision.weight >= 1.0:
        return extracted
    if decision.weight <= 0.0:
        return mixture
    w = np.float32(decision.weight)
    return (w * extracted + (np.float32(1.0) - w) * mixture).astype(np.float32, copy=False)


def engine_embedder(engine: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``embed`` for :func:`window_features` from a loaded enroll engine (``audio`` → ``spk_emb``)."""

    def embed(audio: np.ndarray) -> np.ndarray:
        return engine.run({"audio": audio})["spk_emb"]

    return embed


def thresholds_from_contract(contract: Any) -> Optional[GateThresholds]:
    """The gate thresholds a ``tse_step`` contract carries (``extra["gate"]``), or None."""
    data = (contract.extra or {}).get("gate") if contract is not None else None
    return GateThresholds.from_dict(data) if data else None


def resolve_mode(mode: str, thresholds: Optional[GateThresholds]) -> str:
    """``on``/``off``/``gated`` for a ``PipelineConfig.tse`` value and the bundle's thresholds."""
    if mode not in TSE_MODES:
        raise ConfigError("tse={!r}: expected one of {}".format(mode, ", ".join(TSE_MODES)))
    if mode == "auto":
        return "gated" if thresholds is not None else "on"
    if mode == "gated" and thresholds is None:
        raise ConfigError("tse='gated' but the bundle's tse_step graph carries no gate thresholds",
                          hint="calibrate them (emotrt eval ... --calibrate-gate), re-export and rebuild, or use tse='on'")
    return mode


class TseGate:
    """Per stream: what the SER hears for one window under ``PipelineConfig.tse`` (``on``, ``off``, ``gated``).

    Called with the window's raw extraction (TSE scale) and mixture, both [1, window]; returns the
    SER input (None: the enrolled speaker is absent, no SER) and the result fields ``tse``
    (used, bypassed, blend) and ``speaker_present`` (None unless gated). The SER input is scaled by
    ``level_gain``, the speaker's gain for an SER that hears speakers relative to their enrollment.

    >>> gate = TseGate("off", None, None, None)
    >>> audio, fields = gate(np.ones((1, 4), np.float32), np.zeros((1, 4), np.float32))
    >>> float(audio.sum()), fields
    (0.0, {'tse': 'bypassed', 'speaker_present': None})
    """

    def __init__(self, mode: str, thresholds: Optional[GateThresholds], embed: Optional[Callable[[np.ndarray], np.ndarray]],
                 spk_emb: Optional[np.ndarray], match: bool = False, copy: bool = False, level_gain: float = 1.0) -> None:
        if mode == "gated" and (thresholds is None or embed is None or spk_emb is None):
            raise ConfigError("the gated TSE needs thresholds, an enroll graph and the speaker's embedding",
                              hint="a bundle with enroll.onnx and gate thresholds, or tse='on'")
        self.mode, self.thresholds, self.embed, self.spk_emb = mode, thresholds, embed, spk_emb
        self.match = match
        self.copy = copy  # the caller hands the audio to another thread: never return a view of its buffers
        self.level_gain = np.float32(level_gain)  # the speaker's enrollment-level gain (emotrt.runtime.level)
        self.last: Optional[GateDecision] = None

    def __call__(self, extracted: np.ndarray, mixture: np.ndarray) -> Tuple[Optional[np.ndarray], Dict[str, Any]]:
        audio, fields = self._choose(extracted, mixture)
        if audio is not None and self.level_gain != 1.0:
            audio = audio * self.level_gain
        return audio, fields

    def _choose(self, extracted: np.ndarray, mixture: np.ndarray) -> Tuple[Optional[np.ndarray], Dict[str, Any]]:
        if self.mode == "off":
            return (mixture.copy() if self.copy else mixture), {"tse": BYPASSED, "speaker_present": None}
        leveled = match_level(extracted, mixture) if self.match or self.mode == "gated" else None
        matched = leveled if self.match else extracted
        if self.mode == "on":
            out = matched.copy() if self.copy and matched is extracted else matched
            return out, {"tse": USED, "speaker_present": None}
        t = self.thresholds
        assert t is not None and self.embed is not None  # checked in __init__
        features = window_features(extracted, mixture, self.spk_emb, self.embed, t.clean_gain_db, matched=leveled)
        decision = self.last = decide(features, t)
        if not decision.present:
            return None, {"tse": None, "speaker_present": False}
        audio = gate_audio(decision, matched, mixture)
        if self.copy and (audio is extracted or audio is mixture):
            audio = audio.copy()
        return audio, {"tse": decision.mode, "speaker_present": True}
