"""emotrt in ``ROOT/venv`` on a device: a wheel of this emotrt, built here, installed there (issue 13).

    install_venv(remote, wheelhouse=None, say=print)    # -> the new venvs/<version>-<time> name

The venv is made with the device's Python and ``--system-site-packages`` (JetPack's TensorRT and
numpy stay visible), in ``ROOT/venvs/<version>-<time>``; ``ROOT/venv`` is then switched to it by a new
symlink renamed over the old, so a failed install leaves the old venv in use. Dependencies come
from the device's index, or only from ``--wheelhouse`` (sent along) for offline devices.
"""
from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, List, Optional, Tuple

from emotrt.devices.remote import Remote
from emotrt.runtime.errors import DependencyError


def install_venv(remote: Remote, wheelhouse: Optional[Path], say: Callable[[str], None]) -> str:
    """Install this emotrt into ``ROOT/venvs/<version>-<time>`` and switch ``ROOT/venv`` to it (new link + rename)."""
    import emotrt

    wheel, extra = local_wheels(wheelhouse)
    root = PurePosixPath(remote.entry.root)
    house = root / "staging" / "wheelhouse"
    remote.run(["mkdir", "-p", str(house), str(root / "venvs")])
    for path in [wheel] + extra:
        remote.put(path, str(house / path.name))
    venv = root / "venvs" / "{}-{}".format(emotrt.__version__, time.strftime("%Y%m%d%H%M%S"))
    py = str(venv / "bin" / "python")
    say("creating {}".format(venv))
    remote.run([remote.entry.python, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], timeout=300)
    if remote.run([py, "-m", "pip", "--version"], check=False).returncode != 0:
        remote.run([py, "-m", "ensurepip", "--default-pip"], timeout=300)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if wheelhouse is not None:
        pip += ["--no-index", "--find-links", str(house)]
    target = str(house / wheel.name)
    say("installing {} and its device dependencies".format(wheel.name))
    remote.run(pip + [target + "[device]"], timeout=1800)
    remote.run(pip + ["--no-deps", "--force-reinstall", target], timeout=600)
    remote.run([py, "-c", "import os,sys; t=sys.argv[1]+'.new'; os.path.lexists(t) and os.unlink(t); "
                "os.symlink(sys.argv[2], t); os.replace(t, sys.argv[1])", str(root / "venv"), str(PurePosixPath("venvs") / venv.name)])
    return venv.name


_WHEEL_LOCK = threading.Lock()
_BUILT: Dict[str, Path] = {}


def local_wheels(wheelhouse: Optional[Path]) -> Tuple[Path, List[Path]]:
    """(emotrt wheel, other wheels to send): from ``wheelhouse`` when it has this version's wheel, else built from the source tree."""
    import emotrt

    if wheelhouse is not None:
        wheels = sorted(Path(wheelhouse).glob("*.whl"))
        own = [w for w in wheels if w.name.startswith("emotrt-{}-".format(emotrt.__version__))]
        if own:
            return own[-1], [w for w in wheels if w not in own]
        return build_wheel(), wheels
    return build_wheel(), []


def build_wheel() -> Path:
    """Build (once per process) the wheel of the emotrt this workstation runs, from its source tree."""
    import emotrt

    source = Path(emotrt.__file__).resolve().parents[1]
    with _WHEEL_LOCK:
        if "emotrt" in _BUILT and _BUILT["emotrt"].is_file():
            return _BUILT["emotrt"]
        if not (source / "pyproject.toml").is_file():
            raise DependencyError("emotrt is not installed from a source tree, so no wheel can be built for the device",
                                 hint="pass --wheelhouse DIR holding emotrt-{}-*.whl".format(emotrt.__version__))
        out = Path(tempfile.mkdtemp(prefix="emotrt-wheel-"))
        atexit.register(shutil.rmtree, str(out), True)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wheels = sorted(out.glob("emotrt-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise DependencyError("building the emotrt wheel failed: {}".format(proc.stderr.decode(errors="replace").strip()[-300:]),
                                 hint="pip wheel --no-deps {} -w DIR, then --wheelhouse DIR".format(source))
        _BUILT["emotrt"] = wheels[0]
        return wheels[0]
