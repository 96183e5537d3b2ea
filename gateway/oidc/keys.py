"""ID-token signing keys: loaded at start, followed while the gateway runs, published as a JWKS.

A key directory shared by every instance holds PEM files whose name says the key's state:

- `signing-<kid>.pem` signs (when there are several, the newest by mtime, so instances agree);
- `next-<kid>.pem` is published but does not sign yet, so relying parties have it cached
  before the first token signed with it reaches them;
- `retired-<kid>.pem` is published so tokens it signed still verify, and signs nothing.

`portvakt keys` (gateway/oidc/key_rotation.py) moves keys between these states; every instance
re-reads the directory each `keys.reload_seconds` and switches when it sees the change. Without
a directory (embedded demo) a fresh RSA key lives in memory for the life of the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import KeySet, RSAKey

SIGNING_ALGORITHM = "RS256"
JWKS_MAX_AGE_SECONDS = 300
STATES = ("signing", "next", "retired")

log = logging.getLogger("portvakt.keys")


class KeysUnavailable(Exception):
    """The configured key directory has no usable signing key."""


@dataclass(frozen=True)
class KeyFile:
    state: str
    path: Path
    modified: float

    @property
    def kid(self) -> str:
        return self.path.stem.removeprefix(f"{self.state}-")


def key_files(directory: Path) -> list[KeyFile]:
    """The directory's keys, oldest first. A file renamed away while listing is skipped."""
    found = []
    for state in STATES:
        for path in directory.glob(f"{state}-*.pem"):
            try:
                found.append(KeyFile(state, path, path.stat().st_mtime))
            except FileNotFoundError:
                continue
    return sorted(found, key=lambda f: (f.modified, f.path.name))


@dataclass(frozen=True)
class _Loaded:
    active: RSAKey
    published: tuple[RSAKey, ...]
    jwks: dict[str, Any]
    key_set: KeySet
    fingerprint: tuple[tuple[str, float], ...]


class SigningKeys:
    """This instance's view of the keys. Everything that signs or verifies holds this one object,
    so `refresh()` switches them all at once."""

    def __init__(self, directory: Path | None, loaded: _Loaded) -> None:
        self.directory = directory
        self._loaded = loaded

    @property
    def active(self) -> RSAKey:
        return self._loaded.active

    @property
    def kid(self) -> str:
        return str(self._loaded.active.kid)

    @property
    def published(self) -> tuple[RSAKey, ...]:
        return self._loaded.published

    def jwks(self) -> dict[str, Any]:
        return self._loaded.jwks

    def key_set(self) -> KeySet:
        """The published keys, for verifying tokens this gateway signed (id_token_hint)."""
        return self._loaded.key_set

    def refresh(self) -> bool:
        """Re-read the directory if it changed. A half-finished rotation or an unreadable file
        keeps the keys in use (logged) and is tried again next time."""
        if self.directory is None:
            return False
        files = key_files(self.directory)
        if _fingerprint(files) == self._loaded.fingerprint:
            return False
        try:
            loaded = _load(files)
        except (KeysUnavailable, OSError, ValueError) as error:
            log.warning("keys.dir: keeping the loaded keys: %s", error)
            return False
        if loaded.active.kid != self._loaded.active.kid:
            log.info("keys.dir: now signing with %s", loaded.active.kid)
        self._loaded = loaded
        return True


async def follow_key_directory(keys: SigningKeys, every_seconds: float) -> None:
    """Runs for the life of the app: pick up what `portvakt keys rotate` did on any machine."""
    if keys.directory is None:
        return
    while True:
        await asyncio.sleep(every_seconds)
        await anyio.to_thread.run_sync(keys.refresh)


def load_signing_keys(directory: Path | None, may_generate: bool) -> SigningKeys:
    if directory is None:
        key = _import(new_rsa_pem())
        return SigningKeys(None, _loaded(key, (key,), ()))
    files = key_files(directory)
    if not any(f.state == "signing" for f in files):
        if not may_generate:
            raise KeysUnavailable(f"no signing-*.pem in {directory}; run portvakt keys generate")
        write_new_key(directory, "signing")
        files = key_files(directory)
    return SigningKeys(directory, _load(files))


def _load(files: list[KeyFile]) -> _Loaded:
    signing = [f for f in files if f.state == "signing"]
    if not signing:
        raise KeysUnavailable("no signing-*.pem in the key directory")
    keys = {f.path: _import(f.path.read_bytes()) for f in files}
    active = keys[signing[-1].path]
    # The active key first: verifiers that try keys in order (and humans reading) see it first.
    published = (active, *(key for key in keys.values() if key is not active))
    return _loaded(active, published, _fingerprint(files))


def _loaded(
    active: RSAKey, published: tuple[RSAKey, ...], fingerprint: tuple[tuple[str, float], ...]
) -> _Loaded:
    jwks = {"keys": [key.as_dict(private=False) for key in published]}
    key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    return _Loaded(active, published, jwks, key_set, fingerprint)


def _fingerprint(files: list[KeyFile]) -> tuple[tuple[str, float], ...]:
    return tuple((f.path.name, f.modified) for f in files)


def write_new_key(directory: Path, state: str) -> Path:
    """Write a new key whole under its final name: readers never see half a PEM file."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = new_rsa_pem()
    key = _import(pem)
    path = directory / f"{state}-{key.kid}.pem"
    partial = directory / f".{path.name}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(pem)
        key_file.flush()
        os.fsync(key_file.fileno())
    os.rename(partial, path)
    return path


def new_rsa_pem() -> bytes:
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
