import json

import numpy as np
import onnx
import pytest

from emotrt.calibration.cache import CalibrationCache, amax_to_scale
from emotrt.calibration.pipeline import CalibrateConfig, ModelJob, calibrate
from emotrt.calibration.qdq import QuantConfig, collect_ranges, tensorrt_problems
from emotrt.calibration.sensitivity import Budget, BudgetError
from emotrt.runtime.errors import ConfigError, TensorRTLintError


def test_every_artefact_is_written(calibrated, toy_jobs):
    out, _ = calibrated
    names = {p.name for p in out.iterdir()}
    for job in toy_jobs:
        for suffix in (".int8.onnx", ".fp16.onnx", ".calib.cache", ".precision.json", ".trt-8502.calib.cache",
                       ".trt-8602.calib.cache", ".trt-100300.calib.cache"):
            assert job.name + suffix in names
    assert {"report.json", "report.md"} <= names
    assert not [n for n in names if "partial" in n]


def test_int8_graphs_are_tensorrt_ready(calibrated, toy_jobs):
    out, _ = calibrated
    for job in toy_jobs:
        model = onnx.load(str(out / (job.name + ".int8.onnx")))
        assert tensorrt_problems(model) == []
        assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)


def test_written_int8_graphs_cast_fp16_weights_only_outside_the_fp32_plan(calibrated, toy_jobs):
    out, _ = calibrated
    for job in toy_jobs:
        model = onnx.load(str(out / (job.name + ".int8.onnx")))
        fp32 = set(json.loads((out / (job.name + ".precision.json")).read_text())["fp32"]["fp32_nodes"])
        halves = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
        cast = {n.output[0] for n in model.graph.node if n.op_type == "Cast" and n.input[0] in halves}
        readers = [n for n in model.graph.node if cast & set(n.input)]
        assert halves and readers, job.name
        assert {n.op_type for n in readers} <= {"MatMul", "Gemm", "Mul", "Add", "Sub", "Div"}
        assert not fp32 & {n.name for n in readers}
        assert not [n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose") and cast & set(n.input)]


def test_cache_holds_the_same_statistics_as_the_qdq_ranges(calibrated, toy_jobs):
    out, _ = calibrated
    job = next(j for j in toy_jobs if j.name == "tse_step")
    amax = collect_ranges(job.path, job.calib, QuantConfig()).amax()
    cache = CalibrationCache.read(out / "tse_step.calib.cache")
    assert cache.version_code == 8502
    assert set(cache.scales) == set(amax) and "state_in.dw0" in cache.scales
    for name, value in amax.items():
        assert cache.scales[name] == max(amax_to_scale(value), np.finfo(np.float32).tiny)
    assert CalibrationCache.read(out / "tse_step.trt-100300.calib.cache").version_code == 100300


def test_precision_plan_names_every_decision(calibrated, toy_jobs):
    out, _ = calibrated
    plan = json.loads((out / "ser.precision.json").read_text())
    job = next(j for j in toy_jobs if j.name == "ser")
    assert plan["model"] == "ser" and plan["source_onnx"] == "ser.onnx" and len(plan["recipe_sha256"]) == 64
    assert plan["recipe"]["calibration_set"] == job.calib.sha256
    assert "/layers.0/norm1/LayerNormalization" in plan["fp32"]["fp32_nodes"]
    assert set(plan["int8"]["nodes"]).isdisjoint(plan["fp16"]["nodes"])
    assert plan["int8"]["onnx"] == "ser.int8.onnx" and plan["calib_caches"]["10.3.0"] == "ser.trt-100300.calib.cache"
    assert len(plan["sensitivity"]) == len(plan["int8"]["blocks"]) + len(plan["fp16"]["blocks"])


def test_report_rows_meet_the_budget(calibrated, toy_jobs):
    out, report = calibrated
    data = json.loads((out / "report.json").read_text())
    rows = {(r["model"], r["precision"]): r for r in data["rows"]}
    assert len(rows) == 5 * len(toy_jobs)
    assert rows[("ser", "int8-cpu")]["file"] == "" and "not a TensorRT graph" in rows[("ser", "int8-cpu")]["note"]
    tse, tse_fp32 = rows[("tse_step", "mixed")], rows[("tse_step", "fp32")]
    assert tse_fp32["metrics"]["sisdr_vs_fp32"] == 100.0 and tse_fp32["latency_ratio"] == 1.0
    assert tse_fp32["metrics"]["sisdri"] - tse["metrics"]["sisdri"] <= 0.3
    ser, ser_fp32 = rows[("ser", "mixed")], rows[("ser", "fp32")]
    assert ser_fp32["metrics"]["ua"] - ser["metrics"]["ua"] <= 0.01
    assert ser_fp32["metrics"]["ccc"] - ser["metrics"]["ccc"] <= 0.01
    assert all(r["latency_ms"] > 0 for r in data["rows"])
    assert data["info"]["calibration_sets"]["ser"] == next(j for j in toy_jobs if j.name == "ser").calib.sha256
    assert "| tse_step | mixed |" in (out / "report.md").read_text()


def _no_leftovers(folder):
    return [p.name for p in folder.iterdir()]


def test_a_budget_no_plan_meets_leaves_nothing(toy_jobs, tmp_path):
    enroll = [j for j in toy_jobs if j.name == "enroll"]
    with pytest.raises(BudgetError, match="cosine"):
        calibrate(enroll, tmp_path / "out", CalibrateConfig(budget=Budget(cosine=0.0), leave_one_out=False, latency_repeats=2))
    assert _no_leftovers(tmp_path) == []


def test_a_failure_in_a_later_model_leaves_nothing(toy_jobs, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    job = toy_jobs[0]
    jobs = [job, ModelJob("broken", broken, job.contract, job.calib, job.items)]
    with pytest.raises(Exception):
        calibrate(jobs, tmp_path / "out", CalibrateConfig(leave_one_out=False))
    assert _no_leftovers(tmp_path) == ["broken.onnx"]


def test_a_qdq_graph_tensorrt_would_reject_is_a_user_error(toy_jobs, tmp_path, monkeypatch):
    from emotrt.calibration import pipeline

    monkeypatch.setattr(pipeline, "tensorrt_problems", lambda model: ["/enc/QuantizeLinear: zero point uint8 [128]"])
    enroll = [j for j in toy_jobs if j.name == "enroll"]
    with pytest.raises(TensorRTLintError, match="enroll: Q/DQ graph TensorRT would reject: /enc/QuantizeLinear") as err:
        calibrate(enroll, tmp_path / "out", CalibrateConfig(leave_one_out=False, latency_repeats=2))
    assert "--method" in err.value.hint and _no_leftovers(tmp_path) == []


def test_existing_output_needs_force(toy_jobs, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(ConfigError, match="--force"):
        calibrate(toy_jobs[:1], tmp_path / "out")
    enroll = [j for j in toy_jobs if j.name == "enroll"]
    calibrate(enroll, tmp_path / "out", CalibrateConfig(leave_one_out=False, latency_repeats=2), force=True)
    assert "old.txt" not in _no_leftovers(tmp_path / "out") and len(_no_leftovers(tmp_path)) == 1


def test_unsupported_tensorrt_target_is_refused():
    with pytest.raises(ConfigError, match="between 8.5 and 10.x"):
        CalibrateConfig(trt_versions=("11.4",))


def test_calibrates_what_the_exporter_writes(toy_export, calib_manifest, tmp_path):
    """The export stage's own output (toy checkpoints through `emotrt export`'s library), not graphs made here."""
    from emotrt.calibration.sources import SourceConfig
    from tests.calibration.conftest import load_jobs

    export_dir, _ = toy_export
    jobs = load_jobs(export_dir, calib_manifest, SourceConfig(calib_utterances=8, eval_utterances=3, eval_seconds=0.5))
    assert {"tse_step", "ser"} <= {j.name for j in jobs}
    report = calibrate(jobs, tmp_path / "out", CalibrateConfig(leave_one_out=False, latency_repeats=2, trt_versions=("8.5.2",)))
    for job in jobs:
        assert tensorrt_problems(onnx.load(str(tmp_path / "out" / (job.name + ".int8.onnx")))) == []
        assert (tmp_path / "out" / (job.name + ".trt-8502.calib.cache")).is_file()
    assert {r.precision for r in report.rows} == {"fp32", "fp16", "int8", "mixed", "int8-cpu"}
