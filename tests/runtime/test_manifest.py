"""The typed manifest: JSON round trip, the JSON Schema checked against the dataclasses, one file rule."""
import dataclasses
import json
from pathlib import Path

import pytest

from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.errors import BundleError
from emotrt.runtime.fingerprint import EngineFingerprint
from emotrt.runtime.manifest import (BuildPlan, EngineEntry, Manifest, ModelEntry, ModelIO, Provenance, covered_files,
                                     is_covered)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "devices" / "schema" / "manifest.schema.json"


@pytest.mark.parametrize("bundle", ["session_bundle", "runtime_bundle"])
def test_written_manifests_round_trip_through_the_dataclasses(bundle, request):
    root = request.getfixturevalue(bundle)
    raw = json.loads((root / "manifest.json").read_text())
    manifest = Manifest.read(root)
    assert manifest.to_json() == raw
    assert isinstance(manifest.models["ser"], ModelEntry) and isinstance(manifest.models["ser"].io, ModelIO)
    assert manifest.provenance is not None and manifest.provenance.tools["emotrt"]
    if raw["engines"]:
        assert all(isinstance(e.fingerprint, EngineFingerprint) for e in manifest.engines)


def _names(cls):
    return {f.name for f in dataclasses.fields(cls)}


def _required(cls):
    return {f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}  # type: ignore[misc]


def test_the_json_schema_describes_exactly_the_dataclasses():
    schema = json.loads(SCHEMA_FILE.read_text())
    props = schema["properties"]
    objects = [
        (Manifest, schema),
        (ModelEntry, props["models"]["additionalProperties"]),
        (EngineEntry, props["engines"]["items"]),
        (BuildPlan, props["build_plans"]["items"]),
        (Provenance, props["provenance"]),
        (EngineFingerprint, schema["$defs"]["fingerprint"]),
    ]
    for cls, obj in objects:
        names = set(obj["properties"])
        if cls is EngineEntry:
            names.discard("fingerprint_id")  # derived: EngineEntry.fingerprint_id
        assert names == _names(cls), cls.__name__
        assert _required(cls) <= set(obj["required"]), cls.__name__
    io = props["models"]["additionalProperties"]["properties"]["io"]
    assert set(io["properties"]) == _names(ModelIO)


def test_the_file_rule_leaves_out_the_manifest_and_speakers_only():
    assert not is_covered("manifest.json") and not is_covered("speakers/alice.npy")
    assert is_covered("models/ser.onnx") and is_covered("engines/abc/ser.plan") and is_covered("env/index.json")


def test_a_writer_that_hashes_other_files_than_the_reader_is_refused(tmp_path, export_dir, calibration_dir, monkeypatch):
    """One rule, not two: change the writer's file list and the reader refuses the bundle."""
    from emotrt.devices import bundle_writer
    from emotrt.devices.bundle_writer import collect_models, write_bundle
    from emotrt.runtime import manifest as manifest_module

    speakers = tmp_path / "speakers"
    speakers.mkdir()
    (speakers / "alice.npy").write_bytes(b"enrolled on the device")

    def also_speakers(root):  # a writer that drifted: it hashes speakers/ too
        files = manifest_module.hash_files(root)
        files.update({rel: manifest_module.sha256_file(Path(root) / rel)
                      for rel in ("speakers/alice.npy",) if (Path(root) / rel).is_file()})
        return files

    monkeypatch.setattr(bundle_writer, "hash_files", also_speakers)
    models = collect_models(export_dir, calibration_dir)
    out = write_bundle(tmp_path / "b", models, export_dir / "env", export_dir / "testvectors", speakers_dir=speakers)
    with pytest.raises(BundleError, match="failed verification: speakers/alice.npy is listed but lies outside"):
        Bundle.open(out)

    def without_env(root):  # a writer that drifted the other way: it skips env/
        return {rel: sha for rel, sha in manifest_module.hash_files(root).items() if not rel.startswith("env/")}

    monkeypatch.setattr(bundle_writer, "hash_files", without_env)
    out = write_bundle(tmp_path / "c", models, export_dir / "env", export_dir / "testvectors")
    with pytest.raises(BundleError, match="failed verification: env/.* is not listed in the manifest"):
        Bundle.open(out)


def test_covered_files_is_what_the_writer_hashed(session_bundle):
    assert covered_files(session_bundle) == sorted(Manifest.read(session_bundle).files)


def test_with_engines_replaces_the_entry_for_the_same_plan(runtime_bundle):
    manifest = Manifest.read(runtime_bundle)
    entry = manifest.engines[0]
    rebuilt = dataclasses.replace(entry, trtexec="trtexec --again")
    updated = manifest.with_engines([rebuilt], manifest.files)
    assert len(updated.engines) == len(manifest.engines)
    assert [e.trtexec for e in updated.engines if e.key == entry.key] == ["trtexec --again"]


def test_structural_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(BundleError, match="newer than the 1"):
        Manifest.from_json({"schema": 2})
    with pytest.raises(BundleError, match="lacks env, speakers, testvectors"):
        Manifest.from_json({"schema": 1, "models": {}, "engines": [], "files": {}})
    with pytest.raises(BundleError, match="model 'ser' needs 'contract' and 'variants'"):
        Manifest.from_json({"schema": 1, "models": {"ser": {}}, "engines": [], "files": {}, "env": "env",
                            "speakers": "speakers", "testvectors": "testvectors"})
