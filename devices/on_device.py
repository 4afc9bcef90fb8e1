"""The device's end of ``emotrt flash``: ``python -m emotrt.devices.on_device OP ROOT`` with JSON in and out.

The workstation runs this from ``ROOT/venv`` over SSH. The first stdin line is a JSON object of
arguments; the last stdout line is the JSON result, or ``{"error": ..., "hint": ..., "kind": ...}``
with exit status 2 for a user error. Progress goes to stderr line by line (streamed back).
``activate`` also prints one line per step boundary and then waits for ``commit`` on stdin:
end of input (a cut connection) or a timeout rolls back. No typer, no numpy at import: a call
costs one interpreter start.

Ops: commit, engines, selftest, activate, rollback, status, recover, prune.
"""
from __future__ import annotations

import json
import select
import signal
import sys
from typing import Any, Callable, Dict

from emotrt.devices.device_root import DeviceRoot, device_fingerprint
from emotrt.runtime.errors import EmotrtError


def _progress(line: str) -> None:
    sys.stderr.write(line.rstrip("\n") + "\n")
    sys.stderr.flush()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _confirm(timeout: float) -> bool:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return False
    return sys.stdin.readline().strip() == "commit"


def op_commit(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    return {"path": str(device.commit_staged(args["bundle_id"], args["files"]))}


def op_engines(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    return device.ensure_engines(args["bundle_id"], device_fingerprint(), progress=_progress)


def op_selftest(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    return device.selftest(args["bundle_id"])


def op_activate(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a vanished workstation is seen as end of stdin, then rolled back

    def say(line: str) -> None:
        try:
            _say(line)
        except (BrokenPipeError, OSError):
            pass

    return device.activate(args["bundle_id"], say, _confirm, service=bool(args.get("service")),
                           health_timeout=float(args.get("health_timeout", 60)), commit_timeout=float(args.get("commit_timeout", 120)),
                           keep=int(args.get("keep", 3)), extra=args.get("extra") or {})


def op_rollback(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    device.recover()
    return device.rollback(args.get("reason") or "requested by emotrt rollback", service=bool(args.get("service")))


def op_status(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    return device.status()


def op_recover(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    return {"recovered": device.recover()}


def op_prune(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    return {"removed": device.prune(int(args.get("keep", 3)))}


OPS: Dict[str, Callable[[DeviceRoot, Dict[str, Any]], Dict[str, Any]]] = {
    "commit": op_commit, "engines": op_engines, "selftest": op_selftest, "activate": op_activate,
    "rollback": op_rollback, "status": op_status, "recover": op_recover, "prune": op_prune,
}


def main(argv: Any = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] not in OPS:
        sys.stderr.write("usage: python -m emotrt.devices.on_device {} ROOT  (JSON arguments on stdin)\n".format("|".join(OPS)))
        return 64
    op, root = argv
    line = sys.stdin.readline()
    try:
        args = json.loads(line) if line.strip() else {}
        result = OPS[op](DeviceRoot(root), args)
    except EmotrtError as exc:
        _say(json.dumps({"error": exc.message, "hint": exc.hint, "kind": type(exc).__name__}))
        return 2
    _say(json.dumps({"result": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
