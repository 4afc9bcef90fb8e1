"""`emotrt doctor`'s Jetson line comes from the device probe and names the matching profiles."""
import pytest

from emotrt.devices.doctor import OK, WARN, check_jetson, check_tensorrt


def test_jetson_line_uses_the_probe(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic\n")
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    check = check_jetson(str(tmp_path))
    assert check.verdict == OK and "L4T 36.4.3" in check.detail and "orin-nano-8gb" in check.detail


def test_not_a_jetson(tmp_path):
    assert check_jetson(str(tmp_path)).verdict == WARN


@pytest.mark.parametrize("version,accepted", [("8.4.3.1", False), ("8.5.2.2", True), ("10.3.0", True)])
def test_doctor_and_the_runtime_agree_on_the_tensorrt_floor(version, accepted, monkeypatch):
    """One floor: `emotrt doctor` reports ok exactly when the runtime would load TensorRT."""
    from emotrt.runtime.loading import tensorrt_available
    from tests.trt_double import install

    install(monkeypatch, version=version)
    check = check_tensorrt()
    assert (check.verdict == OK) is accepted
    assert (tensorrt_available() is None) is accepted
    if not accepted:
        assert "TensorRT 8.4.3.1 is too old: emotrt needs 8.5" in check.detail and "JetPack 5.1" in check.fix
        assert "too old" in tensorrt_available()
