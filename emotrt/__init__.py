"""emotrt: noise-robust speech emotion recognition, from PyTorch checkpoints to Jetson TensorRT engines.

The stages install as sub-packages: ``emotrt.training`` -> ``emotrt.export`` ->
``emotrt.calibration`` -> ``emotrt.devices`` -> ``emotrt.runtime``. This package
itself holds the command-line interface and the source's provenance; it imports nothing heavy.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

__version__ = "0.1.0"


def source_commit() -> Optional[str]:
    """The git commit of the emotrt source tree (None when installed from a wheel or without git)."""
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(Path(__file__).parent),
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None
