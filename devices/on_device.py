"""The device's end of ``emotrt flash``: ``python -m emotrt.devices.on_device OP ROOT`` with JSON in and out.

The workstation runs this from ``ROOT/venv`` over SSH. The first stdin line is a JSON object of
arguments; the last stdout line is the JSON result, or ``{"error": ..., "hint": ..., "kind": ...}``
with exit status 2 for a user error. Progress goes to stderr line by line (streamed back).
``install`` also prints one line per step boundary and then waits for ``commit`` on stdin:
end of input (a cut connection) or a timeout rolls back. No typer, no numpy at import: a call
costs one interpreter start.

Ops: install (commit, engines, selftest, switch, health check, commit), rollback, status, recover, prune.
"""
from __future__ import annotations

import json
import select
import signal
import sys
from typing import Any, Callable, Dict

from emotrt.devices.device_root import DeviceRoot, DeviceStateError, device_fingerprint
from emotrt.runtime.errors import EmotrtError


def _progress(line: str) -> None:
    sys.stderr.write(line.rstrip("\n") + "\n")
    sys.stderr.flush()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _confirm(timeout: float) -> bool:
    """True on ``commit``; a timeout, end of input (a cut) or anything else raises, which rolls back."""
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        raise DeviceStateError("the workstation did not commit within {:.0f} s".format(timeout))
    line = sys.stdin.readline()
    if not line:
        raise DeviceStateError("the workstation went away before committing (connection cut)")
    if line.strip() != "commit":
        raise DeviceStateError("the workstation aborted the activation: {!r}".format(line.strip()[:80]))
    return True


def _say_safely(line: str) -> None:
    try:
        _say(line)
    except (BrokenPipeError, OSError):  # the workstation is gone: the next stdin read says so
        pass


def op_install(device: DeviceRoot, args: Dict[str, Any]) -> Dict[str, Any]:
    """commit -> engines -> selftest -> (wait for "switch") -> activate -> (wait for "commit"), one process.

    A line ``step NAME`` marks each boundary. Nothing changes ``current`` until the workstation says
    ``switch``; after that, anything but ``commit`` (a cut is end of input) rolls back.
    """
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a vanished workstation is seen as end of stdin
    bundle_id = args["bundle_id"]
    device.recover()
    if args.get("files") is not None:
        device.commit_staged(bundle_id, args["files"])
    _say_safely("step engines")
    engines = device.ensure_engines(bundle_id, device_fingerprint(), progress=_progress)
    _say_safely("engines " + json.dumps(engines))
    _say_safely("step selftest")
    test = device.selftest(bundle_id)
    if not test["passed"]:
        raise DeviceStateError("self-test of {} failed ({}); nothing was switched".format(bundle_id, test["verdict"]),
                               hint="run `emotrt selftest` on the bundle and rebuild it")
    if args.get("service_env"):
        device.write_service_env(args["service_env"])
    _say_safely("ready " + json.dumps(test))
    line = sys.stdin.readline().strip()
    if line != "switch":
        raise DeviceStateError("the workstation went away before the switch; nothing was changed")
    extra = dict(args.get("extra") or {}, engines_built=engines["built"])
    entry = device.activate(bundle_id, _say_safely, _confirm, service=bool(args.get("service")),
                            health_timeout=float(args.get("health_timeout", 60)), commit_timeout=float(args.get("commit_timeout", 120)),
                            keep=int(args.get("keep", 3)), extra=extra)
    return {"engines": engines, "selftest": test, "activation": entry}


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
    "install": op_install, "rollback": op_rollback, "status": op_status, "recover": op_recover, "prune": op_prune,
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
