"""Calibration jobs from an export folder and corpus utterances (what ``emotrt calibrate`` runs).

Utterances are records shaped like ``emotrt.training.corpus.Utterance`` (``file``, ``speaker``,
``emotion``, ``arousal``/``valence``/``dominance``); the CLI reads them with the corpus's
``load_manifest`` and passes them in, since calibration imports no other stage. They are
shuffled with the seed and split into a calibration part and a held-out evaluation part. TSE inputs are mixtures of a target with another speaker and an
environment noise over the deployment SIR/SNR range, at levels spanning up to full scale;
speaker embeddings come from the export's ``enroll`` graph on another utterance of the same
speaker; environment tokens from the export's ``env/`` table. Noise comes from the given noise
utterances (the corpus's ``manifests/noise.jsonl``), otherwise it is synthesised (seeded).
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotrt.calibration.data import (
    CalibrationDataError, CalibrationSet, audio_feeds, mix_at, ser_feeds, span_levels, tse_step_feeds,
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


class _Corpus:
    def __init__(self, utterances: Sequence[Any], noises: Sequence[Any], sample_rate: int, config: SourceConfig) -> None:
        self.rng = np.random.default_rng(config.seed)
        entries = [utterances[i] for i in self.rng.permutation(len(utterances))]
        n_eval = min(config.eval_utterances, len(entries) // 2)
        self.eval, self.calib = entries[:n_eval], entries[n_eval:n_eval + config.calib_utterances]
        self.all = entries
        self.sample_rate, self.config = sample_rate, config
        self._loaded: Dict[str, np.ndarray] = {}
        self.noises = [self.audio(n) for n in noises] or self._synthetic_noises()

    def _synthetic_noises(self) -> List[np.ndarray]:
        log.warning("no noise clips given: using synthesised noise")
        white = self.rng.standard_normal((4, self.sample_rate * 2))
        return [np.cumsum(w) * 0.02 + w for w in white]

    def audio(self, entry: Any) -> np.ndarray:
        """The entry's audio, read on first use (a large manifest is mostly never read)."""
        path = str(entry.file)
        if path not in self._loaded:
            self._loaded[path] = load_audio(path, self.sample_rate)
        return self._loaded[path]

    def mixture(self, entry: Any) -> Tuple[np.ndarray, np.ndarray]:
        """(mixture, clean target) with another speaker and a noise at random SIR/SNR."""
        target = self.audio(entry)
        others = [e for e in self.all if e.speaker != entry.speaker] or self.all
        interferer = self.audio(others[self.rng.integers(len(others))])
        noise = self.noises[self.rng.integers(len(self.noises))]
        sir, snr = self.rng.uniform(*self.config.sir_db), self.rng.uniform(*self.config.snr_db)
        return mix_at(target, interferer, noise, sir, snr), target

    def enrollment(self, entry: Any) -> np.ndarray:
        same = [e for e in self.all if e.speaker == entry.speaker and e.file != entry.file]
        return self.audio((same or [entry])[0])


def build_jobs(
    export_dir: Path, utterances: Sequence[Any], noises: Sequence[Any] = (), config: SourceConfig = SourceConfig(),
    env_dir: Optional[Path] = None, source: str = "the calibration data",
) -> List[ModelJob]:
    """One :class:`ModelJob` per supported graph in ``export_dir``, fed from ``utterances``.

    Environment tokens come from ``env_dir`` (default ``export_dir/env``, as ``emotrt build``);
    ``source`` names the data in errors (the manifest path).
    """
    models = find_models(export_dir)
    check_audio(list(utterances) + list(noises), source)
    if len(utterances) < 4:
        raise CalibrationDataError(
            "{} has {} utterances; calibration needs at least 4 (half are held out for the report)".format(
                source, len(utterances)),
            hint="pass a larger manifest to --data",
        )
    corpus = _Corpus(utterances, noises, min(c.sample_rate for _, _, c in models), config)
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


def _tokens(env: Path, models, config: SourceConfig) -> List[np.ndarray]:
    """Every token of the table, those for clean speech first."""
    widths = [c.d_model for _, _, c in models if c.model == "ser"]
    if not widths:
        return []
    if (env / "index.json").is_file():
        table = VectorTable(env, kind="environment", dim=widths[0])
        names = [n for n in CLEAN_ENVIRONMENTS if n in table] + [n for n in table.names() if n not in CLEAN_ENVIRONMENTS]
        return [table.get(n) for n in names]
    log.warning("no environment table at %s: environment tokens are seeded random vectors", env)
    rng = np.random.default_rng(config.seed + 2)
    return [rng.standard_normal(widths[0]).astype(np.float32) for _ in range(4)]


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
        labels = list(contract.labels)

        def pairs(entries):
            speech = span_levels([corpus.audio(e) for e in entries])
            return [(s, tokens[i % len(tokens)]) for i, s in enumerate(speech)]

        reference = (contract.extra or {}).get("level_reference_db")

        def heard(entry):  # an SER with a level reference hears each speaker at their enrollment's gain
            audio = corpus.audio(entry)
            if reference is None:
                return audio
            gain = enrollment_gain(corpus.enrollment(entry), contract.sample_rate, float(reference))
            return (audio * np.float32(gain)).astype(np.float32)

        # accuracy is scored at the recordings' own levels (the SER hears level: loud is a cue)
        # with the clean-speech token; only the calibration feeds span levels and environments
        natural = [(heard(e), tokens[0]) for e in corpus.eval]
        items = []
        for e, feed in zip(corpus.eval, ser_feeds(contract, natural)):
            avd = [e.arousal, e.valence, e.dominance]
            label = labels.index(e.emotion) if e.emotion in labels else -1
            items.append(EvalItem(feed, label=label, avd=np.asarray(avd, np.float64) if None not in avd else None))
        return list(ser_feeds(contract, pairs(corpus.calib))), items
    length = int(config.offline_seconds * contract.sample_rate)

    def offline(entries):
        if contract.model == "enroll":
            return [{"audio": s} for s in span_levels([corpus.audio(e) for e in entries])]
        return [{"audio": m, "spk_emb": embed(e)} for (m, _), e in zip(mixtures(entries), entries)]

    items = [EvalItem(f) for f in audio_feeds(offline(corpus.eval), length)]
    return list(audio_feeds(offline(corpus.calib), length)), items
