"""``emotrt flash``, ``emotrt rollback``, ``emotrt status``: bundles onto devices over SSH (issue 13)."""
from pathlib import Path
from typing import Optional

import typer

INVENTORY = typer.Option(Path("devices.toml"), "--inventory", "-i", help="Inventory file (emotrt devices add).")
DEVICE = typer.Option(None, "--device", "-d", help="One device of the inventory.")
GROUP = typer.Option(None, "--group", "-g", help="Every device of this group.")
ALL = typer.Option(False, "--all", help="Every device of the inventory.")
HOSTKEY = typer.Option(False, "--accept-new-host-key", help="Record an unknown host key in known_hosts instead of refusing.")
NO_SERVICE = typer.Option(False, "--no-service", help="Do not restart or check the emotrt service (health check on the pipeline only).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
KNOWN = typer.Option(None, "--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts).")


def flash(
    bundle: Path = typer.Argument(..., help="Bundle directory or .tar (emotrt build)."),
    device: Optional[str] = DEVICE, group: Optional[str] = GROUP, everything: bool = ALL, inventory: Path = INVENTORY,
    parallel: int = typer.Option(4, "--parallel", "-j", help="Devices flashed at once."),
    canary: int = typer.Option(0, "--canary", help="Flash this many devices first; go on only if all pass."),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", help="Stop the rollout when more devices than this fail."),
    keep: int = typer.Option(3, "--keep", help="Installed bundles kept per device (current and previous always)."),
    no_service: bool = NO_SERVICE,
    install_service: bool = typer.Option(False, "--install-service", help="Install and enable emotrt.service (sudo on the device)."),
    install_mender_module: bool = typer.Option(False, "--install-mender-module", help="Install the Mender update module emotrt-bundle "
                                                                                     "for emotrt package --mender artifacts (sudo on the device)."),
    wheelhouse: Optional[Path] = typer.Option(None, "--wheelhouse", help="Wheels for offline devices (emotrt's and its dependencies')."),
    speaker: Optional[str] = typer.Option(None, "--speaker", help="Speaker the service extracts (default: the bundle's first)."),
    environment: Optional[str] = typer.Option(None, "--environment", help="Environment the service uses (default: the bundle's first)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Connect, probe and preflight; change nothing."),
    accept_new_host_key: bool = HOSTKEY, known_hosts: Optional[Path] = KNOWN, as_json: bool = JSON,
) -> None:
    """Deliver BUNDLE: preflight, delta transfer, engines on the device, self-test, atomic switch, health check, rollback."""
    import json

    from emotrt.devices.flash import FlashOptions, FleetOptions, LocalBundle, flash_fleet, fleet_summary
    from emotrt.devices.inventory import Inventory

    entries = Inventory.load(inventory).select(device, group, everything)
    options = FlashOptions(keep=keep, service=not no_service, install_service=install_service, install_mender_module=install_mender_module,
                           wheelhouse=wheelhouse,
                           dry_run=dry_run, accept_new_host_key=accept_new_host_key, speaker=speaker, environment=environment,
                           known_hosts=known_hosts)
    fleet = FleetOptions(parallel=parallel, canary=canary, max_failures=max_failures)
    local = LocalBundle.open(bundle)
    if as_json:
        results = flash_fleet(entries, local, options, fleet)
        typer.echo(json.dumps({"bundle": local.bundle_id, "results": [r.to_dict() for r in results], "summary": fleet_summary(results)}, indent=1))
    else:
        results = _with_progress(entries, local, options, fleet)
        _table(local, results)
    if any(r.result in ("failed", "skipped") for r in results):
        raise typer.Exit(1)


def _with_progress(entries, local, options, fleet):
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from emotrt.devices.flash import Observer, flash_fleet

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console,
                  transient=True) as bar:
        tasks = {e.name: bar.add_task(e.name + ": waiting", total=None) for e in entries}

        class Bars(Observer):
            def step(self, device, name, remote):
                bar.update(tasks[device], description="{}: {}".format(device, name))

            def transfer(self, device, total):
                bar.update(tasks[device], total=total, completed=0)

            def sent(self, device, rel, n, remote):
                bar.update(tasks[device], advance=n)

            def message(self, device, line):
                bar.console.print("[dim]{}: {}[/]".format(device, line))

        return flash_fleet(entries, local, options, fleet, Bars())


def _table(local, results) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="emotrt flash {} ({} files, {:.1f} MiB)".format(local.bundle_id, len(local.files), local.total_bytes / 2 ** 20))
    for column in ("device", "result", "bytes sent", "time", "engines built", "bundle before -> after", "reason"):
        table.add_column(column, overflow="fold")
    colour = {"ok": "green", "no-op": "green", "dry-run": "cyan", "failed": "red", "skipped": "yellow"}
    for r in results:
        table.add_row(r.device, "[{}]{}[/]".format(colour[r.result], r.result), "{:,}".format(r.bytes_sent), "{:.1f} s".format(r.seconds),
                      str(r.engines_built), "{} -> {}".format(r.before or "none", r.after if r.result in ("ok", "no-op") else r.before or "none"),
                      r.reason)
    Console().print(table)
    for r in results:  # whole, unwrapped, one line a device on stderr, like every other verb's errors
        if r.result in ("failed", "skipped"):
            typer.echo("error: {}: {} at {}: {}".format(r.device, r.result, r.step or "start", r.reason), err=True)


def rollback(
    device: str = typer.Option(..., "--device", "-d", help="Device to switch back to its previous bundle."),
    inventory: Path = INVENTORY, no_service: bool = NO_SERVICE, accept_new_host_key: bool = HOSTKEY,
    known_hosts: Optional[Path] = KNOWN,
) -> None:
    """Switch a device back to its previous bundle and restart the service."""
    from emotrt.devices.flash import FlashOptions, remote_rollback
    from emotrt.devices.inventory import Inventory

    entry = Inventory.load(inventory)[device]
    done = remote_rollback(entry, FlashOptions(service=not no_service, accept_new_host_key=accept_new_host_key,
                                                     known_hosts=known_hosts))
    typer.echo("{}: rolled back {} -> {}".format(device, done["before"], done["after"]))


def status(
    device: Optional[str] = DEVICE, group: Optional[str] = GROUP, everything: bool = ALL, inventory: Path = INVENTORY,
    accept_new_host_key: bool = HOSTKEY, known_hosts: Optional[Path] = KNOWN, as_json: bool = JSON,
) -> None:
    """Active and previous bundle, service state and last flash of each device."""
    import json

    from emotrt.devices.flash import FlashOptions, remote_status
    from emotrt.devices.inventory import Inventory

    options = FlashOptions(accept_new_host_key=accept_new_host_key, known_hosts=known_hosts)
    out = {e.name: remote_status(e, options) for e in Inventory.load(inventory).select(device, group, everything)}
    if as_json:
        typer.echo(json.dumps(out, indent=1, sort_keys=True))
        return
    for name, s in out.items():
        last = s.get("last_flash") or {}
        typer.echo("{}: current {} | previous {} | service {} | last flash {} {} {}".format(
            name, s["current"] or "none", s["previous"] or "none", s["service"], last.get("time", "never"),
            last.get("result", ""), "(pending activation)" if s["pending"] else ""))


def sign(
    bundle: Optional[Path] = typer.Argument(None, help="Bundle directory to sign."),
    key: Optional[Path] = typer.Option(None, "--key", help="ed25519 private key (OpenSSH or PEM)."),
    new_key: Optional[Path] = typer.Option(None, "--new-key", help="Create an ed25519 key pair here (KEY and KEY.pub) first."),
) -> None:
    """Write BUNDLE/manifest.sig, an ed25519 signature of the manifest; devices with trusted_keys/ require one."""
    from emotrt.devices.signing import generate_key, sign_bundle
    from emotrt.runtime.errors import ConfigError

    if new_key is not None:
        private, public = generate_key(new_key)
        typer.echo("wrote {} and {} (copy the .pub into ROOT/trusted_keys/ on each device)".format(private, public))
        key = key or private
    if bundle is None:
        if new_key is None:
            raise ConfigError("give a BUNDLE to sign (or --new-key KEY to make a key)", hint="emotrt sign BUNDLE --key KEY")
        return
    if key is None:
        raise ConfigError("--key KEY is required to sign", hint="emotrt sign BUNDLE --key KEY (emotrt sign --new-key KEY makes one)")
    typer.echo("signed: {}".format(sign_bundle(bundle, key)))
