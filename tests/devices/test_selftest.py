"""The self-test: every model and precision on ONNX Runtime against the FP32 references."""
import numpy as np
import pytest

from emotrt.devices.selftest import check_outputs, load_testvector, run_selftest
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.errors import BundleError
from emotrt.runtime.fingerprint import DeviceFingerprint

HOST = DeviceFingerprint()


def test_every_model_and_precision_passes_on_onnxruntime(session_bundle):
    report = run_selftest(Bundle.open(session_bundle), device=HOST)
    ran = [(r.model, r.precision) for r in report.rows if r.backend == "onnxruntime"]
    assert sorted(ran) == [("enroll", "fp32"), ("ser", "fp16"), ("ser", "fp32"), ("ser", "int8"),
                           ("tse_step", "fp16"), ("tse_step", "fp32"), ("tse_step", "int8")]
    assert report.passed and report.verdict.startswith("PASS: 7 passed, 0 failed")
    int8 = next(r for r in report.rows if r.model == "ser" and r.precision == "int8")
    assert 0 < int8.max_abs_error < int8.limit  # quantisation error is real and measured
    assert [r.status for r in report.rows if r.backend == "tensorrt"] == ["skip"]  # one row saying why


def test_a_wrong_reference_fails_the_verdict(bundle_copy):
    vectors = dict(np.load(str(bundle_copy / "testvectors/ser.npz")))
    vectors["output.logits"] = vectors["output.logits"] + 1.0
    np.savez(str(bundle_copy / "testvectors/ser.npz"), **vectors)
    report = run_selftest(Bundle.open(bundle_copy, verify=False), device=HOST)
    failed = [r for r in report.rows if r.status == "fail"]
    assert {r.model for r in failed} == {"ser"} and "logits max error" in failed[0].detail
    assert not report.passed and "3 failed" in report.verdict


def test_unknown_backend_is_a_user_error(session_bundle):
    from emotrt.runtime.errors import BackendError

    with pytest.raises(BackendError, match="unknown backend\\(s\\) tvm"):
        run_selftest(Bundle.open(session_bundle), backends=["tvm"], device=HOST)


def test_compare_reports_shape_and_missing_outputs():
    ref = {"a": np.zeros((1, 3)), "b": np.ones((1, 2))}
    problems = [c.problem for c in check_outputs({"a": np.zeros((1, 4))}, ref, 1e-4, 1e-4)]
    assert problems == ["a shape (1, 4) != (1, 3)", "missing output b"]


def test_missing_test_vectors_are_a_bundle_error_and_a_skipped_row(bundle_copy):
    (bundle_copy / "testvectors/enroll.npz").unlink()
    bundle = Bundle.open(bundle_copy, verify=False)
    with pytest.raises(BundleError, match="no test vectors for enroll"):
        load_testvector(bundle, "enroll")
    row = next(r for r in run_selftest(bundle, device=HOST).rows if r.model == "enroll")
    assert row.status == "skip" and "no test vectors for enroll" in row.detail


def test_exports_recorded_fp32_tolerance_widens_the_limit(bundle_copy):
    import json

    from emotrt.devices.selftest import tolerance

    assert tolerance(Bundle.open(bundle_copy), "ser", "fp32") == (1e-4, 1e-4)
    (bundle_copy / "testvectors/index.json").write_text(json.dumps({"ser": {"fp32_atol": 5e-3}}))
    bundle = Bundle.open(bundle_copy, verify=False)
    assert tolerance(bundle, "ser", "fp32") == (5e-3, 1e-4) and tolerance(bundle, "ser", "int8") == (6e-2, 6e-2)


def test_tensorrt_rows_never_run_a_foreign_plan_or_a_misfitting_vector(tmp_path, export_dir, calibration_dir):
    """Plans come from the TensorRT TEST DOUBLE; these rows stop before loading anything."""
    from emotrt.devices.bundle_build import BuildOptions, build_bundle
    from emotrt.devices.selftest import tensorrt_row
    from tests.trt_double import make_tensorrt

    orin = DeviceFingerprint("10.3.0", "8.7", "36.4.3", "12.6", "Jetson Orin Nano")
    build_bundle(BuildOptions(export_dir, tmp_path / "b", calibration_dir), device=orin, trt=make_tensorrt("10.3.0"))
    bundle = Bundle.open(tmp_path / "b")
    feed, ref = load_testvector(bundle, "enroll")
    row = tensorrt_row(bundle, "enroll", "fp32", orin, feed, ref)
    assert row.status == "skip" and "audio (1, 48000) (plan) vs (1, 200) (test vector)" in row.detail
    xavier = DeviceFingerprint("8.5.2", "7.2", "35.5.0", "11.4", "Jetson Xavier NX")
    row = tensorrt_row(bundle, "ser", "fp32", xavier, *load_testvector(bundle, "ser"))
    assert row.status == "fail" and "tensorrt is '10.3.0' in the plan but '8.5.2' here" in row.detail


def test_a_calibration_for_another_graph_fails_whatever_its_build_figures(bundle_copy):
    import json

    from emotrt.devices.bundle_writer import update_manifest

    plan_path = bundle_copy / "models/tse_step.precision.json"
    plan = json.loads(plan_path.read_text())
    plan["onnx_sha256"] = "ab" * 32  # as a bundle made before emotrt build checked provenance
    plan_path.write_text(json.dumps(plan))
    update_manifest(bundle_copy, [])
    report = run_selftest(Bundle.open(bundle_copy), backends=["onnxruntime"], device=HOST)
    rows = {(r.model, r.precision): r for r in report.rows}
    assert not report.passed and rows[("tse_step", "fp32")].status == "pass"
    for precision in ("fp16", "int8"):
        assert rows[("tse_step", precision)].status == "fail"
        assert "calibrated from a graph with sha256 abababababab..., not models/tse_step.onnx" in rows[("tse_step", precision)].detail
    assert rows[("ser", "int8")].status == "pass"
