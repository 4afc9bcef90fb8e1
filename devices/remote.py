"""SSH to one device of the inventory: run quoted commands, copy files, call the device's emotrt.

    with connect(inventory["bench-1"]) as device:
        device.run(["uname", "-a"]).stdout
        device.put("report.json", "/opt/emotrt/staging/report.json")
        device.get("/opt/emotrt/state.json", "state.json")
        device.emotrt(["profile", "/opt/emotrt/current", "--json"])   # ROOT/venv/bin/emotrt

Why paramiko (not asyncssh, not fabric): it is synchronous, so a fleet is a thread pool and each
device's flash reads top to bottom; its SFTP client writes at an offset, which is what a resumable
transfer needs; its host-key policies let us refuse unknown keys by default and record them only
when asked; fabric is a task layer over paramiko that adds nothing here, and asyncssh would make
every caller async. It is pure Python (no libssh on the workstation) and already pinned.

Every command is an argv list joined with :func:`shlex.quote`, never a string, so a hostile file or
device name stays one argument. Authentication is by key only (no password is ever passed).
Workstation-only: the device runs sshd, not this module.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Optional, Sequence

from emotrt.devices.inventory import DeviceEntry
from emotrt.runtime.errors import EmotrtError

log = logging.getLogger(__name__)

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
CONNECT_TIMEOUT = 10.0


class RemoteError(EmotrtError):
    """Something went wrong talking to a device over SSH."""


class UnreachableError(RemoteError):
    """The device does not answer on its SSH port."""


class HostKeyError(RemoteError):
    """The device's host key is unknown or has changed."""


class AuthenticationError(RemoteError):
    """The device refused our key."""


class ConnectionLostError(RemoteError):
    """The SSH connection dropped in the middle of an operation."""


class RemoteCommandError(RemoteError):
    """A command on the device exited non-zero."""

    def __init__(self, message: str, result: "CompletedRemote", hint: Optional[str] = None) -> None:
        super().__init__(message, hint)
        self.result = result


@dataclass(frozen=True)
class CompletedRemote:
    """What a remote command returned."""

    argv: Sequence[str]
    returncode: int
    stdout: str
    stderr: str


def quote_argv(argv: Sequence[str]) -> str:
    """The shell command line of ``argv``, every word quoted."""
    if not argv:
        raise ValueError("empty argv")
    return " ".join(shlex.quote(str(a)) for a in argv)


class _CountingSocket:
    """A socket that counts the bytes it sends and receives (the wire bytes of a flash)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sent = 0
        self.received = 0

    def send(self, data: bytes) -> int:
        n = self._sock.send(data)
        self.sent += n
        return n

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        self.received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Remote:
    """An open SSH session to one device (use :func:`connect`)."""

    def __init__(self, entry: DeviceEntry, client: Any, sock: _CountingSocket) -> None:
        self.entry = entry
        self._client = client
        self._sock = sock
        self._sftp: Any = None
        self.payload_sent = 0  # file bytes written through put()
        self._lock = threading.Lock()

    # --------------------------------------------------------------- accounting

    @property
    def wire_sent(self) -> int:
        """Every byte sent on the TCP connection so far (SSH framing, commands, files)."""
        return self._sock.sent

    @property
    def wire_received(self) -> int:
        return self._sock.received

    # --------------------------------------------------------------- commands

    def run(self, argv: Sequence[str], *, timeout: Optional[float] = None, check: bool = True,
            input: Optional[bytes] = None, on_stderr_line: Optional[Callable[[str], None]] = None) -> CompletedRemote:
        """Run ``argv`` on the device (quoted here) and wait; non-zero exit raises unless ``check=False``.

        ``input`` is written to the command's stdin (then closed); ``on_stderr_line`` sees stderr
        as it arrives, for progress streamed back from the device.
        """
        with self.process(argv, timeout=timeout) as proc:
            if input is not None:
                proc.write(input)
            proc.close_stdin()
            stdout, stderr = proc.communicate(on_stderr_line, timeout=timeout)
            code = proc.wait()
        result = CompletedRemote(tuple(argv), code, stdout, stderr)
        if check and code != 0:
            raise RemoteCommandError(_command_failure(self.entry, result), result)
        return result

    @contextlib.contextmanager
    def process(self, argv: Sequence[str], *, timeout: Optional[float] = None) -> Iterator["RemoteProcess"]:
        """A running command with its stdin open: write lines to it and read its stdout lines."""
        command = quote_argv(argv)
        log.debug("%s$ %s", self.entry.name, command)
        try:
            channel = self._client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
            if timeout is not None:
                channel.settimeout(timeout)
            channel.exec_command(command)
        except Exception as exc:  # paramiko.SSHException, EOFError, OSError
            raise _lost(self.entry, exc)
        proc = RemoteProcess(self.entry, channel, argv)
        try:
            yield proc
        finally:
            channel.close()

    def emotrt(self, argv: Sequence[str], **kwargs: Any) -> CompletedRemote:
        """Run the device's own emotrt (``ROOT/venv/bin/emotrt``) with ``argv``."""
        return self.run([self.emotrt_path] + list(argv), **kwargs)

    @property
    def emotrt_path(self) -> str:
        return str(PurePosixPath(self.entry.root) / "venv" / "bin" / "emotrt")

    # --------------------------------------------------------------- files

    def sftp(self) -> Any:
        if self._sftp is None:
            try:
                self._sftp = self._client.open_sftp()
            except Exception as exc:
                raise _lost(self.entry, exc)
        return self._sftp

    def put(self, local: Any, remote: str, *, offset: int = 0, callback: Optional[Callable[[int], None]] = None,
            chunk: int = 1 << 18) -> int:
        """Copy ``local`` to ``remote`` from byte ``offset`` on (resume); return the bytes sent.

        ``callback(n)`` is called after each chunk with its size (progress, or a test cutting the line).
        """
        sent = 0
        try:
            sftp = self.sftp()
            with open(os.fspath(local), "rb") as src, sftp.open(remote, "r+b" if offset else "wb") as dst:
                dst.set_pipelined(True)
                if offset:
                    dst.seek(offset)
                    src.seek(offset)
                for block in iter(lambda: src.read(chunk), b""):
                    dst.write(block)
                    sent += len(block)
                    with self._lock:
                        self.payload_sent += len(block)
                    if callback is not None:
                        callback(len(block))
        except EmotrtError:
            raise
        except Exception as exc:
            raise _lost(self.entry, exc, "while sending {}".format(remote))
        return sent

    def get(self, remote: str, local: Any) -> Path:
        """Copy ``remote`` from the device to ``local``."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.sftp().get(remote, str(local))
        except FileNotFoundError:
            raise RemoteError("{}: no file {} on the device".format(self.entry.name, remote))
        except Exception as exc:
            raise _lost(self.entry, exc, "while fetching {}".format(remote))
        return local

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._sftp is not None:
                self._sftp.close()
        self._client.close()

    def cut(self) -> None:
        """Drop the TCP connection abruptly (the device sees a vanished client); for tests of resumption."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self.close()


class RemoteProcess:
    """A command running on the device; stdin open until :meth:`close_stdin`."""

    def __init__(self, entry: DeviceEntry, channel: Any, argv: Sequence[str]) -> None:
        self.entry = entry
        self.channel = channel
        self.argv = argv
        self._buffer = b""
        self._stderr = b""

    def write(self, data: bytes) -> None:
        try:
            self.channel.sendall(data)
        except Exception as exc:
            raise _lost(self.entry, exc)

    def send_line(self, line: str) -> None:
        self.write((line + "\n").encode("utf-8"))

    def close_stdin(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.shutdown_write()

    def readline(self, timeout: Optional[float] = None, on_stderr_line: Optional[Callable[[str], None]] = None) -> Optional[str]:
        """The next stdout line (without newline); None at end of output. Stderr lines go to ``on_stderr_line`` meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        channel = self.channel
        while b"\n" not in self._buffer:
            try:
                if channel.recv_stderr_ready():
                    self._stderr += channel.recv_stderr(65536)
                    while b"\n" in self._stderr:
                        line, _, self._stderr = self._stderr.partition(b"\n")
                        if on_stderr_line is not None:
                            on_stderr_line(line.decode("utf-8", "replace"))
                    continue
                if channel.recv_ready() or channel.exit_status_ready() or channel.closed:
                    data = channel.recv(65536)
                else:
                    transport = channel.get_transport()
                    if transport is None or not transport.is_active():
                        raise EOFError("connection closed")
                    if deadline is not None and time.monotonic() > deadline:
                        raise RemoteError("{}: no answer from `{}` within {:.0f} s".format(self.entry.name, self.argv[0], timeout))
                    time.sleep(0.005)
                    continue
            except RemoteError:
                raise
            except Exception as exc:
                raise _lost(self.entry, exc)
            if not data:
                transport = channel.get_transport()
                if transport is None or not transport.is_active():
                    raise _lost(self.entry, EOFError("connection closed"))
                line, self._buffer = self._buffer, b""
                return line.decode("utf-8", "replace") if line else None
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")

    def communicate(self, on_stderr_line: Optional[Callable[[str], None]] = None,
                    timeout: Optional[float] = None) -> "tuple[str, str]":
        """Read stdout and stderr to the end; stderr lines go to ``on_stderr_line`` as they arrive."""
        out, err, pending = [self._buffer], [self._stderr], self._stderr
        self._buffer = self._stderr = b""
        deadline = None if timeout is None else time.monotonic() + timeout
        channel = self.channel
        try:
            while True:
                busy = False
                if channel.recv_ready():
                    out.append(channel.recv(65536))
                    busy = True
                if channel.recv_stderr_ready():
                    data = channel.recv_stderr(65536)
                    err.append(data)
                    pending += data
                    while on_stderr_line is not None and b"\n" in pending:
                        line, _, pending = pending.partition(b"\n")
                        on_stderr_line(line.decode("utf-8", "replace"))
                    busy = True
                if not busy:
                    if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                        break
                    transport = channel.get_transport()
                    if transport is None or not transport.is_active():
                        raise EOFError("connection closed")
                    if deadline is not None and time.monotonic() > deadline:
                        raise RemoteError("{}: `{}` did not finish within {:.0f} s".format(
                            self.entry.name, " ".join(map(str, self.argv[:3])), timeout))
                    time.sleep(0.005)
        except RemoteError:
            raise
        except Exception as exc:
            raise _lost(self.entry, exc)
        if on_stderr_line is not None and pending:
            on_stderr_line(pending.decode("utf-8", "replace"))
        return b"".join(out).decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace")

    def wait(self) -> int:
        try:
            return self.channel.recv_exit_status()
        except Exception as exc:
            raise _lost(self.entry, exc)


def _command_failure(entry: DeviceEntry, result: CompletedRemote) -> str:
    tail = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return "{}: `{}` exited {}: {}".format(entry.name, " ".join(map(str, result.argv[:3])), result.returncode,
                                           tail[-1] if tail else "no output")


def _lost(entry: DeviceEntry, exc: BaseException, what: str = "") -> RemoteError:
    return ConnectionLostError(
        "{}: connection to {} lost{}: {}".format(entry.name, entry.login, " " + what if what else "", exc or type(exc).__name__),
        hint="check the device and run the same command again; a flash resumes where it stopped",
    )


class _RecordPolicy:
    """Accept an unknown host key and record it in ``known_hosts`` (only with --accept-new-host-key)."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.known_hosts), "a") as f:
            f.write("{} {} {}\n".format(hostname, key.get_name(), key.get_base64()))
        log.warning("recorded the new host key of %s (%s) in %s", hostname, key.get_name(), self.known_hosts)


class _RefusePolicy:
    def __init__(self, entry: DeviceEntry, known_hosts: Path) -> None:
        self.entry = entry
        self.known_hosts = known_hosts

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise HostKeyError(
            "{}: the host key of {} ({} {}) is not in {}; refusing to connect".format(
                self.entry.name, hostname, key.get_name(), _fingerprint(key), self.known_hosts),
            hint="check the fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), "
                 "then run again with --accept-new-host-key",
        )


def _fingerprint(key: Any) -> str:
    import base64
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _close(client: Any, raw: socket.socket) -> None:
    """Stop the transport thread before closing its socket (else paramiko logs a socket error)."""
    with contextlib.suppress(Exception):
        client.close()
    raw.close()


@contextlib.contextmanager
def connect(entry: DeviceEntry, *, accept_new_host_key: bool = False, known_hosts: Any = None,
            timeout: float = CONNECT_TIMEOUT) -> Iterator[Remote]:
    """An SSH session to ``entry``; its host key must be in ``known_hosts`` unless ``accept_new_host_key``."""
    import paramiko

    known = Path(os.path.expanduser(str(known_hosts or DEFAULT_KNOWN_HOSTS)))
    client = paramiko.SSHClient()
    if known.is_file():
        try:
            client.load_host_keys(str(known))
        except (OSError, ValueError, paramiko.SSHException) as exc:  # ValueError: bytes that are not UTF-8
            raise HostKeyError("cannot read {}: {}".format(known, exc), hint="fix or remove the bad line in {}".format(known))
    client.set_missing_host_key_policy(_RecordPolicy(known) if accept_new_host_key else _RefusePolicy(entry, known))
    try:
        raw = socket.create_connection((entry.host, entry.port), timeout=timeout)
    except OSError as exc:
        raise UnreachableError("{}: cannot reach {} ({})".format(entry.name, entry.login, exc.strerror or exc),
                               hint="check that the device is on and sshd listens: ssh -p {} {}".format(entry.port, entry.host))
    sock = _CountingSocket(raw)
    identity = entry.identity_path
    if identity is not None and not identity.is_file():
        raw.close()
        raise AuthenticationError("{}: identity file {} does not exist".format(entry.name, identity),
                                  hint="fix `identity` in the inventory (emotrt devices add {} ... --identity KEY --replace)".format(entry.name))
    try:
        client.connect(entry.host, port=entry.port, username=entry.user or None, sock=sock,
                       key_filename=str(identity) if identity else None, look_for_keys=identity is None,
                       allow_agent=identity is None, password=None, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout)
    except HostKeyError:
        _close(client, raw)
        raise
    except paramiko.BadHostKeyException as exc:
        _close(client, raw)
        raise HostKeyError(
            "{}: the host key of {} CHANGED ({} now, {} in {}); refusing to connect".format(
                entry.name, entry.host, _fingerprint(exc.key), _fingerprint(exc.expected_key), known),
            hint="if the device was reinstalled, remove its line: ssh-keygen -R '[{}]:{}' -f {}".format(entry.host, entry.port, known),
        )
    except paramiko.AuthenticationException as exc:
        _close(client, raw)
        raise AuthenticationError("{}: {} refused our key ({})".format(entry.name, entry.login, exc),
                                  hint="install the public key on the device: ssh-copy-id -i KEY.pub -p {} {}@{}".format(
                                      entry.port, entry.user or "USER", entry.host))
    except (paramiko.SSHException, OSError, EOFError) as exc:
        _close(client, raw)
        raise UnreachableError("{}: SSH handshake with {} failed: {}".format(entry.name, entry.login, exc),
                               hint="check that sshd runs on port {} of {}".format(entry.port, entry.host))
    remote = Remote(entry, client, sock)
    try:
        yield remote
    finally:
        remote.close()
