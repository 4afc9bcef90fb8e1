"""TensorRT INT8 calibration caches (implicit quantization, TensorRT 8.5-10.x; REFERENCE.md).

Plain text: a header ``TRT-<version>-<Algo>`` then ``<ONNX tensor name>: <hex>`` per tensor,
hex being the big-endian IEEE-754 float32 bit pattern of scale = amax / 127. The version code
and the header are :mod:`emotrt.runtime.trt_version`'s (``version_code``, ``cache_header``).
TensorRT 11 has no implicit INT8: it reads the Q/DQ graph instead, so no cache targets it.
Writing then reading a cache returns the same float32 bits.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping

import numpy as np

from emotrt.runtime import trt_version
from emotrt.runtime.atomic import atomic_write
from emotrt.runtime.errors import ConfigError

ALGORITHMS = tuple(trt_version.CACHE_CALIBRATORS)
# trtexec --calib=<cache> reads through its own IInt8EntropyCalibrator2, so that header is the default.
DEFAULT_ALGORITHM = "EntropyCalibration2"
# JetPack 5.1 (8.5.2), 6.0 (8.6.2), 6.1/6.2 (10.3.0).
DEFAULT_TARGETS = ("8.5.2", "8.6.2", "10.3.0")


class CalibrationCacheError(ConfigError):
    """A TensorRT calibration cache or its target version is malformed."""


def version_code(version: str) -> int:
    """The number in the cache header of a target TensorRT (``major.minor[.patch]``, 8.5 to 10.x):
    8.5.2 -> 8502, 10.3.0 -> 100300."""
    written = version.strip()
    if not re.match(r"^\d+\.\d+(\.\d+)?$", written) or not (
            trt_version.is_supported(written) and trt_version.has_calibrator(written)):
        raise CalibrationCacheError(
            "TensorRT version {!r}: expected major.minor[.patch] between 8.5 and 10.x".format(version),
            hint="pass e.g. --trt 8.5.2 --trt 10.3.0 (TensorRT 11 reads the Q/DQ graph, not a cache)",
        )
    return trt_version.version_code(written)


def scale_hex(scale: float) -> str:
    """Big-endian float32 hex of ``scale`` (8 digits)."""
    return struct.pack(">f", float(np.float32(scale))).hex()


def hex_scale(text: str) -> np.float32:
    """Inverse of :func:`scale_hex`; tolerates writers that drop leading zeros."""
    return np.float32(struct.unpack(">f", bytes.fromhex(text.strip().zfill(8)))[0])


def amax_to_scale(amax: float) -> np.float32:
    """Symmetric INT8 scale: amax / 127 in float32."""
    return np.float32(np.float32(amax) / np.float32(127.0))


@dataclass(frozen=True)
class CalibrationCache:
    """One cache: header fields and float32 scales by ONNX tensor name (in file order)."""

    version_code: int
    algorithm: str
    scales: Mapping[str, np.float32]

    @classmethod
    def from_amax(
        cls, amax: Mapping[str, float], version: str, algorithm: str = DEFAULT_ALGORITHM
    ) -> "CalibrationCache":
        """Scales from per-tensor absolute maxima; zero ranges get the smallest normal scale."""
        if algorithm not in ALGORITHMS:
            raise CalibrationCacheError(
                "calibration algorithm {!r}: expected one of {}".format(algorithm, ", ".join(ALGORITHMS))
            )
        tiny = np.finfo(np.float32).tiny
        scales = {name: max(amax_to_scale(value), np.float32(tiny)) for name, value in amax.items()}
        return cls(version_code(version), algorithm, scales)

    def to_text(self) -> str:
        """The cache file's contents."""
        lines = [trt_version.cache_header(self.version_code, self.algorithm)]
        lines += ["{}: {}".format(name, scale_hex(scale)) for name, scale in self.scales.items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, source: str = "cache") -> "CalibrationCache":
        """Parse a cache; any malformed line is an error naming it."""
        lines = [line for line in text.splitlines() if line.strip()]
        head = trt_version.parse_cache_header(lines[0]) if lines else None
        if head is None:
            raise CalibrationCacheError(
                "{}: first line should be TRT-<version>-<algorithm>, found {!r}".format(
                    source, lines[0] if lines else ""
                )
            )
        scales: Dict[str, np.float32] = {}
        for number, line in enumerate(lines[1:], start=2):
            name, sep, value = line.rpartition(": ")
            try:
                scales[name] = hex_scale(value)
            except (ValueError, struct.error):  # not hex, or more than 8 hex digits (found by the fuzz test)
                sep = ""
            if not sep or not name:
                raise CalibrationCacheError("{} line {}: expected '<tensor>: <hex>', found {!r}".format(source, number, line))
        return cls(head[0], head[1], scales)

    def write(self, path: Path) -> Path:
        """Write atomically (temp file, rename)."""
        atomic_write(Path(path), self.to_text().encode())
        return Path(path)

    @classmethod
    def read(cls, path: Path) -> "CalibrationCache":
        """Read a cache file."""
        return cls.from_text(Path(path).read_text(), source=str(path))
