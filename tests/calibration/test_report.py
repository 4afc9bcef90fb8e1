import json

from emotrt.calibration.report import Report, ReportRow, measure_latency


def test_markdown_and_json_hold_every_row(tmp_path):
    rows = [ReportRow("ser", "fp32", "ser.onnx", 2048, 1.0, {"ua": 0.5, "ccc": 0.25}, 1.0, 1.0),
            ReportRow("ser", "int8", "ser.int8.onnx", 512, 0.25, {"ua": 0.49, "ccc": 0.2}, 1.5, 1.5, note="all INT8")]
    report = Report(rows, {"method": "minmax"})
    report.write(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "| ser | int8 | 0.500 | 0.250 |  |  | 0.490 | 0.200 |  |  | 1.500 |" in md
    assert "- method: minmax" in md and "- ser int8: all INT8" in md
    assert json.loads((tmp_path / "report.json").read_text())["rows"][1]["size_ratio"] == 0.25


def test_latency_is_measured_for_every_variant_in_one_run(toy_jobs):
    job = next(j for j in toy_jobs if j.name == "ser")
    times = measure_latency({"a": job.path, "b": job.path}, job.calib.feeds[0], repeats=3, warmup=1)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())
