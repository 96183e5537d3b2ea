"""`portvakt keys generate | rotate | list | saml`: the operator's side of the key directory.

Rotation is two steps apart in time, so no relying party ever meets a `kid` it has not cached:
`generate` writes the first signing key and the next one; each `rotate` promotes a next key
that has been published long enough (every instance re-read the directory and every JWKS cache
expired), retires the signing key, writes a new next key and drops retired keys older than
`keys.retired_keep_seconds`. Renames are atomic and ordered so an instance reading the directory
half-way through still picks the right signing key (see gateway/oidc/keys.py).
"""

from __future__ import annotations

import datetime
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.oidc.keys import JWKS_MAX_AGE_SECONDS, KeyFile, key_files, write_new_key


class RotationRefused(Exception):
    """Rotating now would break a promise the key directory makes; the message says why."""


@dataclass(frozen=True)
class Rotation:
    promoted: str
    retired: list[str]
    created: str
    removed: list[str]


def publish_wait_seconds(reload_seconds: int) -> int:
    """How long a next key must have been published before it may sign."""
    return reload_seconds + JWKS_MAX_AGE_SECONDS


def generate(directory: Path) -> list[Path]:
    with _locked(directory):
        if any(f.state == "signing" for f in key_files(directory)):
            raise RotationRefused(
                f"{directory} already has a signing key; use `portvakt keys rotate` to replace it"
            )
        return [write_new_key(directory, "signing"), write_new_key(directory, "next")]


def rotate(
    directory: Path,
    reload_seconds: int,
    retired_keep_seconds: int,
    now: bool = False,
    clock: float | None = None,
) -> Rotation:
    at = time.time() if clock is None else clock
    with _locked(directory):
        files = key_files(directory)
        signing = [f for f in files if f.state == "signing"]
        waiting = [f for f in files if f.state == "next"]
        if not signing:
            raise RotationRefused(f"{directory} has no signing key; run `portvakt keys generate`")
        if not waiting:
            # A directory from before `next-` keys: publish one now, promote it next time.
            created = write_new_key(directory, "next")
            raise RotationRefused(
                f"there was no next key; {created.name} is now published and can be promoted "
                f"in {publish_wait_seconds(reload_seconds)} s"
            )
        candidate = waiting[0]
        published_for = at - candidate.modified
        if not now and published_for < publish_wait_seconds(reload_seconds):
            raise RotationRefused(
                f"{candidate.path.name} has been published for {published_for:.0f} s; instances "
                f"and relying parties may not have it yet (wait until it is "
                f"{publish_wait_seconds(reload_seconds)} s old, or pass --now if none are live)"
            )
        promoted = _promote(candidate)
        retired = [_retire(old) for old in signing]
        created = write_new_key(directory, "next")
        removed = [
            _remove(old)
            for old in key_files(directory)
            if old.state == "retired" and at - old.modified >= retired_keep_seconds
        ]
        return Rotation(promoted, retired, KeyFile("next", created, 0).kid, removed)


def _promote(candidate: KeyFile) -> str:
    """Newest mtime first, then the name: a reader now sees two signing keys and picks this one."""
    os.utime(candidate.path)
    os.rename(candidate.path, candidate.path.with_name(f"signing-{candidate.kid}.pem"))
    return candidate.kid


def _retire(old: KeyFile) -> str:
    """Rename first, then stamp: stamping first would make the old key the newest signer."""
    retired = old.path.with_name(f"retired-{old.kid}.pem")
    os.rename(old.path, retired)
    os.utime(retired)
    return old.kid


def _remove(old: KeyFile) -> str:
    old.path.unlink(missing_ok=True)
    return old.kid


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Two operators (or two cron jobs) rotating at once would retire each other's key."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / ".rotation.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def listing(directory: Path, clock: float | None = None) -> list[str]:
    at = time.time() if clock is None else clock
    files = key_files(directory)
    signing = [f for f in files if f.state == "signing"]
    lines = []
    for file in reversed(files):
        state = file.state
        if state == "signing" and file is not signing[-1]:
            state = "signing (superseded)"
        since = datetime.datetime.fromtimestamp(file.modified, datetime.UTC)
        lines.append(
            f"{state:<22} {file.kid}  since {since:%Y-%m-%d %H:%M:%SZ} "
            f"({_age(at - file.modified)} ago)"
        )
    return lines


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def write_saml_pair(directory: Path, name: str, use: str, days: int, common_name: str) -> Path:
    """An RSA-3072 key and its self-signed certificate, as SAML federations expect for SPs
    (the certificate is only a key carrier; trust comes from the signed federation metadata)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC)
    base = directory / f"saml-{name}-{use}-{stamp:%Y%m%d%H%M%S}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(stamp - datetime.timedelta(minutes=5))
        .not_valid_after(stamp + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(f"{base}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(key_pem)
    Path(f"{base}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return base
