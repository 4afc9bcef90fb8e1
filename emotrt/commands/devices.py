"""``emotrt devices``: build-target profiles (``emotrt devices`` / ``devices list-targets``) and the
flash inventory (``devices add|list|remove|probe``, issue 13)."""
from pathlib import Path
from typing import List, Optional

import typer

devices = typer.Typer(help="Jetson build targets (no subcommand, or list-targets) and the flash inventory (add, list, remove, probe).",
                      invoke_without_command=True)

INVENTORY = typer.Option(Path("devices.toml"), "--inventory", "-i", help="Inventory file.")


@devices.callback()
def _devices(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON."),
) -> None:
    """Without a subcommand: list the Jetson device profiles (build targets) and what this machine probes as."""
    if ctx.invoked_subcommand is None:
        list_targets(as_json)


@devices.command("list-targets")
def list_targets(as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON.")) -> None:
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


@devices.command("add")
def add(
    name: str = typer.Argument(..., help="Device name (letters, digits, '.', '_', '-')."),
    host: str = typer.Option(..., "--host", help="Host name or address."),
    port: int = typer.Option(22, "--port", help="SSH port."),
    user: str = typer.Option("", "--user", help="SSH user (default: yours)."),
    identity: Optional[str] = typer.Option(None, "--identity", help="Private key file (default: your agent / ~/.ssh keys)."),
    root: str = typer.Option("/opt/emotrt", "--root", help="ROOT on the device."),
    group: List[str] = typer.Option([], "--group", "-g", help="Group(s) for --group flashes (repeatable)."),
    python: str = typer.Option("/usr/bin/python3", "--python", help="The device's Python (3.8+) that makes ROOT/venv."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite an existing entry."),
    inventory: Path = INVENTORY,
) -> None:
    """Add a device to the inventory."""
    from emotrt.devices.inventory import DeviceEntry, Inventory

    inv = Inventory.load(inventory, missing_ok=True)
    inv.add(DeviceEntry(name, host, port, user, identity, root, tuple(group), python), replace_existing=replace)
    inv.save()
    typer.echo("{} {} in {}".format("replaced" if replace else "added", name, inventory))


@devices.command("list")
def list_(inventory: Path = INVENTORY, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the devices of the inventory."""
    import dataclasses
    import json

    from rich.console import Console
    from rich.table import Table

    from emotrt.devices.inventory import Inventory

    inv = Inventory.load(inventory)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(e) for e in inv], indent=1))
        return
    table = Table(title="emotrt devices in {}".format(inventory))
    for column in ("name", "login", "root", "groups", "python"):
        table.add_column(column, overflow="fold")
    for e in inv:
        table.add_row(e.name, e.login, e.root, ", ".join(e.groups), e.python)
    Console().print(table)


@devices.command("remove")
def remove(name: str = typer.Argument(...), inventory: Path = INVENTORY) -> None:
    """Remove a device from the inventory (nothing on the device changes)."""
    from emotrt.devices.inventory import Inventory

    inv = Inventory.load(inventory)
    inv.remove(name)
    inv.save()
    typer.echo("removed {} from {}".format(name, inventory))


@devices.command("probe")
def probe(
    name: Optional[str] = typer.Argument(None, help="Device name (or --group / --all)."),
    group: Optional[str] = typer.Option(None, "--group", "-g"),
    everything: bool = typer.Option(False, "--all"),
    inventory: Path = INVENTORY,
    accept_new_host_key: bool = typer.Option(False, "--accept-new-host-key", help="Record an unknown host key instead of refusing."),
    known_hosts: Optional[Path] = typer.Option(None, "--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Connect and report what each device is: board, L4T, TensorRT, CUDA, Python, disk, memory, emotrt, bundles."""
    import json

    from emotrt.devices.flash import probe as probe_remote
    from emotrt.devices.inventory import Inventory
    from emotrt.devices.remote import connect

    out = {}
    for entry in Inventory.load(inventory).select(name, group, everything):
        with connect(entry, accept_new_host_key=accept_new_host_key, known_hosts=known_hosts) as remote:
            out[entry.name] = probe_remote(remote)["facts"]
    if as_json:
        typer.echo(json.dumps(out, indent=1, sort_keys=True))
        return
    for device, facts in out.items():
        typer.echo("{}: {} | L4T {} | TensorRT {} | CUDA {} | Python {} | {} MiB free | {} MiB RAM | emotrt {} | current {}".format(
            device, facts["board"] or "not a Jetson", facts["l4t"] or "-", facts["tensorrt"] or "-", facts["cuda"] or "-",
            facts["python"], (facts["free_bytes"] or 0) >> 20, (facts["mem_total"] or 0) >> 20, facts["emotrt"] or "none",
            facts["current"] or "none"))
