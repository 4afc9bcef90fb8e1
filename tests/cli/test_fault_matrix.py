"""Issue 15's fault matrix, generated: every input a verb reads x every way it can be broken, and every
output it writes x every unusable place. Each case must give one ``error:`` line, a non-zero exit,
no traceback, and leave every file as it was (nothing half-written, nothing deleted).

The cases are the product of ``INPUTS`` x ``INPUT_FAULTS`` and ``OUTPUTS`` x ``OUTPUT_FAULTS``, plus
``ARGUMENT_FAULTS`` (names and hosts that do not exist) and what ``build --force`` may find at ``--out``. README's "Fault matrix" table is generated
from a run:

    EMOTRT_FAULT_LOG=/tmp/faults.jsonl .venv/bin/python -m pytest -q tests/cli/test_fault_matrix.py
    .venv/bin/python -m tests.cli.test_fault_matrix /tmp/faults.jsonl
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

from tests.calibration.conftest import calib_export, calib_manifest  # noqa: F401  (shared session fixtures)
from tests.training.conftest import synth_corpus  # noqa: F401

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
    "export": Verb("export", lambda w: ["export", w / "ckpt/ser", "-o", w / "out/models", "--trt", "10.3", "--no-vad",
                                        "--hops", "2"]),
    "calibrate": Verb("calibrate", lambda w: ["calibrate", w / "cexport", "--data", w / "corpus/manifests/test.jsonl",
                                              "-o", w / "out/cal", "--calib-utterances", "8", "--eval-utterances", "2",
                                              "--trt", "10.3.0", "--no-leave-one-out"]),
    "train": Verb("train", lambda w: ["train", "tse", w / "recipe.toml", "--no-jemalloc", "--no-progress"]),
    "eval": Verb("eval", lambda w: ["eval", w / "ckpt/ser", "--corpus", w / "synth", "--sets", "clean", "--text", "text",
                                    "--limit", "2", "--out", w / "out/eval.json"]),
    "env": Verb("env", lambda w: ["env", "list", "--table", w / "export/env"]),
    "env-remove": Verb("env", lambda w: ["env", "remove", "busy_cafe", "--table", w / "etable"]),
    "data": Verb("data", lambda w: ["data", "prepare", "ravdess", w / "ravdess", "--out", w / "out/data", "--workers", "1"]),
    "profile": Verb("profile", lambda w: ["profile", "report", w / "profile", "-o", w / "out/report"]),
    "profile-compare": Verb("profile", lambda w: ["profile", "compare", w / "profile", w / "profile/profile.json"]),
    "doctor": Verb("doctor", lambda w: ["doctor", "--role", "workstation"]),
    "flash": Verb("flash", lambda w: ["flash", w / "bundle", "--device", "orin", "-i", w / "devices.toml", "--dry-run",
                                      "--no-service", "--known-hosts", w / "known_hosts"]),
    "devices": Verb("devices", lambda w: ["devices", "probe", "orin", "-i", w / "devices.toml", "--known-hosts",
                                          w / "known_hosts"]),
    "devices-list": Verb("devices", lambda w: ["devices", "list", "-i", w / "devices.toml"]),
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
    ("export", "ckpt/ser"), ("export", "ckpt/ser/config.json"), ("export", "ckpt/ser/model.safetensors"),
    ("calibrate", "cexport"), ("calibrate", "cexport/ser.onnx"), ("calibrate", "corpus/manifests/test.jsonl"),
    ("calibrate", "corpus/speech/0/0.wav"),
    ("train", "recipe.toml"),
    ("eval", "ckpt/ser"), ("eval", "ckpt/ser/model.safetensors"), ("eval", "synth"), ("eval", "synth/testsets/clean/mixtures.jsonl"),
    ("env", "export/env"), ("env", "export/env/index.json"), ("env-remove", "etable/index.json"),
    ("data", "ravdess"),
    ("profile", "profile"), ("profile", "profile/profile.json"), ("profile-compare", "profile/profile.json"),
    ("flash", "bundle"), ("flash", "bundle/manifest.json"), ("flash", "devices.toml"),
    ("devices", "devices.toml"), ("devices", "known_hosts"), ("devices-list", "devices.toml"),
]
INPUT_FAULTS = ("missing", "empty", "truncated", "corrupt", "wrong type", "another artefact")

#: (verb, what the user got wrong, the good token, the bad one): names and hosts that do not exist
ARGUMENT_FAULTS: List[Tuple[str, str, str, str]] = [
    ("run", "unknown speaker", "alice", "carol"),
    ("run", "unknown environment", "busy_cafe", "on_the_moon"),
    ("enroll", "name with a path separator", "bob", "../bob"),
    ("lint", "unknown TensorRT version", "10.3", "7.1"),
    ("export", "unknown TensorRT version", "10.3", "9.1"),
    ("calibrate", "unknown TensorRT version", "10.3.0", "7.0.0"),
    ("train", "unknown task", "tse", "asr"),
    ("eval", "unknown test set", "clean", "noise_moon_0db"),
    ("env-remove", "unknown environment", "busy_cafe", "on_the_moon"),
    ("data", "unknown corpus", "ravdess", "timit"),
    ("doctor", "unknown role", "workstation", "server"),
    ("flash", "unknown device", "orin", "nosuch"),
    ("flash", "unreachable host (closed port)", "orin", "gone"),
    ("flash", "a bundle for another Jetson", "orin", "xavier"),
    ("devices", "unknown device", "orin", "nosuch"),
    ("devices", "unreachable host (closed port)", "orin", "gone"),
]

#: (verb, the output it writes, relative to the world)
OUTPUTS: List[Tuple[str, str]] = [("build", "out/bundle"), ("enroll", "out/store"), ("run", "out/r.jsonl"),
                                  ("export", "out/models"), ("calibrate", "out/cal"), ("eval", "out/eval.json"),
                                  ("data", "out/data"), ("profile", "out/report"), ("train", "out/run")]
OUTPUT_FAULTS = ("missing directory", "read-only directory", "wrong type")

#: cases whose outcome is not an error, and why (the matrix still runs them and checks that)
NOT_ERRORS = {
    ("build", "calibration/ser.int8.onnx", "missing"): "a calibration may hold no Q/DQ graph: INT8 then comes from the cache",
    ("build", "calibration/ser.int8.onnx", "wrong type"): "a directory is not a graph: ignored, as when missing",
    ("enroll", "out/store", "missing directory"): "the store and its parents are created, like mkdir -p",
    ("build", "out/bundle", "missing directory"): "the bundle's parent directories are created, like mkdir -p",
    ("calibrate", "cexport/ser.onnx", "missing"): "an export may hold some of the graphs: calibrate calibrates those it finds",
    ("devices", "known_hosts", "truncated"): "the probed device's line is in the half that is left",
    ("devices-list", "devices.toml", "empty"): "an empty inventory lists no devices",
    ("eval", "synth", "truncated"): "the corpus' largest file is a mixture of another test set, which --sets clean does not read",
    ("eval", "synth", "corrupt"): "the corpus' largest file is a mixture of another test set, which --sets clean does not read",
}
NOT_ERRORS.update({(verb, rel, "missing directory"): "the output's parent directories are created, like mkdir -p"
                   for verb, rel in (("export", "out/models"), ("calibrate", "out/cal"), ("eval", "out/eval.json"),
                                     ("data", "out/data"), ("profile", "out/report"), ("train", "out/run"))})


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
    elif fault == "another artefact":  # emotrt's own output of another kind: a bundle for a checkpoint, a graph for a WAV
        world = world_of(path)
        other = world / ANOTHER_ARTEFACT["dir" if path.is_dir() else ("onnx" if path.suffix == ".onnx" else "file")]
        if other == path or other in path.parents:  # a bundle standing in for a bundle: the export instead
            other = world / ANOTHER_ARTEFACT["fallback"]
        if path.is_dir():
            shutil.rmtree(str(path))
            shutil.copytree(str(other), str(path))
        else:
            shutil.copy(str(other), str(path))
    else:
        raise ValueError(fault)


#: what stands in for an input under "another artefact" (relative to the world)
ANOTHER_ARTEFACT = {"dir": "bundle", "onnx": "speech.wav", "file": "models/enroll.onnx", "fallback": "export"}


def world_of(path: Path) -> Path:
    """The world directory a path lies in (worlds are /tmp/emotrt-faults-*)."""
    return next(p for p in [path] + list(path.parents) if p.name.startswith("emotrt-faults-"))


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


@pytest.fixture(scope="session")
def parts(tmp_path_factory, runtime_bundle) -> Path:
    """The inputs of the training and tooling verbs, made once: a tiny SER checkpoint, a ravdess-shaped
    source folder, a profile of the runtime bundle and an environment table to remove from."""
    import shutil as sh

    import torch

    from emotrt.devices.profile_output import save_profile
    from emotrt.devices.profiler import ProfileConfig, profile_bundle
    from emotrt.training.checkpoint import save_checkpoint
    from emotrt.training.ser import SER, SERConfig
    from tests.training.corpus.test_prepare import build_ravdess

    root = tmp_path_factory.mktemp("matrix-parts")
    torch.manual_seed(0)
    model = SER(SERConfig(d_model=16, heads=2, layers=1, ff_dim=32, window_samples=8000))
    save_checkpoint(root / "ckpt/ser", model.state_dict(), model.checkpoint_config())
    build_ravdess(root / "ravdess")
    doc = profile_bundle(str(runtime_bundle), ProfileConfig(duration_s=0.5, warmup_s=0.1, backend="onnxruntime", layers=False,
                                                            measure_overhead=False))
    save_profile(doc, root / "profile", history=None, html=False)
    sh.copytree(str(runtime_bundle / "env"), str(root / "etable"))
    return root


@pytest.fixture(scope="session")
def ssh_devices(tmp_path_factory):
    """Loopback "Jetsons" on a real sshd (tests/devices/sshbed.py): an Orin Nano the bundle targets, a Xavier NX
    it does not, and a device whose port nothing listens on. None (those cases skip) without an OpenSSH server."""
    from tests.devices import flashbed
    from tests.devices.sshbed import SSHD, XAVIER_NX, SSHBed, free_port

    if not os.access(SSHD, os.X_OK):
        yield None
        return
    base = tmp_path_factory.mktemp("matrix-ssh")
    bed = SSHBed(base / "bed", env={"PYTHONPATH": flashbed.device_pythonpath(base)})
    python = flashbed.system_python()
    inventory = bed.entry_toml(bed.add("orin"), python) + bed.entry_toml(bed.add("xavier", XAVIER_NX), python)
    inventory += "[devices.gone]\nhost = \"127.0.0.1\"\nport = {}\nidentity = \"{}\"\nroot = \"/opt/emotrt\"\n".format(
        free_port(), bed.client_key)
    yield inventory, bed.known_hosts
    bed.stop()


@pytest.fixture
def world(tmp_path_factory, export_dir, calibration_dir, session_bundle, runtime_bundle, spoken_wav, calib_export,  # noqa: F811
          calib_manifest, synth_corpus, parts, ssh_devices) -> Path:  # noqa: F811
    """Every input in a good state, in a directory anyone may read (the read-only cases run as nobody)."""
    import tempfile

    from emotrt.devices.bundle_writer import pack_tar

    w = Path(tempfile.mkdtemp(prefix="emotrt-faults-", dir="/tmp"))
    shutil.copytree(str(calib_export), str(w / "cexport"))
    shutil.copytree(str(calib_manifest.parents[1]), str(w / "corpus"))
    shutil.copytree(str(synth_corpus), str(w / "synth"))
    for name in ("ckpt", "ravdess", "profile", "etable"):
        shutil.copytree(str(parts / name), str(w / name))
    recipe = (Path(__file__).resolve().parents[2] / "training/recipes/tse_quick.toml").read_text()
    for key, value in (("out", w / "out/run"), ("corpus", w / "synth"), ("steps", 1), ("epoch_steps", 1), ("warmup_steps", 0),
                       ("valid_mixtures", 2), ("preset", "tiny")):
        recipe = re.sub(r"(?m)^{} = .*$".format(key), "{} = {}".format(key, json.dumps(value if isinstance(value, int) else str(value))), recipe)
    (w / "recipe.toml").write_text(recipe)
    if ssh_devices is not None:
        (w / "devices.toml").write_text(ssh_devices[0])
        shutil.copy(str(ssh_devices[1]), str(w / "known_hosts"))
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


SSH_VERBS = ("flash", "devices", "devices-list")


def skip_without_ssh(world: Path, verb: str) -> None:
    if verb in SSH_VERBS and not (world / "devices.toml").exists():
        pytest.skip("no OpenSSH server at /usr/sbin/sshd (scripts/setup-system.sh installs openssh-server)")


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_the_good_world_passes_every_verb(world, verb):
    """The control: every verb succeeds on the unbroken inputs (so each fault is what breaks it)."""
    skip_without_ssh(world, verb)
    proc = emotrt(VERBS[verb].argv(world))
    assert proc.returncode == 0, (verb, proc.stdout[-2000:], proc.stderr[-2000:])


@pytest.mark.parametrize("verb,what,good,bad", ARGUMENT_FAULTS, ids=["{}:{}".format(v, w) for v, w, _, _ in ARGUMENT_FAULTS])
def test_a_wrong_name_or_host_is_one_line_and_changes_nothing(world, verb, what, good, bad):
    skip_without_ssh(world, verb)
    argv = [str(a) for a in VERBS[verb].argv(world)]
    assert good in argv
    before = snapshot(world)
    proc = emotrt([bad if a == good else a for a in argv])
    record("{} | {} (argument) | {}".format(verb, bad, what), proc, world)
    assert_one_clear_line(proc)
    assert snapshot(world) == before


@pytest.mark.parametrize("verb,rel,fault", [(v, r, f) for v, r in INPUTS for f in INPUT_FAULTS],
                         ids=["{}:{}:{}".format(v, r, f) for v, r in INPUTS for f in INPUT_FAULTS])
def test_a_broken_input_is_one_line_and_changes_nothing(world, verb, rel, fault):
    skip_without_ssh(world, verb)
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


if __name__ == "__main__":
    main(sys.argv[1])
