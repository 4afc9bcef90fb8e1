"""Engines `emotrt flash` built on the device (ROOT/engines, ROOT/engines/by-bundle/<id>.json) are used by the runtime.

TensorRT here is the project's TEST DOUBLE (tests/trt_double.py): 'plans' are the fp32 ONNX bytes it runs.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

import emotrt.runtime.fingerprint
from emotrt.devices.device_root import DeviceRoot, bundle_id_of
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.device_engines import by_bundle_path, read_device_engines, write_device_engines
from emotrt.runtime.errors import BundleError, FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint, EngineFingerprint
from emotrt.runtime.manifest import EngineEntry, sha256_file
from emotrt.runtime.pipeline import Pipeline
from tests import trt_double
from tests.runtime.fixtures import DEVICE

OTHER_DEVICE = dict(DEVICE, tensorrt="8.6.2", l4t="36.3.0", cuda="12.2")


@pytest.fixture(scope="module")
def plain_bundle(tmp_path_factory, runtime_models) -> Path:
    """The runtime graphs as a bundle without engines (what a workstation without TensorRT writes)."""
    from emotrt.devices.bundle_writer import collect_models, write_bundle

    out = tmp_path_factory.mktemp("plain") / "bundle"
    return write_bundle(out, collect_models(runtime_models), runtime_models / "env", tmp_path_factory.mktemp("tv"),
                        speakers_dir=runtime_models / "speakers", targets=["orin-nano-8gb"])


@pytest.fixture
def device_here(monkeypatch):
    trt_double.install(monkeypatch)
    monkeypatch.setattr(emotrt.runtime.fingerprint, "probe_device", lambda: DeviceFingerprint(**DEVICE))


def install(root: Path, bundle: Path) -> str:
    """``bundle`` installed as ROOT/bundles/<id>, ROOT/current pointing at it (as a flash leaves it)."""
    bundle_id = bundle_id_of((bundle / "manifest.json").read_bytes())
    shutil.copytree(str(bundle), str(root / "bundles" / bundle_id))
    os.symlink(os.path.join("bundles", bundle_id), str(root / "current"))
    return bundle_id


def build_on_device(root: Path, bundle_id: str, fields: dict) -> list:
    """Fake device-built fp32 plans of tse_step and ser in ROOT/engines, recorded for ``bundle_id``."""
    bundle = Bundle.open(root / "bundles" / bundle_id, verify=False)
    entries = []
    for name in ("tse_step", "ser"):
        onnx_rel = bundle.manifest.models[name].variants["fp32"]
        fp = EngineFingerprint(onnx_sha256=bundle.file_sha256(onnx_rel), precision_recipe="fp32", shapes={}, **fields)
        plan = Path("engines") / fp.fingerprint_id / (name + ".plan")
        (root / plan).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(str(bundle.root / onnx_rel), str(root / plan))
        entries.append(EngineEntry(name, "fp32", fp, plan.as_posix(), "trtexec --onnx=" + onnx_rel, onnx=onnx_rel))
    write_device_engines(root, bundle_id, entries)
    return entries


def test_auto_picks_the_engines_flash_built_on_the_device(tmp_path, plain_bundle, device_here):
    bundle_id = install(tmp_path, plain_bundle)
    entries = build_on_device(tmp_path, bundle_id, DEVICE)
    recorded = json.loads(by_bundle_path(tmp_path, bundle_id).read_text())
    assert [e["sha256"] for e in recorded] == [sha256_file(tmp_path / e.plan) for e in entries]
    with Pipeline.from_bundle(tmp_path / "current", backend="auto") as pipeline:
        assert pipeline.backend == "tensorrt", pipeline.backend_reason
    bundle = Bundle.open(tmp_path / "current")
    assert bundle.engine_path("ser", "fp32", DeviceFingerprint(**DEVICE)) == tmp_path / entries[1].plan
    assert not (bundle.root / "engines").exists()  # nothing under the bundle was touched


def test_a_device_built_plan_for_another_device_is_never_loaded(tmp_path, plain_bundle, device_here):
    bundle_id = install(tmp_path, plain_bundle)
    build_on_device(tmp_path, bundle_id, OTHER_DEVICE)
    with pytest.raises(FingerprintMismatchError, match=r"tensorrt is '8.6.2' in the plan but '10.3.0' here") as error:
        Pipeline.from_bundle(tmp_path / "current", backend="tensorrt")
    assert "emotrt flash" in error.value.hint and "emotrt build" not in error.value.hint
    with Pipeline.from_bundle(tmp_path / "current", backend="auto") as pipeline:
        assert pipeline.backend == "onnxruntime"
        assert "no TensorRT engine fits this device" in pipeline.backend_reason and "tensorrt" in pipeline.backend_reason


def test_a_tampered_device_built_plan_fails_verification(tmp_path, plain_bundle):
    bundle_id = install(tmp_path, plain_bundle)
    entries = build_on_device(tmp_path, bundle_id, DEVICE)
    with open(str(tmp_path / entries[0].plan), "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="device-built plan .*tse_step.plan does not match its sha256"):
        Bundle.open(tmp_path / "current")


def test_a_bundle_outside_a_device_root_only_has_its_own_engines(tmp_path, plain_bundle, device_here):
    bundle_id = install(tmp_path, plain_bundle)
    build_on_device(tmp_path, bundle_id, DEVICE)
    elsewhere = Path(shutil.copytree(str(tmp_path / "bundles" / bundle_id), str(tmp_path / "copies" / bundle_id)))
    assert read_device_engines(elsewhere) == (None, ())
    bundle = Bundle.open(elsewhere)
    assert bundle.engines == [] and bundle.device_root is None
    with Pipeline.from_bundle(elsewhere, backend="auto") as pipeline:
        assert pipeline.backend == "onnxruntime" and "no TensorRT engine fits this device" in pipeline.backend_reason
    assert read_device_engines(plain_bundle) == (None, ())


def test_a_device_root_before_any_engine_build_has_none(tmp_path, plain_bundle):
    install(tmp_path, plain_bundle)
    assert Bundle.open(tmp_path / "current").engines == []


def test_ensure_engines_records_what_the_reader_reads(tmp_path, session_bundle):
    """The writer (DeviceRoot.ensure_engines, with the builder double) and the reader share runtime/device_engines.py."""
    orin = DeviceFingerprint("10.3.0", "8.7", "36.4.3", "12.6", "Jetson Orin Nano")
    bundle_id = install(tmp_path, session_bundle)
    built = DeviceRoot(tmp_path).ensure_engines(bundle_id, orin, trt=trt_double.make_tensorrt("10.3.0"))
    assert built["built"] and built["skipped"] is None
    root, entries = read_device_engines(tmp_path / "current")
    assert root == tmp_path.resolve() and {e.model for e in entries} >= {"tse_step", "ser"}
    assert all(e.plan.startswith("engines/") and e.sha256 == sha256_file(root / e.plan) for e in entries)
    with Bundle.open(tmp_path / "current") as bundle:
        assert bundle.engine_path("ser", "fp32", orin).parent.parent == root / "engines"


def test_selftest_on_a_device_root_runs_the_device_built_plans(tmp_path, session_bundle, monkeypatch):
    from emotrt.devices.selftest import run_selftest

    bundle_id = install(tmp_path, session_bundle)
    build_on_device(tmp_path, bundle_id, DEVICE)
    trt_double.install(monkeypatch)
    with Bundle.open(tmp_path / "current") as bundle:
        report = run_selftest(bundle, backends=["tensorrt"], device=DeviceFingerprint(**DEVICE))
    ran = {(r.model, r.status) for r in report.rows if r.backend == "tensorrt" and r.precision == "fp32"}
    assert {("tse_step", "pass"), ("ser", "pass")} <= ran, report.rows
