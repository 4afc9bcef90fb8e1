"""Guards of DESIGN.md §1: the device side stays torch-free, Python-3.8 valid, and packaged whole."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

FORBIDDEN = ("torch", "torchaudio", "transformers", "onnx", "optimum")

# Prefix of a child script: refuse the names given comma-separated in sys.argv[1].
REFUSE_FORBIDDEN = r"""
import importlib, pkgutil, sys

FORBIDDEN = set(sys.argv[1].split(","))

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError("device-side code imported forbidden module " + name)
        return None

sys.meta_path.insert(0, Refuse())
"""

IMPORT_EVERY_DEVICE_MODULE = REFUSE_FORBIDDEN + r"""
import json
import emotrt.runtime, emotrt.devices
seen = ["emotrt.runtime", "emotrt.devices"]
for pkg in (emotrt.runtime, emotrt.devices):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
        seen.append(info.name)
print(json.dumps(seen))
"""
DEVICE_STAGES = ("runtime", "devices")


def device_side_modules(repo_root):
    """Every module file of the device-side stages, as the import name it installs under."""
    names = set()
    for stage in DEVICE_STAGES:
        for path in (repo_root / stage).rglob("*.py"):
            parts = list(path.relative_to(repo_root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.add(".".join(["emotrt"] + parts))
    return names


def test_device_side_imports_no_workstation_library(repo_root):
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_DEVICE_MODULE, ",".join(FORBIDDEN)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    imported = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    expected = device_side_modules(repo_root)
    assert len(expected) >= 40  # runtime/ and devices/ as they stand, not an empty walk
    assert imported == expected, "not imported: {}; not a file: {}".format(
        sorted(expected - imported), sorted(imported - expected))


def test_device_side_is_valid_python_3_8(repo_root):
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "vermin"), "--no-tips", "--violations", "--eval-annotations",
         "-t=3.8-", "runtime", "devices", "emotrt"],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_wheel_contains_every_stage_and_no_tests(repo_root, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(repo_root)],
        check=True,
    )
    wheel = next(tmp_path.glob("emotrt-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for stage in ("runtime", "devices", "calibration", "export", "training"):
        folder = repo_root / stage
        for dirpath, _, files in os.walk(folder):
            if "__init__.py" in files and "__pycache__" not in dirpath:
                rel = os.path.relpath(dirpath, repo_root).replace(os.sep, "/")
                assert "emotrt/{}/__init__.py".format(rel) in names
    assert "emotrt/cli.py" in names
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
