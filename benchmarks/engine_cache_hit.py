"""Engine cache hit vs first build, measured in one run (issue 6: "a hit skips the build in under a second").

Runs on any machine: builds go through the recording TensorRT TEST DOUBLE
(tests/trt_double.py), so the first-build time here is emotrt's own
overhead plus an instant fake build, NOT a TensorRT build (minutes on a Jetson).
What it shows is the cost of a hit: verifying the bundle and matching
fingerprints, with no builder call at all.

    .venv/bin/python -m benchmarks.engine_cache_hit
"""
import tempfile
import time
from pathlib import Path

from emotrt.devices.bundle_build import BuildOptions, build_bundle, build_device_engines
from emotrt.runtime.fingerprint import DeviceFingerprint
from tests.trt_double import make_tensorrt
from tests.fixtures.tiny_graphs import write_calibration_dir, write_export_dir


def main() -> None:
    root = Path(tempfile.mkdtemp())
    export, calibration = write_export_dir(root / "export"), write_calibration_dir(root / "calibration")
    device = DeviceFingerprint("10.3.0", "8.7", "36.4.3", "12.6", "NVIDIA Jetson Orin Nano Developer Kit")
    trt = make_tensorrt("10.3.0")
    build_bundle(BuildOptions(export, root / "bundle", calibration), device=DeviceFingerprint())
    start = time.perf_counter()
    first = build_device_engines(root / "bundle", device=device, trt=trt)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = build_device_engines(root / "bundle", device=device, trt=trt)
    hit_s = time.perf_counter() - start
    print("first build (test double, {} plans): {:.3f} s".format(len(first.engines_built), first_s))
    print("all hits ({} plans, builder calls: {}): {:.3f} s".format(
        len(again.engines_cached), len(trt.built) - len(first.engines_built), hit_s))
    print("hit / first-build time ratio: {:.2f}".format(hit_s / first_s))


if __name__ == "__main__":
    main()
