"""Calibration feeds: realistic inputs for each graph, from any iterable, seeded and hashed.

A feed is one ``{input name: float32 array}`` dict of a graph. :class:`CalibrationSet`
materialises feeds from any iterable, checks they are many enough and of one shape
(ONNX Runtime's Entropy/Percentile calibrators need inputs of one length), and hashes
them; the hash goes into the bundle provenance. For ``tse_step`` the state inputs come
from streaming real audio through the FP32 graph (:func:`tse_step_feeds`), never zeros.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

import numpy as np

from emotrt.runtime.backends.base import Engine
from emotrt.runtime.contract import ModelContract
from emotrt.runtime.errors import CorpusError

Feed = Dict[str, np.ndarray]
MIN_FEEDS = 8


class CalibrationDataError(CorpusError):
    """The calibration data is empty, too small or inconsistent."""


def feeds_sha256(feeds: Sequence[Feed]) -> str:
    """sha256 over every feed's names, shapes, dtypes and bytes, in order."""
    digest = hashlib.sha256()
    for feed in feeds:
        for name in sorted(feed):
            array = np.ascontiguousarray(feed[name])
            digest.update("{}|{}|{};".format(name, array.shape, array.dtype.str).encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CalibrationSet:
    """Materialised calibration feeds of one graph and their hash.

    >>> import numpy as np
    >>> s = CalibrationSet.from_feeds([{"x": np.zeros((1, 4), np.float32)}] * 8, model="toy")
    >>> len(s.feeds), len(s.sha256)
    (8, 64)
    """

    model: str
    feeds: Tuple[Feed, ...]
    sha256: str

    @classmethod
    def from_feeds(cls, feeds: Iterable[Feed], model: str, min_feeds: int = MIN_FEEDS) -> "CalibrationSet":
        """Collect ``feeds``; refuse an empty, too small or ragged set with one clear error."""
        collected = [{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in f.items()} for f in feeds]
        if len(collected) < min_feeds:
            raise CalibrationDataError(
                "{}: calibration needs at least {} feeds, found {}".format(model, min_feeds, len(collected)),
                hint="pass a manifest with more utterances to `emotrt calibrate --data`",
            )
        first = {k: v.shape for k, v in collected[0].items()}
        for i, feed in enumerate(collected):
            shapes = {k: v.shape for k, v in feed.items()}
            if shapes != first:
                raise CalibrationDataError(
                    "{}: feed {} has shapes {}, feed 0 has {}; calibration inputs must be of one shape".format(
                        model, i, shapes, first
                    )
                )
        return cls(model, tuple(collected), feeds_sha256(collected))

    def reader(self) -> "FeedReader":
        """A fresh ``onnxruntime.quantization.CalibrationDataReader``-shaped iterator."""
        return FeedReader(self.feeds)


class FeedReader:
    """Duck-typed ORT ``CalibrationDataReader`` (``get_next``/``rewind``) over fixed feeds."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._feeds = list(feeds)
        self._next = 0

    def get_next(self):
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return len(self._feeds)


def span_levels(signals: Sequence[np.ndarray], low: float = 0.05, high: float = 0.99) -> List[np.ndarray]:
    """Scale signals so their peaks spread evenly from ``low`` to full scale.

    A set whose levels never reach full scale calibrates ranges too small for loud input
    (REFERENCE.md: 0.30 max error, 0.024 when the set spans up to full scale).
    """
    peaks = np.linspace(low, high, num=max(len(signals), 1))
    out = []
    for signal, peak in zip(signals, peaks):
        current = float(np.max(np.abs(signal))) or 1.0
        out.append((signal * (peak / current)).astype(np.float32))
    return out


def scale_to(target: np.ndarray, other: np.ndarray, ratio_db: float) -> np.ndarray:
    """``other`` cut or tiled to ``target``'s length, scaled to ``ratio_db`` below it (power ratio)."""
    other = np.resize(other, target.shape)
    power = float(np.mean(other ** 2)) or 1.0
    return other * np.sqrt(float(np.mean(target ** 2)) / (power * 10.0 ** (ratio_db / 10.0)))


def mix_at(target: np.ndarray, interferer: np.ndarray, noise: np.ndarray, sir_db: float, snr_db: float) -> np.ndarray:
    """target + interferer at ``sir_db`` + noise at ``snr_db`` (power ratios against the target)."""
    return (target + scale_to(target, interferer, sir_db) + scale_to(target, noise, snr_db)).astype(np.float32)


def fit_length(audio: np.ndarray, length: int, centred: bool = False) -> np.ndarray:
    """Crop or zero-pad a 1-D signal to ``length`` samples: its start, or with ``centred`` its middle
    (padded on both sides), as ``emotrt eval`` cuts the SER's window."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    start = max(0, (audio.shape[0] - length) // 2) if centred else 0
    audio = audio[start:start + length]
    before = (length - audio.shape[0]) // 2 if centred else 0
    return np.pad(audio, (before, length - audio.shape[0] - before))


def stream_tse_step(
    engine: Engine, contract: ModelContract, audio: np.ndarray, spk_emb: np.ndarray
) -> Iterator[Tuple[Feed, Dict[str, np.ndarray]]]:
    """Run ``audio`` chunk by chunk through a ``tse_step`` graph: yields (feed, outputs) per chunk."""
    chunk = int(contract.chunk_samples or 0)
    states = {s.input_name: np.full(s.shape, s.init, dtype=np.float32) for s in contract.states}
    emb = np.asarray(spk_emb, dtype=np.float32).reshape(1, -1)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    for start in range(0, audio.shape[0] - chunk + 1, chunk):
        feed = {"audio": audio[None, start:start + chunk], "spk_emb": emb}
        feed.update(states)
        outputs = engine.run(feed)
        yield feed, outputs
        states = {s.input_name: outputs[s.output_name] for s in contract.states}


def tse_step_feeds(
    engine: Engine, contract: ModelContract, items: Iterable[Tuple[np.ndarray, np.ndarray]], every: int = 1
) -> Iterator[Feed]:
    """Feeds of a ``tse_step`` graph whose states come from streaming each mixture through ``engine``.

    ``items`` are (mixture, speaker embedding) pairs; every ``every``-th chunk is kept.
    """
    for audio, spk_emb in items:
        for i, (feed, _) in enumerate(stream_tse_step(engine, contract, audio, spk_emb)):
            if i % every == 0:
                yield feed


def ser_feeds(contract: ModelContract, items: Iterable[Tuple[np.ndarray, np.ndarray]]) -> Iterator[Feed]:
    """Feeds of a ``ser`` graph from (speech, environment token) pairs, cut to the centred window."""
    window = int(contract.window_samples or 0)
    for audio, token in items:
        yield {
            "audio": fit_length(audio, window, centred=True)[None],
            "env_token": np.asarray(token, dtype=np.float32).reshape(1, -1),
        }


def audio_feeds(items: Iterable[Feed], length: int) -> Iterator[Feed]:
    """Feeds of graphs taking ``audio`` [1, T] (``enroll``, ``tse_offline``), cut to one length.

    Each item is a feed whose ``audio`` is any 1-D signal; other inputs pass through.
    """
    for item in items:
        feed = {k: np.asarray(v, dtype=np.float32) for k, v in item.items()}
        feed["audio"] = fit_length(feed["audio"], length)[None]
        yield feed
