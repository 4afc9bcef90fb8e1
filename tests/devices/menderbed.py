"""A stand-in for the Mender client's side of the update-module protocol, for the ``emotrt-bundle`` tests.

What it does is what the client does with a module (Update Modules v3: mender's
Documentation/update-modules-v3-file-api.md; the Download streaming of
src/mender-update/update_module/v3/update_module_download.cpp): it lays out the FILES directory
(``version``, ``current_artifact_name``, ``current_device_type``, ``header/{header-info,type-info,meta-data}``, ``tmp/``)
from a real ``.mender`` written by ``mender-artifact``, runs ``MODULE STATE FILES`` with FILES as the
working directory, and in Download offers each payload through the ``stream-next`` FIFO (a line
``streams/NAME``, then the bytes through the FIFO ``streams/NAME``, an empty read at the end). A module
that never opens ``stream-next`` gets the payload saved under ``files/`` instead. The state order is the
documented one, with the queries where mender 3.4 asks them: Download, SupportsRollback, ArtifactInstall,
NeedsArtifactReboot, ArtifactCommit, Cleanup; ArtifactRollback when Commit fails after a successful
install; ArtifactFailure after a failed Install or Commit; Cleanup always (test_mender.py also runs the
real client where it is installed).
"""
from __future__ import annotations

import errno
import fcntl
import io
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def read_artifact(path: Path) -> Tuple[Dict[str, bytes], Dict[str, bytes]]:
    """(header files of payload 0 and header-info, payload files by name) of a module-image ``.mender``."""
    header: Dict[str, bytes] = {}
    payload: Dict[str, bytes] = {}
    with tarfile.open(str(path)) as outer:
        for member in outer:
            data = outer.extractfile(member).read() if member.isfile() else b""
            if member.name.startswith("header.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                    for m in inner:
                        if m.isfile():
                            name = m.name.split("/")[-1] if m.name.startswith("headers/0000/") else m.name
                            header[name] = inner.extractfile(m).read()
            elif member.name.startswith("data/0000.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                    for m in inner:
                        if m.isfile():
                            payload[m.name] = inner.extractfile(m).read()
    return header, payload


@dataclass
class Call:
    state: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class MenderClient:
    module: Path
    work: Path
    device_type: str
    env: Dict[str, str]
    calls: List[Call] = field(default_factory=list)

    def files_dir(self, artifact: Path) -> Path:
        header, _ = read_artifact(artifact)
        self.work.mkdir(parents=True, exist_ok=True)
        files = self.work / "mender-files-{}".format(len(os.listdir(str(self.work))))
        (files / "header").mkdir(parents=True)
        (files / "tmp").mkdir()
        (files / "version").write_text("3")
        (files / "current_artifact_name").write_text("installed-before")  # as mender 3.4 lays them out
        (files / "current_device_type").write_text(self.device_type)
        for name in ("header-info", "type-info", "meta-data"):
            if name in header:
                (files / "header" / name).write_bytes(header[name])
        return files

    def call(self, state: str, files: Path) -> Call:
        proc = subprocess.run([str(self.module), state, str(files)], cwd=str(files), env=self.env, capture_output=True,
                              text=True, timeout=600)
        return self._log(state, proc.returncode, proc.stdout, proc.stderr)

    def _log(self, state: str, code: int, out: str, err: str) -> Call:
        call = Call(state, code, out, err)
        self.calls.append(call)
        return call

    def download(self, artifact: Path, files: Path, cut_at: Optional[int] = None, kill_at: Optional[int] = None) -> Call:
        """Download with streaming; ``cut_at``: the client's connection drops after that many payload bytes (the FIFO
        closes early); ``kill_at``: the module is killed (SIGKILL) after that many bytes."""
        _, payload = read_artifact(artifact)
        os.mkfifo(str(files / "stream-next"))
        (files / "streams").mkdir()
        proc = subprocess.Popen([str(self.module), "Download", str(files)], cwd=str(files), env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        streamed = False
        try:
            for name, data in payload.items():
                os.mkfifo(str(files / "streams" / name))
                fd = _open_writer(files / "stream-next", proc)
                if fd is None:
                    break
                streamed = True
                _write(fd, "streams/{}\n".format(name).encode())
                fd = _open_writer(files / "streams" / name, proc)
                if fd is None:
                    break
                limit = len(data) if cut_at is None and kill_at is None else (cut_at if cut_at is not None else kill_at)
                sent = 0
                while sent < limit:
                    n = _write(fd, data[sent:min(limit, sent + 4096)], close=False)
                    if n == 0:
                        break
                    sent += n
                if kill_at is not None:
                    proc.kill()
                os.close(fd)
            else:
                fd = _open_writer(files / "stream-next", proc)
                if fd is not None:
                    streamed = True
                    os.close(fd)  # an empty read: no more streams
            out, err = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for fifo in [files / "stream-next"] + list((files / "streams").iterdir()):
            fifo.unlink()
        (files / "streams").rmdir()
        if proc.returncode == 0 and not streamed:  # the module did not stream: the client stores the files
            (files / "files").mkdir()
            for name, data in payload.items():
                (files / "files" / name).write_bytes(data)
        return self._log("Download", proc.returncode, out, err)

    def deploy(self, artifact: Path, **download: int) -> List[str]:
        """Run the documented state sequence; returns the states called (failed ones marked ``!``)."""
        self.calls = []
        files = self.files_dir(artifact)
        if self.download(artifact, files, **download).returncode != 0:
            self.call("Cleanup", files)
            return self.trace()
        assert self.call("SupportsRollback", files).stdout.strip() == "Yes"
        if self.call("ArtifactInstall", files).returncode != 0:
            self.call("ArtifactFailure", files)
            self.call("Cleanup", files)
            return self.trace()
        assert self.call("NeedsArtifactReboot", files).stdout.strip() == "No"
        if self.call("ArtifactCommit", files).returncode != 0:
            self.call("ArtifactRollback", files)
            self.call("ArtifactFailure", files)
        self.call("Cleanup", files)
        shutil.rmtree(str(files / "tmp"))
        return self.trace()

    def trace(self) -> List[str]:
        return [c.state + ("!" if c.returncode else "") for c in self.calls]

    def errors(self) -> str:
        return "".join(c.stderr for c in self.calls if c.returncode)


def _open_writer(path: Path, proc: subprocess.Popen) -> Optional[int]:
    """Open a FIFO for writing once the module opens it for reading; None when the module exited first."""
    while True:
        try:
            fd = os.open(str(path), os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            if proc.poll() is not None:
                return None
            time.sleep(0.01)
            continue
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd


def _write(fd: int, data: bytes, close: bool = True) -> int:
    try:
        n = os.write(fd, data)
    except BrokenPipeError:
        n = 0
    if close:
        os.close(fd)
    return n
