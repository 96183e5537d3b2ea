"""ID-token signing keys: loaded once at start, published as a JWKS.

A key directory holds PEM files named `signing-*.pem`; the newest signs, all are published (so a
key added by another instance verifies as soon as it appears after a restart). Without a
directory (embedded demo) a fresh RSA key lives in memory for the life of the process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

SIGNING_ALGORITHM = "RS256"


class KeysUnavailable(Exception):
    """The configured key directory has no usable signing key."""


@dataclass(frozen=True)
class SigningKeys:
    active: RSAKey
    published: tuple[RSAKey, ...]

    @property
    def kid(self) -> str:
        return str(self.active.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.published]}


def load_signing_keys(directory: Path | None, may_generate: bool) -> SigningKeys:
    if directory is None:
        key = _import(_new_rsa_pem())
        return SigningKeys(active=key, published=(key,))
    paths = sorted(directory.glob("signing-*.pem"), key=lambda p: (p.stat().st_mtime, p.name))
    if not paths:
        if not may_generate:
            raise KeysUnavailable(f"no signing-*.pem in {directory}; run portvakt keys generate")
        paths = [write_new_signing_key(directory)]
    keys = tuple(_import(p.read_bytes()) for p in paths)
    return SigningKeys(active=keys[-1], published=keys)


def write_new_signing_key(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pem = _new_rsa_pem()
    key = _import(pem)
    path = directory / f"signing-{key.kid}.pem"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(pem)
    return path


def _new_rsa_pem() -> bytes:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _import(pem: bytes) -> RSAKey:
    """kid = RFC 7638 thumbprint, so every instance names the same key the same way."""
    key = RSAKey.import_key(pem, {"alg": SIGNING_ALGORITHM, "use": "sig"})
    key.ensure_kid()
    return key
