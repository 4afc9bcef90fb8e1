"""Device profiles are valid data covering every module of the issue."""
import json

import pytest

from emotrt.devices.profiles import PROFILES_FILE, get_profile, load_profiles, match_device
from emotrt.runtime.errors import ConfigError
from emotrt.runtime.fingerprint import DeviceFingerprint

REQUIRED = {"orin-nano-4gb", "orin-nano-4gb-super", "orin-nano-8gb", "orin-nano-8gb-super", "orin-nx-8gb", "orin-nx-16gb",
            "agx-orin-32gb", "agx-orin-64gb", "xavier-nx", "agx-xavier", "thor"}


def test_every_module_has_a_valid_profile():
    profiles = load_profiles()
    assert REQUIRED <= set(profiles)
    for p in profiles.values():
        assert p.workspace_mib <= p.memory_mib // 2 and p.default_power_mode in p.power_modes
        for r in p.releases:
            assert r.python in ("3.8", "3.10", "3.12")
    assert {p.compute_capability for p in profiles.values()} == {"8.7", "7.2", "11.0"}
    assert [p.id for p in profiles.values() if p.compute_capability == "7.2"] == ["xavier-nx", "agx-xavier"]
    assert all(r.jetpack == "5.1" for p in profiles.values() if p.compute_capability == "7.2" for r in p.releases)
    assert profiles["orin-nano-8gb"].dla_cores == 0 and profiles["orin-nx-16gb"].dla_cores == 2


def test_release_lookup():
    nano = get_profile("orin-nano-8gb")
    assert nano.release().tensorrt == "10.3.0" and nano.release("8.5.2.2").jetpack == "5.1"
    assert get_profile("thor").release("11.4").jetpack == "7.2.2"
    with pytest.raises(ConfigError, match="orin-nano-8gb has no JetPack release with TensorRT 11.4"):
        nano.release("11.4")


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown device 'orin-pico'; known: agx-orin-32gb") as err:
        get_profile("orin-pico")
    assert err.value.hint == "emotrt devices"


def test_invalid_profile_data_names_the_field(tmp_path):
    data = json.loads(PROFILES_FILE.read_text())
    data["profiles"][0]["workspace_mib"] = 10 ** 6
    data["profiles"][0]["default_power_mode"] = "99W"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="workspace_mib=1000000 must be within half.*default_power_mode '99W'"):
        load_profiles(path)


def test_probe_matches_a_profile_by_board_and_gpu():
    found = match_device(DeviceFingerprint("10.3.0", "8.7", "36.4.3", "12.6", "NVIDIA Jetson Orin Nano Developer Kit"))
    assert "orin-nano-8gb" in [p.id for p in found] and "xavier-nx" not in [p.id for p in found]
