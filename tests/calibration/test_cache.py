import struct

import numpy as np
import pytest

from emotrt.calibration.cache import (
    CalibrationCache,
    CalibrationCacheError,
    amax_to_scale,
    hex_scale,
    scale_hex,
    version_code,
)


@pytest.mark.parametrize("version,code", [("8.5.2", 8502), ("8.6.1", 8601), ("8.6", 8600), ("10.3.0", 100300), ("10.13.2", 101302)])
def test_header_version_codes(version, code):
    assert version_code(version) == code


@pytest.mark.parametrize("bad", ["11.4.1", "8.4.3", "ten", "10", ""])
def test_unsupported_versions_are_refused(bad):
    with pytest.raises(CalibrationCacheError, match="between 8.5 and 10.x"):
        version_code(bad)


def test_scale_is_amax_over_127_as_big_endian_float32():
    scale = amax_to_scale(3.0)
    assert scale == np.float32(np.float32(3.0) / np.float32(127))
    assert scale_hex(scale) == struct.pack(">f", scale).hex()
    assert scale_hex(1.0) == "3f800000"


def test_reader_restores_dropped_leading_zeros():
    assert hex_scale("800000") == np.float32(struct.unpack(">f", bytes.fromhex("00800000"))[0])


def test_round_trip_is_bit_exact():
    rng = np.random.default_rng(0)
    amax = {"/blocks.0/pw/Conv_output_0": 0.5, "audio": 1.0, "state_in.dw0": 1e-30}
    amax.update({"t{}".format(i): float(v) for i, v in enumerate(rng.lognormal(0, 4, 200))})
    cache = CalibrationCache.from_amax(amax, "8.5.2")
    back = CalibrationCache.from_text(cache.to_text())
    assert back.version_code == 8502 and back.algorithm == "EntropyCalibration2"
    assert list(back.scales) == list(amax)
    for name, value in amax.items():
        expected = max(amax_to_scale(value), np.finfo(np.float32).tiny)
        assert back.scales[name].view(np.uint32) == np.float32(expected).view(np.uint32)
    assert back.to_text() == cache.to_text()


def test_file_round_trip_and_header(tmp_path):
    cache = CalibrationCache.from_amax({"x": 2.0}, "10.3", algorithm="MinMaxCalibration")
    path = cache.write(tmp_path / "m.calib.cache")
    assert path.read_text().splitlines() == ["TRT-100300-MinMaxCalibration", "x: " + scale_hex(np.float32(2.0) / np.float32(127))]
    assert CalibrationCache.read(path).scales == cache.scales


@pytest.mark.parametrize(
    "text,where",
    [("", "first line"), ("TRT-8502-Bogus\n", "first line"), ("TRT-8502-EntropyCalibration2\nx 3f800000\n", "line 2"),
     ("TRT-8502-EntropyCalibration2\nx: zz\n", "line 2")],
)
def test_malformed_caches_are_refused(text, where):
    with pytest.raises(CalibrationCacheError, match=where):
        CalibrationCache.from_text(text)
