"""Writing bundles: collecting export/calibration outputs, provenance, packing, manifest updates."""
import json
import shutil
import tarfile

import pytest

from emotrt.devices.bundle_writer import collect_models, pack_tar, provenance, update_manifest
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.errors import BundleError, ModelContractError


def test_collect_models_takes_calibration_outputs_in_the_calibration_stage_layout(tmp_path, export_dir, calibration_dir):
    cal = tmp_path / "cal"
    shutil.copytree(str(calibration_dir), str(cal))
    shutil.copy(str(cal / "ser.calib.cache"), str(cal / "ser.trt-8502.calib.cache"))
    plan = json.loads((cal / "ser.precision.json").read_text())
    plan["recipe"] = {"calibration_set": "ab" * 32}
    (cal / "ser.precision.json").write_text(json.dumps(plan))
    models = collect_models(export_dir, cal)
    assert sorted(models) == ["enroll", "ser", "tse_step"]
    assert sorted(models["ser"].variants) == ["fp16", "fp32", "int8"] and sorted(models["enroll"].variants) == ["fp32"]
    assert [code for code, _ in models["ser"].calib_caches] == ["8502"]
    prov = provenance(models)
    assert len(prov.calibration_set) == 64 and prov.calibration_set not in ("ab" * 32, "0" * 64)  # two sets differ
    assert prov.tools["emotrt"]


def test_collect_models_refuses_empty_dirs_and_graphs_without_contract(tmp_path):
    with pytest.raises(BundleError, match="holds no ONNX graph with emotrt metadata"):
        collect_models(tmp_path)
    import onnx
    from tests.fixtures.tiny_graphs import build_model

    model = build_model("ser")
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "ser.onnx"))
    with pytest.raises(ModelContractError, match="carries no emotrt metadata"):
        collect_models(tmp_path)


def test_pack_tar_holds_plain_relative_files(tmp_path, session_bundle):
    archive = pack_tar(session_bundle, tmp_path / "b.tar")
    with tarfile.open(str(archive)) as tar:
        members = tar.getmembers()
    assert all(m.isfile() and not m.name.startswith(("/", "..")) and m.uid == 0 for m in members)
    assert "manifest.json" in [m.name for m in members]
    assert [p for p in tmp_path.iterdir()] == [archive]


def test_update_manifest_keeps_the_bundle_verifiable(bundle_copy):
    plan = bundle_copy / "engines/abc/tse_step.plan"
    plan.parent.mkdir(parents=True)
    plan.write_bytes(b"x")
    with pytest.raises(BundleError, match="engines/abc/tse_step.plan is not listed"):
        Bundle.open(bundle_copy)
    manifest = update_manifest(bundle_copy, [])
    assert "engines/abc/tse_step.plan" in manifest.files
    Bundle.open(bundle_copy)
