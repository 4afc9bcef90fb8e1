"""The seed-style evaluation tables over a corpus's stored test sets.

SER: UA, WA, macro-F1 and CCC (arousal, valence, dominance) per test set (clean; noise at 10,
5, 0, -5 dB for seen and unseen environments; an interfering talker at 0 dB SIR, same and
different gender) x TSE off/on/gated (the runtime's do-no-harm gate; a window it finds without
the enrolled speaker is a miss) x environment text on / none / wrong description. TSE: SI-SDRi
on the two-talker sets, overall and per gender pair. With a second SER (``against``), that SER's
UA/CCC on the same windows and the differences with 95 % paired bootstrap intervals (e.g. a
distilled student against its baseline).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from emotrt.runtime.errors import ConfigError, CorpusError
from emotrt.runtime.level import enrollment_gain
from emotrt.runtime.results import match_level
from emotrt.training.metrics import ccc, classification_scores, si_sdr_improvement
from emotrt.training.text_gain import Scored, format_gains, paired_gain, text_gains

log = logging.getLogger(__name__)

TEXT_MODES = ("text", "none", "wrong")
#: TSE modes whose UA/CCC differences (paired bootstrap) the evaluation reports, with the first text mode
TSE_PAIRS = (("on", "off"), ("gated", "off"), ("gated", "on"))
AVD = ("arousal", "valence", "dominance")


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate: test-set names (empty = all stored), text modes, a per-set limit."""

    sets: Tuple[str, ...] = ()
    text_modes: Tuple[str, ...] = TEXT_MODES
    limit: Optional[int] = None
    batch_size: int = 16

    def __post_init__(self) -> None:
        bad = [m for m in self.text_modes if m not in TEXT_MODES]
        if bad or not self.text_modes:
            raise ConfigError("eval: text_modes {} not among {}".format(bad or "()", ", ".join(TEXT_MODES)))
        if self.limit is not None and self.limit < 1:
            raise ConfigError("eval: limit must be at least 1, got {}".format(self.limit))
        if self.batch_size < 1:
            raise ConfigError("eval: batch_size must be at least 1, got {}".format(self.batch_size))


def describe_set(name: str) -> Dict[str, Any]:
    """Condition, SNR and SIR of a stored test set from its name (see corpus.testsets)."""
    if name == "clean":
        return {"condition": "clean", "snr_db": None, "sir_db": None}
    if name.startswith("two_talker_"):
        return {"condition": "interferer_" + name.split("_")[2], "snr_db": None, "sir_db": 0.0}
    if name.startswith("noise_"):
        _, split, level = name.split("_", 2)
        return {"condition": split, "snr_db": float(level[:-2].replace("m", "-")), "sir_db": None}
    return {"condition": name, "snr_db": None, "sir_db": None}


def fit_window(audio: np.ndarray, window: int) -> np.ndarray:
    """The centred ``window`` samples of ``audio``, zero-padded on both sides when shorter."""
    if len(audio) >= window:
        start = (len(audio) - window) // 2
        return audio[start:start + window]
    out = np.zeros(window, dtype=np.float32)
    start = (window - len(audio)) // 2
    out[start:start + len(audio)] = audio
    return out


def _table_order(name: str) -> Tuple[int, str, float]:
    info = describe_set(name)
    rank = ["clean", "seen", "unseen"].index(info["condition"]) if info["condition"] in ("clean", "seen", "unseen") else 3
    return rank, info["condition"], -(info["snr_db"] or 0.0)


def list_testsets(corpus: Path) -> List[str]:
    """Names of the stored test sets under ``corpus/testsets``: clean, seen/unseen by falling SNR, talkers."""
    names = sorted((p.parent.name for p in (corpus / "testsets").glob("*/mixtures.jsonl")), key=_table_order)
    if not names:
        raise CorpusError("no stored test sets under {}".format(corpus / "testsets"),
                          hint="make the corpus with `emotrt data synth --out {}`".format(corpus))
    return names


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Evaluator:
    """SER (and optionally TSE) evaluation over one corpus; library form of ``emotrt eval``."""

    def __init__(self, ser: Any, corpus: Any, tse: Any = None, config: EvalConfig = EvalConfig(),
                 text_encoder: Any = None, gate: Any = None, against: Any = None) -> None:
        from emotrt.training.text import DescriptionBank, load_text_encoder

        self.ser, self.tse, self.config = ser.eval(), tse.eval() if tse is not None else None, config
        self.against = against.eval() if against is not None else None  # a second SER scored on the same windows
        self.gate = gate if tse is not None else None  # GateThresholds: adds the TSE-gated rows
        self.corpus = Path(corpus)
        envs_file = self.corpus / "environments.json"
        if not envs_file.is_file():
            raise CorpusError("corpus {} has no environments.json".format(self.corpus),
                              hint="make the corpus with `emotrt data synth --out {}`".format(self.corpus))
        cfg = ser.config
        encoder = text_encoder or ser.text or load_text_encoder(cfg.text_encoder, cfg.text_encoder_path)
        self.bank = DescriptionBank(encoder, json.loads(envs_file.read_text()), cfg.text_template)
        self.labels = list(cfg.labels)
        if against is not None:
            other = against.config
            mine = (list(cfg.labels), cfg.window_samples, cfg.text_encoder, cfg.text_template)
            theirs = (list(other.labels), other.window_samples, other.text_encoder, other.text_template)
            if mine != theirs:
                raise ConfigError("eval --against: the SERs differ in (labels, window_samples, text_encoder, "
                                  "text_template): {} vs {}".format(mine, theirs),
                                  hint="compare SERs trained for the same labels, window and text encoder")
        self._speech: Dict[str, Any] = {}
        self._spk: Dict[str, torch.Tensor] = {}
        self._level_gains: Dict[Tuple[str, Any], float] = {}

    def _audio(self, utt: Any) -> np.ndarray:
        from emotrt.training.corpus.audio import read_audio

        return read_audio(utt.file)

    def _clean(self, utt_id: str) -> Any:
        from emotrt.training.corpus import load_manifest

        if not self._speech:
            manifests = self.corpus / "manifests"
            self._speech = {u.id: u for u in load_manifest(manifests / "test.jsonl")}
            for u in load_manifest(manifests / "enroll.jsonl"):
                self._speech.setdefault("enroll:" + str(u.speaker), u)
        if utt_id not in self._speech:
            raise CorpusError("test set refers to {!r}, not in the corpus manifests".format(utt_id))
        return self._speech[utt_id]

    def _speaker_embedding(self, speaker: str) -> torch.Tensor:
        if speaker not in self._spk:
            enroll = self._clean("enroll:" + speaker)
            with torch.no_grad():
                self._spk[speaker] = self.tse.enroll(torch.from_numpy(self._audio(enroll))[None])[0]
        return self._spk[speaker]

    def level_gain(self, speaker: str, condition: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                   ser: Any = None) -> float:
        """The gain an SER with ``level_reference = "enrollment"`` hears ``speaker`` at (1 for the others):
        the one bringing the speaker's enrollment, through ``condition`` (the same device), to the
        reference level, as ``emotrt enroll`` and the stream do (:mod:`emotrt.runtime.level`)."""
        config = (ser if ser is not None else self.ser).config
        if config.level_reference != "enrollment":
            return 1.0
        key = (speaker, condition)
        if key not in self._level_gains:
            enrollment = self._audio(self._clean("enroll:" + speaker))
            if condition is not None:
                enrollment = condition(enrollment)
            self._level_gains[key] = enrollment_gain(enrollment, config.sample_rate)
        return self._level_gains[key]

    def _tokens(self, envs: Sequence[str], mode: str, ser: Any = None) -> torch.Tensor:
        ser = ser if ser is not None else self.ser
        if mode == "none":
            return ser.null_env(len(envs))
        chosen = [self.bank.wrong(e) if mode == "wrong" else e for e in envs]
        return ser.project_env(torch.stack([self.bank.embedding(e) for e in chosen]))

    def score(self, windows: Sequence[np.ndarray], envs: Sequence[str], text_mode: str, ser: Any = None,
              speakers: Optional[Sequence[str]] = None, condition: Optional[Callable[[np.ndarray], np.ndarray]] = None
              ) -> Scored:
        """Class predictions and arousal/valence/dominance of ``ser`` (default: the evaluated SER) on
        ``windows`` heard in the environments ``envs``, in batches of ``config.batch_size``; each
        window of ``speakers`` at :meth:`level_gain` (through ``condition``)."""
        ser = ser if ser is not None else self.ser
        gains = [self.level_gain(s, condition, ser) for s in speakers] if speakers is not None else [1.0] * len(windows)
        preds, avds = [], []
        for chunk in _batches(list(range(len(windows))), self.config.batch_size):
            audio = torch.from_numpy(np.stack([windows[i] * np.float32(gains[i]) for i in chunk]))
            with torch.no_grad():
                logits, avd = ser(audio, self._tokens([envs[i] for i in chunk], text_mode, ser))
            preds.append(logits.argmax(-1).numpy())
            avds.append(avd.double())
        return Scored(np.concatenate(preds), torch.cat(avds))

    def extract_raw(self, speaker: str, audio: np.ndarray) -> np.ndarray:
        """TSE output for ``speaker`` aligned with its input (a causal model lags by ``latency_samples``),
        at the TSE's own scale."""
        latency = int(getattr(getattr(self.tse, "config", None), "latency_samples", 0) or 0)
        with torch.no_grad():
            spk = self._speaker_embedding(speaker)
            out = self.tse(torch.from_numpy(audio)[None], spk[None])[0].numpy()
        return np.concatenate([out[latency:], np.zeros(latency, dtype=out.dtype)])

    def _extract(self, utt: Any, audio: np.ndarray) -> np.ndarray:
        """:meth:`extract_raw` through :func:`~emotrt.runtime.results.match_level`: SI-SNR training
        leaves the output scale arbitrary, and the SER hears level."""
        return match_level(self.extract_raw(str(utt.speaker), audio), audio)

    def _gated_window(self, speaker: str, raw: np.ndarray, extracted: np.ndarray, mixture: np.ndarray) -> Tuple[np.ndarray, Any]:
        """(what the gated pipeline's SER hears, the gate's decision) for one window; as
        :class:`emotrt.runtime.gate.TseGate` does, with the PyTorch TSE's enrollment network as the embedder."""
        from emotrt.runtime.gate import decide, gate_audio, window_features
        from emotrt.training.tse_gate import torch_embedder

        spk = self._speaker_embedding(speaker).numpy()
        features = window_features(raw, mixture, spk, torch_embedder(self.tse), self.gate.clean_gain_db)
        decision = decide(features, self.gate)
        return gate_audio(decision, extracted, mixture), decision

    def evaluate_set(self, name: str, on_item: Optional[Callable[[], None]] = None
                     ) -> Tuple[List[Dict[str, Any]], List[float], List[Dict[str, Any]]]:
        """Rows (one per TSE mode x text mode) for the test set ``name``, its SI-SDRi values, and the
        text-mode differences with their bootstrap intervals (:mod:`emotrt.training.text_gain`)."""
        from emotrt.training.corpus import load_manifest

        items = [u for u in load_manifest(self.corpus / "testsets" / name / "mixtures.jsonl")
                 if u.emotion in self.labels][: self.config.limit]
        if not items:
            raise CorpusError("test set {} has no utterance with a label in {}".format(name, self.labels))
        tse_modes = ("off", "on") if self.tse is not None else ("off",)
        tse_modes += ("gated",) if self.gate is not None else ()
        windows: Dict[str, List[np.ndarray]] = {m: [] for m in tse_modes}
        gate_choices: List[Any] = []
        improvements: List[float] = []
        window = self.ser.config.window_samples
        for utt in items:
            audio = self._audio(utt)
            windows["off"].append(fit_window(audio, window))
            if self.tse is not None:
                raw = self.extract_raw(str(utt.speaker), audio)
                extracted = match_level(raw, audio)
                windows["on"].append(fit_window(extracted, window))
                if self.gate is not None:
                    fed, decision = self._gated_window(str(utt.speaker), fit_window(raw, window),
                                                       windows["on"][-1], windows["off"][-1])
                    windows["gated"].append(fed)
                    gate_choices.append(decision)
                if utt.interferer is not None:
                    reference = torch.from_numpy(self._audio(self._clean(str(utt.target))))
                    n = min(len(reference), len(audio))
                    improvements.append(float(si_sdr_improvement(
                        torch.from_numpy(extracted[:n]), torch.from_numpy(audio[:n]), reference[:n])))
            if on_item is not None:
                on_item()
        truth = np.array([self.labels.index(u.emotion) for u in items])
        avd_true = torch.tensor([[getattr(u, k) or 3.0 for k in AVD] for u in items], dtype=torch.float64)
        envs = [str(u.environment) for u in items]
        speakers = [str(u.speaker) for u in items]
        present = np.array([d.present for d in gate_choices])
        rows = []
        scored: Dict[Tuple[str, str], Scored] = {}
        for tse_mode in tse_modes:
            for text_mode in self.config.text_modes:
                heard = self.score(windows[tse_mode], envs, text_mode, speakers=speakers)
                answered = heard.preds
                extra: Dict[str, Any] = {}
                if tse_mode == "gated":  # no answer where the gate finds the enrolled speaker absent: a miss
                    extra = {"ua_heard": classification_scores(truth, answered, len(self.labels))["ua"]}
                    answered = np.where(present, answered, len(self.labels))
                    extra.update({"present": float(present.mean()),
                             **{m: float(np.mean([d.present and d.mode == m for d in gate_choices]))
                                for m in ("used", "blend", "bypassed")}})
                out = scored[tse_mode, text_mode] = Scored(answered, heard.avd)
                scores = classification_scores(truth, out.preds, len(self.labels) + 1)
                concord = ccc(out.avd, avd_true)
                rows.append(dict(describe_set(name), set=name, tse=tse_mode, text=text_mode, n=len(items), **scores,
                                 **{"ccc_" + k[0]: float(v) for k, v in zip(AVD, concord)}, **extra))
        classes = len(self.labels) + 1  # the gated rows' "no answer"
        gains = [dict(set=name, **g) for g in text_gains(truth, avd_true, scored, classes)]
        text = self.config.text_modes[0]
        gains += [dict(set=name, tse="{} - {}".format(a, b), compared="TSE " + text,
                       **paired_gain(truth, avd_true, scored[a, text], scored[b, text], classes))
                  for a, b in TSE_PAIRS if (a, text) in scored and (b, text) in scored]
        if self.against is not None:
            for tse_mode in tse_modes:
                other = self.score(windows[tse_mode], envs, text, self.against, speakers=speakers)
                if tse_mode == "gated":
                    other = Scored(np.where(present, other.preds, len(self.labels)), other.avd)
                gains.append(dict(set=name, tse=tse_mode, compared="against " + text,
                                  against_ua=classification_scores(truth, other.preds, classes)["ua"],
                                  against_ccc=float(ccc(other.avd, avd_true).mean()),
                                  **paired_gain(truth, avd_true, scored[tse_mode, text], other, classes)))
        return rows, improvements, gains

    def run(self, on_item: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
        """Every requested test set: ``{"ser": rows, "tse": SI-SDRi summary or None, "text_gain": rows}``."""
        names = list(self.config.sets) or list_testsets(self.corpus)
        missing = [n for n in names if not (self.corpus / "testsets" / n / "mixtures.jsonl").is_file()]
        if missing:
            raise CorpusError("test sets not in {}: {}".format(self.corpus, ", ".join(missing)),
                              hint="stored sets: " + ", ".join(list_testsets(self.corpus)))
        rows: List[Dict[str, Any]] = []
        gains: List[Dict[str, Any]] = []
        sisdri: Dict[str, List[float]] = {}
        for name in names:
            set_rows, improvements, set_gains = self.evaluate_set(name, on_item)
            rows += set_rows
            gains += set_gains
            if improvements:
                sisdri[set_rows[0]["condition"].replace("interferer_", "")] = improvements
            log.info("evaluated %s (%d rows)", name, len(set_rows))
        tse = None
        if sisdri:
            everything = [v for values in sisdri.values() for v in values]
            tse = {"si_sdri_db": float(np.mean(everything)), "n": len(everything),
                   **{"si_sdri_db_" + k: float(np.mean(v)) for k, v in sisdri.items()}}
        return {"ser": rows, "tse": tse, "text_gain": gains}


def format_table(report: Dict[str, Any]) -> str:
    """The report as Markdown tables (SER rows, then the TSE SI-SDRi line)."""
    head = "| set | condition | SNR dB | TSE | text | n | UA | WA | F1 | CCC-A | CCC-V | CCC-D |"
    lines = [head, "|" + "---|" * 12]
    for r in report["ser"]:
        snr = "" if r["snr_db"] is None else "{:g}".format(r["snr_db"])
        lines.append("| {} | {} | {} | {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} |".format(
            r["set"], r["condition"], snr, r["tse"], r["text"], r["n"], r["ua"], r["wa"], r["f1"],
            r["ccc_a"], r["ccc_v"], r["ccc_d"]))
    gated = [r for r in report["ser"] if r["tse"] == "gated" and r["text"] == report["ser"][0]["text"]]
    if gated:
        lines += ["", "Gate (UA heard: the SER's answer on what the gate feeds it, absent windows included)", "",
                  "| set | speaker present | used | blend | bypassed | UA heard |", "|---|---|---|---|---|---|"]
        lines += ["| {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} |".format(
            r["set"], r["present"], r["used"], r["blend"], r["bypassed"], r["ua_heard"]) for r in gated]
    if report.get("tse"):
        t = report["tse"]
        parts = ", ".join("{} {:.2f} dB".format(k.replace("si_sdri_db_", ""), v) for k, v in t.items()
                          if k.startswith("si_sdri_db_"))
        lines += ["", "TSE SI-SDRi {:.2f} dB over {} two-talker mixtures ({})".format(t["si_sdri_db"], t["n"], parts)]
    rows = report.get("text_gain", [])
    tse_rows = [r for r in rows if str(r["compared"]).startswith("TSE ")]
    against_rows = [r for r in rows if str(r["compared"]).startswith("against ")]
    lines += format_gains([r for r in rows if r not in tse_rows and r not in against_rows])
    if tse_rows:
        lines += ["", "TSE modes: differences on the same utterances ({}), 95 % paired bootstrap interval".format(
            tse_rows[0]["compared"][4:] + " text"), "",
            "| set | compared | UA | interval | mean CCC | interval |", "|" + "---|" * 6]
        lines += ["| {} | {} | {:+.3f} | [{:+.3f}, {:+.3f}] | {:+.3f} | [{:+.3f}, {:+.3f}] |".format(
            r["set"], r["tse"], r["ua_gain"], *r["ua_ci"], r["ccc_gain"], *r["ccc_ci"]) for r in tse_rows]
    if against_rows:
        lines += ["", "This SER minus {} on the same utterances (text mode {}), 95 % paired bootstrap interval".format(
            report.get("against", "the other SER"), against_rows[0]["compared"][8:]), "",
            "| set | TSE | UA other | UA diff | interval | mean CCC other | CCC diff | interval |", "|" + "---|" * 8]
        lines += ["| {} | {} | {:.3f} | {:+.3f} | [{:+.3f}, {:+.3f}] | {:.3f} | {:+.3f} | [{:+.3f}, {:+.3f}] |".format(
            r["set"], r["tse"], r["against_ua"], r["ua_gain"], *r["ua_ci"], r["against_ccc"], r["ccc_gain"],
            *r["ccc_ci"]) for r in against_rows]
    return "\n".join(lines)


def evaluate_checkpoints(ser_dir: Any, corpus: Any, tse_dir: Any = None, config: EvalConfig = EvalConfig(),
                         on_item: Optional[Callable[[], None]] = None, gate: Any = None,
                         against_dir: Any = None) -> Dict[str, Any]:
    """Load the SER (and TSE) checkpoints and evaluate them on ``corpus``'s stored test sets.

    ``gate`` (:class:`~emotrt.runtime.gate.GateThresholds`) adds the TSE-gated rows; by default the
    thresholds the TSE checkpoint carries (``config.json`` ``gate``, written by ``--calibrate-gate``).
    ``against_dir``: a second SER checkpoint scored on the same windows (the ``against`` rows).
    """
    from emotrt.runtime.gate import GateThresholds
    from emotrt.training.models import load_model

    def load_ser(path: Any) -> Any:
        ser, _ = load_model(path)
        if ser.__class__.__name__ != "SER":
            raise ConfigError("{} is not an SER checkpoint".format(path), hint="emotrt eval SER_CHECKPOINT --tse TSE_CHECKPOINT")
        return ser

    ser = load_ser(ser_dir)
    against = load_ser(against_dir) if against_dir is not None else None
    tse, tse_config = load_model(tse_dir) if tse_dir is not None else (None, {})
    if gate is None and tse_config.get("gate"):
        gate = GateThresholds.from_dict(tse_config["gate"])
    report = Evaluator(ser, corpus, tse=tse, config=config, gate=gate, against=against).run(on_item)
    if against_dir is not None:
        report["against"] = str(against_dir)
    return report


def count_items(corpus: Any, config: EvalConfig) -> int:
    """How many test utterances :func:`evaluate_checkpoints` will process (for progress bars)."""
    root = Path(corpus)
    total = 0
    for name in list(config.sets) or list_testsets(root):
        path = root / "testsets" / name / "mixtures.jsonl"
        lines = sum(1 for line in path.open(encoding="utf-8", errors="replace") if line.strip()) if path.is_file() else 0
        total += min(lines, config.limit or lines)
    return total


def save_report(report: Dict[str, Any], json_path: Any = None, markdown_path: Any = None) -> None:
    """Write the report as JSON and/or its Markdown tables, each atomically."""
    from emotrt.runtime.atomic import atomic_write as _atomic_write

    if json_path is not None:
        _atomic_write(Path(json_path), json.dumps(report, indent=2).encode())
    if markdown_path is not None:
        _atomic_write(Path(markdown_path), (format_table(report) + "\n").encode())
