"""The builder against the recording TensorRT TEST DOUBLE (tests/trt_double.py), per major version.

These prove the calls follow each version's documented API; they are not a
TensorRT build. The real check is `emotrt selftest` on a Jetson.
"""
import pytest

from emotrt.devices.engine_build import BuildConfig, EngineBuildError, EngineJob, build_engine
from emotrt.devices.trt_compat import choose_recipe
from emotrt.runtime.errors import ConfigError
from tests.trt_double import DoubleError, make_tensorrt
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
        flags = [c[1] for c in trt.calls if c[0] == "set_flag"]
        assert calls["int8_calibrator"] == "IInt8EntropyCalibrator2" and {"INT8", "FP16"} <= set(flags)


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


def test_kept_blocks_are_fp16_when_the_cache_build_enables_fp16(tmp_path, export_dir, calibration_dir):
    from emotrt.devices.trt_compat import BuildRecipe

    recipe = BuildRecipe("int8", "fp32", False, ("int8", "fp16"), True)
    mixed = EngineJob("tse_step", "int8", export_dir / "tse_step.onnx", recipe, SHAPES,
                      calib_cache=calibration_dir / "tse_step.calib.cache", fp32_layers=("Sigmoid_2",),
                      kept_layers=("MatMul_1", "Sigmoid_2"))
    trt = make_tensorrt("8.6.2")
    build_engine(mixed, BuildConfig("8.6.2", 1024), tmp_path / "p.plan", trt=trt)
    pinned = [c[1] for c in trt.calls if c[0] == "layer.precision"]
    assert pinned == [("MatMul_1", "float16"), ("Sigmoid_2", "float16"), ("Sigmoid_2", "float32")]  # FP32 wins
    assert {"INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS"} <= {c[1] for c in trt.calls if c[0] == "set_flag"}


def test_kept_blocks_on_a_qdq_recipe_are_a_config_error(calibration_dir):
    recipe = choose_recipe("10.3.0", "int8", ("fp32", "int8"), has_cache=True)
    with pytest.raises(ConfigError, match="kept_layers apply only to calibration-cache INT8 builds"):
        EngineJob("tse_step", "int8", calibration_dir / "tse_step.int8.onnx", recipe, SHAPES, kept_layers=("MatMul_1",))
