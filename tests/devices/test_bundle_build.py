"""`emotrt build` as a library: bundles without TensorRT, engines with the TensorRT TEST DOUBLE, atomic failure."""
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from emotrt.devices.bundle_build import BuildOptions, build_bundle, build_device_engines
from emotrt.devices.bundle_writer import SCHEMA_FILE
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.errors import ConfigError, DependencyError
from emotrt.runtime.fingerprint import DeviceFingerprint
from emotrt.runtime.manifest import sha256_file
from tests.trt_double import make_tensorrt

HOST = DeviceFingerprint(cuda="13.0")  # like this machine: no TensorRT, no GPU, no L4T
ORIN_103 = DeviceFingerprint("10.3.0", "8.7", "36.4.3", "12.6", "NVIDIA Jetson Orin Nano Developer Kit")


def options(export_dir, calibration_dir, out, **kw):
    return BuildOptions(export_dir=export_dir, out=out, calibration_dir=calibration_dir, **kw)


def validate(bundle_dir):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    jsonschema.validate(manifest, json.loads(SCHEMA_FILE.read_text()))
    return manifest


def test_without_tensorrt_the_bundle_carries_onnx_and_exact_build_plans(tmp_path, export_dir, calibration_dir):
    summary = build_bundle(options(export_dir, calibration_dir, tmp_path / "b", tar=True), device=HOST)
    assert "no TensorRT" in summary.no_engines_reason and summary.engines_built == []
    manifest = validate(tmp_path / "b")
    assert manifest["engines"] == [] and manifest["targets"] == ["orin-nano-8gb"]
    plans = {(p["jetpack"], p["model"], p["precision"]): p["trtexec"] for p in manifest["build_plans"]}
    assert {jp for jp, _, _ in plans} == {"5.1", "6.0", "6.1", "6.2"}
    assert plans[("5.1", "tse_step", "int8")].startswith("trtexec --onnx=models/tse_step.onnx ")
    assert "--int8 --fp16 --calib=models/tse_step.trt-8502.calib.cache" in plans[("5.1", "tse_step", "int8")]
    header = (tmp_path / "b/models/tse_step.trt-8502.calib.cache").read_text().splitlines()[0]
    assert header == "TRT-8502-EntropyCalibration2"  # the device's trtexec reads only a matching header
    assert manifest["models"]["tse_step"]["calib_caches"] == {
        code: "models/tse_step.trt-{}.calib.cache".format(code) for code in ("8502", "8602", "100300")}
    assert "--onnx=models/tse_step.int8.onnx" in plans[("6.2", "tse_step", "int8")]
    assert "--shapes=audio:1x48000" in plans[("6.2", "enroll", "fp32")]
    assert ("6.2", "enroll", "int8") not in plans and summary.skipped_by_model()[0] == (
        "enroll/int8 on TensorRT 8.5.2, 8.6.2, 10.3.0: INT8 on TensorRT 8.5.2 needs a Q/DQ graph or a calibration cache; "
        "the bundle has neither")
    assert summary.build_plans == len(plans)
    assert manifest["provenance"]["tools"]["onnxruntime"] and manifest["provenance"]["calibration_set"] == "0" * 64
    with Bundle.open(summary.archive) as unpacked:
        assert unpacked.models == ["enroll", "ser", "tse_step"]


def test_require_engines_fails_before_writing_anything(tmp_path, export_dir, calibration_dir):
    with pytest.raises(DependencyError, match="--require-engines: cannot build TensorRT engines here"):
        build_bundle(options(export_dir, calibration_dir, tmp_path / "b", require_engines=True), device=HOST)
    assert list(tmp_path.iterdir()) == []


def test_with_tensorrt_engines_are_built_fingerprinted_and_found(tmp_path, export_dir, calibration_dir):
    trt = make_tensorrt("10.3.0")
    summary = build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=ORIN_103, trt=trt)
    assert sorted(summary.engines_built) == ["enroll/fp16", "enroll/fp32", "ser/fp16", "ser/fp32", "ser/int8",
                                             "tse_step/fp16", "tse_step/fp32", "tse_step/int8"]
    validate(tmp_path / "b")
    bundle = Bundle.open(tmp_path / "b")
    entry = bundle.engine_for("tse_step", "int8", ORIN_103)
    assert (bundle.root / entry.plan).read_bytes().startswith(b"DOUBLE-PLAN trt=10.3.0")
    assert (bundle.root / entry.plan).with_suffix(".build.log").is_file()
    assert entry.fingerprint.flags == ("strongly_typed",) and entry.fingerprint.l4t == "36.4.3"
    # on the device again: every plan is a cache hit, nothing is rebuilt
    built = len(trt.built)
    again = build_device_engines(tmp_path / "b", device=ORIN_103, trt=trt)
    assert len(trt.built) == built and sorted(again.engines_cached) == sorted(summary.engines_built)
    assert len(Bundle.open(tmp_path / "b").engines) == len(summary.engines_built)


def test_on_device_build_for_another_tensorrt_adds_engines_beside(tmp_path, export_dir, calibration_dir):
    build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=HOST)
    jp5 = DeviceFingerprint("8.5.2", "8.7", "35.5.0", "11.4", "Jetson Orin Nano")
    summary = build_device_engines(tmp_path / "b", device=jp5, trt=make_tensorrt("8.5.2"), precisions=("int8",))
    assert sorted(summary.engines_built) == ["ser/int8", "tse_step/int8"]
    entry = Bundle.open(tmp_path / "b").engine_for("ser", "int8", jp5)
    assert entry.onnx == "models/ser.onnx" and "int8" in entry.fingerprint.flags  # implicit INT8 from the cache


def test_a_failing_build_leaves_nothing_behind(tmp_path, export_dir, calibration_dir):
    trt = make_tensorrt("10.3.0")
    trt.Builder.build_serialized_network = lambda self, network, config: None
    with pytest.raises(Exception, match="failed to build"):
        build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=ORIN_103, trt=trt)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path, export_dir, calibration_dir):
    build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=HOST)
    with pytest.raises(Exception, match="already exists"):
        build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=HOST)
    build_bundle(options(export_dir, None, tmp_path / "b", force=True), device=HOST)
    assert Bundle.open(tmp_path / "b").precisions("ser") == ["fp32"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_bad_options_name_their_fields(tmp_path, export_dir):
    with pytest.raises(ConfigError, match="precisions \\['bf16'\\] must be"):
        BuildOptions(export_dir, tmp_path / "b", precisions=("bf16",))
    with pytest.raises(ConfigError, match="--dla-core 0: orin-nano-8gb has 0 DLA core"):
        BuildOptions(export_dir, tmp_path / "b", dla_core=0)
    with pytest.raises(ConfigError, match="unknown device 'tx2'"):
        BuildOptions(export_dir, tmp_path / "b", targets=("tx2",))


def test_tensorrt_11_builds_strongly_typed_from_the_graphs_and_skips_what_it_cannot(tmp_path, export_dir, calibration_dir):
    thor = DeviceFingerprint("11.4.1", "11.0", "39.0.0", "13.0", "NVIDIA Jetson AGX Thor Developer Kit")
    trt = make_tensorrt("11.4.1")
    summary = build_bundle(options(export_dir, calibration_dir, tmp_path / "b", targets=("thor",)), device=thor, trt=trt)
    assert "enroll/fp16" not in summary.engines_built and "tse_step/fp16" in summary.engines_built
    assert any(s.startswith("enroll/fp16 on TensorRT 11.4.1: FP16 on TensorRT 11.4.1 needs an FP16 graph")
               for s in summary.skipped_by_model())
    assert not [c for c in trt.calls if c[0] in ("set_flag", "int8_calibrator")]
    bundle = Bundle.open(tmp_path / "b")
    assert bundle.engine_for("ser", "int8", thor).onnx == "models/ser.int8.onnx"
    lines = [p.trtexec for p in bundle.manifest.build_plans if p.tensorrt == "11.4.1"]
    assert lines and not [line for line in lines if "--int8" in line or "--fp16" in line or "--stronglyTyped" in line]


def test_weakly_typed_fp16_keeps_the_precision_plans_fp32_nodes(tmp_path, export_dir, calibration_dir):
    from tests.fixtures.tiny_graphs import FP32_NODES

    build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=HOST)
    jp6 = DeviceFingerprint("8.6.2", "8.7", "36.3.0", "12.2", "Jetson Orin Nano")
    trt = make_tensorrt("8.6.2")
    build_device_engines(tmp_path / "b", device=jp6, trt=trt, precisions=("fp16",))
    pinned = [c[1] for c in trt.calls if c[0] == "layer.precision"]
    assert sorted(pinned) == sorted((FP32_NODES[m], "float32") for m in ("ser", "tse_step"))
    assert ("set_flag", "OBEY_PRECISION_CONSTRAINTS") in trt.calls
    log = (tmp_path / "b" / Bundle.open(tmp_path / "b").engine_for("ser", "fp16", jp6).plan).with_suffix(".build.log")
    assert "FP32 layers from the precision plan: " + FP32_NODES["ser"] in log.read_text()
    trt10 = make_tensorrt("10.3.0")  # strongly typed FP16 graph: types come from the graph, nothing pinned
    build_device_engines(tmp_path / "b", device=ORIN_103, trt=trt10, precisions=("fp16",))
    assert not [c for c in trt10.calls if c[0] == "layer.precision"]


def test_cache_based_int8_keeps_the_plans_kept_blocks_out_of_int8(tmp_path, export_dir, calibration_dir):
    from tests.fixtures.tiny_graphs import FP32_NODES, KEPT_NODES

    build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=HOST)
    jp6 = DeviceFingerprint("8.6.2", "8.7", "36.3.0", "12.2", "Jetson Orin Nano")
    trt = make_tensorrt("8.6.2")  # weakly typed: calibration cache + BuilderFlag.INT8 on the FP32 graph
    build_device_engines(tmp_path / "b", device=jp6, trt=trt, precisions=("int8",))
    pinned = [c[1] for c in trt.calls if c[0] == "layer.precision"]
    # the INT8 cache build also sets FP16, so kept blocks run FP16; the FP32 nodes are pinned after them
    assert sorted(pinned) == sorted([(KEPT_NODES[m], "float16") for m in ("ser", "tse_step")]
                                    + [(FP32_NODES[m], "float32") for m in ("ser", "tse_step")])
    assert ("set_flag", "OBEY_PRECISION_CONSTRAINTS") in trt.calls and ("set_flag", "INT8") in trt.calls
    log = (tmp_path / "b" / Bundle.open(tmp_path / "b").engine_for("ser", "int8", jp6).plan).with_suffix(".build.log")
    assert "layers kept out of INT8 by the precision plan, as float16: " + KEPT_NODES["ser"] in log.read_text()
    trt10 = make_tensorrt("10.3.0")  # Q/DQ graph: placement already encodes the kept blocks, nothing pinned
    build_device_engines(tmp_path / "b", device=ORIN_103, trt=trt10, precisions=("int8",))
    assert not [c for c in trt10.calls if c[0] == "layer.precision"]


def test_a_failing_on_device_build_keeps_the_bundle_verifiable(tmp_path, export_dir, calibration_dir):
    build_bundle(options(export_dir, calibration_dir, tmp_path / "b"), device=HOST)
    trt = make_tensorrt("10.3.0")
    real = trt.Builder.build_serialized_network

    def fail_on_ser(self, network, config):
        if any(network.get_input(i).name == "env_token" for i in range(network.num_inputs)):
            return None
        return real(self, network, config)

    trt.Builder.build_serialized_network = fail_on_ser
    with pytest.raises(Exception, match="failed to build"):
        build_device_engines(tmp_path / "b", device=ORIN_103, trt=trt)
    bundle = Bundle.open(tmp_path / "b")  # verifies: finished plans and the failed log are listed
    assert sorted(e.model for e in bundle.engines) == ["enroll", "enroll"]  # built before ser failed
    assert any(rel.endswith("ser.build.log") for rel in bundle.manifest.files)
    assert not [rel for rel in bundle.manifest.files if rel.endswith("ser.plan")]


@pytest.mark.slow
def test_a_real_export_builds_and_selftests(tmp_path, toy_export):
    """The export stage's own output (tests/export/fixtures.py) through `emotrt build` and `emotrt selftest`."""
    import numpy as np

    from emotrt.devices.selftest import run_selftest
    from emotrt.runtime.tables import VectorTable

    export = Path(shutil.copytree(str(toy_export[0]), str(tmp_path / "models")))
    shutil.rmtree(str(export / "env"))  # export writes env/ (the SER's "none" token); test a directory without one
    with pytest.raises(Exception, match="no environment table") as err:
        build_bundle(options(export, None, tmp_path / "b"), device=HOST)
    assert "emotrt env import" in err.value.hint and not (tmp_path / "b").exists()
    from emotrt.devices.bundle_writer import collect_models

    d_model = collect_models(export)["ser"].contract.d_model
    VectorTable(export / "env", kind="environment", dim=d_model).add("busy_cafe", np.ones(d_model), descriptions=["a cafe"])
    build_bundle(options(export, None, tmp_path / "b"), device=HOST)
    validate(tmp_path / "b")
    bundle = Bundle.open(tmp_path / "b")
    assert {"tse_step", "ser", "enroll"} <= set(bundle.models)
    report = run_selftest(bundle, device=HOST)
    assert report.passed, report.rows
    assert {r.model for r in report.rows if r.status == "pass"} >= {"tse_step", "ser", "enroll"}


def test_on_device_build_from_a_tar_unpacks_beside_it(tmp_path, export_dir, calibration_dir):
    summary = build_bundle(options(export_dir, calibration_dir, tmp_path / "b", tar=True), device=HOST)
    shutil.rmtree(str(tmp_path / "b"))
    built = build_device_engines(summary.archive, device=ORIN_103, trt=make_tensorrt("10.3.0"), precisions=("fp32",))
    assert built.bundle == tmp_path / "b" and sorted(built.engines_built) == ["enroll/fp32", "ser/fp32", "tse_step/fp32"]
    assert len(Bundle.open(tmp_path / "b").engines) == 3


def _with_layernorm(export_dir, calibration_dir, out):
    """Copies of the tiny export, whose tse_step ends in a LayerNormalization (opset 17, as `emotrt export --trt 10.3`),
    and of its calibration, whose tse_step plan then records that graph."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    out = Path(out)
    shutil.copytree(str(export_dir), str(out / "export"))
    model = onnx.load(str(out / "export/tse_step.onnx"))
    producer = next(n for n in model.graph.node if "audio_out" in n.output)
    producer.output[list(producer.output).index("audio_out")] = "pre_norm"
    width = model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    model.graph.initializer.append(numpy_helper.from_array(np.ones(width, np.float32), "norm_scale"))
    model.graph.node.append(helper.make_node("LayerNormalization", ["pre_norm", "norm_scale"], ["audio_out"], name="norm"))
    onnx.save(model, str(out / "export/tse_step.onnx"))
    calibration = Path(shutil.copytree(str(calibration_dir), str(out / "calibration")))
    plan = json.loads((calibration / "tse_step.precision.json").read_text())
    plan["onnx_sha256"] = sha256_file(out / "export/tse_step.onnx")
    (calibration / "tse_step.precision.json").write_text(json.dumps(plan))
    return out / "export", calibration


def test_no_plan_the_lint_fails_for_its_release_is_carried(tmp_path, export_dir, calibration_dir):
    from emotrt.export.lint import plan_check

    source, calibration = _with_layernorm(export_dir, calibration_dir, tmp_path)
    summary = build_bundle(options(source, calibration, tmp_path / "b", graph_check=plan_check), device=HOST)
    manifest = validate(tmp_path / "b")
    planned = {(p["tensorrt"], p["model"]) for p in manifest["build_plans"]}
    assert ("8.5.2", "tse_step") not in planned and ("8.6.2", "tse_step") in planned and ("8.5.2", "ser") in planned
    for plan in manifest["build_plans"]:  # every plan left is one `emotrt lint --trt <its release>` passes
        onnx = next(t.split("=", 1)[1] for t in plan["trtexec"].split() if t.startswith("--onnx="))
        assert plan_check(tmp_path / "b" / onnx, plan["tensorrt"]) == (), plan["trtexec"]
    # the JetPack 5 cache only the dropped INT8 plan would read is not shipped
    assert "8502" not in manifest["models"]["tse_step"]["calib_caches"] and "8502" in manifest["models"]["ser"]["calib_caches"]
    assert not (tmp_path / "b/models/tse_step.trt-8502.calib.cache").exists()
    [warning] = summary.lint_warnings()
    assert warning.startswith("TensorRT 8.5.2: dropped 3 plan(s) (tse_step/fp32, tse_step/fp16, tse_step/int8): "
                              "models/tse_step.onnx fails `emotrt lint --trt 8.5.2`")
    assert "emotrt export --trt 8.5" in warning
    assert not any(line.startswith("tse_step/fp32") for line in summary.skipped_by_model())


def test_a_target_left_with_no_plan_the_lint_passes_is_refused(tmp_path, export_dir, calibration_dir):
    def jp5_fails(path, tensorrt):
        return ["unsupported-op: ln (LayerNormalization)"] if tensorrt.startswith("8.5") else []

    with pytest.raises(ConfigError, match=r"no build for xavier-nx passes the TensorRT lint .*8\.5\.2") as info:
        build_bundle(options(export_dir, calibration_dir, tmp_path / "b", targets=("xavier-nx",), graph_check=jp5_fails),
                     device=HOST)
    assert "emotrt export --trt 8.5" in info.value.hint and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("recorded", ["ab" * 32, None])
def test_a_calibration_made_from_another_graph_is_refused_before_writing(tmp_path, export_dir, calibration_dir, recorded):
    from emotrt.runtime.errors import BundleError

    calibration = Path(shutil.copytree(str(calibration_dir), str(tmp_path / "calibration")))
    plan = json.loads((calibration / "ser.precision.json").read_text())
    plan["onnx_sha256"] = recorded
    (calibration / "ser.precision.json").write_text(json.dumps(plan))
    expected = "was made from a ser.onnx with sha256 abababababab" if recorded else "records no source graph sha256"
    with pytest.raises(BundleError, match=expected) as info:
        build_bundle(options(export_dir, calibration, tmp_path / "b"), device=HOST)
    assert "emotrt calibrate {} -o {} --force".format(export_dir, calibration) in info.value.hint
    assert not (tmp_path / "b").exists()


def test_on_a_jetpack_5_device_the_builds_the_bundle_dropped_are_not_tried(tmp_path, export_dir, calibration_dir):
    from emotrt.export.lint import plan_check

    source, calibration = _with_layernorm(export_dir, calibration_dir, tmp_path)
    build_bundle(options(source, calibration, tmp_path / "b", graph_check=plan_check), device=HOST)
    jp5 = DeviceFingerprint("8.5.2", "8.7", "35.5.0", "11.4", "Jetson Orin Nano")
    trt = make_tensorrt("8.5.2")
    summary = build_device_engines(tmp_path / "b", device=jp5, trt=trt)
    assert not [e for e in summary.engines_built if e.startswith("tse_step/")]
    assert "ser/fp32" in summary.engines_built and "enroll/fp32" in summary.engines_built
    [warning] = summary.lint_warnings()
    assert "the bundle plans no TensorRT 8.5.2 build of models/tse_step.onnx" in warning
