"""Calibration jobs from an export folder and corpus utterances (what ``emotrt calibrate`` runs).

Utterances are records shaped like ``emotrt.training.corpus.Utterance`` (``file``, ``speaker``,
``emotion``, ``arousal``/``valence``/``dominance``); the CLI reads them with the corpus's
``load_manifest`` and passes them in, since calibration imports no other stage. They are
shuffled with the seed and split into a calibration part and a held-out evaluation part. TSE inputs are mixtures of a target with another speaker and an
environment noise over the deployment SIR/SNR range, at levels spanning up to full scale;
speaker embeddings come from the export's ``enroll`` graph on the speaker's enrollment recording
(the corpus's ``manifests/enroll.jsonl``, else another utterance of the speaker); environment
tokens from the export's ``env/`` table. Noise comes from the given noise utterances (the
corpus's ``manifests/noise.jsonl``), otherwise it is synthesised (seeded).

An SER hears what the stored test sets give it with the TSE off: every utterance alone, with
another talker at the lowest SIR of the range (0 dB, as the two-talker sets), in a noise at a
random SNR of the range and in a noise at its lowest SNR (-5 dB, the hardest noise sets), with
that noise's environment token, kept below full scale as the stored mixtures are, at the speaker's
enrollment gain for an enrollment-referenced SER. Its budget (UA and the share of labels that
differ from FP32's) is checked per scene: a plan checked on clean speech alone lost 6.9 UA points
on the two-talker test set, one checked on mixtures at random SNRs 3.7 points at -5 dB
(docs/eval/channels.md).
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotrt.calibration.data import (
    CalibrationDataError, CalibrationSet, audio_feeds, mix_at, scale_to, ser_feeds, span_levels, tse_step_feeds,
)
from emotrt.calibration.accuracy import EvalItem
from emotrt.calibration.pipeline import ModelJob
from emotrt.runtime.audio import check_complete
from emotrt.runtime.backends import load_engine
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import AudioError, CorpusError, ModelContractError
from emotrt.runtime.level import enrollment_gain
from emotrt.runtime.tables import VectorTable

log = logging.getLogger(__name__)

SUPPORTED = ("tse_step", "tse_offline", "enroll", "ser")
VARIANT_SUFFIXES = (".int8.onnx", ".fp16.onnx")
QUANTISED_OP_TYPES = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "DynamicQuantizeLinear",
                      "ConvInteger", "MatMulInteger")


@dataclass(frozen=True)
class SourceConfig:
    """How many utterances go to calibration and evaluation, mixing ranges, and the seed."""

    seed: int = 0
    calib_utterances: int = 48
    eval_utterances: int = 64  # with 16 (4 per class) one utterance moved UA by 6 points: the SER plan flipped
    ser_eval_utterances: int = 384  # in each of SER_SCENES: ~100 per class, as the stored test sets
    max_feeds: int = 256
    sir_db: Tuple[float, float] = (0.0, 10.0)
    snr_db: Tuple[float, float] = (-5.0, 15.0)
    offline_seconds: float = 2.0
    eval_seconds: float = 3.0


def find_models(export_dir: Path) -> List[Tuple[str, Path, ModelContract]]:
    """Every FP32 graph in ``export_dir`` with its contract; a graph without one is an error.

    Graphs that are already quantised (earlier calibration outputs copied in) are skipped.
    """
    import onnx
    from google.protobuf.message import DecodeError

    paths = sorted(p for p in Path(export_dir).glob("*.onnx") if not p.name.endswith(VARIANT_SUFFIXES))
    found = []
    for path in paths:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except (DecodeError, OSError) as exc:
            raise ModelContractError("{} is not a readable ONNX model ({})".format(path, exc), hint="re-run `emotrt export`")
        if any(n.op_type in QUANTISED_OP_TYPES for n in model.graph.node):
            log.warning("%s is already quantised: skipped (calibrate the FP32 graph)", path)
            continue
        props = {p.key: p.value for p in model.metadata_props}
        found.append((path.stem, path, ModelContract.from_metadata(props, source=str(path))))
    if not found:
        raise ModelContractError("no FP32 .onnx graphs in {}".format(export_dir), hint="run `emotrt export` first")
    return found


def check_audio(utterances: Sequence[Any], source: str) -> None:
    """Every utterance's audio file must exist; one error names how many are missing."""
    missing = [str(u.file) for u in utterances if not Path(u.file).is_file()]
    if missing:
        raise CorpusError(
            "{}: {} of {} audio files are missing, e.g. {}".format(source, len(missing), len(utterances), missing[0]),
            hint="regenerate the corpus with `emotrt data synth` or fix the paths",
        )


def load_audio(path: str, sample_rate: int) -> np.ndarray:
    """Mono float32 audio at ``sample_rate`` (resampled with soxr when needed)."""
    import soundfile

    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except RuntimeError as exc:
        raise AudioError("cannot read {}: {}".format(path, exc)) from exc
    check_complete(path, len(audio), rate)
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        import soxr

        audio = soxr.resample(audio, rate, sample_rate).astype(np.float32)
    return audio


#: The conditions of the stored test sets an SER is calibrated and checked in (see :meth:`_Corpus.scene`).
SER_SCENES = ("clean", "talker", "noise", "noise_low")
#: Peak a mixture is scaled down to when it would clip (as the stored test sets' mixtures are).
SCENE_PEAK = 0.95


class _Corpus:
    def __init__(self, utterances: Sequence[Any], noises: Sequence[Any], sample_rate: int, config: SourceConfig,
                 enrollments: Sequence[Any] = ()) -> None:
        self.rng = np.random.default_rng(config.seed)
        self.all = [utterances[i] for i in self.rng.permutation(len(utterances))]
        self.sample_rate, self.config = sample_rate, config
        self.eval, self.calib = self.split(config.eval_utterances)
        self._loaded: Dict[str, np.ndarray] = {}
        self._enrollments: Dict[str, Any] = {}
        for entry in enrollments:
            self._enrollments.setdefault(str(entry.speaker), entry)
        self.noises = [(self.audio(n), getattr(n, "environment", None)) for n in noises] or self._synthetic_noises()

    def split(self, n_eval: int) -> Tuple[List[Any], List[Any]]:
        """(held-out, calibration) entries: the first ``n_eval`` (at most half) of the shuffled
        utterances, then the next ``calib_utterances``."""
        n_eval = min(n_eval, len(self.all) // 2)
        return self.all[:n_eval], self.all[n_eval:n_eval + self.config.calib_utterances]

    def _synthetic_noises(self) -> List[Tuple[np.ndarray, Optional[str]]]:
        log.warning("no noise clips given: using synthesised noise")
        white = self.rng.standard_normal((4, self.sample_rate * 2))
        return [(np.cumsum(w) * 0.02 + w, None) for w in white]

    def audio(self, entry: Any) -> np.ndarray:
        """The entry's audio, read on first use (a large manifest is mostly never read)."""
        path = str(entry.file)
        if path not in self._loaded:
            self._loaded[path] = load_audio(path, self.sample_rate)
        return self._loaded[path]

    def _interferer(self, entry: Any, rng: np.random.Generator) -> np.ndarray:
        others = [e for e in self.all if e.speaker != entry.speaker] or self.all
        return self.audio(others[rng.integers(len(others))])

    def mixture(self, entry: Any) -> Tuple[np.ndarray, np.ndarray]:
        """(mixture, clean target) with another speaker and a noise at random SIR/SNR."""
        target, interferer = self.audio(entry), self._interferer(entry, self.rng)
        noise, _ = self.noises[self.rng.integers(len(self.noises))]
        sir, snr = self.rng.uniform(*self.config.sir_db), self.rng.uniform(*self.config.snr_db)
        return mix_at(target, interferer, noise, sir, snr), target

    def scene(self, entry: Any, kind: str, rng: np.random.Generator) -> Tuple[np.ndarray, Optional[str]]:
        """(audio, environment) of ``entry`` in one of :data:`SER_SCENES`: alone, with another talker
        at the lowest SIR of the range, in a noise at a random SNR of the range or at its lowest SNR
        (environment None: quiet); a mixture that would clip is scaled to :data:`SCENE_PEAK`."""
        target = self.audio(entry)
        if kind == "clean":
            return target, None
        environment = None
        if kind == "talker":
            mixture = target + scale_to(target, self._interferer(entry, rng), self.config.sir_db[0])
        else:
            noise, environment = self.noises[rng.integers(len(self.noises))]
            snr = rng.uniform(*self.config.snr_db) if kind == "noise" else self.config.snr_db[0]
            mixture = target + scale_to(target, noise, snr)
        peak = float(np.max(np.abs(mixture)))
        return (mixture * min(1.0, SCENE_PEAK / max(peak, 1e-9))).astype(np.float32), environment

    def enrollment(self, entry: Any) -> np.ndarray:
        """The speaker's enrollment recording, else another utterance of the speaker."""
        enrolled = self._enrollments.get(str(entry.speaker))
        if enrolled is not None:
            return self.audio(enrolled)
        same = [e for e in self.all if e.speaker == entry.speaker and e.file != entry.file]
        return self.audio((same or [entry])[0])


def build_jobs(
    export_dir: Path, utterances: Sequence[Any], noises: Sequence[Any] = (), config: SourceConfig = SourceConfig(),
    env_dir: Optional[Path] = None, source: str = "the calibration data", enrollments: Sequence[Any] = (),
) -> List[ModelJob]:
    """One :class:`ModelJob` per supported graph in ``export_dir``, fed from ``utterances``.

    Environment tokens come from ``env_dir`` (default ``export_dir/env``, as ``emotrt build``);
    ``source`` names the data in errors (the manifest path); ``enrollments`` are the speakers'
    enrollment recordings (the corpus's ``enroll.jsonl``; those of other speakers are ignored).
    """
    models = find_models(export_dir)
    speakers = {str(u.speaker) for u in utterances}
    enrollments = [e for e in enrollments if str(e.speaker) in speakers]
    check_audio(list(utterances) + list(noises) + enrollments, source)
    if len(utterances) < 4:
        raise CalibrationDataError(
            "{} has {} utterances; calibration needs at least 4 (half are held out for the report)".format(
                source, len(utterances)),
            hint="pass a larger manifest to --data",
        )
    corpus = _Corpus(utterances, noises, min(c.sample_rate for _, _, c in models), config, enrollments)
    tokens = _tokens(Path(env_dir) if env_dir else Path(export_dir) / "env", models, config)
    jobs = []
    with ExitStack() as stack:
        embed = _embedder(models, corpus, config, stack)
        for name, path, contract in models:
            if contract.model not in SUPPORTED:
                log.warning("%s: no calibration feeds for model kind %s; skipped", name, contract.model)
                continue
            calib, items = _feeds(path, contract, corpus, embed, tokens, config)
            jobs.append(ModelJob(name, path, contract, CalibrationSet.from_feeds(calib, name), tuple(items)))
    return jobs


def _embedder(models, corpus: _Corpus, config: SourceConfig, stack: ExitStack) -> Callable[[Any], np.ndarray]:
    enroll = [p for _, p, c in models if c.model == "enroll"]
    dims = [c.spk_dim for _, _, c in models if c.spk_dim]
    if enroll:
        engine = stack.enter_context(load_engine(enroll[0]))
        return lambda entry: engine.run({"audio": corpus.enrollment(entry)[None]})["spk_emb"].astype(np.float32)
    log.warning("no enroll graph in the export: speaker embeddings are seeded random vectors")
    rng = np.random.default_rng(config.seed + 1)
    table: Dict[object, np.ndarray] = {}
    return lambda entry: table.setdefault(entry.speaker, rng.standard_normal((1, dims[0] if dims else 1)).astype(np.float32))


# Clean utterances are scored with the token of a quiet room (or the SER's no-description token).
CLEAN_ENVIRONMENTS = ("quiet", "none")


def _tokens(env: Path, models, config: SourceConfig) -> Dict[str, np.ndarray]:
    """Every token of the table by environment name, those for clean speech first."""
    widths = [c.d_model for _, _, c in models if c.model == "ser"]
    if not widths:
        return {}
    if (env / "index.json").is_file():
        table = VectorTable(env, kind="environment", dim=widths[0])
        names = [n for n in CLEAN_ENVIRONMENTS if n in table] + [n for n in table.names() if n not in CLEAN_ENVIRONMENTS]
        return {n: table.get(n) for n in names}
    log.warning("no environment table at %s: environment tokens are seeded random vectors", env)
    rng = np.random.default_rng(config.seed + 2)
    return {"random{}".format(i): rng.standard_normal(widths[0]).astype(np.float32) for i in range(4)}


def _feeds(path, contract: ModelContract, corpus: _Corpus, embed, tokens, config: SourceConfig):
    """(calibration feeds, evaluation items) for one graph."""
    def mixtures(entries):
        pairs = [corpus.mixture(e) for e in entries]
        scaled = span_levels([m for m, _ in pairs])
        gains = [float(np.max(np.abs(s))) / max(float(np.max(np.abs(m))), 1e-9) for s, (m, _) in zip(scaled, pairs)]
        return [(s, (t * g).astype(np.float32)) for s, (_, t), g in zip(scaled, pairs, gains)]

    if contract.model == "tse_step":
        chunk = int(contract.chunk_samples or 0)
        calib_mix = mixtures(corpus.calib)
        chunks = sum(len(m) // chunk for m, _ in calib_mix)
        every = max(1, -(-chunks // config.max_feeds))
        with load_engine(path) as engine:
            calib = list(tse_step_feeds(engine, contract, [(m, embed(e)) for (m, _), e in zip(calib_mix, corpus.calib)], every))
        keep = int(config.eval_seconds * contract.sample_rate) // chunk * chunk
        items = [EvalItem({"audio": m[: min(keep, len(m) // chunk * chunk)], "spk_emb": embed(e)}, reference=t)
                 for (m, t), e in zip(mixtures(corpus.eval), corpus.eval)]
        return calib, items
    if contract.model == "ser":
        return _ser_feeds(contract, corpus, tokens, config)
    length = int(config.offline_seconds * contract.sample_rate)

    def offline(entries):
        if contract.model == "enroll":
            return [{"audio": s} for s in span_levels([corpus.audio(e) for e in entries])]
        return [{"audio": m, "spk_emb": embed(e)} for (m, _), e in zip(mixtures(entries), entries)]

    items = [EvalItem(f) for f in audio_feeds(offline(corpus.eval), length)]
    return list(audio_feeds(offline(corpus.calib), length)), items


def _ser_feeds(contract: ModelContract, corpus: _Corpus, tokens: Dict[str, np.ndarray], config: SourceConfig):
    """(calibration feeds, evaluation items) of an SER: each utterance in every one of :data:`SER_SCENES`
    (the items grouped by scene), with the scene's environment token, heard at the speaker's enrollment
    gain; an SER without a level reference hears the recordings' own levels, and its calibration feeds
    span levels up to full scale (it hears level: loud is a cue)."""
    labels, names = list(contract.labels), list(tokens)
    reference = (contract.extra or {}).get("level_reference_db")
    rng = np.random.default_rng([config.seed, 3])  # its own: the other graphs' data stay as without an SER

    def heard(entries):
        """(entry, scene, audio, token) of every entry in every scene."""
        out = []
        for entry in entries:
            gain = 1.0 if reference is None else enrollment_gain(corpus.enrollment(entry), contract.sample_rate,
                                                                 float(reference))
            for kind in SER_SCENES:
                audio, environment = corpus.scene(entry, kind, rng)
                name = environment if environment in tokens else names[
                    0 if environment is None else len(out) % len(names)]
                out.append((entry, kind, (audio * np.float32(gain)).astype(np.float32), tokens[name]))
        return out

    held_out, calibration = corpus.split(config.ser_eval_utterances)
    scenes = heard(calibration)
    speech = [a for _, _, a, _ in scenes]
    calib = ser_feeds(contract, zip(speech if reference is not None else span_levels(speech), [t for *_, t in scenes]))
    scenes = heard(held_out)
    items = []
    for (e, kind, _, _), feed in zip(scenes, ser_feeds(contract, [(a, t) for _, _, a, t in scenes])):
        avd = [e.arousal, e.valence, e.dominance]
        label = labels.index(e.emotion) if e.emotion in labels else -1
        items.append(EvalItem(feed, label=label, avd=np.asarray(avd, np.float64) if None not in avd else None,
                              group=kind))
    return list(calib), items
