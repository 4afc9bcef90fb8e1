"""A test bed of loopback "Jetsons": one real OpenSSH server per device on 127.0.0.1 (REFERENCE.md recipe).

Each device gets its own port, host key, ROOT (``<dir>/root``) and a fake filesystem root
(``<dir>/fs``) holding the files the probe reads on a real Jetson: ``etc/nv_tegra_release``,
``proc/device-tree/model``, ``var/lib/dpkg/status`` (the TensorRT package), ``usr/local/cuda/version.json``
and ``proc/meminfo``. The device's probe reads them because the bed sets ``EMOTRT_PROBE_ROOT`` for the
sshd session (sshd ``SetEnv``); a real device leaves it unset and reads ``/``. Everything else the device
does (hashing, verifying, self-test, ``emotrt run``) is the real device code on ONNX Runtime.

The tests start and stop these servers themselves (CI runs no services).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

SSHD = "/usr/sbin/sshd"

ORIN_NANO = {"l4t": "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024",
             "model": "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
             "tensorrt": "10.3.0.30-1+cuda12.5", "cuda": "12.6.68", "mem_kb": 7800000}
XAVIER_NX = {"l4t": "# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref, EABI: aarch64, DATE: Tue Feb 20 04:46:31 UTC 2024",
             "model": "NVIDIA Jetson Xavier NX Developer Kit", "tensorrt": "8.5.2.2-1+cuda11.4", "cuda": "11.4.315", "mem_kb": 7900000}
THOR = {"l4t": "# R38 (release), REVISION: 2.0, GCID: 1, BOARD: generic, EABI: aarch64, DATE: Mon Aug 25 2025",
        "model": "NVIDIA Jetson AGX Thor Developer Kit", "tensorrt": "10.13.3.9-1+cuda13.0", "cuda": "13.0.48", "mem_kb": 128000000}


def write_facts(fs: Path, facts: Dict[str, object]) -> None:
    """Place the files a Jetson's probe reads under ``fs`` (a fake ``/``)."""
    (fs / "etc").mkdir(parents=True, exist_ok=True)
    (fs / "etc/nv_tegra_release").write_text(str(facts["l4t"]) + "\n")
    (fs / "proc/device-tree").mkdir(parents=True, exist_ok=True)
    (fs / "proc/device-tree/model").write_bytes(str(facts["model"]).encode() + b"\x00")
    (fs / "proc/meminfo").write_text("MemTotal:       {} kB\nMemAvailable:   {} kB\n".format(facts["mem_kb"], int(facts["mem_kb"]) // 2))
    (fs / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (fs / "var/lib/dpkg/status").write_text(
        "Package: bash\nStatus: install ok installed\nVersion: 5.2\n\n"
        "Package: tensorrt\nStatus: install ok installed\nArchitecture: arm64\nVersion: {}\n\n".format(facts["tensorrt"]))
    (fs / "usr/local/cuda").mkdir(parents=True, exist_ok=True)
    (fs / "usr/local/cuda/version.json").write_text(json.dumps({"cuda": {"name": "CUDA SDK", "version": facts["cuda"]}}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Device:
    name: str
    dir: Path
    port: int
    proc: Optional[subprocess.Popen] = None

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def fs(self) -> Path:
        return self.dir / "fs"

    @property
    def host_key_pub(self) -> str:
        return (self.dir / "host_key.pub").read_text().split()[1]


class SSHBed:
    """Loopback devices sharing one client key and one known_hosts file."""

    def __init__(self, base: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.client_key = base / "client_key"
        self.known_hosts = base / "known_hosts"
        self.env = dict(env or {})
        self.devices: List[Device] = []
        if not self.client_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)

    def add(self, name: str, facts: Dict[str, object] = ORIN_NANO, trust: bool = True) -> Device:
        d = self.base / name
        d.mkdir(parents=True, exist_ok=True)
        device = Device(name, d, free_port())
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
        shutil.copy(str(self.client_key) + ".pub", str(d / "authorized_keys"))
        write_facts(device.fs, facts)
        device.root.mkdir(exist_ok=True)
        env = dict(self.env, EMOTRT_PROBE_ROOT=str(device.fs))
        setenv = " ".join('{}="{}"'.format(k, v) for k, v in sorted(env.items()))
        (d / "sshd_config").write_text("\n".join([
            "Port {}".format(device.port), "ListenAddress 127.0.0.1", "HostKey {}".format(d / "host_key"),
            "PidFile {}".format(d / "sshd.pid"), "AuthorizedKeysFile {}".format(d / "authorized_keys"),
            "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "UsePAM no", "MaxSessions 50", "MaxStartups 50:30:100",
            "Subsystem sftp internal-sftp", "SetEnv " + setenv, "LogLevel INFO", ""]))
        self.start(device)
        if trust:
            self.trust(device)
        self.devices.append(device)
        return device

    def start(self, device: Device) -> None:
        device.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(device.dir / "sshd_config")],
                                       stdout=subprocess.DEVNULL, stderr=open(str(device.dir / "sshd.log"), "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", device.port)) == 0:
                    return
            if device.proc.poll() is not None:
                raise RuntimeError("sshd for {} exited: {}".format(device.name, (device.dir / "sshd.log").read_text()))
            time.sleep(0.05)
        raise RuntimeError("sshd for {} did not listen on {}".format(device.name, device.port))

    def trust(self, device: Device) -> None:
        with open(str(self.known_hosts), "a") as f:
            f.write("[127.0.0.1]:{} ssh-ed25519 {}\n".format(device.port, device.host_key_pub))

    def entry_toml(self, device: Device, python: str, groups=("bed",)) -> str:
        return "\n".join([
            "[devices.{}]".format(device.name), 'host = "127.0.0.1"', "port = {}".format(device.port),
            'user = "{}"'.format(os.environ.get("USER") or "root"), 'identity = "{}"'.format(self.client_key),
            'root = "{}"'.format(device.root), "groups = [{}]".format(", ".join('"{}"'.format(g) for g in groups)),
            'python = "{}"'.format(python), ""])

    def stop(self) -> None:
        for device in self.devices:
            if device.proc is not None and device.proc.poll() is None:
                device.proc.send_signal(signal.SIGTERM)
                try:
                    device.proc.wait(5)
                except subprocess.TimeoutExpired:
                    device.proc.kill()
                    device.proc.wait()
