"""Voice activity gating: silero's ONNX model when the bundle ships one, else an energy gate.

Both take the extracted speech hop by hop and answer "is the target talking now?", with a
hangover so SER is not toggled off inside short pauses.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from emotrt.runtime.errors import ConfigError

log = logging.getLogger(__name__)

# silero-vad v5 reads 512-sample frames at 16 kHz (256 at 8 kHz) preceded by 64 (32) samples
# of context, with a [2, 1, 128] recurrent state (see silero_vad/utils_vad.py, OnnxWrapper).
_SILERO_FRAME = {16000: 512, 8000: 256}
_SILERO_CONTEXT = {16000: 64, 8000: 32}
_SILERO_IO = {"audio": "input", "state_in.state": "state", "probability": "output", "state_out.state": "stateN"}


@dataclass(frozen=True)
class VadConfig:
    """Gate settings: energy threshold (dBFS), silero probability threshold, hangover seconds.

    ``use_model=False`` ignores the bundle's VAD graph and uses the energy gate.
    """

    energy_threshold_db: float = -45.0
    silero_threshold: float = 0.5
    hangover_s: float = 0.3
    use_model: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not -120.0 <= self.energy_threshold_db <= 0.0:
            problems.append("energy_threshold_db={} must be in [-120, 0]".format(self.energy_threshold_db))
        if not 0.0 < self.silero_threshold < 1.0:
            problems.append("silero_threshold={} must be in (0, 1)".format(self.silero_threshold))
        if self.hangover_s < 0:
            problems.append("hangover_s={} must be >= 0".format(self.hangover_s))
        if problems:
            raise ConfigError("invalid VadConfig: " + "; ".join(problems))


class _Gate:
    """Shared hangover logic: speech stays on ``hangover`` samples after the last voiced frame."""

    kind = "gate"
    probability = 0.0

    def __init__(self, sample_rate: int, config: VadConfig) -> None:
        self.sample_rate = sample_rate
        self.config = config
        self._hangover = int(round(config.hangover_s * sample_rate))
        self._since_voiced = self._hangover + 1

    @property
    def speech(self) -> bool:
        return self._since_voiced <= self._hangover

    def _mark(self, voiced: bool, n: int) -> None:
        self._since_voiced = 0 if voiced else self._since_voiced + n


class EnergyGate(_Gate):
    """Speech when a hop's RMS level exceeds ``energy_threshold_db`` dBFS."""

    kind = "energy"

    def __init__(self, sample_rate: int, config: VadConfig) -> None:
        super().__init__(sample_rate, config)
        self._threshold_power = 10.0 ** (config.energy_threshold_db / 10.0)
        self._power = 0.0

    def update(self, samples: np.ndarray) -> bool:
        """Feed one hop of audio; return the speech state after it (compared in power: no log per hop)."""
        n = samples.shape[0]
        self._power = float(np.dot(samples, samples)) / n if n else 0.0
        self._since_voiced = 0 if self._power > self._threshold_power else self._since_voiced + n  # _mark, inlined
        return self._since_voiced <= self._hangover

    @property
    def probability(self) -> float:  # type: ignore[override]
        """Logistic in the last hop's level above the threshold (3 dB scale); computed when read."""
        level = 10.0 * math.log10(self._power) if self._power > 0 else -200.0
        return 1.0 / (1.0 + math.exp(-(level - self.config.energy_threshold_db) / 3.0))


class SileroVad(_Gate):
    """silero-vad v5 ONNX through any engine; I/O names from the contract's ``extra.io`` (else silero's own).

    Both wheel variants work: ``silero_vad_openvino_16k.onnx`` (fixed [1, 576] input, what bundles
    ship because TensorRT takes it) and ``silero_vad.onnx`` (extra ``sr`` input).
    """

    kind = "silero"

    def __init__(self, engine: Any, sample_rate: int, config: VadConfig) -> None:
        super().__init__(sample_rate, config)
        if sample_rate not in _SILERO_FRAME:
            raise ConfigError("silero VAD runs at 8000 or 16000 Hz, the pipeline runs at {}".format(sample_rate))
        extra = engine.contract.extra if engine.contract is not None else {}
        io = dict(_SILERO_IO, **extra.get("io", {}))
        self._audio, self._state_in = io["audio"], io["state_in.state"]
        self._probability, self._state_out = io["probability"], io["state_out.state"]
        self.engine = engine
        self._frame = _SILERO_FRAME[sample_rate]
        self._context = int(extra.get("context_samples", _SILERO_CONTEXT[sample_rate]))
        self._buffer = np.zeros(self._context, dtype=np.float32)
        self._feed = {self._state_in: np.zeros((2, 1, 128), dtype=np.float32)}
        if any(spec.name == "sr" for spec in engine.inputs):
            self._feed["sr"] = np.array(sample_rate, dtype=np.int64)

    def update(self, samples: np.ndarray) -> bool:
        """Feed one hop; every complete frame (512 samples at 16 kHz) updates the probability."""
        self._buffer = np.concatenate((self._buffer, samples.astype(np.float32, copy=False)))
        while self._buffer.shape[0] >= self._context + self._frame:
            self._feed[self._audio] = self._buffer[None, : self._context + self._frame]
            out = self.engine._run(self._feed)
            self._feed[self._state_in] = out[self._state_out]
            self.probability = float(out[self._probability].reshape(-1)[0])
            self._mark(self.probability > self.config.silero_threshold, self._frame)
            self._buffer = self._buffer[self._frame:]
        return self.speech


def make_vad(sample_rate: int, config: Optional[VadConfig] = None, engine: Any = None) -> Any:
    """Silero when an engine is given and the rate allows it, else the energy gate."""
    config = config or VadConfig()
    if engine is not None and config.use_model:
        if sample_rate in _SILERO_FRAME:
            return SileroVad(engine, sample_rate, config)
        log.warning("silero VAD needs 8 or 16 kHz, pipeline runs at %d Hz: using the energy gate", sample_rate)
    return EnergyGate(sample_rate, config)
