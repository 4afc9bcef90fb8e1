"""Issue 15's fault matrix, generated: every input a verb reads x every way it can be broken, and every
output it writes x every unusable place. Each case must give one ``error:`` line, a non-zero exit,
no traceback, and leave every file as it was (nothing half-written, nothing deleted).

The cases are the product of ``INPUTS`` x ``INPUT_FAULTS`` and ``OUTPUTS`` x ``OUTPUT_FAULTS``
(plus what ``build --force`` may find at ``--out``). README's "Fault matrix" table is generated
from a run:

    EMOTRT_FAULT_LOG=/tmp/faults.jsonl .venv/bin/python -m pytest -q tests/cli/test_fault_matrix.py
    .venv/bin/python -m tests.cli.test_fault_matrix /tmp/faults.jsonl
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class Verb:
    """A command line over the world ``w`` (a directory holding every input in a good state)."""

    name: str
    argv: Callable[[Path], List[str]]


def _run_args(w: Path) -> List[str]:
    return ["run", w / "rbundle", "-s", "alice", "-e", "busy_cafe", "--file", w / "speech.wav", "--jsonl", w / "out/r.jsonl",
            "--backend", "onnxruntime"]


VERBS: Dict[str, Verb] = {
    "build": Verb("build", lambda w: ["build", w / "export", "--calibration", w / "calibration", "--out", w / "out/bundle"]),
    "selftest": Verb("selftest", lambda w: ["selftest", w / "bundle", "--backend", "onnxruntime"]),
    "selftest-tar": Verb("selftest", lambda w: ["selftest", w / "bundle.tar", "--backend", "onnxruntime"]),
    "run": Verb("run", _run_args),
    "enroll": Verb("enroll", lambda w: ["enroll", "bob", w / "speech.wav", "--model", w / "models/enroll.onnx",
                                        "--store", w / "out/store"]),
    "lint": Verb("lint", lambda w: ["lint", w / "models/enroll.onnx", "--trt", "10.3"]),
}

#: (verb, the input it reads, relative to the world)
INPUTS: List[Tuple[str, str]] = [
    ("build", "export"), ("build", "export/tse_step.onnx"), ("build", "export/env/index.json"),
    ("build", "calibration"), ("build", "calibration/ser.precision.json"), ("build", "calibration/ser.int8.onnx"),
    ("selftest", "bundle"), ("selftest", "bundle/manifest.json"), ("selftest", "bundle/testvectors/ser.npz"),
    ("selftest-tar", "bundle.tar"),
    ("run", "rbundle"), ("run", "rbundle/manifest.json"), ("run", "speech.wav"),
    ("run", "rbundle/speakers/alice.npy"), ("run", "rbundle/speakers/index.json"), ("run", "rbundle/env/index.json"),
    ("enroll", "speech.wav"), ("enroll", "models/enroll.onnx"),
    ("lint", "models/enroll.onnx"),
]
INPUT_FAULTS = ("missing", "empty", "truncated", "corrupt", "wrong type")

#: (verb, the output it writes, relative to the world)
OUTPUTS: List[Tuple[str, str]] = [("build", "out/bundle"), ("enroll", "out/store"), ("run", "out/r.jsonl")]
OUTPUT_FAULTS = ("missing directory", "read-only directory", "wrong type")

#: cases whose outcome is not an error, and why (the matrix still runs them and checks that)
NOT_ERRORS = {
    ("build", "calibration/ser.int8.onnx", "missing"): "a calibration may hold no Q/DQ graph: INT8 then comes from the cache",
    ("build", "calibration/ser.int8.onnx", "wrong type"): "a directory is not a graph: ignored, as when missing",
    ("enroll", "out/store", "missing directory"): "the store and its parents are created, like mkdir -p",
    ("build", "out/bundle", "missing directory"): "the bundle's parent directories are created, like mkdir -p",
}


def _largest_file(path: Path) -> Path:
    return max((p for p in path.rglob("*") if p.is_file()), key=lambda p: (p.stat().st_size, str(p)))


def break_input(path: Path, fault: str) -> None:
    """Apply ``fault`` to a file or directory (a directory's largest file for truncated/corrupt)."""
    if fault == "missing":
        shutil.rmtree(str(path)) if path.is_dir() else path.unlink()
    elif fault == "empty":
        if path.is_dir():
            shutil.rmtree(str(path))
            path.mkdir()
        else:
            path.write_bytes(b"")
    elif fault == "truncated":
        target = _largest_file(path) if path.is_dir() else path
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif fault == "corrupt":  # the first bytes (magic, header, JSON's opening) overwritten
        target = _largest_file(path) if path.is_dir() else path
        data = target.read_bytes()
        target.write_bytes(b"\xa5" * min(64, len(data)) + data[64:])
    elif fault == "wrong type":  # a directory where a file belongs and the reverse
        if path.is_dir():
            shutil.rmtree(str(path))
            path.write_text("not a directory\n")
        else:
            path.unlink()
            path.mkdir()
    else:
        raise ValueError(fault)


def break_output(world: Path, rel: str, fault: str) -> Path:
    """Make ``world/rel`` unusable as an output; returns the path to pass instead (same for most faults)."""
    path = world / rel
    if fault == "missing directory":
        shutil.rmtree(str(path.parent))
        return path
    if fault == "read-only directory":
        os.chmod(str(path.parent), 0o555)
        return path
    if fault == "wrong type":  # a file stands where the output's directory should be
        shutil.rmtree(str(path.parent))
        path.parent.write_text("a file, not a directory\n")
        return path
    raise ValueError(fault)


def snapshot(world: Path) -> Dict[str, Tuple[str, int, int]]:
    """Every entry under ``world``: kind, size and mtime, to prove nothing changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(world)):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            out[p.relative_to(world).as_posix()] = ("d" if p.is_dir() else "f", 0 if p.is_dir() else st.st_size,
                                                    0 if p.is_dir() else st.st_mtime_ns)
    return out


def emotrt(argv: List, unprivileged: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    # root writes through 0555 (CAP_DAC_OVERRIDE): drop every capability so a read-only directory is one
    prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"] if unprivileged else []
    return subprocess.run(prefix + [sys.executable, "-m", "emotrt", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def world(tmp_path_factory, export_dir, calibration_dir, session_bundle, runtime_bundle, spoken_wav) -> Path:
    """Every input in a good state, in a directory anyone may read (the read-only cases run as nobody)."""
    import tempfile

    from emotrt.devices.bundle_writer import pack_tar

    w = Path(tempfile.mkdtemp(prefix="emotrt-faults-", dir="/tmp"))
    shutil.copytree(str(export_dir), str(w / "export"))
    shutil.copytree(str(calibration_dir), str(w / "calibration"))
    shutil.copytree(str(session_bundle), str(w / "bundle"))
    pack_tar(w / "bundle", w / "bundle.tar")
    shutil.copytree(str(runtime_bundle), str(w / "rbundle"))
    (w / "models").mkdir()
    shutil.copy(str(session_bundle / "models/enroll.onnx"), str(w / "models/enroll.onnx"))
    shutil.copy(str(spoken_wav), str(w / "speech.wav"))
    (w / "out").mkdir()
    for dirpath, dirnames, filenames in os.walk(str(w)):
        os.chmod(dirpath, 0o777)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    os.chmod(str(w), 0o755)
    yield w
    for dirpath, dirnames, _ in os.walk(str(w)):
        os.chmod(dirpath, 0o777)
    shutil.rmtree(str(w), ignore_errors=True)


def record(case: str, proc: subprocess.CompletedProcess, world: Path) -> None:
    """Append the case's outcome to $EMOTRT_FAULT_LOG (for README's table), world paths shortened."""
    log = os.environ.get("EMOTRT_FAULT_LOG")
    if log:
        line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")), "(exit 0)")
        with open(log, "a") as f:
            f.write(json.dumps({"case": case, "exit": proc.returncode,
                                "line": line.replace(str(world) + "/", "").replace(str(world), ".")}) + "\n")


def assert_one_clear_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode != 0, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_the_good_world_passes_every_verb(world):
    """The control: every verb succeeds on the unbroken inputs (so each fault is what breaks it)."""
    for key, verb in VERBS.items():
        proc = emotrt(verb.argv(world))
        assert proc.returncode == 0, (key, proc.stderr)
        for out in ("out/bundle", "out/store", "out/r.jsonl"):
            if (world / out).exists():
                shutil.rmtree(str(world / out)) if (world / out).is_dir() else (world / out).unlink()


@pytest.mark.parametrize("verb,rel,fault", [(v, r, f) for v, r in INPUTS for f in INPUT_FAULTS],
                         ids=["{}:{}:{}".format(v, r, f) for v, r in INPUTS for f in INPUT_FAULTS])
def test_a_broken_input_is_one_line_and_changes_nothing(world, verb, rel, fault):
    break_input(world / rel, fault)
    before = snapshot(world)
    proc = emotrt(VERBS[verb].argv(world))
    record("{} | {} | {}".format(verb, rel, fault), proc, world)
    if (verb, rel, fault) in NOT_ERRORS:
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        return
    assert_one_clear_line(proc)
    assert snapshot(world) == before


@pytest.mark.parametrize("verb,rel,fault", [(v, r, f) for v, r in OUTPUTS for f in OUTPUT_FAULTS],
                         ids=["{}:{}:{}".format(v, r, f) for v, r in OUTPUTS for f in OUTPUT_FAULTS])
def test_an_unusable_output_is_one_line_and_changes_nothing(world, verb, rel, fault):
    break_output(world, rel, fault)
    before = snapshot(world)
    proc = emotrt(VERBS[verb].argv(world), unprivileged=fault == "read-only directory" and ROOT_USER)
    record("{} | {} (output) | {}".format(verb, rel, fault), proc, world)
    if (verb, rel, fault) in NOT_ERRORS:
        assert proc.returncode == 0 and (world / rel).exists(), proc.stderr
        return
    assert_one_clear_line(proc)
    assert snapshot(world) == before


#: what ``build --out TARGET --force`` may find at TARGET (relative to the world), and whether it is replaced
FORCE_TARGETS = {
    "a bundle": ("bundle", True),
    "an empty directory": ("out/empty", True),
    "a directory that is not a bundle": ("models", False),
    "a file": ("speech.wav", False),
    "a directory whose manifest.json is garbage": ("out/fake", False),
    "the working directory": (".", False),
    "a parent of the working directory": ("..", False),
    "the export directory itself": ("export", False),
}


@pytest.mark.parametrize("case", sorted(FORCE_TARGETS))
def test_build_force_replaces_only_a_bundle(world, case):
    rel, replaced = FORCE_TARGETS[case]
    (world / "out/empty").mkdir()
    (world / "out/fake").mkdir()
    (world / "out/fake/manifest.json").write_text("garbage")
    (world / "out/fake/precious.txt").write_text("keep me")
    cwd = world / "out/fake"  # the working directory for the '.' and '..' cases
    target = rel if rel in (".", "..") else str(world / rel)
    before = snapshot(world)
    proc = subprocess.run([sys.executable, "-m", "emotrt", "build", str(world / "export"), "--calibration",
                           str(world / "calibration"), "--out", target, "--force"],
                          capture_output=True, text=True, cwd=str(cwd), env=dict(os.environ, COLUMNS="200"), timeout=300)
    record("build --force | --out {} | {}".format(rel, case), proc, world)
    if replaced:
        assert proc.returncode == 0, proc.stderr
        assert (world / rel / "manifest.json").is_file()
        return
    line = assert_one_clear_line(proc)
    assert "refusing to replace" in line and "--force only replaces a bundle" in line
    assert snapshot(world) == before


def main(log: str) -> None:
    """Print README's table from a run's log (see the module docstring)."""
    print("| verb | file | fault | exit | what the user reads |")
    print("|---|---|---|---|---|")
    for line in open(log):
        row = json.loads(line)
        text = row["line"].replace("|", "\\|")
        print("| {} | {} | `{}` |".format(row["case"], row["exit"], text if len(text) < 240 else text[:237] + "..."))


if __name__ == "__main__":
    main(sys.argv[1])


def _audio(case: str):
    """(samples [frames, channels], rate, subtype) for one audio case of `emotrt run --file`."""
    import numpy as np

    rng = np.random.default_rng(0)
    speech = 0.2 * np.sin(2 * np.pi * 180 * np.arange(32000) / 16000.0) * (1 + 0.5 * rng.standard_normal(32000) * 0.1)
    if case == "shorter than a window":
        return speech[:800, None], 16000, "PCM_16"
    if case == "no samples":
        return np.zeros((0, 1)), 16000, "PCM_16"
    if case == "digital silence":
        return np.zeros((32000, 1)), 16000, "PCM_16"
    if case == "NaN burst":
        nan = speech.copy()
        nan[8000:8400] = np.nan
        return nan[:, None], 16000, "FLOAT"
    if case == "44.1 kHz stereo":
        import soxr

        x = soxr.resample(speech, 16000, 44100)
        return np.stack([x, x], axis=1), 44100, "PCM_16"
    if case == "clipped":
        return (20 * speech)[:, None], 16000, "FLOAT"
    raise ValueError(case)


#: audio `emotrt run --file` may be given, and whether it is an error (else: a result, counted faults, exit 0)
AUDIO_CASES = {"shorter than a window": True, "no samples": True, "digital silence": False, "NaN burst": False,
               "44.1 kHz stereo": False, "clipped": False}


@pytest.mark.parametrize("case", sorted(AUDIO_CASES))
def test_run_on_odd_audio_is_an_error_or_a_counted_recovery(world, case):
    import soundfile

    audio, rate, subtype = _audio(case)
    soundfile.write(str(world / "speech.wav"), audio, rate, subtype=subtype)
    proc = emotrt(_run_args(world))
    record("run | speech.wav (audio) | {}".format(case), proc, world)
    if AUDIO_CASES[case]:
        line = assert_one_clear_line(proc)
        assert ("shorter than one SER window" in line) or ("holds no samples" in line)
        return
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads(next(ln for ln in proc.stderr.splitlines() if ln.startswith("summary: "))[len("summary: "):])
    assert summary["results"] > 0
    assert (summary["nonfinite_samples"] > 0) == (case == "NaN burst") and (summary["clipped_samples"] > 0) == (case == "clipped")
