"""Bundles as Mender artifacts and the ``emotrt-bundle`` update module (issue 16).

Real parts: Debian's ``mender-artifact`` writes, signs, validates and reads every artifact here; the
module runs as the client runs it, ``MODULE STATE FILES`` in a process of its own, through the script
:func:`module_script` writes, against a temp ROOT, with the payload offered through FIFOs the way the
client streams it (tests/devices/menderbed.py). The device's identity comes from a fake filesystem
root (``$EMOTRT_PROBE_ROOT``, tests/devices/sshbed.py), and engine builds run the real builder against
the project's TensorRT double, as in the flash tests.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emotrt.devices.device_root import DeviceRoot, DeviceStateError
from emotrt.devices.flash import LocalBundle
from emotrt.devices.mender_module import MODULE_TYPE, module_script
from tests.devices import flashbed
from tests.devices.menderbed import MenderClient, read_artifact
from tests.devices.sshbed import ORIN_NANO, XAVIER_NX, write_facts

REPO = Path(__file__).resolve().parents[2]
ORIN_TYPE = "jetson-orin-nano-devkit"

pytestmark = pytest.mark.skipif(shutil.which("mender-artifact") is None,
                                reason="mender-artifact is not installed (scripts/setup-system.sh installs it)")


@pytest.fixture(scope="session")
def mender_work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mender")


@pytest.fixture(scope="session")
def artifacts(mender_work, export_dir, calibration_dir):
    """A (base), C (environment table changed), N (no speaker: fails its health check), X (A for a Xavier's device type)."""
    from emotrt.devices.mender_artifact import write_artifact

    roots = flashbed.make_bundles(mender_work, export_dir, calibration_dir, names=("A", "C", "N"))
    out = {name: (write_artifact(root, mender_work / (name + ".mender"), [ORIN_TYPE, "jetson-orin-nx-devkit"]), LocalBundle.open(root))
           for name, root in roots.items()}
    out["X"] = (write_artifact(roots["A"], mender_work / "X.mender", "jetson-xavier-nx-devkit"), out["A"][1])
    return out


def make_device(base: Path, facts=ORIN_NANO, device_type: str = ORIN_TYPE) -> MenderClient:
    """A temp ROOT, the device's facts under a fake /, and the module script the client would run."""
    root, fs = base / "root", base / "fs"
    root.mkdir(parents=True)
    write_facts(fs, facts)
    module = base / "modules" / MODULE_TYPE
    module.parent.mkdir()
    module.write_text(module_script(str(root), python=str(REPO / ".venv" / "bin" / "python"), service=False))
    module.chmod(0o755)
    env = dict(os.environ, EMOTRT_PROBE_ROOT=str(fs), PYTHONPATH=str(flashbed.trt_shim(base)), XDG_CACHE_HOME=str(base / "cache"))
    return MenderClient(module, base / "work", device_type, env)


def mender_key(base: Path):
    """An ECDSA P-256 key pair in PEM, the kind Mender signs artifacts with: (private, public)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = base.with_name(base.name + ".pem"), base.with_name(base.name + ".pub.pem")
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def root_of(client: MenderClient) -> DeviceRoot:
    return DeviceRoot(client.module.parent.parent / "root")


OK = ["Download", "SupportsRollback", "ArtifactInstall", "NeedsArtifactReboot", "ArtifactCommit", "Cleanup"]


# ------------------------------------------------------------------ Done when: the artifact


def test_the_artifact_validates_reads_and_names_the_module_and_device_types(artifacts, tmp_path):
    from emotrt.devices.mender_artifact import read_artifact as tool_read
    from emotrt.devices.mender_artifact import validate_artifact

    path, bundle = artifacts["A"]
    assert "validated successfully" in validate_artifact(path)
    text = tool_read(path)
    assert "Type:   {}".format(MODULE_TYPE) in text
    assert "Compatible devices: '[{} jetson-orin-nx-devkit]'".format(ORIN_TYPE) in text
    assert "rootfs-image.{}.version: {}".format(MODULE_TYPE, bundle.bundle_id) in text
    assert "Name: emotrt-{}".format(bundle.bundle_id) in text
    header, payload = read_artifact(path)
    meta = json.loads(header["meta-data"])["emotrt"]
    assert meta["bundle_id"] == bundle.bundle_id and meta["targets"] == ["orin-nano-8gb"]
    assert meta["files"] == {rel: list(v) for rel, v in bundle.files.items()}
    assert list(payload) == ["bundle.tar"]
    assert json.loads(header["header-info"])["artifact_depends"]["device_type"] == [ORIN_TYPE, "jetson-orin-nx-devkit"]


# ------------------------------------------------------------------ Done when: the state sequence


def test_install_then_commit_leaves_the_new_bundle_active_and_self_tested(artifacts, tmp_path):
    client = make_device(tmp_path)
    device = root_of(client)
    assert client.deploy(artifacts["A"][0]) == OK, client.errors()
    assert device.link("current") == artifacts["A"][1].bundle_id and device.link("previous") is None
    assert device.selftest(artifacts["A"][1].bundle_id)["passed"]
    first = device.state()["history"][-1]
    assert (first["action"], first["result"], first["via"], first["artifact"]) == ("flash", "ok", "mender", "emotrt-" + artifacts["A"][1].bundle_id)
    assert first["engines_built"] and first["selftest"]["passed"] and first["health"]["results"] > 0
    assert client.deploy(artifacts["C"][0]) == OK, client.errors()
    assert (device.link("current"), device.link("previous")) == (artifacts["C"][1].bundle_id, artifacts["A"][1].bundle_id)
    assert device.selftest(artifacts["C"][1].bundle_id)["passed"]
    assert device.state()["history"][-1]["engines_built"] == []  # only the environment table changed: the shared engine cache
    assert device.pending() is None and not any((device.root / "staging").glob("[0-9a-f]*"))


def test_a_failing_health_check_then_artifact_rollback_leaves_the_previous_bundle_active_and_intact(artifacts, tmp_path):
    from emotrt.runtime.bundle_reader import Bundle

    client = make_device(tmp_path)
    device = root_of(client)
    a, n = artifacts["A"][1].bundle_id, artifacts["N"][1].bundle_id
    assert client.deploy(artifacts["A"][0]) == OK, client.errors()
    trace = client.deploy(artifacts["N"][0])
    assert trace == ["Download", "SupportsRollback", "ArtifactInstall", "NeedsArtifactReboot", "ArtifactCommit!",
                     "ArtifactRollback", "ArtifactFailure", "Cleanup"], client.errors()
    assert "health check" in client.errors() and "enrolled speaker" in client.errors()
    assert (device.link("current"), device.link("previous")) == (a, None) and device.pending() is None
    with Bundle.open(device.root / "current", verify=True):  # every sha256 of A still holds
        pass
    assert device.selftest(a)["passed"]
    last = device.state()["history"][-1]
    assert (last["action"], last["before"], last["after"]) == ("rollback", n, a) and "enrolled speaker" in last["reason"]


@pytest.mark.parametrize("how", ["cut_at", "kill_at"])
def test_a_cut_during_download_leaves_current_untouched(artifacts, tmp_path, how):
    client = make_device(tmp_path)
    device = root_of(client)
    a, c = artifacts["A"][1].bundle_id, artifacts["C"][1].bundle_id
    assert client.deploy(artifacts["A"][0]) == OK, client.errors()
    size = len(read_artifact(artifacts["C"][0])[1]["bundle.tar"])
    trace = client.deploy(artifacts["C"][0], **{how: size // 2})
    assert trace == ["Download!", "Cleanup"]
    if how == "cut_at":
        assert "cut short" in client.errors() and len(client.errors().strip().splitlines()) == 1
    assert device.link("current") == a and device.pending() is None
    assert not device.bundle_path(c).exists() and not (device.root / "staging" / c).exists()
    assert client.deploy(artifacts["C"][0]) == OK, client.errors()  # the next deployment goes through
    assert device.link("current") == c


def test_a_module_that_does_not_stream_installs_from_the_files_tree(artifacts, tmp_path):
    client = make_device(tmp_path)
    files = client.files_dir(artifacts["A"][0])
    (files / "files").mkdir()
    (files / "files" / "bundle.tar").write_bytes(read_artifact(artifacts["A"][0])[1]["bundle.tar"])
    for state in ("Download", "ArtifactInstall", "ArtifactCommit", "Cleanup"):  # no stream-next: the client stored files/
        call = client.call(state, files)
        assert call.returncode == 0, call.stderr
    assert root_of(client).link("current") == artifacts["A"][1].bundle_id


# ------------------------------------------------------------------ Done when: signatures, device types


def test_a_signed_artifact_verifies_with_the_public_key_and_a_tampered_one_is_refused(artifacts, tmp_path):
    from emotrt.devices.mender_artifact import MenderToolError, validate_artifact

    keys = {name: mender_key(tmp_path / name) for name in ("ours", "stranger")}
    proc = emotrt_cli("package", artifacts["A"][1].root, "--mender", ORIN_TYPE, "--key", keys["ours"][0], "-o", tmp_path / "signed.mender")
    assert proc.returncode == 0, proc.stderr
    assert "signed" in proc.stdout
    signed = tmp_path / "signed.mender"
    assert "validated successfully" in validate_artifact(signed, keys["ours"][1])
    with pytest.raises(MenderToolError, match="validate failed"):
        validate_artifact(signed, keys["stranger"][1])
    data = bytearray(signed.read_bytes())
    at = data.index(b'"emotrt_version"')  # inside the (uncompressed) payload: the bundle's manifest.json
    data[at + 1] ^= 0x20
    tampered = tmp_path / "tampered.mender"
    tampered.write_bytes(bytes(data))
    with pytest.raises(MenderToolError, match="validate failed"):
        validate_artifact(tampered, keys["ours"][1])
    # the device checks on its own too: the changed manifest.json fails its sha256 in the signed meta-data
    client = make_device(tmp_path / "device")
    assert client.deploy(tampered) == ["Download!", "Cleanup"]
    assert "corrupted in transit): manifest.json" in client.errors() and "deploy the artifact again" in client.errors()
    assert root_of(client).link("current") is None and not root_of(client).bundles.exists()


def test_another_device_type_or_another_jetson_is_refused_with_one_line(artifacts, tmp_path):
    client = make_device(tmp_path / "orin")
    assert client.deploy(artifacts["X"][0]) == ["Download!", "Cleanup"]
    line = client.errors().strip()
    assert "\n" not in line and "for device type(s) jetson-xavier-nx-devkit, this device is '{}'".format(ORIN_TYPE) in line
    assert sorted(os.listdir(root_of(client).root)) == []  # nothing staged
    xavier = make_device(tmp_path / "xavier", facts=XAVIER_NX)  # the right Mender type, a bundle built for an Orin Nano
    assert xavier.deploy(artifacts["A"][0]) == ["Download!", "Cleanup"]
    line = xavier.errors().strip()
    assert "\n" not in line and "refused before staging anything" in line and "Xavier NX" in line and "orin-nano-8gb" in line
    assert sorted(os.listdir(root_of(xavier).root)) == []


# ------------------------------------------------------------------ one library: flash and Mender share the pending activation


def test_flash_does_not_undo_a_pending_mender_activation(artifacts, tmp_path):
    client = make_device(tmp_path)
    device = root_of(client)
    assert client.deploy(artifacts["A"][0]) == OK, client.errors()
    files = client.files_dir(artifacts["C"][0])
    assert client.download(artifacts["C"][0], files).returncode == 0
    assert client.call("ArtifactInstall", files).returncode == 0
    assert device.link("current") == artifacts["C"][1].bundle_id and device.pending()["owner"] == "mender"
    with pytest.raises(DeviceStateError, match="a mender deployment of .* is in progress"):
        device.recover()  # what `emotrt flash` calls first: the switch belongs to the Mender client
    assert client.call("ArtifactRollback", files).returncode == 0
    assert device.link("current") == artifacts["A"][1].bundle_id and device.pending() is None


def test_unknown_states_print_nothing_and_the_module_installs_itself(tmp_path):
    client = make_device(tmp_path)
    call = client.call("SomeFutureState", tmp_path)
    assert (call.returncode, call.stdout, call.stderr) == (0, "", "")
    proc = subprocess.run([sys.executable, "-m", "emotrt.devices.mender_module", "--root", "/opt/emo trt", "--dir", str(tmp_path / "v3"),
                           "install-module"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / "v3" / MODULE_TYPE
    assert oct(script.stat().st_mode & 0o777) == "0o755"
    assert "--root '/opt/emo trt'" in script.read_text() and "'/opt/emo trt/venv/bin/python'" in script.read_text()


def test_packaging_without_mender_artifact_is_one_line_with_the_install_hint(artifacts, tmp_path):
    proc = emotrt_cli("package", artifacts["A"][1].root, "--mender", ORIN_TYPE, "-o", tmp_path / "x.mender",
                      env={"PATH": str(tmp_path)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "mender-artifact is not installed" in proc.stderr and "apt-get install mender-artifact" in proc.stderr
    assert not (tmp_path / "x.mender").exists()
    bad = emotrt_cli("package", artifacts["A"][1].root, "--mender", "two words", "-o", tmp_path / "y.mender")
    assert bad.returncode == 2 and "'two words' is not one" in bad.stderr and not (tmp_path / "y.mender").exists()


def emotrt_cli(*args, env=None):
    return subprocess.run([str(REPO / ".venv" / "bin" / "emotrt")] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, COLUMNS="200", **(env or {})))


# ------------------------------------------------------------------ the real Mender client (where it is installed)

MODULE_PATH = Path("/usr/share/mender/modules/v3") / MODULE_TYPE  # mender 3.4 reads modules only here
ARTIFACT_INFO = Path("/etc/mender/artifact_info")  # and the installed artifact's name here, before its first update


@pytest.fixture
def real_client(tmp_path):
    """``mender`` in standalone mode (install / commit / rollback) with its state in a temp dir, running the module
    against a temp ROOT. It needs root for the two fixed paths above; what it creates there it removes."""
    mender = shutil.which("mender")
    if mender is None:
        pytest.skip("the Mender client is not installed (apt-get install mender-client)")
    if os.geteuid() != 0:
        pytest.skip("the Mender client reads update modules from {} only: needs root".format(MODULE_PATH.parent))
    if MODULE_PATH.exists() and "emotrt.devices.mender_module" not in MODULE_PATH.read_text():
        pytest.skip("{} is someone else's module".format(MODULE_PATH))
    client = make_device(tmp_path)
    created = [MODULE_PATH] + ([] if ARTIFACT_INFO.exists() else [ARTIFACT_INFO])
    MODULE_PATH.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(str(client.module), str(MODULE_PATH))
    if ARTIFACT_INFO in created:
        ARTIFACT_INFO.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACT_INFO.write_text("artifact_name=factory-image\n")
    data = tmp_path / "mender-data"
    data.mkdir()
    (data / "device_type").write_text("device_type={}\n".format(ORIN_TYPE))
    conf = tmp_path / "mender.conf"
    conf.write_text(json.dumps({"DeviceTypeFile": str(data / "device_type")}))

    def run(*args):
        return subprocess.run([mender, "-c", str(conf), "-b", str(conf), "--data", str(data), "--no-syslog"] + [str(a) for a in args],
                              env=client.env, capture_output=True, text=True, timeout=600)

    try:
        yield run, root_of(client), conf
    finally:
        for path in created:
            path.unlink()


def test_the_real_mender_client_installs_commits_and_rolls_back_through_the_module(real_client, artifacts, tmp_path):
    mender, device, _ = real_client
    a, c, n = (artifacts[k][1].bundle_id for k in "ACN")
    done = mender("install", artifacts["A"][0])
    assert done.returncode == 0, done.stderr[-2000:]
    assert device.link("current") == a and device.pending()["owner"] == "mender"  # switched, not yet committed
    done = mender("commit")
    assert done.returncode == 0, done.stderr[-2000:]
    assert device.pending() is None and device.state()["history"][-1]["via"] == "mender"
    assert mender("show-artifact").stdout.strip() == "emotrt-" + a
    assert mender("install", artifacts["C"][0]).returncode == 0
    assert device.link("current") == c
    assert mender("rollback").returncode == 0  # the client's own rollback: ArtifactRollback in the module
    assert (device.link("current"), device.pending()) == (a, None)
    assert mender("install", artifacts["N"][0]).returncode == 0
    failed = mender("commit")  # N fails its health check: the client rolls back
    assert failed.returncode != 0
    assert (device.link("current"), device.pending()) == (a, None) and device.selftest(a)["passed"]
    assert "enrolled speaker" in device.state()["history"][-1]["reason"]
    cut = tmp_path / "cut.mender"
    cut.write_bytes(artifacts["C"][0].read_bytes()[: artifacts["C"][0].stat().st_size // 2])
    assert mender("install", cut).returncode != 0
    assert (device.link("current"), device.pending()) == (a, None)
    assert mender("show-artifact").stdout.strip() == "emotrt-" + a


def test_the_real_client_with_a_verify_key_installs_only_artifacts_signed_with_it(real_client, artifacts, tmp_path):
    from emotrt.devices.mender_artifact import write_artifact

    mender, device, conf = real_client
    private, public = mender_key(tmp_path / "release")
    conf.write_text(json.dumps(dict(json.loads(conf.read_text()), ArtifactVerifyKey=str(public))))
    refused = mender("install", artifacts["A"][0])
    assert refused.returncode != 0 and "signature" in refused.stderr.lower()
    assert device.link("current") is None and not device.bundles.exists()
    signed = write_artifact(artifacts["A"][1].root, tmp_path / "signed.mender", ORIN_TYPE, key=private)
    done = mender("install", signed)
    assert done.returncode == 0, done.stderr[-2000:]
    assert mender("commit").returncode == 0 and device.link("current") == artifacts["A"][1].bundle_id
