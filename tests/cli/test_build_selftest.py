"""The README's bundle commands end to end on this machine (no TensorRT): build, selftest, devices."""
import json
import subprocess
import sys


def emotrt(*args):
    import os

    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "emotrt", *map(str, args)], capture_output=True, text=True, env=env)


def test_build_then_selftest_passes_for_orin_nano_8gb(tmp_path, export_dir, calibration_dir):
    out = tmp_path / "bundle"
    proc = emotrt("build", export_dir, "--calibration", calibration_dir, "--target", "orin-nano-8gb", "--out", out, "--tar")
    assert proc.returncode == 0, proc.stderr
    assert "no TensorRT engines built here" in proc.stdout and "emotrt build {}".format(out) in proc.stdout.replace("\n", "")
    assert json.loads((out / "manifest.json").read_text())["targets"] == ["orin-nano-8gb"]
    proc = emotrt("selftest", out.with_suffix(".tar"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS: 7 passed, 0 failed" in proc.stdout
    header = next(line for line in proc.stdout.splitlines() if "max |error|" in line)
    assert header.count("at build") == 2 and "SNR dB" in header  # build-time figures beside the measured ones


def test_require_engines_is_a_one_line_error(tmp_path, export_dir):
    proc = emotrt("build", export_dir, "--out", tmp_path / "b", "--require-engines")
    assert proc.returncode == 2 and not (tmp_path / "b").exists()
    assert proc.stderr.strip().splitlines() == [
        "error: --require-engines: cannot build TensorRT engines here (no TensorRT and no CUDA GPU on this machine) "
        "(fix: run `emotrt build {}` on the target device, or drop --require-engines)".format(tmp_path / "b")]


def test_selftest_of_a_tampered_bundle_fails_cleanly(tmp_path, bundle_copy):
    with open(str(bundle_copy / "testvectors/ser.npz"), "ab") as f:
        f.write(b"x")
    proc = emotrt("selftest", bundle_copy)
    assert proc.returncode == 2 and "testvectors/ser.npz does not match its sha256" in proc.stderr


def test_devices_lists_every_profile():
    proc = emotrt("devices", "--json")
    data = json.loads(proc.stdout)
    assert {"orin-nano-8gb", "agx-xavier", "thor"} <= {p["id"] for p in data["profiles"]}
    assert data["this_machine"]["tensorrt"] is None


def test_building_engines_into_a_bundle_without_tensorrt_says_where_to_run_it(bundle_copy):
    proc = emotrt("build", bundle_copy)
    assert proc.returncode == 2
    assert "cannot build TensorRT engines here (no TensorRT and no CUDA GPU on this machine)" in proc.stderr
    assert "emotrt doctor --role device" in proc.stderr


def test_building_from_an_export_dir_needs_out(export_dir):
    proc = emotrt("build", export_dir)
    assert proc.returncode == 2 and "needs --out BUNDLE" in proc.stderr


def test_build_warns_on_one_line_per_release_whose_plans_the_lint_drops(tmp_path, export_dir, calibration_dir):
    from tests.devices.test_bundle_build import _with_layernorm

    source, calibration = _with_layernorm(export_dir, calibration_dir, tmp_path)
    proc = emotrt("build", source, "--calibration", calibration, "--out", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: TensorRT 8.5.2: dropped 3 plan(s)") and "Traceback" not in proc.stderr
    plans = json.loads((tmp_path / "b/manifest.json").read_text())["build_plans"]
    assert not [p for p in plans if p["model"] == "tse_step" and p["tensorrt"] == "8.5.2"]


def test_build_refuses_a_calibration_from_another_export_in_one_line(tmp_path, export_dir, calibration_dir):
    from tests.fixtures.tiny_graphs import write_export_dir

    other = write_export_dir(tmp_path / "other", seed=1)  # same models, other weights: another export
    proc = emotrt("build", other, "--calibration", calibration_dir, "--out", tmp_path / "b")
    assert proc.returncode == 2 and not (tmp_path / "b").exists() and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: calibration {}/".format(calibration_dir)) and "not this export's" in line
    assert "(fix: re-run `emotrt calibrate {} -o {} --force`".format(other, calibration_dir) in line


def test_a_bundle_and_a_speaker_store_follow_the_umask(tmp_path, export_dir, calibration_dir):
    import os

    out = tmp_path / "bundle"
    proc = subprocess.run([sys.executable, "-m", "emotrt", "build", str(export_dir), "--calibration", str(calibration_dir),
                           "--out", str(out)], capture_output=True, text=True, preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, proc.stderr
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]}
    assert {m for p, m in modes.items() if (out / p).is_dir()} == {0o755}
    assert {m for p, m in modes.items() if (out / p).is_file()} == {0o644}, modes
