"""The one module that knows TensorRT versions: parsing, the floor, cache version codes, the import."""
import sys

import pytest

from emotrt.runtime import trt_version
from emotrt.runtime.errors import DependencyError
from emotrt.runtime.trt_version import (cache_header, check_supported, decode_version_code, has_calibrator, is_supported,
                                        normalise_version, parse_cache_header, parse_version, version_code)
from tests.trt_double import make_tensorrt


@pytest.mark.parametrize("code,version", [(8502, "8.5.2"), (8602, "8.6.2"), (100300, "10.3.0"), (101300, "10.13.0"), (110401, "11.4.1")])
def test_getinferlibversion_codes_decode_for_every_major(code, version):
    assert decode_version_code(code) == version
    assert version_code(version) == code  # the calibration cache header uses the same encoding


def test_versions_normalise():
    assert normalise_version("10.3.0.30") == "10.3.0"
    assert normalise_version("12.6", 2) == "12.6"
    assert normalise_version("8.5") == "8.5.0"
    assert normalise_version(None) is None
    assert parse_version("10.3.0.30") == (10, 3, 0)
    with pytest.raises(ValueError):
        parse_version("latest")


@pytest.mark.parametrize("version,ok", [("8.4.3.1", False), ("8.4", False), ("8.5", True), ("8.5.2.2", True),
                                        ("10.3.0", True), ("11.4.1", True)])
def test_the_floor_is_8_5(version, ok):
    assert is_supported(version) is ok
    if ok:
        assert check_supported(version) == normalise_version(version)
    else:
        with pytest.raises(DependencyError, match="TensorRT {} is too old: emotrt needs 8.5".format(version)):
            check_supported(version)


def test_implicit_int8_ends_with_10():
    assert has_calibrator("8.5.2") and has_calibrator("10.13.0") and not has_calibrator("11.0")


def test_cache_headers_round_trip():
    assert cache_header(8502, "EntropyCalibration2") == "TRT-8502-EntropyCalibration2"
    assert parse_cache_header("TRT-100300-MinMaxCalibration\n") == (100300, "MinMaxCalibration")
    assert parse_cache_header("TRT-100300-Unknown") is None and parse_cache_header("audio: 3c010204") is None


@pytest.mark.parametrize("version,ok", [("8.4.3.1", False), ("8.5.2.2", True), ("10.3.0", True)])
def test_import_applies_the_floor_to_the_installed_package(version, ok, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt(version))
    assert trt_version.installed_version() == normalise_version(version)
    if ok:
        assert trt_version.import_tensorrt().__version__ == version
    else:
        with pytest.raises(DependencyError, match="too old"):
            trt_version.import_tensorrt()


def test_a_missing_package_says_how_to_get_one(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert trt_version.installed_version() is None
    with pytest.raises(DependencyError, match="not importable") as exc:
        trt_version.import_tensorrt()
    assert "python3-libnvinfer" in exc.value.hint and "--backend onnxruntime" in exc.value.hint
