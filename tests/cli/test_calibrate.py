"""``emotrt calibrate`` end to end through the real CLI, and its one-line user errors."""
import json
import subprocess
import sys

import onnx

from tests.calibration.conftest import calib_export, calib_manifest  # noqa: F401  (shared session fixtures)


def emotrt(*args):
    return subprocess.run([sys.executable, "-m", "emotrt", *map(str, args)], capture_output=True, text=True)


def test_calibrate_writes_artefacts_and_prints_the_table(calib_export, calib_manifest, tmp_path):  # noqa: F811
    out = tmp_path / "cal"
    proc = emotrt("calibrate", calib_export, "--data", calib_manifest, "-o", out, "--calib-utterances", "8",
                  "--eval-utterances", "3", "--trt", "10.3.0", "--no-leave-one-out")
    assert proc.returncode == 0, proc.stderr
    assert "| tse_step | mixed |" in proc.stdout and "| ser | fp16 |" in proc.stdout
    assert (out / "tse_step.trt-100300.calib.cache").read_text().startswith("TRT-100300-EntropyCalibration2\n")
    assert json.loads((out / "report.json").read_text())["info"]["trt_versions"] == ["10.3.0"]


def test_missing_audio_is_one_line_and_exit_2(calib_export, calib_manifest, tmp_path):  # noqa: F811
    lines = [json.loads(x) for x in calib_manifest.read_text().splitlines()]
    lines[2]["path"] = "speech/9/nowhere.wav"
    bad = calib_manifest.with_name("bad.jsonl")
    bad.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = emotrt("calibrate", calib_export, "--data", bad, "-o", tmp_path / "out")
    assert proc.returncode == 2
    bad.unlink()
    assert proc.stderr.startswith("error: ") and "bad.jsonl: 1 of 14 audio files are missing" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_graph_without_metadata_is_one_line(calib_export, calib_manifest, tmp_path):  # noqa: F811
    model = onnx.load(str(calib_export / "ser.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "ser.onnx"))
    proc = emotrt("calibrate", tmp_path, "--data", calib_manifest, "-o", tmp_path / "out")
    assert proc.returncode == 2 and "carries no emotrt metadata" in proc.stderr and "emotrt export" in proc.stderr


def test_bad_method_is_one_line(calib_export, calib_manifest, tmp_path):  # noqa: F811
    proc = emotrt("calibrate", calib_export, "--data", calib_manifest, "-o", tmp_path / "out", "--method", "kl")
    assert proc.returncode == 2 and "method='kl'" in proc.stderr
