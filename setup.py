"""Package discovery for the stage-folder layout (DESIGN.md §1).

The stage folders sit at the repository root but install as ``emotrt.<stage>``.
setuptools' declarative ``package-dir`` needs every sub-package listed by hand, so
this walks the stage folders once and builds the mapping; everything else about
the distribution lives in pyproject.toml.
"""
import os

from setuptools import setup

STAGES = ("runtime", "devices", "calibration", "export", "training")


def _packages():
    packages, package_dir = ["emotrt"], {"emotrt": "emotrt"}
    for root in ("emotrt",) + STAGES:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
            if "__init__.py" not in files:
                continue
            parts = folder.split(os.sep)
            name = "emotrt." + ".".join(parts) if root in STAGES else ".".join(parts)
            packages.append(name)
            package_dir[name] = folder
    return sorted(set(packages)), package_dir


PACKAGES, PACKAGE_DIR = _packages()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
