"""A bundle of the default architectures (TSE ``edge`` preset, default ``SERConfig``) with random weights.

Compute, shapes and state are those of the shipped models, so runtime figures measured on it hold
for a trained default bundle. Host-only (torch, export).

    nice -n 10 .venv/bin/python benchmarks/default_bundle.py OUT
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def build(out: Path) -> Path:
    """Export the default TSE and SER (parity, streaming and lint checks included) and bundle them."""
    import torch

    from emotrt.devices.bundle_writer import collect_models, write_bundle
    from emotrt.export.exporter import ExportConfig, export_checkpoints
    from emotrt.runtime.backends import load_engine
    from emotrt.runtime.tables import VectorTable
    from emotrt.training.checkpoint import save_checkpoint
    from emotrt.training.ser import SER, SERConfig
    from emotrt.training.tse import TSE

    torch.manual_seed(0)
    work = out.parent / (out.name + ".work")
    tse, ser = TSE.from_config("edge"), SER.from_config(SERConfig())
    save_checkpoint(work / "tse", tse.state_dict(), tse.checkpoint_config())
    save_checkpoint(work / "ser", ser.state_dict(), ser.checkpoint_config())
    models = work / "models"
    export_checkpoints([work / "tse", work / "ser"], models, ExportConfig(trt="10.3", stream_hops=20))
    rng = np.random.default_rng(0)
    with load_engine(models / "ser.onnx") as s, load_engine(models / "tse_step.onnx") as t:
        d_model, spk_dim = s.contract.d_model, t.contract.spk_dim
    env = models / "env"
    if not (env / "index.json").is_file():
        VectorTable(env, kind="environment", dim=d_model).add("busy_cafe", rng.normal(size=d_model))
    speakers = work / "speakers"
    VectorTable(speakers, kind="speaker", dim=spk_dim).add("alice", rng.normal(size=spk_dim), replace=True)
    (models / "testvectors").mkdir(exist_ok=True)
    return write_bundle(out, collect_models(models), env, models / "testvectors", speakers_dir=speakers, force=True)


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
