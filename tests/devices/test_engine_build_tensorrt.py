"""Real TensorRT builds on a device (skipped here); the same assertions run against the test double in test_engine_build.py."""
import pytest

from emotrt.devices.bundle_build import build_device_engines
from emotrt.devices.selftest import run_selftest
from emotrt.runtime.bundle_reader import Bundle
from emotrt.runtime.fingerprint import probe_device


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.jetson
def test_real_engines_are_built_found_and_selftested(bundle_copy):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it only comes with JetPack)")
    device = probe_device()
    if not device.can_build:
        pytest.skip("no CUDA GPU visible to TensorRT here")
    summary = build_device_engines(bundle_copy, device=device)
    assert summary.engines_built
    bundle = Bundle.open(bundle_copy)
    entry = bundle.engine_for("tse_step", "fp32", device)
    assert (bundle.root / entry.plan).stat().st_size > 0
    assert run_selftest(bundle, device=device).passed
