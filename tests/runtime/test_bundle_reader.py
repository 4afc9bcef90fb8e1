"""Opening and verifying bundles: schema, sha256 of every file, models, engines by fingerprint, tar safety."""
import io
import json
import tarfile

import pytest

from emotrt.runtime.bundle_reader import Bundle, unpack_tar
from emotrt.runtime.errors import BundleError, FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint, EngineFingerprint

ORIN = DeviceFingerprint(tensorrt="10.3.0", compute_capability="8.7", l4t="36.4.0", cuda="12.6", board="orin")


def edit_manifest(root, change):
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_open_verifies_and_exposes_models_tables_and_vectors(session_bundle):
    bundle = Bundle.open(session_bundle)
    assert bundle.models == ["enroll", "ser", "tse_step"]
    assert bundle.precisions("tse_step") == ["fp16", "fp32", "int8"]
    assert bundle.precisions("enroll") == ["fp32"]
    assert bundle.model_path("tse_step", "int8").name == "tse_step.int8.onnx"
    assert bundle.model_path("ser").is_file()
    assert bundle.calib_cache("ser").read_text().startswith("TRT-100300-")
    assert bundle.contract("ser").labels == ("neutral", "happy", "angry", "sad")
    assert bundle.io("enroll") == {"inputs": {"audio": [1, None]}, "outputs": {"spk_emb": [1, 8]}}
    assert bundle.environments().names() == ["busy_cafe", "car_highway"]
    assert sorted(p.name for p in bundle.testvectors_dir.iterdir()) == ["enroll.npz", "index.json", "ser.npz", "tse_step.npz"]
    assert bundle.speakers(dim=8).names() == []


def test_a_tampered_file_is_named(bundle_copy):
    with open(str(bundle_copy / "models/ser.onnx"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="models/ser.onnx does not match its sha256"):
        Bundle.open(bundle_copy)


def test_an_unlisted_file_is_refused_but_speakers_may_change(bundle_copy):
    (bundle_copy / "speakers" / "alice.npy").write_bytes(b"x")
    Bundle.open(bundle_copy)
    (bundle_copy / "models" / "extra.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match="models/extra.onnx is not listed"):
        Bundle.open(bundle_copy)


def test_a_newer_schema_asks_for_an_upgrade(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(schema=2))
    with pytest.raises(BundleError, match="bundle schema 2, newer than the 1") as err:
        Bundle.open(bundle_copy)
    assert "pip install -U emotrt" in err.value.hint


def test_a_missing_model_file_and_a_missing_model_are_named(bundle_copy):
    (bundle_copy / "models/tse_step.fp16.onnx").unlink()
    with pytest.raises(BundleError, match="models/tse_step.fp16.onnx is missing"):
        Bundle.open(bundle_copy)
    bundle = Bundle.open(bundle_copy, verify=False)
    with pytest.raises(BundleError, match="lacks model\\(s\\) vad \\(it has: enroll, ser, tse_step\\)"):
        bundle.model_path("vad")
    with pytest.raises(BundleError, match="no int8 variant of enroll \\(it has: fp32\\)"):
        bundle.model_path("enroll", "int8")


def test_a_model_whose_file_is_not_in_the_bundle(bundle_copy):
    def drop(m):
        del m["files"]["models/ser.int8.onnx"]
    edit_manifest(bundle_copy, drop)
    (bundle_copy / "models/ser.int8.onnx").unlink()
    with pytest.raises(BundleError, match="model ser refers to models/ser.int8.onnx, which the bundle does not carry"):
        Bundle.open(bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.open(tmp_path)
    with pytest.raises(BundleError, match="no bundle at"):
        Bundle.open(tmp_path / "nothing")


def add_engine(root, **fp_overrides):
    """List a plan (bytes that are no real plan: lookup never loads it) in the manifest."""
    def change(m):
        values = dict(tensorrt="10.3.0", compute_capability="8.7", l4t="36.4.0", cuda="12.6",
                      onnx_sha256=m["files"]["models/tse_step.int8.onnx"], precision_recipe="int8-qdq",
                      shapes={"audio": [1, 32]}, flags=["int8"])
        values.update(fp_overrides)
        fp = EngineFingerprint(**values)
        rel = "engines/{}/tse_step.plan".format(fp.fingerprint_id)
        (root / rel).parent.mkdir(parents=True)
        (root / rel).write_bytes(b"plan")
        import hashlib
        m["files"][rel] = hashlib.sha256(b"plan").hexdigest()
        m["engines"].append({"model": "tse_step", "precision": "int8", "fingerprint": fp.to_dict(),
                             "fingerprint_id": fp.fingerprint_id, "plan": rel, "trtexec": "trtexec --onnx=x"})
    edit_manifest(root, change)


def test_engine_lookup_by_fingerprint(bundle_copy):
    add_engine(bundle_copy)
    bundle = Bundle.open(bundle_copy)
    assert bundle.engine_path("tse_step", "int8", ORIN).name == "tse_step.plan"
    with pytest.raises(BundleError, match="no fp16 TensorRT engine for tse_step") as err:
        bundle.engine_for("tse_step", "fp16", ORIN)
    assert err.value.hint.startswith("emotrt build ")


@pytest.mark.parametrize("field,value", [("compute_capability", "7.2"), ("tensorrt", "8.5.2")])
def test_a_plan_for_another_device_is_never_returned(bundle_copy, field, value):
    add_engine(bundle_copy, **{field: value})
    bundle = Bundle.open(bundle_copy)
    with pytest.raises(FingerprintMismatchError, match="{} is '{}' in the plan".format(field, value)) as err:
        bundle.engine_for("tse_step", "int8", ORIN)
    assert err.value.hint == "emotrt build {}".format(bundle_copy)


def test_a_plan_built_from_another_onnx_is_stale(bundle_copy):
    add_engine(bundle_copy, onnx_sha256="0" * 64)
    with pytest.raises(FingerprintMismatchError, match="onnx_sha256 .* stale"):
        Bundle.open(bundle_copy).engine_for("tse_step", "int8", ORIN)


def _tar_with(tmp_path, name, data=b"x", kind=tarfile.REGTYPE, linkname=""):
    path = tmp_path / "evil.tar"
    with tarfile.open(str(path), "w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/evil", "models/../../escape"])
def test_a_tar_with_escaping_paths_is_refused_before_writing(tmp_path, name):
    archive = _tar_with(tmp_path, name)
    with pytest.raises(BundleError, match="escapes the bundle directory"):
        unpack_tar(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.tar"]


def test_a_tar_with_a_symlink_is_refused(tmp_path):
    archive = _tar_with(tmp_path, "models/link", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
    with pytest.raises(BundleError, match="link or special file"):
        unpack_tar(archive, tmp_path / "out")


def test_open_a_tar_bundle(tmp_path, session_bundle):
    from emotrt.devices.bundle_writer import pack_tar

    archive = pack_tar(session_bundle, tmp_path / "b.tar")
    with Bundle.open(archive) as bundle:
        assert bundle.models == ["enroll", "ser", "tse_step"]
        root = unpack_tar(archive, tmp_path / "unpacked")
        assert Bundle.open(root).manifest.files == bundle.manifest.files
        temporary = bundle.root
    assert not temporary.exists()


def test_manifest_paths_may_not_escape_the_bundle(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(env="../../etc"))
    with pytest.raises(BundleError, match="'../../etc' escapes the bundle directory"):
        Bundle.open(bundle_copy)


def test_manifest_sections_of_the_wrong_type(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(files=[]))
    with pytest.raises(BundleError, match="files must be dict"):
        Bundle.open(bundle_copy)
