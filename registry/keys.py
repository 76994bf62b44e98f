"""The registry's Ed25519 signing key, from a file, generated there on first run."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from registry.config import read_or_create_secret


def _new_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )


def load_signing_key(path: str) -> Ed25519PrivateKey:
    """Read the PEM key at ``path``; create it (owner-only) if there is none."""
    pem = read_or_create_secret(Path(path), _new_pem)
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key
