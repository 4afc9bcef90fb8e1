"""`emotrt doctor`'s Jetson line comes from the device probe and names the matching profiles."""
from emotrt.devices.doctor import OK, WARN, check_jetson


def test_jetson_line_uses_the_probe(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic\n")
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    check = check_jetson(str(tmp_path))
    assert check.verdict == OK and "L4T 36.4.3" in check.detail and "orin-nano-8gb" in check.detail


def test_not_a_jetson(tmp_path):
    assert check_jetson(str(tmp_path)).verdict == WARN
