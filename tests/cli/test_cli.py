"""The CLI: instant help, version, doctor verdicts, one-line user errors."""
import subprocess
import sys

HEAVY = ("torch", "onnx", "onnxruntime", "transformers", "soundfile", "sounddevice")


def emotrt(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "emotrt", *args], capture_output=True, text=True, **kwargs)


def test_help_imports_nothing_heavy():
    code = "import sys; from emotrt.cli import app; print(','.join(m for m in {!r} if m in sys.modules))".format(HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
    assert "doctor" in emotrt("--help").stdout


def test_version():
    from emotrt import __version__

    assert emotrt("--version").stdout.strip() == "emotrt " + __version__


def test_doctor_without_gpu_says_so_and_exits_zero():
    proc = emotrt("doctor", env=_wide_env())
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime" in proc.stdout and "tensorrt" in proc.stdout
    assert "no GPU here" in proc.stdout or "device(s)" in proc.stdout


def test_doctor_strict_fails_when_the_role_misses_a_requirement():
    hide_ort = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'onnxruntime': raise ImportError('hidden by test')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "sys.argv = ['emotrt', 'doctor', '--role', 'device', '--strict']\n"
        "from emotrt.cli import main; main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", hide_ort], capture_output=True, text=True, env=_wide_env())
    assert proc.returncode == 1
    assert "missing for device: onnxruntime" in proc.stdout.replace("\n", " ")


def test_unknown_role_is_one_line_user_error():
    proc = emotrt("doctor", "--role", "toaster")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: unknown role 'toaster'; expected one of workstation, device"]


def _wide_env():
    import os

    return dict(os.environ, COLUMNS="200")


def test_a_bare_mic_takes_no_token_that_follows_it():
    """README's microphone lines as written: `--mic` alone, before another option, or with a device."""
    from emotrt.cli import fill_optional_values

    assert fill_optional_values(["run", "B", "-s", "a", "-e", "c", "--mic"])[-1] == "--mic="
    assert fill_optional_values(["run", "B", "--mic", "--live"])[2:] == ["--mic=", "--live"]
    assert fill_optional_values(["enroll", "--mic", "--seconds", "8", "alice"]) == \
        ["enroll", "--mic=", "--seconds", "8", "alice"]
    assert fill_optional_values(["run", "B", "--mic", "USB", "--live"])[2:4] == ["--mic", "USB"]
    assert fill_optional_values(["profile", "B", "--mic"]) == ["profile", "B", "--mic"]  # its --mic needs a name
    proc = emotrt("run", "BUNDLE", "-s", "alice", "-e", "busy_cafe", "--mic", "--help")
    assert proc.returncode == 0 and "Usage: emotrt run" in proc.stdout, proc.stderr
