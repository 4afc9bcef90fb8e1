"""Build-time FP16/INT8 deviations (testvectors/expected.json) and the self-test rows held to them."""
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from emotrt.devices.bundle_build import BuildOptions, build_bundle
from emotrt.devices.bundle_writer import update_manifest
from emotrt.devices.expected import MIN_AUDIO_SNR_DB, SNR_CAP_DB, limits, read_expected, snr_db
from emotrt.devices.selftest import TOLERANCES, check_outputs, run_selftest
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.errors import BundleError
from emotrt.runtime.fingerprint import DeviceFingerprint

HOST = DeviceFingerprint()


@pytest.fixture(scope="module")
def built(tmp_path_factory, export_dir, calibration_dir):
    """A bundle written by `emotrt build` (so with expected.json); tests must not modify it."""
    out = tmp_path_factory.mktemp("expected") / "bundle"
    build_bundle(BuildOptions(export_dir, out, calibration_dir), device=HOST)
    return out


@pytest.fixture
def built_copy(tmp_path, built):
    return Path(shutil.copytree(str(built), str(tmp_path / "bundle")))


def test_build_records_every_reduced_precision_output(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert "testvectors/expected.json" in manifest["files"]  # hashed: a tampered file fails verification
    figures = read_expected(built / "testvectors")
    assert sorted(figures) == ["ser", "tse_step"]  # enroll has no FP16/INT8 graph
    assert sorted(figures["tse_step"]) == ["fp16", "int8"]
    assert sorted(figures["tse_step"]["int8"]) == ["audio_out", "state_out.tail"]
    audio = figures["tse_step"]["int8"]["audio_out"]
    assert 0 < audio["max_abs_error"] < 0.1 and 20 < audio["snr_db"] < SNR_CAP_DB
    assert figures["tse_step"]["fp16"]["audio_out"]["snr_db"] > audio["snr_db"]  # FP16 costs less than INT8
    assert "snr_db" not in figures["ser"]["int8"]["logits"] and figures["ser"]["int8"]["logits"]["max_abs_error"] > 0


def test_the_honest_bundle_passes_with_the_build_figures_beside_the_measured_ones(built):
    report = run_selftest(Bundle.open(built), backends=["onnxruntime"], device=HOST)
    assert report.passed, report.rows
    row = next(r for r in report.rows if (r.model, r.precision) == ("tse_step", "int8"))
    recorded = read_expected(built / "testvectors")["tse_step"]["int8"]["audio_out"]
    assert row.snr_db == pytest.approx(recorded["snr_db"]) and row.expected_snr_db == recorded["snr_db"]
    assert row.expected is not None and row.max_abs_error <= row.limit
    fp32 = next(r for r in report.rows if (r.model, r.precision) == ("tse_step", "fp32"))
    assert fp32.expected is None and fp32.limit < 2e-4  # FP32 keeps the strict rule


def test_a_perturbed_int8_graph_fails_though_the_fixed_table_would_pass_it(built_copy):
    path = built_copy / "models/tse_step.int8.onnx"
    model = onnx.load(str(path))
    scale = next(i for i in model.graph.initializer if i.name == "w_mix.scale")
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(1.05), scale.name))
    onnx.save(model, str(path))
    update_manifest(built_copy, [])  # rehash, as if the graph had been built this way
    report = run_selftest(Bundle.open(built_copy), backends=["onnxruntime"], device=HOST)
    row = next(r for r in report.rows if (r.model, r.precision) == ("tse_step", "int8"))
    assert row.status == "fail" and "audio_out SNR" in row.detail and not report.passed
    atol, rtol = TOLERANCES["int8"]
    assert row.max_abs_error < atol + rtol * 0.5  # the old fixed rule (max|ref| > 0.5) let this through


def test_limits_follow_the_measured_figures():
    assert limits(0.06, {"max_abs_error": 1.39, "snr_db": 22.0}) == (pytest.approx(4.17), 16.0)
    assert limits(0.06, {"max_abs_error": 0.001}) == (0.06, None)


def test_no_build_figure_widens_the_limits_past_the_ceiling():
    # figures measured against a calibration for another graph: huge error, negative SNR
    assert limits(0.06, {"max_abs_error": 100.0, "snr_db": -3.0}, ceiling=1.2) == (1.2, MIN_AUDIO_SNR_DB)
    assert limits(0.06, {"max_abs_error": 0.01, "snr_db": 40.0}, ceiling=1.2) == (0.06, 34.0)


def test_snr_is_capped_for_identical_outputs_and_undefined_for_silence():
    ref = np.linspace(-1, 1, 64)
    assert snr_db(ref, ref) == SNR_CAP_DB and snr_db(ref, np.zeros(64)) is None
    assert snr_db(ref + 0.1 * ref, ref) == pytest.approx(20.0)


def test_an_audio_output_below_its_snr_floor_fails_even_within_the_error_limit():
    ref = {"audio_out": np.linspace(-1, 1, 64)[None]}
    noisy = {"audio_out": ref["audio_out"] * 1.1}
    (check,) = check_outputs(noisy, ref, 0.5, 0.0, {"audio_out": {"max_abs_error": 0.01, "snr_db": 40.0}})
    assert check.error < check.limit and check.min_snr_db == 34.0
    assert check.problem == "audio_out SNR 20.0 dB < 34.0 dB"


def test_an_unreadable_expected_file_is_a_bundle_error(built_copy):
    (built_copy / "testvectors/expected.json").write_text(json.dumps({"schema": 99}))
    with pytest.raises(BundleError, match="schema 99") as info:
        read_expected(built_copy / "testvectors")
    assert "emotrt build" in info.value.hint
