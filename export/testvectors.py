"""Test vectors for the on-device self-test: one input feed and its FP32 reference outputs per graph.

Layout (bundle ``testvectors/``): ``<kind>.npz`` with arrays ``input.<name>`` and
``output.<name>``, and ``index.json`` mapping each kind to its file, names and the
tolerance the device should meet against FP32 (looser for FP16/INT8 engines).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from emotrt.runtime.atomic import atomic_write

INDEX = "index.json"


def write_testvectors(
    root: Any, kind: str, inputs: Dict[str, np.ndarray], outputs: Dict[str, np.ndarray], atol: float
) -> Path:
    """Store one graph's vectors under ``root`` and record them in ``index.json``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {"input." + k: np.asarray(v, np.float32) for k, v in inputs.items()}
    arrays.update({"output." + k: np.asarray(v, np.float32) for k, v in outputs.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = root / (kind + ".npz")
    atomic_write(path, buf.getvalue())
    index_path = root / INDEX
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    index[kind] = {"file": path.name, "inputs": sorted(inputs), "outputs": sorted(outputs), "fp32_atol": atol}
    atomic_write(index_path, json.dumps(index, indent=1, sort_keys=True).encode())
    return path


def read_testvectors(root: Any, kind: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """(inputs, reference outputs) of ``kind`` from ``root``."""
    with np.load(str(Path(root) / (kind + ".npz"))) as data:
        inputs = {k[len("input."):]: data[k] for k in data.files if k.startswith("input.")}
        outputs = {k[len("output."):]: data[k] for k in data.files if k.startswith("output.")}
    return inputs, outputs
