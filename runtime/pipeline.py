"""The shared half of the streaming runtime: engines, tables and settings (DESIGN.md §3)."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple, Union

import numpy as np

from emotrt.runtime.backends.base import Engine
from emotrt.runtime.errors import ConfigError, ModelContractError
from emotrt.runtime.gate import TSE_MODES, TseGate, engine_embedder, resolve_mode, thresholds_from_contract
from emotrt.runtime.level import reference_gain
from emotrt.runtime.tables import VectorTable
from emotrt.runtime.vad import VadConfig, make_vad

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """Run-time settings: SER cadence (default half a window), posterior smoothing, VAD, queue size.

    ``ser_async`` runs SER on one worker thread so ``accept_waveform`` returns after TSE; its
    results then appear in ``results()`` once their window is scored (same values, same order).
    ``match_level`` scales each extracted SER window to the target's level in the mixture
    (:func:`~emotrt.runtime.results.match_level`, as ``emotrt eval`` does); turn it off only for
    an extractor trained to keep the target's scale.
    ``tse`` chooses what the SER hears: ``on`` the extraction, ``off`` the mixture, ``gated`` the
    do-no-harm gate's choice per window (:mod:`emotrt.runtime.gate`; needs the bundle's enroll
    graph and gate thresholds), ``auto`` gated when the bundle has both, else on.
    """

    ser_hop_s: Optional[float] = None
    ser_async: bool = False
    smoothing: float = 0.5
    vad: VadConfig = field(default_factory=VadConfig)
    max_pending_results: int = 1000
    match_level: bool = True
    threads: int = 1
    tse: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if self.ser_hop_s is not None and self.ser_hop_s <= 0:
            problems.append("ser_hop_s={} must be positive".format(self.ser_hop_s))
        if not 0.0 <= self.smoothing < 1.0:
            problems.append("smoothing={} must be in [0, 1)".format(self.smoothing))
        if self.max_pending_results < 1:
            problems.append("max_pending_results={} must be >= 1".format(self.max_pending_results))
        if self.threads < 1:
            problems.append("threads={} must be >= 1".format(self.threads))
        if self.tse not in TSE_MODES:
            problems.append("tse={!r} must be one of {}".format(self.tse, ", ".join(TSE_MODES)))
        if problems:
            raise ConfigError("invalid PipelineConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class Layout:
    """Sample geometry shared by every stream: TSE hop, SER window, SER hop and the first window end."""

    sample_rate: int
    chunk: int
    window: int
    ser_hop: int
    first_end: int
    labels: Tuple[str, ...]

    def window_ends(self, total: int) -> range:
        """Model-rate sample positions where a window ends, for ``total`` processed samples."""
        return range(self.first_end, total + 1, self.ser_hop)


def _enroll_loader(bundle: Any, threads: int) -> Any:
    """Load the bundle's enroll graph on first use (ONNX Runtime: it runs a few times per SER window)."""

    def load() -> Any:
        from emotrt.runtime.backends import load_engine

        return load_engine(bundle.model_path("enroll", "fp32"), threads=threads)

    return load


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def make_layout(tse: Engine, ser: Engine, config: PipelineConfig) -> Layout:
    """Check the two contracts agree and derive the stream geometry from them."""
    for engine, kind in ((tse, "tse_step"), (ser, "ser")):
        if engine.contract is None or engine.contract.model != kind:
            found = engine.contract.model if engine.contract else "no contract"
            raise ModelContractError(
                "{} should be a {} graph, found {}".format(engine.name, kind, found),
                hint="rebuild the bundle with `emotrt build`",
            )
    t, s = tse.contract, ser.contract
    if t.sample_rate != s.sample_rate:
        raise ModelContractError(
            "tse_step runs at {} Hz but ser at {} Hz".format(t.sample_rate, s.sample_rate),
            hint="export both from checkpoints trained at one sample rate",
        )
    chunk = int(t.chunk_samples)
    window = int(s.window_samples)
    hop = window // 2 if config.ser_hop_s is None else int(round(config.ser_hop_s * t.sample_rate))
    labels = s.labels or tuple("class{}".format(i) for i in range(int(ser.outputs[0].shape[-1])))
    return Layout(t.sample_rate, chunk, window, _round_up(max(hop, 1), chunk), _round_up(window, chunk), labels)


class Pipeline:
    """Engines (tse_step, ser; optional VAD and tse_offline) and the environment/speaker tables, shared by streams.

    Build with :meth:`from_bundle`, or directly from loaded engines and tables; ``tse_offline`` may
    be a loaded engine or a function that loads it when :attr:`tse_offline` is first used. One second of
    48 kHz audio through a bundle (``bundle_dir``):

    >>> import numpy as np
    >>> from emotrt.runtime import Pipeline
    >>> pipeline = Pipeline.from_bundle(bundle_dir, backend="auto")
    >>> pipeline.backend in ("tensorrt", "onnxruntime")
    True
    >>> stream = pipeline.create_stream(speaker="alice", environment="busy_cafe")
    >>> t = np.arange(48000) / 48000.0
    >>> stream.accept_waveform(48000, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    >>> results = list(stream.results())
    >>> results[0].speech, results[0].emotion in pipeline.labels, results[-1].end <= 1.0
    (True, True, True)
    >>> stream.set_environment("car_highway")
    >>> stream.speaker, stream.environment
    ('alice', 'car_highway')
    >>> pipeline.close()
    """

    def __init__(
        self,
        tse: Engine,
        ser: Engine,
        environments: VectorTable,
        speakers: VectorTable,
        vad: Any = None,
        tse_offline: Any = None,
        config: Optional[PipelineConfig] = None,
        backend: str = "onnxruntime",
        backend_reason: str = "",
        bundle: Any = None,
        enroll: Any = None,
    ) -> None:
        self.config = config or PipelineConfig()
        self.tse, self.ser, self.vad = tse, ser, vad
        self._tse_offline = tse_offline
        if enroll is None and bundle is not None and "enroll" in getattr(bundle, "models", {}):
            enroll = _enroll_loader(bundle, self.config.threads)
        self._enroll = enroll
        self.gate_thresholds = thresholds_from_contract(tse.contract)
        self.tse_mode = resolve_mode(self.config.tse, self.gate_thresholds if enroll is not None else None)
        if self.config.tse == "auto" and self.gate_thresholds is not None and enroll is None:
            log.warning("the bundle has gate thresholds but no enroll graph: the TSE runs ungated")
        self.layout = make_layout(tse, ser, self.config)
        self.environments = environments
        self.speakers = speakers
        self.backend = backend
        self.backend_reason = backend_reason
        self.bundle = bundle
        self._check_widths()
        self.ser_executor = ThreadPoolExecutor(1, thread_name_prefix="emotrt-ser") if self.config.ser_async else None

    @classmethod
    def from_bundle(cls, path: Any, backend: str = "auto", config: Optional[PipelineConfig] = None,
                    verify: Union[bool, str] = True) -> "Pipeline":
        """Open a verified bundle and load its engines with ``backend`` (auto, tensorrt or onnxruntime).

        ``verify="cached"`` re-hashes only bundle files changed since they last verified (see :meth:`Bundle.open`).
        """
        from emotrt.runtime.loading import load_bundle_parts

        return load_bundle_parts(cls, path, backend, config or PipelineConfig(), verify)

    @property
    def tse_offline(self) -> Any:
        """The whole-signal TSE engine, loaded on first use; None when there is none."""
        if callable(self._tse_offline):
            self._tse_offline = self._tse_offline()
        return self._tse_offline

    @property
    def enroll(self) -> Any:
        """The enroll engine (the gate's speaker embedder), loaded on first use; None when there is none."""
        if callable(self._enroll) and not hasattr(self._enroll, "run"):
            self._enroll = self._enroll()
        return self._enroll

    def make_gate(self, speaker: str, copy: bool = False) -> TseGate:
        """A per-stream :class:`~emotrt.runtime.gate.TseGate` for ``speaker`` under ``config.tse``."""
        gated = self.tse_mode == "gated"
        return TseGate(self.tse_mode, self.gate_thresholds, engine_embedder(self.enroll) if gated else None,
                       self.speaker_embedding(speaker) if gated else None,
                       match=self.config.match_level, copy=copy,
                       level_gain=self.speaker_level_gain(speaker))

    @property
    def tse_latency(self) -> int:
        """Samples the TSE's output lags its input (``latency_samples`` in the ``tse_step`` contract)."""
        return int((self.tse.contract.extra or {}).get("latency_samples", 0)) if self.tse.contract else 0

    @property
    def labels(self) -> Tuple[str, ...]:
        return self.layout.labels

    @property
    def sample_rate(self) -> int:
        return self.layout.sample_rate

    def create_stream(self, speaker: str, environment: str) -> Any:
        """A new stream for one enrolled ``speaker`` in one ``environment`` (both by name)."""
        from emotrt.runtime.stream import Stream

        return Stream(self, speaker, environment)

    def speaker_embedding(self, name: str) -> np.ndarray:
        """The enrolled embedding of ``name``; unknown names get the list of enrolled ones."""
        if name not in self.speakers:
            raise ConfigError(
                "unknown speaker {!r} (enrolled: {})".format(name, ", ".join(self.speakers.names()) or "none"),
                hint="emotrt enroll {} AUDIO (or --mic)".format(name),
            )
        return self.speakers.get(name)

    def speaker_level_gain(self, name: str) -> float:
        """The gain the SER hears ``name`` at: 1, unless the SER's contract names a reference level
        (``level_reference_db``): then the gain that brings the speaker's enrollment speech there
        (:mod:`emotrt.runtime.level`), so the microphone's gain cancels."""
        reference = (self.ser.contract.extra or {}).get("level_reference_db") if self.ser.contract else None
        if reference is None:
            return 1.0
        self.speaker_embedding(name)  # unknown names: the list of enrolled ones
        level = self.speakers.info(name).get("speech_level_db")
        if level is None:
            raise ConfigError(
                "speaker {!r} was enrolled without a speech level; this bundle's SER hears each speaker "
                "relative to their enrollment level".format(name),
                hint="enroll again with this emotrt: emotrt enroll {} AUDIO --replace --model BUNDLE/models/enroll.onnx "
                     "--store BUNDLE/speakers".format(name),
            )
        return reference_gain(float(level), float(reference))

    def environment_token(self, name: str) -> np.ndarray:
        """The precomputed token of environment ``name``; unknown names get the known list."""
        if name not in self.environments:
            raise ConfigError(
                "unknown environment {!r} (known: {})".format(name, ", ".join(self.environments.names()) or "none"),
                hint="pick one of the known environments or add it with `emotrt env add` on the workstation",
            )
        return self.environments.get(name)

    def make_resampler(self) -> Any:
        """A fresh per-stream resampler to the model rate (a hook: the profiler times it)."""
        from emotrt.runtime.resample import Resampler

        return Resampler(self.sample_rate)

    def make_vad(self) -> Any:
        """A fresh per-stream VAD: silero when the bundle ships it, else the energy gate."""
        return make_vad(self.sample_rate, self.config.vad, self.vad)

    def _check_widths(self) -> None:
        spk_dim, d_model = self.tse.contract.spk_dim, self.ser.contract.d_model
        for table, width, what in ((self.speakers, spk_dim, "spk_dim"), (self.environments, d_model, "d_model")):
            if width is not None and table.dim != width:
                raise ConfigError(
                    "{} table {} holds {}-d vectors, the model's {} is {}".format(
                        table.kind, table.root, table.dim, what, width),
                    hint="re-enroll speakers / rebuild the environment table for this model",
                )
            table.check()  # every vector finite and of that width, at load: a bad file is named now, not mid-stream

    def close(self) -> None:
        """Finish pending SER and release every engine."""
        if self.ser_executor is not None:
            self.ser_executor.shutdown(wait=True)
        for engine in (self.tse, self.ser, self.vad, self._tse_offline, self._enroll):
            if engine is not None and not callable(engine):
                engine.close()
        if self.bundle is not None:
            self.bundle.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
