"""The TensorRT double and emotrt's TensorRT code held against NVIDIA's real Python bindings.

devices/trt_api/<version>.json list what the published bindings wheels register
(scripts/trt_api_from_wheels.py; no network here). Versions the double emulates and the code
runs on map to the nearest published bindings (tests/trt_api.py ``api_file``): 8.5.2 and 8.6.2
to 8.6.1 (no other 8.x bindings are published), 10.0-10.12 to 10.3.0, later 10.x to 10.13.3,
11.x to 11.4.0.106 (JetPack 7.2.2 ships 11.4.1). Names only: signatures, semantics and
what a call does on a GPU remain for the Jetson (`emotrt selftest`).
"""
import enum
import re

import onnx
import pytest

from tests import trt_api, trt_double
from tests.runtime import graphs

VERSIONS = trt_api.DEVICE_VERSIONS
#: 8.5.2 is read from the 8.6.1 bindings; what 8.6 added is absent from 8.5 by NVIDIA's 8.6 release
#: notes (the double and trt_compat.features agree), which no published file can confirm
ONLY_IN_8_6 = {("8.5.2", "IBuilderConfig", "builder_optimization_level")}


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("trt_api") / "ser.onnx"
    onnx.save(graphs.ser(), str(path))
    return path


@pytest.fixture(scope="module")
def uses():
    found, unresolved = trt_api.code_uses()
    assert not unresolved, "getattr on TensorRT objects with a name the walk cannot resolve: {}".format(unresolved)
    return found


@pytest.mark.parametrize("stem", ["8.6.1", "10.3.0", "10.13.3", "11.4.0"])
def test_each_api_file_names_its_wheel(stem):
    api = trt_api.load_api(stem)
    assert api["tensorrt"] == stem and api["bindings_version"].startswith(stem)
    assert api["wheel"]["file"].endswith(".whl") and re.fullmatch(r"[0-9a-f]{64}", api["wheel"]["sha256"])
    assert api["wheel"]["requirement"].split("==")[1].startswith(stem)
    assert api["strings_check"]["not_in_so_strings"] == []  # introspection and the .so strings agree


def test_the_files_hold_the_differences_the_code_branches_on():
    """The issue's reading of the .so strings, confirmed by introspection."""
    assert not trt_api.has("11.4.1", "IBuilderConfig", "int8_calibrator")
    assert not trt_api.has("11.4.1", "NetworkDefinitionCreationFlag", "EXPLICIT_BATCH")
    assert not trt_api.has("11.4.1", "BuilderFlag", "OBEY_PRECISION_CONSTRAINTS")
    assert not trt_api.has("11.4.1", "BuilderFlag", "FP16") and trt_api.has("10.13.3", "BuilderFlag", "FP16")
    assert not trt_api.has("11.4.1", "ILayer", "precision") and trt_api.has("10.3.0", "ILayer", "precision")
    assert not trt_api.has("8.6.2", "NetworkDefinitionCreationFlag", "STRONGLY_TYPED")
    assert not trt_api.has("8.6.2", trt_api.MODULE, "IProgressMonitor") and trt_api.has("10.3.0", "", "IProgressMonitor")
    assert trt_api.has("8.6.2", "IExecutionContext", "execute_async_v3")
    assert not trt_api.has("10.3.0", "IExecutionContext", "execute_async_v2")  # binding-index API gone in 10


@pytest.mark.parametrize("version", VERSIONS)
def test_the_double_offers_only_names_the_real_bindings_have(version, onnx_path):
    offered = trt_api.double_names(trt_double.make_tensorrt(version), onnx_path)
    assert len(offered) > 60
    assert trt_api.missing(version, offered) == [], "the double offers names TensorRT {} lacks".format(version)


def test_where_the_code_branches_the_double_has_a_name_exactly_when_the_bindings_do(onnx_path, uses):
    """Every TensorRT name emotrt uses: present in the double for a version iff present in the real bindings."""
    wrong = []
    for version in VERSIONS:
        offered = set(trt_api.double_names(trt_double.make_tensorrt(version), onnx_path))
        for owner, name in sorted({(u.owner, u.name) for u in uses}):
            real = not trt_api.missing(version, [(owner, name)])
            if ((owner, name) in offered) != real and (version, owner, name) not in ONLY_IN_8_6:
                wrong.append("{} {}.{}: double {}, bindings {}".format(version, owner, name, not real, real))
    assert wrong == []


def test_the_walk_covers_every_file_that_holds_a_tensorrt_object():
    assert sorted(trt_api.files_using_tensorrt()) == sorted(trt_api.CODE_MODULES)


@pytest.mark.parametrize("version", VERSIONS)
def test_emotrt_uses_only_names_the_bindings_of_each_version_have(version, uses):
    """Builder, runtime backend and version module, each name on the version branches where it runs."""
    assert len(uses) > 80
    assert trt_api.code_missing(version, uses) == []


# ----------------------------------------------------------------------------- planted wrong names


def test_a_planted_name_in_the_double_fails(onnx_path):
    trt = trt_double.make_tensorrt("11.4.1")
    trt.BuilderFlag = enum.Enum("BuilderFlag", ["GPU_FALLBACK", "FP16"])  # gone in 11
    deserialize = trt.Runtime.deserialize_cuda_engine

    def with_binding_api(self, plan):
        engine = deserialize(self, plan)
        engine.get_binding_index = lambda name: 0  # removed in 10.0
        return engine

    trt.Runtime.deserialize_cuda_engine = with_binding_api
    assert trt_api.missing("11.4.1", trt_api.double_names(trt, onnx_path)) == [
        "BuilderFlag.FP16", "ICudaEngine.get_binding_index"]


def _labels(found, version):
    """What code_missing reports, without the line numbers (they move as the code is edited)."""
    return [m.split(" ")[0] for m in trt_api.code_missing(version, found)]


def _planted(path, old, new):
    source = (trt_api.ROOT / path).read_text()
    assert source.count(old) == 1
    return trt_api.code_uses(sources={path: source.replace(old, new)})


def test_a_misspelt_name_in_the_code_fails():
    found, _ = _planted("devices/trt_compat.py", "OBEY_PRECISION_CONSTRAINTS)", "OBEY_PRECISION_CONSTRAINT)")
    assert _labels(found, "8.6.2") == ["BuilderFlag.OBEY_PRECISION_CONSTRAINT"]


def test_a_name_outside_its_version_branch_fails():
    """int8_calibrator used without the ``f.calibrator`` guard: fine on 10.x, missing on 11."""
    found, _ = _planted("devices/trt_compat.py", "    if not f.calibrator:\n        raise", "    if False:\n        raise")
    assert trt_api.code_missing("10.3.0", found) == []
    assert _labels(found, "11.4.1") == [
        "IBuilderConfig.int8_calibrator", "IInt8EntropyCalibrator", "IInt8EntropyCalibrator.get_batch",
        "IInt8EntropyCalibrator.get_batch_size", "IInt8EntropyCalibrator.read_calibration_cache",
        "IInt8EntropyCalibrator.write_calibration_cache", "IInt8EntropyCalibrator2",
        "IInt8EntropyCalibrator2.get_batch", "IInt8EntropyCalibrator2.get_batch_size",
        "IInt8EntropyCalibrator2.read_calibration_cache", "IInt8EntropyCalibrator2.write_calibration_cache",
        "IInt8LegacyCalibrator", "IInt8LegacyCalibrator.get_batch", "IInt8LegacyCalibrator.get_batch_size",
        "IInt8LegacyCalibrator.read_calibration_cache", "IInt8LegacyCalibrator.write_calibration_cache",
        "IInt8MinMaxCalibrator", "IInt8MinMaxCalibrator.get_batch", "IInt8MinMaxCalibrator.get_batch_size",
        "IInt8MinMaxCalibrator.read_calibration_cache", "IInt8MinMaxCalibrator.write_calibration_cache"]


def test_a_removed_runtime_call_fails_only_where_it_was_removed():
    found, _ = _planted("runtime/backends/trt_inference.py", "context.execute_async_v3(", "context.execute_async_v2(")
    assert trt_api.code_missing("8.6.2", found) == []
    assert _labels(found, "10.3.0") == ["IExecutionContext.execute_async_v2"]


def test_a_misspelt_override_fails():
    """A subclass method TensorRT never calls (the real base has no such method) is a silent bug on a device."""
    found, _ = _planted("devices/trt_compat.py", "def step_complete(", "def step_completed(")
    assert _labels(found, "10.3.0") == ["IProgressMonitor.step_completed"]


def test_a_getattr_the_walk_cannot_resolve_is_reported():
    _, unresolved = _planted("devices/trt_compat.py", "getattr(trt, dtype)", "getattr(trt, dtype.lower())")
    assert [u.split(" ", 1)[1] for u in unresolved] == ["getattr(trt, dtype.lower())"]
