"""``emotrt devices``."""
import typer


def devices(
    as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON."),
) -> None:
    """List the Jetson device profiles (build targets) and what this machine probes as."""
    import json

    from rich.console import Console
    from rich.table import Table

    from emotrt.devices.profiles import load_profiles, match_device
    from emotrt.runtime.fingerprint import probe_device

    profiles = load_profiles()
    device = probe_device()
    if as_json:
        typer.echo(json.dumps({"profiles": [p.to_dict() for p in profiles.values()], "this_machine": device.to_dict()}, indent=1))
        return
    table = Table(title="emotrt device profiles")
    for column in ("id", "module", "GPU", "memory", "DLA", "workspace", "JetPack -> TensorRT", "power modes"):
        table.add_column(column, overflow="fold")
    for p in profiles.values():
        releases = ", ".join("{}->{}{}".format(r.jetpack, r.tensorrt, "" if r.verified else "?") for r in p.releases)
        table.add_row(p.id, p.name, "sm " + p.compute_capability, "{} MiB".format(p.memory_mib), str(p.dla_cores),
                      "{} MiB".format(p.workspace_mib), releases, ", ".join(p.power_modes) + " (default " + p.default_power_mode + ")")
    console = Console()
    console.print(table)
    matched = ", ".join(p.id for p in match_device(device)) if device.is_jetson else "not a Jetson"
    console.print("this machine: TensorRT {}, GPU {}, L4T {}, CUDA {}, board {} -> {}".format(
        device.tensorrt or "none", device.compute_capability or "none", device.l4t or "none", device.cuda or "none",
        device.board or "none", matched))
    console.print("'?' marks releases REFERENCE.md lists as unverified")
