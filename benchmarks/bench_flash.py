"""``emotrt flash`` measured in one run on loopback devices (real sshd on 127.0.0.1, issue 13).

    nice .venv/bin/python benchmarks/bench_flash.py [--bundle BUNDLE] [--work DIR]

Without ``--bundle`` the default bundle is made first (benchmarks/default_bundle.py: the shipped
architectures with random weights). Prints, measured in this one run:

- full flash of the bundle to one device (venv already there) and the first flash that also installs
  the venv from a wheel built here;
- no-op re-flash / full flash (goal <= 0.1);
- bytes sent when one model (ser) changes / full bundle, and / the changed files' size (goal <= 1.2);
- eight devices in parallel / one device (goal <= 2).

The devices are the test bed of tests/devices/sshbed.py (probe facts from placed files; engines
built on the "device" against the project's TensorRT double). All devices share this machine's
CPU cores: the parallel figure includes eight devices' self-tests and health checks competing
for them, work a real fleet does on eight separate boards.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


TARGETS = ["orin-nano-8gb"]  # scripts/demo.sh's target, which the loopback devices probe as


def rebundle(models: Path, speakers: Path, out: Path) -> Path:
    """A bundle of an export directory for TARGETS (default_bundle.py writes one without targets)."""
    from emotrt.devices.bundle_writer import collect_models, write_bundle

    return write_bundle(out, collect_models(models), models / "env", models / "testvectors",
                        speakers_dir=speakers if (speakers / "index.json").is_file() else None, targets=TARGETS, force=True)


def changed_ser_bundle(models: Path, speakers: Path, out: Path) -> Path:
    """The same bundle with one model changed: one SER weight perturbed, its test vector recomputed."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from emotrt.runtime.backends import load_engine

    models = Path(shutil.copytree(str(models), str(out.parent / (out.name + ".models"))))
    graph = onnx.load(str(models / "ser.onnx"))
    init = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(init).copy()
    array.flat[0] += 0.01
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(graph, str(models / "ser.onnx"))
    vectors = models / "testvectors" / "ser.npz"
    if vectors.is_file():
        data = dict(np.load(str(vectors)))
        feed = {k[len("input."):]: v for k, v in data.items() if k.startswith("input.")}
        with load_engine(models / "ser.onnx") as engine:
            outputs = engine.run(feed)
        data.update({"output." + k: v for k, v in outputs.items()})
        np.savez(str(vectors), **data)
    return rebundle(models, speakers, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a bundle made by benchmarks/default_bundle.py (default: make one)")
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--devices", type=int, default=8)
    args = parser.parse_args()

    from emotrt.devices import device_venv
    from emotrt.devices.flash import FleetOptions, FlashOptions, LocalBundle, flash_device, flash_fleet
    from emotrt.devices.inventory import DeviceEntry
    from tests.devices import flashbed
    from tests.devices.sshbed import SSHBed

    work = args.work or Path(tempfile.mkdtemp(prefix="emotrt-bench-flash-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle_path = args.bundle
    if bundle_path is None:
        from benchmarks.default_bundle import build

        bundle_path = build(work / "default")
    models, speakers = bundle_path.parent / (bundle_path.name + ".work") / "models", bundle_path / "speakers"
    bundle_path = rebundle(models, speakers, work / "base")
    changed_path = changed_ser_bundle(models, speakers, work / "changed")
    bundle, changed = LocalBundle.open(bundle_path), LocalBundle.open(changed_path)
    bed = SSHBed(work / "bed", env={"PYTHONPATH": flashbed.device_pythonpath(work), "XDG_CACHE_HOME": str(work / "device-cache")})
    options = FlashOptions(service=False, known_hosts=bed.known_hosts)

    def entry(device):
        return DeviceEntry(device.name, "127.0.0.1", device.port, "root", str(bed.client_key), str(device.root), ("bench",),
                           flashbed.system_python())

    def run(device, what, **kw):
        result = flash_device(entry(device), what, options if not kw else FlashOptions(service=False, known_hosts=bed.known_hosts, **kw))
        if not result.ok:
            raise SystemExit("{} failed: {}".format(device.name, result.reason))
        return result

    try:
        device_venv.build_wheel()  # once, outside every timing
        first_dev = bed.add("first")
        first = run(first_dev, bundle)
        venv = (first_dev.root / "venv").resolve()
        one = bed.add("one")
        flashbed.link_venv(one.root, venv)
        full = run(one, bundle)
        noop = run(one, bundle)
        delta = run(one, changed)
        changed_rels = {r for r, (sha, _) in changed.files.items() if bundle.files.get(r, (None,))[0] != sha}
        changed_bytes = sum(changed.files[r][1] for r in changed_rels)
        fleet = [bed.add("fleet{}".format(i)) for i in range(args.devices)]
        for device in fleet:
            flashbed.link_venv(device.root, venv)
        start = time.monotonic()
        results = flash_fleet([entry(d) for d in fleet], bundle, options, FleetOptions(parallel=args.devices))
        parallel = time.monotonic() - start
        if not all(r.ok for r in results):
            raise SystemExit("fleet flash failed: {}".format([r.reason for r in results if not r.ok]))
    finally:
        bed.stop()
    figures = {
        "bundle": {"id": bundle.bundle_id, "files": len(bundle.files), "bytes": bundle.total_bytes},
        "first_flash_with_venv_install_s": first.seconds,
        "full_flash_s": full.seconds,
        "full_flash_engines_built": full.engines_built,
        "noop_reflash_s": noop.seconds,
        "noop_over_full": round(noop.seconds / full.seconds, 4),
        "noop_wire_bytes": noop.wire_bytes,
        "one_model_changed": {"files": sorted(changed_rels), "changed_bytes": changed_bytes, "bytes_sent": delta.bytes_sent,
                              "wire_bytes": delta.wire_bytes, "engines_built": delta.engines_built, "seconds": delta.seconds},
        "one_model_bytes_over_full_bundle": round(delta.bytes_sent / bundle.total_bytes, 4),
        "one_model_bytes_over_changed_files": round(delta.bytes_sent / changed_bytes, 4),
        "parallel_devices": args.devices,
        "parallel_wall_s": round(parallel, 3),
        "parallel_over_one": round(parallel / full.seconds, 3),
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
