"""``emotrt package``: a bundle as a Mender artifact for fleets behind an OTA server (issue 16)."""
from pathlib import Path
from typing import List, Optional

import typer


def package(
    bundle: Path = typer.Argument(..., help="Bundle directory or .tar (emotrt build; emotrt sign first if devices have trusted_keys/)."),
    mender: List[str] = typer.Option(..., "--mender", help="Mender device type(s) the artifact is for, comma-separated or repeated "
                                                           "(a device's /var/lib/mender/device_type)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Artifact to write (default: BUNDLE.mender beside the bundle)."),
    name: Optional[str] = typer.Option(None, "--name", help="Artifact name shown by the Mender server (default: emotrt-<bundle id>)."),
    key: Optional[Path] = typer.Option(None, "--key", help="Mender signing key (RSA or ECDSA P-256 PEM): devices with ArtifactVerifyKey "
                                                          "refuse unsigned artifacts."),
    compression: str = typer.Option("none", help="Payload compression: none (engines and ONNX barely compress), gzip or lzma."),
) -> None:
    """Write BUNDLE as a Mender module-image artifact for the emotrt-bundle update module (mender-artifact)."""
    from emotrt.devices.mender_artifact import read_artifact, write_artifact

    target = out or (bundle.with_suffix(".mender") if bundle.suffix == ".tar" else bundle.with_name(bundle.name + ".mender"))
    path = write_artifact(bundle, target, mender, name=name, key=key, compression=compression)
    summary = [line.strip() for line in read_artifact(path).splitlines() if line.strip().startswith(("Name:", "Compatible devices:", "Signature:"))]
    typer.echo("artifact: {} ({:.1f} MiB; {})".format(path, path.stat().st_size / 2 ** 20, "; ".join(summary)))
