"""``emotrt flash`` against real OpenSSH servers on 127.0.0.1, one per "device" (issue 13).

Real parts: sshd (started and stopped here), paramiko, the device's own emotrt in ``ROOT/venv``
(hashing, verifying, self-test and the health-check pipeline on ONNX Runtime). Each device's probe
facts (L4T release, board, TensorRT and CUDA versions, memory) come from files this test places
under a fake filesystem root that the device reads through ``$EMOTRT_PROBE_ROOT`` (tests/devices/sshbed.py).
Engine builds on the "device" run the real builder against the project's TensorRT double
(tests/trt_double.py), because no TensorRT runs here. See tests/devices/flashbed.py for the venv fast path.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emotrt.devices import device_venv
from emotrt.devices import flash as flash_mod
from emotrt.devices.device_root import DeviceRoot
from emotrt.devices.flash import FleetOptions, FlashOptions, LocalBundle, Observer, flash_device, flash_fleet
from emotrt.devices.inventory import DeviceEntry, Inventory, InventoryError
from emotrt.devices.remote import AuthenticationError, HostKeyError, UnreachableError, connect
from tests.devices import flashbed
from tests.devices.sshbed import ORIN_NANO, SSHD, XAVIER_NX, SSHBed

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ session-wide test bed


@pytest.fixture(scope="session")
def flash_work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("flash")


@pytest.fixture(scope="session")
def bundles(flash_work, export_dir, calibration_dir):
    """A (base), B (ser changed: graphs + test vector), C (environment table changed), N (no speaker: fails its health check)."""
    return {k: LocalBundle.open(v) for k, v in flashbed.make_bundles(flash_work, export_dir, calibration_dir).items()}


@pytest.fixture(scope="session")
def bed(flash_work):
    if not os.access(SSHD, os.X_OK):
        pytest.skip("no OpenSSH server at {} (scripts/setup-system.sh installs openssh-server)".format(SSHD))
    env = {"PYTHONPATH": flashbed.device_pythonpath(flash_work), "XDG_CACHE_HOME": str(flash_work / "device-cache")}
    bed = SSHBed(flash_work / "bed", env=env)
    yield bed
    bed.stop()


@pytest.fixture(scope="session")
def seed_flash(bed, bundles, flash_work):
    """The real venv path, once: a wheel of this emotrt built here, sent with --wheelhouse, installed on the device."""
    device = bed.add("seed")
    wheelhouse = flash_work / "wheelhouse"
    wheelhouse.mkdir()
    shutil.copy(str(device_venv.build_wheel()), str(wheelhouse))
    result = flash_device(entry(bed, device), bundles["A"], options(bed, wheelhouse=wheelhouse))
    assert result.result == "ok", result.reason
    return device, result, (device.root / "venv").resolve()


def entry(bed, device, name=None) -> DeviceEntry:
    return DeviceEntry(name or device.name, "127.0.0.1", device.port, os.environ.get("USER") or "root", str(bed.client_key),
                       str(device.root), ("bed",), flashbed.system_python())


def options(bed, **kw) -> FlashOptions:
    kw.setdefault("service", False)
    return FlashOptions(known_hosts=bed.known_hosts, **kw)


@pytest.fixture
def new_device(bed, seed_flash, request):
    """A fresh loopback device whose ROOT/venv links the session's venv (the fast path)."""
    made = []

    def make(facts=ORIN_NANO, venv=True, trust=True):
        name = "{}-{}".format(request.node.name[5:25].replace("_", "-").strip("-"), len(made))
        device = bed.add(name, facts, trust=trust)
        if venv:
            flashbed.link_venv(device.root, seed_flash[2])
        made.append(device)
        return device

    return make


def wait_settled(root: Path, timeout: float = 60) -> None:
    """Until no activation is pending on the device (a cut one rolls itself back)."""
    deadline = time.monotonic() + timeout
    while (root / "pending.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (root / "pending.json").exists(), "the device never finished rolling back"


def current(root: Path):
    return DeviceRoot(root).link("current")


def assert_runs(root: Path, bundle: LocalBundle) -> None:
    """ROOT/current is ``bundle`` and its self-test passes."""
    device = DeviceRoot(root)
    assert device.link("current") == bundle.bundle_id
    assert device.selftest(bundle.bundle_id)["passed"]


def emotrt_cli(*args, cwd=None, check=False):
    return subprocess.run([str(REPO / ".venv" / "bin" / "emotrt")] + [str(a) for a in args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, COLUMNS="200"))


def write_inventory(bed, path: Path, devices, groups=("bed",)) -> Path:
    path.write_text("".join(bed.entry_toml(d, flashbed.system_python(), groups) for d in devices))
    return path


# ------------------------------------------------------------------ Done when: full flash, no-op re-flash


def test_the_real_venv_path_installs_this_emotrt_from_a_wheelhouse(seed_flash, bed, tmp_path):
    device, result, venv = seed_flash
    assert result.venv.startswith("0.1.0-") and venv.parent == device.root / "venvs"
    out = subprocess.run([str(device.root / "venv" / "bin" / "python"), "-c", "import emotrt; print(emotrt.__file__)"],
                         capture_output=True, text=True, cwd=str(device.dir),
                         env=dict(os.environ, PYTHONPATH=flashbed.device_pythonpath(device.dir.parent.parent)))
    assert out.stdout.startswith(str(device.root / "venv" / "lib")), out.stderr  # the wheel in ROOT/venv, not the source tree
    with connect(entry(bed, device), known_hosts=bed.known_hosts) as remote:  # the shape `emotrt profile` uses (issue 14)
        assert remote.emotrt(["--version"]).stdout.strip() == "emotrt 0.1.0"
        fetched = remote.get(str(device.root / "state.json"), tmp_path / "state.json")
        assert json.loads(fetched.read_text())["current"] == result.after
        failed = remote.run(["false"], check=False)
        assert failed.returncode == 1 and failed.stdout == ""


def test_full_flash_then_reflash_of_the_same_bundle_is_a_noop(new_device, bed, bundles):
    device = new_device()
    first = flash_device(entry(bed, device), bundles["A"], options(bed))
    assert first.result == "ok", first.reason
    assert first.bytes_sent == bundles["A"].total_bytes and first.engines_built > 0 and first.venv == "kept"
    assert_runs(device.root, bundles["A"])
    again = flash_device(entry(bed, device), bundles["A"], options(bed))
    assert (again.result, again.bytes_sent, again.engines_built, again.files_sent) == ("no-op", 0, 0, 0)
    assert again.wire_bytes < 40000  # SSH handshake and the probe only


# ------------------------------------------------------------------ Done when: deltas


def _changed(a: LocalBundle, b: LocalBundle):
    return {rel for rel, (sha, _) in b.files.items() if a.files.get(rel, (None,))[0] != sha}


def test_a_bundle_differing_in_one_model_sends_only_its_files_and_rebuilds_only_its_engines(new_device, bed, bundles):
    device = new_device()
    assert flash_device(entry(bed, device), bundles["A"], options(bed)).result == "ok"
    changed = _changed(bundles["A"], bundles["B"])
    assert "models/ser.onnx" in changed and not any("tse_step" in rel for rel in changed)
    result = flash_device(entry(bed, device), bundles["B"], options(bed))
    assert result.result == "ok", result.reason
    size = sum(bundles["B"].files[rel][1] for rel in changed)
    assert result.files_sent == len(changed) and result.bytes_sent <= 1.2 * size
    history = DeviceRoot(device.root).state()["history"]
    assert history[-1]["engines_built"] and all(e.startswith("ser/") for e in history[-1]["engines_built"])
    assert_runs(device.root, bundles["B"])
    # only the environment table differs: env files only, nothing rebuilt
    changed = _changed(bundles["B"], bundles["C"]) - {"models/ser.onnx", "models/ser.int8.onnx", "models/ser.fp16.onnx",
                                                       "models/ser.precision.json", "testvectors/ser.npz"}
    assert changed and all(rel.startswith("env/") or rel == "manifest.json" for rel in changed)
    result = flash_device(entry(bed, device), bundles["C"], options(bed))
    assert result.result == "ok" and result.engines_built == 0
    assert result.bytes_sent <= 1.2 * sum(bundles["C"].files[rel][1] for rel in _changed(bundles["B"], bundles["C"]))


# ------------------------------------------------------------------ Done when: cuts


class CutAt(Observer):
    def __init__(self, at=None, after_bytes=None):
        self.at, self.after_bytes, self.sent_bytes = at, after_bytes, 0

    def step(self, device, name, remote):
        if name == self.at and remote is not None:
            remote.cut()

    def sent(self, device, rel, n, remote):
        self.sent_bytes += n
        if self.after_bytes is not None and self.sent_bytes >= self.after_bytes:
            self.after_bytes = None
            remote.cut()


def _arrived(root: Path, bundle: LocalBundle, rels) -> int:
    base = root / "staging" / bundle.bundle_id
    total = 0
    for rel in rels:
        for where in ("files", "partial"):
            if (base / where / rel).is_file():
                total += (base / where / rel).stat().st_size
                break
    return total


def test_a_cut_in_the_middle_of_the_transfer_resumes_without_resending(new_device, bed, bundles, monkeypatch):
    device = new_device()
    assert flash_device(entry(bed, device), bundles["C"], options(bed)).result == "ok"
    monkeypatch.setattr(flash_mod, "CHUNK", 1024)  # several writes per file, so the cut leaves a partial file
    need = _changed(bundles["C"], bundles["B"])
    total = sum(bundles["B"].files[rel][1] for rel in need)
    cut = flash_device(entry(bed, device), bundles["B"], options(bed), CutAt(after_bytes=total // 2))
    assert cut.result == "failed" and "connection" in cut.reason and cut.step == "transfer"
    assert_runs(device.root, bundles["C"])
    arrived = _arrived(device.root, bundles["B"], need)
    assert 0 < arrived < total
    assert any(p.is_file() and p.stat().st_size % 1024 == 0 for p in (device.root / "staging" / bundles["B"].bundle_id / "partial").rglob("*"))
    resumed = flash_device(entry(bed, device), bundles["B"], options(bed))
    assert resumed.result == "ok", resumed.reason
    assert resumed.bytes_sent == total - arrived
    assert_runs(device.root, bundles["B"])


@pytest.mark.slow
def test_a_cut_at_every_step_boundary_leaves_the_previous_bundle_running(new_device, bed, bundles):
    device = new_device()
    assert flash_device(entry(bed, device), bundles["A"], options(bed)).result == "ok"
    need = _changed(bundles["A"], bundles["B"])
    sent = 0
    for step in flash_mod.STEPS[1:]:
        result = flash_device(entry(bed, device), bundles["B"], options(bed), CutAt(at=step))
        assert result.result == "failed" and "connection" in result.reason, (step, result)
        sent += result.bytes_sent
        wait_settled(device.root)
        assert_runs(device.root, bundles["A"])
    rollbacks = [h for h in DeviceRoot(device.root).state()["history"] if h["action"] == "rollback"]
    assert len(rollbacks) == 3  # cuts after the switch, the restart and the health check: rolled back on the device
    assert all("went away before committing" in h["reason"] and h["after"] == bundles["A"].bundle_id for h in rollbacks)
    final = flash_device(entry(bed, device), bundles["B"], options(bed))
    assert final.result == "ok", final.reason
    assert final.bytes_sent == 0 and sent == sum(bundles["B"].files[rel][1] for rel in need)  # nothing sent twice
    assert_runs(device.root, bundles["B"])


# ------------------------------------------------------------------ Done when: corruption, incompatibility


def test_a_byte_corrupted_in_transit_is_detected_and_refused(new_device, bed, bundles, monkeypatch, tmp_path):
    from emotrt.devices.remote import Remote

    device = new_device()
    assert flash_device(entry(bed, device), bundles["A"], options(bed)).result == "ok"
    original = Remote.put

    def corrupting_put(self, local, remote, **kw):
        if str(remote).endswith("ser.onnx"):
            bad = tmp_path / "bad.onnx"
            data = bytearray(Path(local).read_bytes())
            data[len(data) // 2] ^= 0x40
            bad.write_bytes(bytes(data))
            local = bad
        return original(self, local, remote, **kw)

    monkeypatch.setattr(Remote, "put", corrupting_put)
    result = flash_device(entry(bed, device), bundles["B"], options(bed))
    assert result.result == "failed" and "corrupted in transit" in result.reason and "models/ser.onnx" in result.reason
    assert result.step == "commit"
    assert_runs(device.root, bundles["A"])
    monkeypatch.setattr(Remote, "put", original)
    again = flash_device(entry(bed, device), bundles["B"], options(bed))
    assert again.result == "ok" and again.files_sent == 1 and again.bytes_sent == bundles["B"].files["models/ser.onnx"][1]


def test_an_incompatible_device_or_full_disk_is_refused_before_any_byte_is_copied(new_device, bed, bundles):
    xavier = new_device(XAVIER_NX)
    before = sorted(p.name for p in xavier.root.iterdir())
    result = flash_device(entry(bed, xavier), bundles["A"], options(bed))
    assert result.result == "failed" and result.step == "preflight" and result.bytes_sent == 0
    assert "refused before copying anything" in result.reason and "Xavier NX" in result.reason and "orin-nano-8gb" in result.reason
    assert sorted(p.name for p in xavier.root.iterdir()) == before  # no staging/, no bundles/
    orin = new_device()
    result = flash_device(entry(bed, orin), bundles["A"], options(bed, min_free_bytes=1 << 60))
    assert result.result == "failed" and "too little disk" in result.reason and result.bytes_sent == 0
    assert not (orin.root / "staging").exists()


# ------------------------------------------------------------------ Done when: health check rollback (CLI, exit status)


def test_a_bundle_failing_its_health_check_is_rolled_back_with_the_reason(new_device, bed, bundles, tmp_path):
    device = new_device()
    assert flash_device(entry(bed, device), bundles["A"], options(bed)).result == "ok"
    inventory = write_inventory(bed, tmp_path / "devices.toml", [device])
    proc = emotrt_cli("flash", bundles["N"].root, "--device", device.name, "--inventory", inventory, "--no-service",
                      "--known-hosts", bed.known_hosts)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "health check" in proc.stderr and "enrolled speaker" in proc.stderr and "rolled back" in proc.stderr
    assert_runs(device.root, bundles["A"])
    last = DeviceRoot(device.root).state()["history"][-1]
    assert last["action"] == "rollback" and last["before"] == bundles["N"].bundle_id and "enrolled speaker" in last["reason"]
    assert DeviceRoot(device.root).link("previous") is None  # as before the failed flash


# ------------------------------------------------------------------ Done when: signatures, host keys, quoting


def test_a_device_with_trusted_keys_refuses_unsigned_and_wrongly_signed_bundles(new_device, bed, bundles, tmp_path):
    from emotrt.devices.signing import generate_key, sign_bundle

    device = new_device()
    keys = {name: generate_key(tmp_path / name) for name in ("old", "new", "stranger")}
    (device.root / "trusted_keys").mkdir()
    for name in ("old", "new"):  # two trusted keys: rotation
        shutil.copy(str(keys[name][1]), str(device.root / "trusted_keys" / (name + ".pub")))
    unsigned = flash_device(entry(bed, device), bundles["A"], options(bed))
    assert unsigned.result == "failed" and "not signed" in unsigned.reason and current(device.root) is None
    bundle = flashbed.copy_bundle(bundles["A"].root, tmp_path / "signed")
    sign_bundle(bundle, keys["stranger"][0])
    wrong = flash_device(entry(bed, device), LocalBundle.open(bundle), options(bed))
    assert wrong.result == "failed" and "verifies with none of the 2 trusted key(s)" in wrong.reason
    assert wrong.bytes_sent == (bundle / "manifest.sig").stat().st_size  # only the new signature travelled
    proc = emotrt_cli("sign", bundle, "--key", keys["new"][0])
    assert proc.returncode == 0, proc.stderr
    ok = flash_device(entry(bed, device), LocalBundle.open(bundle), options(bed))
    assert ok.result == "ok", ok.reason
    assert current(device.root) == LocalBundle.open(bundle).bundle_id


def test_an_unknown_or_changed_host_key_is_refused(new_device, bed, tmp_path):
    device = new_device(trust=False)
    known = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError, match="not in .*known_hosts; refusing") as err:
        with connect(entry(bed, device), known_hosts=known):
            pass
    assert "--accept-new-host-key" in err.value.hint
    with connect(entry(bed, device), known_hosts=known, accept_new_host_key=True) as remote:
        assert remote.run(["true"]).returncode == 0
    assert device.host_key_pub in known.read_text()
    with connect(entry(bed, device), known_hosts=known) as remote:  # now known
        remote.run(["true"])
    known.write_text(known.read_text().replace(device.host_key_pub, bed.devices[0].host_key_pub))
    with pytest.raises(HostKeyError, match="CHANGED"):
        with connect(entry(bed, device), known_hosts=known):
            pass


HOSTILE = ["two words", "it's", 'say "hi"', "$(touch PWNED)", "`touch PWNED`", "line\nbreak", "ünïcødé ☃", "-rf", "*", "a;b|c&d", ""]


def test_hostile_names_are_quoted_in_commands_and_paths(new_device, bed, bundles, tmp_path):
    device = new_device()
    with connect(entry(bed, device), known_hosts=bed.known_hosts) as remote:
        out = remote.run(["python3", "-c", "import json,sys; print(json.dumps(sys.argv[1:]))"] + HOSTILE, timeout=30).stdout
        assert json.loads(out) == HOSTILE
    # a ROOT whose path is hostile all the way through: transfer, device commands, links, state
    hostile_root = device.dir / "R $(touch PWNED) 'q\" `touch PWNED` ünï;x"
    hostile_root.mkdir()
    flashbed.link_venv(hostile_root, (device.root / "venv").resolve())
    e = DeviceEntry(device.name, "127.0.0.1", device.port, os.environ.get("USER") or "root", str(bed.client_key),
                    str(hostile_root), (), flashbed.system_python())
    result = flash_device(e, bundles["A"], options(bed))
    assert result.result == "ok", result.reason
    assert_runs(hostile_root, bundles["A"])
    assert not list(device.dir.rglob("PWNED")) and not Path.home().joinpath("PWNED").exists()
    with pytest.raises(InventoryError, match="name"):
        DeviceEntry("bad name; rm -rf /", "h")


# ------------------------------------------------------------------ Done when: fleet


def test_four_devices_in_parallel_with_a_canary_give_a_correct_table(new_device, bed, bundles, tmp_path):
    fleet = [new_device() for _ in range(4)]
    inventory = write_inventory(bed, tmp_path / "devices.toml", fleet, groups=("fleet",))
    proc = emotrt_cli("flash", bundles["A"].root, "--group", "fleet", "--inventory", inventory, "--no-service",
                      "--parallel", "4", "--canary", "1", "--json", "--known-hosts", bed.known_hosts)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    rows = {r["device"]: r for r in report["results"]}
    assert list(rows) == [d.name for d in fleet] and report["summary"] == {"devices": 4, "ok": 4, "failed": 0, "skipped": 0}
    for d in fleet:
        r = rows[d.name]
        assert (r["result"], r["before"], r["after"], r["bytes_sent"]) == ("ok", None, bundles["A"].bundle_id, bundles["A"].total_bytes)
        assert r["engines_built"] > 0 and r["seconds"] > 0
        assert current(d.root) == bundles["A"].bundle_id
    table = emotrt_cli("flash", bundles["A"].root, "--all", "--inventory", inventory, "--no-service", "--known-hosts", bed.known_hosts)
    assert table.returncode == 0, table.stderr
    for d in fleet:
        line = next(l for l in table.stdout.splitlines() if d.name in l)
        assert "no-op" in line and "{} -> {}".format(bundles["A"].bundle_id, bundles["A"].bundle_id) in line


def test_a_failing_canary_with_max_failures_0_touches_no_other_device(new_device, bed, bundles):
    canary = new_device(XAVIER_NX)
    others = [new_device() for _ in range(3)]
    listing = {d.name: sorted(str(p) for p in d.root.rglob("*")) for d in others}
    results = flash_fleet([entry(bed, d) for d in [canary] + others], bundles["A"], options(bed),
                          FleetOptions(parallel=4, canary=1, max_failures=0))
    assert [r.result for r in results] == ["failed", "skipped", "skipped", "skipped"]
    assert all("rollout stopped: canary {} failed".format(canary.name) in r.reason for r in results[1:])
    for d in others:
        assert sorted(str(p) for p in d.root.rglob("*")) == listing[d.name]
        assert "Accepted publickey" not in (d.dir / "sshd.log").read_text()  # never even connected


def test_max_failures_stops_the_rollout(new_device, bed, bundles):
    devices = [new_device(XAVIER_NX), new_device(XAVIER_NX), new_device(), new_device()]
    results = flash_fleet([entry(bed, d) for d in devices], bundles["A"], options(bed), FleetOptions(parallel=1, max_failures=1))
    assert [r.result for r in results] == ["failed", "failed", "skipped", "skipped"]
    assert "2 failure(s) > --max-failures 1" in results[2].reason


# ------------------------------------------------------------------ Done when: the unit


def test_the_generated_unit_passes_systemd_analyze_verify(tmp_path):
    from emotrt.devices.service import service_env, service_unit

    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (scripts/setup-system.sh installs systemd)")
    root = tmp_path / "opt" / "emotrt"
    (root / "venv" / "bin").mkdir(parents=True)
    exe = root / "venv" / "bin" / "emotrt"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "emotrt.service"
    unit.write_text(service_unit(str(root), user="root"))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    text = unit.read_text()
    for line in ("Restart=on-failure", "ProtectSystem=strict", "ReadWritePaths={}".format(root), "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "SupplementaryGroups=audio"):
        assert line in text
    assert "EMOTRT_SPEAKER='a b'" in service_env("a b", "busy_cafe")
    with pytest.raises(ValueError):
        service_unit("/opt/emo trt")


# ------------------------------------------------------------------ rollback, status, keep, dry run


def test_rollback_status_and_pruning_from_the_command_line(new_device, bed, bundles, tmp_path):
    device = new_device()
    inventory = write_inventory(bed, tmp_path / "devices.toml", [device])
    for name in ("A", "B", "C"):
        assert flash_device(entry(bed, device), bundles[name], options(bed, keep=1)).result == "ok"
    assert sorted(os.listdir(device.root / "bundles")) == sorted([bundles["B"].bundle_id, bundles["C"].bundle_id])
    proc = emotrt_cli("status", "--device", device.name, "--inventory", inventory, "--json", "--known-hosts", bed.known_hosts)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)[device.name]
    assert (status["current"], status["previous"]) == (bundles["C"].bundle_id, bundles["B"].bundle_id)
    assert status["last_flash"]["after"] == bundles["C"].bundle_id and status["last_flash"]["result"] == "ok"
    proc = emotrt_cli("rollback", "--device", device.name, "--inventory", inventory, "--no-service", "--known-hosts", bed.known_hosts)
    assert proc.returncode == 0, proc.stderr
    assert "rolled back {} -> {}".format(bundles["C"].bundle_id, bundles["B"].bundle_id) in proc.stdout
    assert_runs(device.root, bundles["B"])
    from emotrt.devices.bundle_writer import pack_tar

    tar = LocalBundle.open(pack_tar(bundles["A"].root, tmp_path / "A.tar"))
    assert (tar.bundle_id, tar.files) == (bundles["A"].bundle_id, bundles["A"].files)
    dry = flash_device(entry(bed, device), tar, options(bed, dry_run=True))
    assert dry.result == "dry-run" and "would send" in dry.reason and dry.bytes_sent == 0
    assert not (device.root / "staging" / bundles["A"].bundle_id).exists()


# ------------------------------------------------------------------ errors


def test_unreachable_host_and_refused_key_are_one_line_errors(bed, new_device, tmp_path):
    from tests.devices.sshbed import free_port

    device = new_device(venv=False)
    dead = DeviceEntry("dead", "127.0.0.1", free_port(), "root", str(bed.client_key))
    with pytest.raises(UnreachableError, match="dead: cannot reach root@127.0.0.1") as err:
        with connect(dead, known_hosts=bed.known_hosts):
            pass
    assert "\n" not in str(err.value)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    stranger = DeviceEntry(device.name, "127.0.0.1", device.port, "root", str(tmp_path / "other"))
    with pytest.raises(AuthenticationError, match="refused our key"):
        with connect(stranger, known_hosts=bed.known_hosts):
            pass
    with pytest.raises(AuthenticationError, match="does not exist"):
        with connect(DeviceEntry("x", "127.0.0.1", device.port, "root", str(tmp_path / "nope")), known_hosts=bed.known_hosts):
            pass


def test_a_device_without_python_is_refused_with_the_fix(new_device, bed, bundles):
    device = new_device(venv=False)
    e = DeviceEntry(device.name, "127.0.0.1", device.port, "root", str(bed.client_key), str(device.root), (), "/nonexistent/python3")
    result = flash_device(e, bundles["A"], options(bed))
    assert result.result == "failed" and "probing with /nonexistent/python3 failed" in result.reason
    assert "`python` in the inventory" in result.reason


def test_the_probe_reads_every_fact_relative_to_its_root(tmp_path):
    from emotrt.devices.device_probe import probe_facts
    from emotrt.devices.device_root import device_fingerprint
    from tests.devices.sshbed import write_facts

    write_facts(tmp_path / "fs", ORIN_NANO)
    facts = probe_facts(str(tmp_path / "root"), str(tmp_path / "fs"))
    assert (facts["l4t"], facts["tensorrt"], facts["cuda"]) == ("36.4.0", "10.3.0", "12.6")
    assert facts["board"].startswith("NVIDIA Jetson Orin Nano") and facts["mem_total"] == 7800000 * 1024
    assert facts["free_bytes"] > 0 and facts["emotrt"] is None and facts["current"] is None
    fp = device_fingerprint(str(tmp_path / "fs"))
    assert (fp.tensorrt, fp.compute_capability, fp.l4t, fp.cuda) == ("10.3.0", "8.7", "36.4.0", "12.6")
    assert probe_facts(str(tmp_path / "root"), str(tmp_path / "empty"))["l4t"] is None


def test_bad_inventories_and_options_are_one_line_errors(tmp_path):
    from emotrt.runtime.errors import ConfigError

    path = tmp_path / "devices.toml"
    with pytest.raises(InventoryError, match="no inventory at"):
        Inventory.load(path)
    cases = {
        "[devices.a\nhost=": "not valid TOML",
        "[devices.a]\nport = 22\n": "has no host",
        "[devices.a]\nhost = \"h\"\ncolour = \"red\"\n": "unknown key",
        "[devices.a]\nhost = \"h\"\nport = 70000\n": "port 70000",
        "[devices.a]\nhost = \"h\"\nroot = \"relative\"\n": "absolute path",
        "[oops]\n": "unknown table",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(InventoryError, match=message) as err:
            Inventory.load(path)
        assert "\n" not in err.value.message
    path.write_text("[devices.a]\nhost = \"h\"\ngroups = [\"g\"]\n")
    inv = Inventory.load(path)
    with pytest.raises(InventoryError, match="exactly one of"):
        inv.select()
    with pytest.raises(InventoryError, match="no device 'b'"):
        inv.select(name="b")
    with pytest.raises(InventoryError, match="group 'x'"):
        inv.select(group="x")
    with pytest.raises(ConfigError, match="keep=0"):
        FlashOptions(keep=0)
    with pytest.raises(ConfigError, match="--parallel 0"):
        FleetOptions(parallel=0)


def test_devices_add_list_remove_and_probe_from_the_command_line(new_device, bed, tmp_path):
    device = new_device(venv=False)
    inv = tmp_path / "inv dir" / "devices.toml"
    inv.parent.mkdir()
    proc = emotrt_cli("devices", "add", device.name, "--host", "127.0.0.1", "--port", device.port, "--user", "root",
                      "--identity", bed.client_key, "--root", device.root, "--group", "lab", "--python", flashbed.system_python(),
                      "--inventory", inv)
    assert proc.returncode == 0, proc.stderr
    assert emotrt_cli("devices", "add", device.name, "--host", "x", "--inventory", inv).returncode == 2
    listing = json.loads(emotrt_cli("devices", "list", "--inventory", inv, "--json").stdout)
    assert listing[0]["name"] == device.name and listing[0]["groups"] == ["lab"]
    env = dict(os.environ, HOME=str(tmp_path))  # known_hosts under this HOME
    (tmp_path / ".ssh").mkdir()
    shutil.copy(str(bed.known_hosts), str(tmp_path / ".ssh" / "known_hosts"))
    proc = subprocess.run([str(REPO / ".venv/bin/emotrt"), "devices", "probe", "--group", "lab", "--inventory", str(inv), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)[device.name]
    assert facts["l4t"] == "36.4.0" and facts["tensorrt"] == "10.3.0"
    assert emotrt_cli("devices", "remove", device.name, "--inventory", inv).returncode == 0
    assert json.loads(emotrt_cli("devices", "list", "--inventory", inv, "--json").stdout) == []
    assert emotrt_cli("devices", "--json").returncode == 0  # build targets, as before
