"""trtexec lines for TensorRT 8.5, 10.3 and 11, checked against NVIDIA's documented flags (see devices/trtexec.py)."""
import pytest

from emotrt.devices.trt_compat import choose_recipe
from emotrt.devices.trtexec import TrtexecSpec, trtexec_args, trtexec_line

ALL = ("fp32", "fp16", "int8")


def spec(version, precision, **kw):
    recipe = choose_recipe(version, precision, ALL, has_cache=True)
    onnx = {"fp32": "models/tse_step.onnx", "fp16": "models/tse_step.fp16.onnx", "int8": "models/tse_step.int8.onnx"}
    values = dict(onnx=onnx[recipe.onnx_variant], plan="engines/x/tse_step.plan", recipe=recipe, tensorrt=version,
                  workspace_mib=1024, dynamic_shapes={}, timing_cache="engines/x/timing.cache",
                  calib_cache="models/tse_step.calib.cache")
    values.update(kw)
    return TrtexecSpec(**values)


EXPECTED = {
    ("8.5.2", "int8"): "trtexec --onnx=models/tse_step.onnx --saveEngine=engines/x/tse_step.plan --memPoolSize=workspace:1024 "
                       "--int8 --fp16 --calib=models/tse_step.calib.cache --timingCacheFile=engines/x/timing.cache "
                       "--profilingVerbosity=detailed --buildOnly",
    ("8.5.2", "fp16"): "trtexec --onnx=models/tse_step.onnx --saveEngine=engines/x/tse_step.plan --memPoolSize=workspace:1024 "
                       "--fp16 --timingCacheFile=engines/x/timing.cache --profilingVerbosity=detailed --buildOnly",
    ("10.3.0", "int8"): "trtexec --onnx=models/tse_step.int8.onnx --saveEngine=engines/x/tse_step.plan "
                        "--memPoolSize=workspace:1024 --stronglyTyped --builderOptimizationLevel=3 "
                        "--timingCacheFile=engines/x/timing.cache --profilingVerbosity=detailed --skipInference",
    ("10.3.0", "fp16"): "trtexec --onnx=models/tse_step.fp16.onnx --saveEngine=engines/x/tse_step.plan "
                        "--memPoolSize=workspace:1024 --stronglyTyped --builderOptimizationLevel=3 "
                        "--timingCacheFile=engines/x/timing.cache --profilingVerbosity=detailed --skipInference",
    ("11.4.1", "int8"): "trtexec --onnx=models/tse_step.int8.onnx --saveEngine=engines/x/tse_step.plan "
                        "--memPoolSize=workspace:1024 --builderOptimizationLevel=3 "
                        "--timingCacheFile=engines/x/timing.cache --profilingVerbosity=detailed --skipInference",
    ("11.4.1", "fp32"): "trtexec --onnx=models/tse_step.onnx --saveEngine=engines/x/tse_step.plan "
                        "--memPoolSize=workspace:1024 --builderOptimizationLevel=3 "
                        "--timingCacheFile=engines/x/timing.cache --profilingVerbosity=detailed --skipInference",
}


@pytest.mark.parametrize("version,precision", sorted(EXPECTED))
def test_lines_per_version(version, precision):
    assert trtexec_line(spec(version, precision)) == EXPECTED[(version, precision)]


def test_tensorrt_11_lines_carry_no_removed_flag():
    for precision in ALL:
        args = trtexec_args(spec("11.4.1", precision))
        assert not {"--fp16", "--int8", "--stronglyTyped"} & set(args)
        assert not [a for a in args if a.startswith(("--calib", "--workspace"))]


def test_dynamic_inputs_get_shapes_and_dla_gets_gpu_fallback():
    args = trtexec_args(spec("10.3.0", "fp16", dynamic_shapes={"audio": (1, 48000)}, dla_core=1))
    assert "--shapes=audio:1x48000" in args
    assert args[args.index("--useDLACore=1") + 1] == "--allowGPUFallback"


def test_paths_with_spaces_are_quoted():
    assert "'--onnx=my models/a.onnx'" in trtexec_line(spec("10.3.0", "fp32", onnx="my models/a.onnx"))
