"""The builder against the recording TensorRT TEST DOUBLE (tests/devices/trt_double.py), per major version.

These prove the calls follow each version's documented API; they are not a
TensorRT build. The real check is `emotrt selftest` on a Jetson.
"""
import pytest

from emotrt.devices.builder import BuildConfig, EngineBuildError, EngineJob, build_engine
from emotrt.devices.trt_compat import choose_recipe
from emotrt.runtime.errors import ConfigError
from tests.devices.trt_double import DoubleError, make_tensorrt
from tests.fixtures.tiny_graphs import CHUNK, SPK_DIM

VERSIONS = ("8.5.2", "8.6.2", "10.3.0", "11.4.1")
SHAPES = {"audio": (1, CHUNK), "spk_emb": (1, SPK_DIM), "state_in.tail": (1, CHUNK)}


def job(export_dir, calibration_dir, version, precision):
    recipe = choose_recipe(version, precision, ("fp32", "fp16", "int8"), has_cache=True)
    onnx = export_dir / "tse_step.onnx" if recipe.onnx_variant == "fp32" else \
        calibration_dir / "tse_step.{}.onnx".format(recipe.onnx_variant)
    return EngineJob("tse_step", precision, onnx, recipe, SHAPES, calib_cache=calibration_dir / "tse_step.calib.cache")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_follows_the_documented_sequence(tmp_path, export_dir, calibration_dir, version, precision):
    trt = make_tensorrt(version)
    steps = []
    report = build_engine(job(export_dir, calibration_dir, version, precision), BuildConfig(version, workspace_mib=1024),
                          tmp_path / "tse_step.plan", timing_cache=tmp_path / "timing.cache", trt=trt,
                          progress=lambda phase, step, total: steps.append(step))
    calls = dict(trt.calls)
    assert report.plan.read_bytes().startswith(b"DOUBLE-PLAN trt=" + version.encode())
    assert calls["set_memory_pool_limit"] == ("WORKSPACE", 1024 << 20)
    assert calls["profiling_verbosity"] == "DETAILED"
    assert [c for c in trt.calls if c[0] == "set_shape"][0][1] == ("audio", (1, CHUNK), (1, CHUNK), (1, CHUNK))
    assert (tmp_path / "timing.cache").read_bytes().startswith(b"TIMING-" + version.encode())
    assert (tmp_path / "tse_step.trtexec.txt").read_text().startswith("trtexec --onnx=")
    log = report.log.read_text()
    assert "double: engine built" in log and report.trtexec in log
    major = int(version.split(".")[0])
    assert ("builder_optimization_level" in calls) == (version != "8.5.2")
    assert bool(steps) == (major >= 10)  # IProgressMonitor from 10.0
    if major >= 11:
        assert "set_flag" not in calls and "int8_calibrator" not in calls
    if version == "8.5.2" and precision == "int8":
        assert calls["int8_calibrator"] == "IInt8EntropyCalibrator2" and calls["set_flag"] == "INT8"


def test_dla_with_gpu_fallback(tmp_path, export_dir, calibration_dir):
    trt = make_tensorrt("10.3.0")
    build_engine(job(export_dir, calibration_dir, "10.3.0", "fp16"), BuildConfig("10.3.0", 1024, dla_core=1),
                 tmp_path / "p.plan", trt=trt)
    assert ("default_device_type", "DLA") in trt.calls and ("DLA_core", 1) in trt.calls
    assert ("set_flag", "GPU_FALLBACK") in trt.calls


def test_a_failed_build_leaves_no_plan(tmp_path, export_dir, calibration_dir):
    trt = make_tensorrt("10.3.0")
    trt.Builder.build_serialized_network = lambda self, network, config: None
    with pytest.raises(EngineBuildError, match="failed to build"):
        build_engine(job(export_dir, calibration_dir, "10.3.0", "fp32"), BuildConfig("10.3.0", 1024), tmp_path / "p.plan", trt=trt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.build.log", "p.trtexec.txt"]


def test_the_double_rejects_what_real_tensorrt_rejects(tmp_path, export_dir, calibration_dir):
    """The double is only useful if it fails: precision flags on a strongly typed 10.x network."""
    from emotrt.devices.trt_compat import BuildRecipe

    bad = EngineJob("tse_step", "fp16", calibration_dir / "tse_step.fp16.onnx", BuildRecipe("fp16", "fp16", True, ("fp16",), False), SHAPES)
    with pytest.raises(DoubleError, match="precision flags"):
        build_engine(bad, BuildConfig("10.3.0", 1024), tmp_path / "p.plan", trt=make_tensorrt("10.3.0"))
    with pytest.raises(AttributeError):
        make_tensorrt("11.4.1").BuilderFlag.INT8


def test_invalid_jobs_and_configs_name_their_fields(export_dir):
    recipe = choose_recipe("10.3.0", "fp32", ("fp32",), has_cache=False)
    with pytest.raises(ConfigError, match="shapes of audio must be positive and fixed"):
        EngineJob("tse_step", "fp32", export_dir / "tse_step.onnx", recipe, {"audio": (1, -1)})
    with pytest.raises(ConfigError, match="workspace_mib=0 must be positive; opt_level=9"):
        BuildConfig("10.3.0", 0, opt_level=9)
