"""What a device is and what it already holds, read with the standard library only (issue 13).

This module is the first thing ``emotrt flash`` runs on a device, before emotrt is installed there:
the workstation sends its source to the device's own Python (``python3 -c BOOTSTRAP`` with the source
and arguments as JSON on stdin), so it imports nothing but the standard library and stays valid on
Python 3.8. The same functions are imported normally by the device-side library
(:mod:`emotrt.devices.device_root`) and by tests.

:func:`probe_facts` reads every fact from paths relative to ``fs_root`` (default ``/``; the device
takes it from ``$EMOTRT_PROBE_ROOT`` when set), so a test bed points it at a fake ``/etc`` and ``/proc``:

- L4T release: first line of ``etc/nv_tegra_release``; board: ``proc/device-tree/model``;
- TensorRT: the ``tensorrt`` / ``libnvinfer*`` package in ``var/lib/dpkg/status`` (JetPack installs it so);
- CUDA: ``usr/local/cuda/version.json``; memory: ``proc/meminfo``;
- Python: the interpreter running this; free disk: ``statvfs`` of ROOT (or its nearest existing parent).
"""
import hashlib
import json
import os
import re
import sys

BOOTSTRAP = (
    "import sys,json;d=json.loads(sys.stdin.read());"
    "g={'__name__':'emotrt_device_probe'};exec(compile(d['src'],'emotrt-device-probe','exec'),g);"
    "sys.stdout.write(json.dumps(g['main'](d['args'])))"
)
_L4T = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?")
_TRT_PACKAGES = ("tensorrt", "libnvinfer10", "libnvinfer8", "nvidia-tensorrt", "libnvinfer-bin")


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\x00", b"").decode("utf-8", "replace").strip()
    except OSError:
        return None


def _version(text, parts=3):
    numbers = re.findall(r"\d+", text or "")[:parts]
    if not numbers:
        return None
    return ".".join(str(int(n)) for n in numbers + ["0"] * (parts - len(numbers)))


def dpkg_version(fs_root, packages):
    """Version of the first installed package of ``packages`` in ``var/lib/dpkg/status``."""
    text = _read(os.path.join(fs_root, "var/lib/dpkg/status")) or ""
    found = {}
    for stanza in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Package") in packages and "installed" in fields.get("Status", "installed"):
            found[fields["Package"]] = fields.get("Version", "")
    for name in packages:
        if found.get(name):
            return _version(found[name].split("-")[0])
    return None


def read_cuda(fs_root):
    text = _read(os.path.join(fs_root, "usr/local/cuda/version.json"))
    if text:
        try:
            return _version(json.loads(text)["cuda"]["version"], 2)
        except (ValueError, KeyError, TypeError):
            pass
    text = _read(os.path.join(fs_root, "usr/local/cuda/version.txt")) or ""
    match = re.search(r"(\d+\.\d+)", text)
    return _version(match.group(1), 2) if match else None


def read_meminfo(fs_root):
    out = {}
    for line in (_read(os.path.join(fs_root, "proc/meminfo")) or "").splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemTotal", "MemAvailable") and rest.split():
            out[name] = int(rest.split()[0]) * 1024
    return out


def free_bytes(path):
    """Free bytes for an unprivileged writer on the filesystem of ``path`` (or its nearest existing parent)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def installed_emotrt(root):
    """emotrt's version in ``ROOT/venv`` (from its dist-info, without importing it), None when absent."""
    venv = os.path.join(root, "venv")
    for libdir in ("lib", "lib64"):
        base = os.path.join(venv, libdir)
        if not os.path.isdir(base):
            continue
        for py in sorted(os.listdir(base)):
            site = os.path.join(base, py, "site-packages")
            if not os.path.isdir(site):
                continue
            for name in os.listdir(site):
                match = re.match(r"^emotrt-([^-]+)\.dist-info$", name)
                if match and os.path.isfile(os.path.join(venv, "bin", "python")):
                    return match.group(1)
    return None


def link_target(root, name):
    try:
        return os.path.basename(os.readlink(os.path.join(root, name)))
    except OSError:
        return None


def probe_facts(root, fs_root="/"):
    """Every fact preflight needs, as a JSON-able dict; absent parts are None, nothing raises."""
    text = _read(os.path.join(fs_root, "etc/nv_tegra_release"))
    l4t = None
    if text:
        match = _L4T.search(text.splitlines()[0])
        if match:
            l4t = "{}.{}.{}".format(match.group(1), match.group(2), match.group(3) or "0")
    mem = read_meminfo(fs_root)
    return {
        "l4t": l4t,
        "board": _read(os.path.join(fs_root, "proc/device-tree/model")) or None,
        "tensorrt": dpkg_version(fs_root, _TRT_PACKAGES),
        "cuda": read_cuda(fs_root),
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "python_executable": sys.executable,
        "free_bytes": free_bytes(root),
        "mem_total": mem.get("MemTotal"),
        "mem_available": mem.get("MemAvailable"),
        "emotrt": installed_emotrt(root),
        "current": link_target(root, "current"),
        "previous": link_target(root, "previous"),
        "signed_only": os.path.isdir(os.path.join(root, "trusted_keys")),
        "pending": os.path.isfile(os.path.join(root, "pending.json")),
    }


# ------------------------------------------------------------------ what the device already holds


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def staging_dirs(root, bundle_id):
    base = os.path.join(root, "staging", bundle_id)
    return os.path.join(base, "files"), os.path.join(base, "partial")


def content_index(root):
    """sha256 -> a path on the device holding that content: every installed bundle's manifest lists its files."""
    index = {}
    bundles = os.path.join(root, "bundles")
    if not os.path.isdir(bundles):
        return index
    for bid in sorted(os.listdir(bundles)):
        base = os.path.join(bundles, bid)
        try:
            with open(os.path.join(base, "manifest.json")) as f:
                files = json.load(f).get("files", {})
        except (OSError, ValueError):
            continue
        for rel, sha in files.items():
            index.setdefault(sha, os.path.join(base, rel))
        # speakers/ lies outside the manifest's hashes (enrolled on devices): hash its few small files here
        for dirpath, _, names in os.walk(os.path.join(base, "speakers")):
            for name in names:
                path = os.path.join(dirpath, name)
                index.setdefault(sha256_file(path), path)
    return index


def plan_transfer(root, bundle_id, files, link=False):
    """Which of ``files`` ({rel: [sha256, size]}) must still be sent, and from which offset.

    A file counts as held when the bundle is installed, when it is already staged, or when an
    installed bundle has the same content (then, with ``link``, it is hard-linked into staging:
    an unchanged model is never sent twice). A partial file resumes at its size.
    """
    if os.path.isdir(os.path.join(root, "bundles", bundle_id)):
        return {"installed": True, "need": {}, "have": sorted(files)}
    done, partial = staging_dirs(root, bundle_id)
    index = content_index(root)
    need, have = {}, []
    for rel, (sha, size) in sorted(files.items()):
        dest = os.path.join(done, rel)
        if os.path.isfile(dest):
            if os.path.getsize(dest) == size and sha256_file(dest) == sha:
                have.append(rel)
                continue
            if not link:  # read-only probe: it will be replaced
                need[rel] = 0
                continue
            os.unlink(dest)  # e.g. a new signature or speaker for the same manifest
        source = index.get(sha)
        if source and os.path.isfile(source) and os.path.getsize(source) == size:
            if link:
                parent = os.path.dirname(dest)
                if not os.path.isdir(parent):
                    os.makedirs(parent)
                try:
                    os.link(source, dest)
                except OSError:
                    import shutil

                    shutil.copyfile(source, dest + ".copy")
                    os.rename(dest + ".copy", dest)
            have.append(rel)
            continue
        part = os.path.join(partial, rel)
        offset = os.path.getsize(part) if os.path.isfile(part) else 0
        if link and not os.path.isdir(os.path.dirname(part)):
            os.makedirs(os.path.dirname(part))
        need[rel] = offset if offset <= size else 0
    return {"installed": False, "need": need, "have": have}


def main(args):
    """Entry point when the source is sent to a device: ``{"op": "probe"|"plan", ...}``."""
    root = args["root"]
    fs_root = os.environ.get("EMOTRT_PROBE_ROOT") or "/"
    out = {"facts": probe_facts(root, fs_root)}
    if args.get("bundle_id"):
        out["transfer"] = plan_transfer(root, args["bundle_id"], args.get("files", {}), link=bool(args.get("link")))
    return out
