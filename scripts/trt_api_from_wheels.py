"""Write devices/trt_api/<version>.json: the Python API names of NVIDIA's real TensorRT bindings.

    python scripts/trt_api_from_wheels.py                 # every version in VERSIONS
    python scripts/trt_api_from_wheels.py --only 10.3.0 --wheels /tmp/wheels

NVIDIA publishes the bindings on PyPI as small binary wheels (``tensorrt-bindings``,
``tensorrt-cu12-bindings``, ``tensorrt-cu13-bindings``); each holds ``tensorrt_bindings/__init__.py``
and ``tensorrt.so``, a pybind11 module. Its dependencies (libnvinfer & co., the ``-libs`` wheels)
are download stubs and need a GPU, but the module needs only ten C entry points from them
(``createInferBuilder_INTERNAL`` …, read with ``nm -D --undefined-only``), all called lazily. So
this script compiles stub libraries exporting those names (returning NULL), imports the
package in a subprocess, and records what pybind11 registered: every module name, every class
with its methods and properties, every enum with its members, plus what ``__init__.py``
adds (``nptype``, ``Logger.WARNING`` …). Nothing is constructed or run: no Builder, no Runtime.

As a cross-check that works without a compiler, every recorded name is looked up among the
``.so``'s strings, suffix-aware (the linker merges string tails, so ``set_flag`` may exist only
inside ``clear_flag``-like longer strings); names missing there are listed in the file.

The wheels are the x86_64 builds for the running CPython (the Python API does not depend on the
CPU; NVIDIA publishes aarch64 bindings only for some versions). Tests never download: they read
the committed files.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "devices" / "trt_api"

#: file stem -> (pip requirement, which device TensorRT releases it stands for)
VERSIONS = {
    "8.6.1": ("tensorrt-bindings==8.6.1",
              "TensorRT 8.5.2 (JetPack 5.1) and 8.6.2 (JetPack 6.0): 8.6.1 is the only 8.x bindings wheel on PyPI"),
    "10.3.0": ("tensorrt-cu12-bindings==10.3.0", "TensorRT 10.3 (JetPack 6.1 / 6.2), and 10.0-10.12"),
    "10.13.3": ("tensorrt-cu13-bindings==10.13.3.9", "TensorRT 10.13 (JetPack 7.0 / 7.1) and later 10.x"),
    "11.4.0": ("tensorrt-cu13-bindings==11.4.0.106",
               "TensorRT 11.x (JetPack 7.2.2 ships 11.4.1; 11.4.0.106 is the nearest published bindings)"),
}

#: what the bindings need from libnvinfer, libnvonnxparser, libnvparsers and libnvinfer_plugin (8.6-11.4)
STUB_C = r"""
void* createInferBuilder_INTERNAL(void* a, int b) { return 0; }
void* createInferRefitter_INTERNAL(void* a, void* b, int c) { return 0; }
void* createInferRuntime_INTERNAL(void* a, int b) { return 0; }
void* createNvOnnxParserRefitter_INTERNAL(void* a, void* b, int c) { return 0; }
void* createNvOnnxParser_INTERNAL(void* a, void* b, int c) { return 0; }
void* getBuilderPluginRegistry(int a) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
void* getPluginRegistry(void) { return 0; }
int initLibNvInferPlugins(void* a, const char* b) { return 0; }
int getInferLibVersion(void) { return 0; }
void* _ZN11nvuffparser15createUffParserEv(void) { return 0; }
void _ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi(void* a, const char* b, const void* c, int d, int e) {}
void* _ZN14nvcaffeparser117createCaffeParserEv(void) { return 0; }
void _ZN14nvcaffeparser123shutdownProtobufLibraryEv(void) {}
"""
STUB_LIBS = ("libnvinfer", "libnvonnxparser", "libnvparsers", "libnvinfer_plugin")

#: run in the subprocess: import the bindings package and list what it registers
PROBE = r"""
import enum, inspect, json, sys
import tensorrt_bindings as trt

def members(cls):
    return sorted(n for n in dir(cls) if not n.startswith("__") and not n.startswith("_pybind11"))

def is_enum(cls):
    return hasattr(cls, "__members__")

classes, enums, functions, values = {}, {}, [], []
def visit(name, cls):
    classes[name] = members(cls)
    if is_enum(cls):
        enums[name] = sorted(cls.__members__)
    for attr in classes[name]:
        inner = getattr(cls, attr, None)
        if isinstance(inner, type) and (inner.__module__ or "").startswith("tensorrt") and not is_enum(cls):
            visit(name + "." + attr, inner)

for name in sorted(dir(trt)):
    if name.startswith("__") and name != "__version__":
        continue
    obj = getattr(trt, name)
    if inspect.ismodule(obj):
        continue
    if isinstance(obj, type):
        visit(name, obj)
    elif callable(obj):
        functions.append(name)
    else:
        values.append(name)
print(json.dumps({"version": trt.__version__, "classes": classes, "enums": enums,
                  "functions": functions, "values": values}))
"""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(requirement: str, dest: Path) -> Path:
    """``pip download --no-deps`` of the x86_64 wheel for the running CPython; the wheel's path."""
    before = set(dest.glob("*.whl"))
    tag = "{}{}".format(*sys.version_info[:2])
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", tag, "-d", str(dest), requirement]
    for platform in ("manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "manylinux_2_35_x86_64"):
        cmd[-1:-1] = ["--platform", platform]
    subprocess.run(cmd, check=True)
    name, _, version = requirement.partition("==")
    prefix = "{}-{}-".format(name.replace("-", "_"), version)
    found = [w for w in dest.glob("*.whl") if w.name.startswith(prefix)]
    if not found:
        raise SystemExit("pip downloaded {} but no {}*.whl".format(sorted(set(dest.glob("*.whl")) - before), prefix))
    return sorted(found)[0]


def so_strings(data: bytes) -> list:
    """Printable runs of the shared object (like ``strings -n 2``)."""
    return [m.decode("ascii") for m in re.findall(rb"[\x20-\x7e]{2,}", data)]


def init_names(source: str) -> list:
    """Names ``__init__.py`` binds at module level (functions, assignments, loop variables) or sets on classes."""
    names = set()

    def bind(target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Tuple):
            for element in target.elts:
                bind(element)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            names.add("{}.{}".format(target.value.id, target.attr))

    def visit(body: list) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    bind(target)
            elif isinstance(node, ast.For):
                bind(node.target)
            elif isinstance(node, (ast.If, ast.Try)):  # module-level branches bind module names too
                visit(node.body + node.orelse + [s for h in getattr(node, "handlers", []) for s in h.body])

    visit(ast.parse(source).body)
    return sorted(names)


def build_stubs(major: str, where: Path) -> Path:
    """Stub libnvinfer.so.<major> & co. exporting the entry points the bindings link against."""
    source = where / "stub.c"
    source.write_text(STUB_C)
    libs = where / ("lib" + major)
    libs.mkdir(exist_ok=True)
    for lib in STUB_LIBS:
        soname = "{}.so.{}".format(lib, major)
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(libs / soname), "-Wl,-soname," + soname, str(source)],
                       check=True)
    return libs


def needed_major(so: Path) -> str:
    """The libnvinfer major the module links against (``libnvinfer.so.10`` -> "10")."""
    out = subprocess.run(["readelf", "-d", str(so)], check=True, capture_output=True, text=True).stdout
    match = re.search(r"\[libnvinfer\.so\.(\d+)\]", out)
    if not match:
        raise SystemExit("{} does not link libnvinfer".format(so))
    return match.group(1)


def introspect(root: Path, so: Path, scratch: Path) -> dict:
    env = dict(os.environ, LD_LIBRARY_PATH=str(build_stubs(needed_major(so), scratch)), PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, env=env, cwd=scratch)
    return json.loads(out.stdout)


def api_file(stem: str, requirement: str, stands_for: str, wheel: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "wheel"
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(root)
        package = root / "tensorrt_bindings"
        so = package / "tensorrt.so"
        strings = so_strings(so.read_bytes())
        api = introspect(root, so, Path(tmp))
        inits = init_names((package / "__init__.py").read_text())
    suffixes = {s[i:] for s in strings for i in range(len(s))}
    recorded = set(api["functions"]) | set(api["values"])
    for cls, names in api["classes"].items():
        recorded |= {cls.rsplit(".", 1)[-1]} | set(names)
    python_level = {n.rsplit(".", 1)[-1] for n in inits}
    not_in_strings = sorted(n for n in recorded - python_level if n not in suffixes)
    return {
        "tensorrt": stem,
        "bindings_version": api["version"],
        "stands_for": stands_for,
        "wheel": {"requirement": requirement, "file": wheel.name, "sha256": sha256(wheel)},
        "source": ("introspection of the imported bindings (stub libnvinfer), scripts/trt_api_from_wheels.py; "
                   "cross-checked against the tensorrt.so strings (suffix-aware)"),
        "strings_check": {"names": len(recorded), "not_in_so_strings": not_in_strings},
        "init_names": inits,
        "functions": api["functions"],
        "values": api["values"],
        "enums": api["enums"],
        "classes": api["classes"],
    }


def write(data: dict, path: Path) -> None:
    """JSON with one line per class, so a diff between versions reads as a list of names."""
    lines = ["{"]
    items = list(data.items())
    for i, (key, value) in enumerate(items):
        end = "," if i < len(items) - 1 else ""
        if key in ("classes", "enums") and value:
            lines.append(" {}: {{".format(json.dumps(key)))
            rows = sorted(value.items())
            for j, (name, names) in enumerate(rows):
                lines.append("  {}: {}{}".format(json.dumps(name), json.dumps(names), "," if j < len(rows) - 1 else ""))
            lines.append(" }" + end)
        else:
            lines.append(" {}: {}{}".format(json.dumps(key), json.dumps(value, sort_keys=True), end))
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=sorted(VERSIONS), help="version(s) to (re)write")
    ap.add_argument("--wheels", type=Path, default=None, help="download folder (kept; default: a temp dir)")
    ap.add_argument("-o", "--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheels or Path(tmp)
        wheels.mkdir(parents=True, exist_ok=True)
        for stem in args.only or VERSIONS:
            requirement, stands_for = VERSIONS[stem]
            wheel = download(requirement, wheels)
            data = api_file(stem, requirement, stands_for, wheel)
            path = args.out / (stem + ".json")
            write(data, path)
            print("{}: {} classes, {} enums, {} functions; {} ({}); {} names not among the .so strings".format(
                path, len(data["classes"]), len(data["enums"]), len(data["functions"]), wheel.name,
                data["wheel"]["sha256"][:12], len(data["strings_check"]["not_in_so_strings"])))


if __name__ == "__main__":
    main()
