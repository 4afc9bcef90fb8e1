"""Signed bundles: an ed25519 detached signature of ``manifest.json`` in ``manifest.sig`` (issue 13).

    generate_key("release.key")                      # + release.key.pub (OpenSSH format)
    sign_bundle("bundle/", "release.key")            # writes bundle/manifest.sig
    verify_manifest("bundle/", "/opt/emotrt/trusted_keys")   # name of the key that signed, or SignatureError

The manifest lists the sha256 of every file, so signing it signs the bundle (``speakers/`` excepted:
devices enroll speakers after flashing). A device with ``ROOT/trusted_keys/`` switches only to a
bundle signed by one of the ``*.pub`` keys there; several keys allow rotation. Keys are OpenSSH
(``ssh-keygen -t ed25519``) or PEM. Crypto through ``cryptography`` (maintained, audited, and
already a dependency of paramiko), never by hand.
"""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any, List, Optional, Tuple

from emotrt.runtime.errors import EmotrtError
from emotrt.runtime.manifest import MANIFEST, SIGNATURE


class SignatureError(EmotrtError):
    """A bundle's signature is missing, malformed, or made by no trusted key."""


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def load_private_key(path: Any) -> Any:
    """An ed25519 private key from an OpenSSH or PEM file (unencrypted)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError("cannot read key {}: {}".format(path, exc.strerror or exc), hint="emotrt sign --new-key KEY creates one")
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError("{} is not an unencrypted ed25519 private key ({})".format(path, exc),
                             hint="ssh-keygen -t ed25519 -N '' -f KEY, or emotrt sign --new-key KEY")
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError("{} is a {} key; bundles are signed with ed25519".format(path, type(key).__name__),
                             hint="ssh-keygen -t ed25519 -N '' -f KEY")
    return key


def load_public_key(path: Any) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = Path(path).read_bytes()
    try:
        key = serialization.load_ssh_public_key(data.strip()) if data.startswith(b"ssh-") else serialization.load_pem_public_key(data)
    except (ValueError, TypeError, IndexError) as exc:
        raise SignatureError("trusted key {} is unreadable ({})".format(path, exc), hint="copy the .pub written by emotrt sign --new-key")
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("trusted key {} is not ed25519".format(path))
    return key


def generate_key(path: Any) -> Tuple[Path, Path]:
    """Write a new ed25519 key to ``path`` (OpenSSH, mode 0600) and ``path.pub``."""
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from emotrt.runtime.atomic import atomic_write

    path = Path(path)
    if path.exists():
        raise SignatureError("{} already exists; refusing to overwrite a key".format(path), hint="choose another path")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    atomic_write(path, private, mode=0o600)  # private from its first byte (outputs otherwise follow the umask)
    pub = path.with_name(path.name + ".pub")
    atomic_write(pub, public + b" emotrt-bundle-signing\n")
    return path, pub


def sign_bundle(bundle: Any, key_path: Any) -> Path:
    """Write ``BUNDLE/manifest.sig``, the detached signature of its manifest by ``key_path``."""
    from emotrt.runtime.atomic import atomic_write
    from emotrt.runtime.bundle_reader import Bundle

    key = load_private_key(key_path)
    with Bundle.open(bundle) as opened:  # sign only what verifies
        root = opened.root
    manifest = (root / MANIFEST).read_bytes()
    raw = _raw_public(key.public_key())
    doc = {"algorithm": "ed25519", "key_id": key_id(raw), "public_key": base64.b64encode(raw).decode(),
           "manifest_sha256": hashlib.sha256(manifest).hexdigest(), "signature": base64.b64encode(key.sign(manifest)).decode()}
    out = root / SIGNATURE
    atomic_write(out, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    return out


def trusted_keys(directory: Any) -> List[Tuple[str, Any]]:
    return [(p.name, load_public_key(p)) for p in sorted(Path(directory).glob("*.pub"))]


def verify_manifest(bundle_dir: Any, keys_dir: Any) -> str:
    """The name of the trusted key whose signature of ``manifest.json`` verifies; else :class:`SignatureError`."""
    from cryptography.exceptions import InvalidSignature

    bundle_dir = Path(bundle_dir)
    keys = trusted_keys(keys_dir)
    if not keys:
        raise SignatureError("{} holds no *.pub key, so no bundle can be trusted".format(keys_dir),
                             hint="copy your signing key's .pub there, or remove the directory to accept unsigned bundles")
    sig_path = bundle_dir / SIGNATURE
    if not sig_path.is_file():
        raise SignatureError("the bundle is not signed and this device accepts only signed bundles ({})".format(keys_dir),
                             hint="emotrt sign BUNDLE --key KEY, then flash again")
    try:
        doc = json.loads(sig_path.read_text())
        signature = base64.b64decode(doc["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError("{} is malformed ({})".format(sig_path, exc), hint="sign again: emotrt sign BUNDLE --key KEY")
    manifest = (bundle_dir / MANIFEST).read_bytes()
    for name, key in keys:
        try:
            key.verify(signature, manifest)
            return name
        except InvalidSignature:
            continue
    wanted: Optional[str] = doc.get("key_id")
    raise SignatureError("the bundle's signature (key {}) verifies with none of the {} trusted key(s) in {}".format(
        wanted or "unknown", len(keys), keys_dir), hint="sign it with a trusted key: emotrt sign BUNDLE --key KEY")
