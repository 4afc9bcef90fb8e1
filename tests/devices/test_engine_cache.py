"""Engine cache keyed by the full fingerprint: hits skip the build, mismatches never load."""
import json

import pytest

from emotrt.devices.engine_cache import EngineCache
from emotrt.runtime.errors import FingerprintMismatchError
from emotrt.runtime.fingerprint import DeviceFingerprint, EngineFingerprint

FP = EngineFingerprint(tensorrt="10.3.0", compute_capability="8.7", l4t="36.4.0", cuda="12.6", onnx_sha256="ab" * 32,
                       precision_recipe="int8", shapes={"audio": (1, 320)})
ORIN = DeviceFingerprint("10.3.0", "8.7", "36.4.0", "12.6", "orin")


def fake_build(calls):
    def build(plan, timing_cache):
        calls.append(plan)
        plan.write_bytes(b"plan-bytes")
    return build


def test_miss_builds_then_hit_skips(tmp_path):
    cache, calls = EngineCache(tmp_path), []
    plan, hit = cache.get_or_build(FP, "tse_step", fake_build(calls))
    assert (hit, len(calls), plan.parent.name) == (False, 1, FP.fingerprint_id)
    again, hit = cache.get_or_build(FP, "tse_step", fake_build(calls))
    assert (again, hit, len(calls)) == (plan, True, 1)
    assert cache.load_plan(plan, ORIN) == b"plan-bytes"


def test_another_fingerprint_is_another_entry(tmp_path):
    cache, calls = EngineCache(tmp_path), []
    cache.get_or_build(FP, "tse_step", fake_build(calls))
    other = EngineFingerprint(**dict(FP.to_dict(), opt_level=5))
    _, hit = cache.get_or_build(other, "tse_step", fake_build(calls))
    assert not hit and len(calls) == 2


def test_a_tampered_fingerprint_file_is_caught_by_field(tmp_path):
    cache = EngineCache(tmp_path, rebuild="emotrt build bundle/")
    plan, _ = cache.get_or_build(FP, "tse_step", fake_build([]))
    meta = plan.with_suffix(".fingerprint.json")
    meta.write_text(json.dumps(dict(json.loads(meta.read_text()), compute_capability="7.2")))
    with pytest.raises(FingerprintMismatchError, match="compute_capability is '7.2' in the plan but '8.7' here") as err:
        cache.lookup(FP, "tse_step")
    assert err.value.hint == "emotrt build bundle/"


@pytest.mark.parametrize("device,field", [
    (DeviceFingerprint("10.3.0", "7.2", "36.4.0", "12.6"), "compute_capability"),
    (DeviceFingerprint("8.6.2", "8.7", "36.3.0", "12.2"), "tensorrt"),
])
def test_a_plan_for_another_device_is_never_loaded(tmp_path, device, field):
    cache = EngineCache(tmp_path)
    plan, _ = cache.get_or_build(FP, "tse_step", fake_build([]))
    with pytest.raises(FingerprintMismatchError, match="{} is".format(field)):
        cache.load_plan(plan, device)


def test_a_plan_without_its_fingerprint_is_never_loaded(tmp_path):
    plan = tmp_path / "x" / "tse_step.plan"
    plan.parent.mkdir()
    plan.write_bytes(b"?")
    with pytest.raises(FingerprintMismatchError, match="fingerprint is unknown"):
        EngineCache(tmp_path).load_plan(plan, ORIN)
