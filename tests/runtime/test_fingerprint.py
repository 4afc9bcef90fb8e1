"""The device probe and the field-level engine fingerprint comparison."""
import pytest

from emotrt.runtime.errors import BundleError, FingerprintMismatchError
from emotrt.runtime.fingerprint import (
    ENGINE_FIELDS,
    DeviceFingerprint,
    EngineFingerprint,
    check_match,
    probe_device,
    read_board,
    read_l4t,
)

SHA = "ab" * 32


def orin_engine(**overrides):
    values = dict(
        tensorrt="10.3.0", compute_capability="8.7", l4t="36.4.0", cuda="12.6", onnx_sha256=SHA,
        precision_recipe="int8-qdq:0123", shapes={"audio": (1, 320)}, dla_core=None, opt_level=3, flags=("int8",),
    )
    values.update(overrides)
    return EngineFingerprint(**values)


def fake_jetson(tmp_path, first_line, model=b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00"):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text(first_line + "\n# KERNEL_VARIANT: oot\n")
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(model)
    return str(tmp_path)


def test_l4t_and_board_come_from_the_jetson_files(tmp_path):
    root = fake_jetson(tmp_path, "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025")
    assert read_l4t(root) == "36.4.3"
    assert read_board(root) == "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
    found = probe_device(root=root)
    assert found.is_jetson and found.l4t == "36.4.3"


def test_l4t_revision_without_patch(tmp_path):
    assert read_l4t(fake_jetson(tmp_path, "# R35 (release), REVISION: 5, GCID: 1, BOARD: t186ref")) == "35.5.0"


def test_this_machine_probes_as_no_tensorrt_no_gpu_no_jetson(tmp_path):
    found = probe_device(root=str(tmp_path))
    assert (found.tensorrt, found.compute_capability, found.l4t, found.board) == (None, None, None, None)
    assert not found.can_build and not found.is_jetson
    # this host has a CUDA runtime library but no driver/GPU, so cuda may or may not be found
    assert [m for m in found.missing() if m != "cuda"] == ["tensorrt", "compute_capability", "l4t", "board"]
    assert found.python.count(".") == 2


def test_fingerprint_id_is_stable_and_covers_every_field():
    base = orin_engine()
    assert base.fingerprint_id == orin_engine(shapes={"audio": [1, 320]}, tensorrt="10.3.0.30").fingerprint_id
    assert len(base.fingerprint_id) == 16
    changed = [orin_engine(**{name: value}) for name, value in (
        ("tensorrt", "10.3.1"), ("compute_capability", "7.2"), ("l4t", "36.3.0"), ("cuda", "12.2"),
        ("onnx_sha256", "cd" * 32), ("precision_recipe", "fp16"), ("shapes", {"audio": (1, 640)}),
        ("dla_core", 0), ("opt_level", 5), ("flags", ("fp16",)))]
    assert len({e.fingerprint_id for e in changed} | {base.fingerprint_id}) == len(ENGINE_FIELDS) + 1


def test_round_trip_through_the_manifest_dict():
    base = orin_engine(dla_core=1)
    assert EngineFingerprint.from_dict(base.to_dict()) == base


def test_a_malformed_fingerprint_names_its_fields():
    with pytest.raises(BundleError, match="compute_capability='sm87'.*onnx_sha256"):
        orin_engine(compute_capability="sm87", onnx_sha256="nope")
    with pytest.raises(BundleError, match="unknown fields \\['gpu'\\]"):
        EngineFingerprint.from_dict(dict(orin_engine().to_dict(), gpu="x"))


@pytest.mark.parametrize("field,device_value", [("compute_capability", "7.2"), ("tensorrt", "8.6.2"), ("l4t", "35.5.0"), ("cuda", "11.4")])
def test_mismatch_names_the_field_and_the_rebuild_command(field, device_value):
    device = dict(tensorrt="10.3.0", compute_capability="8.7", l4t="36.4.0", cuda="12.6", board="orin")
    device[field] = device_value
    with pytest.raises(FingerprintMismatchError) as err:
        check_match(orin_engine(), DeviceFingerprint(**device), "emotrt build bundle/")
    assert "{} is".format(field) in err.value.message and device_value in err.value.message
    assert err.value.hint == "emotrt build bundle/"


def test_matching_device_passes_and_engine_to_engine_compares_every_field():
    check_match(orin_engine(), DeviceFingerprint("10.3.0.30", "8.7", "36.4.0", "12.6", "orin"), "x")
    with pytest.raises(FingerprintMismatchError, match="dla_core is None in the plan but 0 here"):
        check_match(orin_engine(), orin_engine(dla_core=0), "x", ENGINE_FIELDS)
