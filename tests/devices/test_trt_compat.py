"""Every TensorRT version difference, decided in one place."""
import pytest

from emotrt.devices.trt_compat import choose_recipe, features, rewrite_cache_header
from emotrt.runtime.errors import ConfigError

ALL = ("fp32", "fp16", "int8")


def test_features_per_version():
    f85, f86, f103, f114 = (features(v) for v in ("8.5.2", "8.6.2", "10.3.0.30", "11.4.1"))
    assert (f85.explicit_batch_flag, f85.strongly_typed, f85.progress_monitor, f85.opt_level) == (True, False, False, False)
    assert f86.opt_level and f86.build_only_flag == "--skipInference" and f85.build_only_flag == "--buildOnly"
    assert (f103.strongly_typed, f103.progress_monitor, f103.precision_flags, f103.calibrator, f103.qdq_preferred) == (True,) * 5
    assert (f114.precision_flags, f114.calibrator, f114.strongly_typed_always) == (False, False, True)
    assert (f85.calib_cache_code, f103.calib_cache_code, f114.calib_cache_code) == (8502, 100300, 110401)


def test_too_old_tensorrt_is_a_user_error():
    with pytest.raises(ConfigError, match="older than 8.5"):
        features("8.2.1")


@pytest.mark.parametrize("version,precision,expected", [
    ("8.5.2", "int8", ("fp32", False, ("int8", "fp16"), True)),     # implicit INT8 from the calibration cache
    ("8.6.2", "fp16", ("fp32", False, ("fp16",), False)),
    ("10.3.0", "int8", ("int8", True, (), False)),           # Q/DQ, strongly typed
    ("10.3.0", "fp16", ("fp16", True, (), False)),
    ("11.4.1", "int8", ("int8", True, (), False)),
    ("11.4.1", "fp16", ("fp16", True, (), False)),
    ("11.4.1", "fp32", ("fp32", True, (), False)),
    ("8.5.2", "fp32", ("fp32", False, (), False)),
])
def test_recipe_per_version(version, precision, expected):
    r = choose_recipe(version, precision, ALL, has_cache=True)
    assert (r.onnx_variant, r.strongly_typed, r.flags, r.calib_cache) == expected


def test_recipe_fallbacks_and_impossible_builds():
    assert choose_recipe("8.5.2", "int8", ("fp32", "int8"), has_cache=False).flags == ("int8", "fp16")
    assert choose_recipe("10.3.0", "fp16", ("fp32",), has_cache=False).flags == ("fp16",)
    with pytest.raises(ConfigError, match="INT8 on TensorRT 11.4.1 needs a Q/DQ graph;"):
        choose_recipe("11.4.1", "int8", ("fp32",), has_cache=True)
    with pytest.raises(ConfigError, match="FP16 on TensorRT 11.4.1 needs an FP16 graph"):
        choose_recipe("11.4.1", "fp16", ("fp32",), has_cache=False)
    with pytest.raises(ConfigError, match="unknown precision 'bf16'"):
        choose_recipe("10.3.0", "bf16", ALL, has_cache=False)


def test_calibration_cache_header_is_rewritten_for_the_device_version():
    cache = b"TRT-100300-EntropyCalibration2\naudio: 3c010204\n"
    assert rewrite_cache_header(cache, features("8.5.2")) == b"TRT-8502-EntropyCalibration2\naudio: 3c010204\n"
    with pytest.raises(ConfigError, match="not TRT-<version>-<Algorithm>"):
        rewrite_cache_header(b"garbage\n", features("10.3.0"))
