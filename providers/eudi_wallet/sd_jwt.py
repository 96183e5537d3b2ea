"""SD-JWT (RFC 9901): a presentation split into its parts, and the issuer's payload with the
presented disclosures put back in place (§7.1 step 3-5), refusing everything §7.1 refuses.

A digest whose disclosure was not presented leaves its claim or array element absent: never
present, never an error (it may be a claim the holder withheld, or a decoy).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers.eudi_wallet.errors import InvalidPresentation
from providers.parsing import MalformedInput, bounded_json

HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha-256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
}
MAX_DISCLOSURES = 200
MAX_DISCLOSURE_CHARS = 100_000
FORBIDDEN_NAMES = ("_sd", "...")


@dataclass(frozen=True)
class SdJwtParts:
    """`<issuer-signed JWT>~<D1>~...~<Dn>~<KB-JWT>` (§4)."""

    issuer_jwt: str
    disclosures: tuple[str, ...]
    key_binding_jwt: str

    @property
    def sd_jwt(self) -> str:
        """The SD-JWT as presented, with its trailing `~`: what the KB-JWT's sd_hash covers."""
        return "~".join((self.issuer_jwt, *self.disclosures)) + "~"


def split_presentation(presentation: str) -> SdJwtParts:
    """The parts of an SD-JWT+KB. Key binding is required by our policy (§7.3), so a plain
    SD-JWT (empty last part) is refused whether or not a KB-JWT would have been optional."""
    parts = presentation.split("~")
    if len(parts) < 2:
        raise InvalidPresentation("not an SD-JWT")
    issuer_jwt, *disclosures, key_binding_jwt = parts
    if not key_binding_jwt:
        raise InvalidPresentation("the presentation has no key binding JWT")
    if not issuer_jwt or any(not d for d in disclosures):
        raise InvalidPresentation("an SD-JWT part is empty")
    if len(disclosures) > MAX_DISCLOSURES:
        raise InvalidPresentation("too many disclosures")
    return SdJwtParts(issuer_jwt, tuple(disclosures), key_binding_jwt)


def hash_of(name: object) -> Callable[[bytes], Any]:
    """The hash `_sd_alg` names (default sha-256, §4.1.1)."""
    if name is None:
        return hashlib.sha256
    if not isinstance(name, str) or name not in HASHES:
        raise InvalidPresentation("_sd_alg is not a hash we accept")
    return HASHES[name]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def disclose(
    payload: Mapping[str, Any], disclosures: Sequence[str], hash_function: Callable[[bytes], Any]
) -> dict[str, Any]:
    """The payload with every presented disclosure in place, `_sd` and `_sd_alg` removed."""
    by_digest: dict[str, list[Any]] = {}
    for encoded in disclosures:
        digest = b64url(hash_function(encoded.encode("ascii", "replace")).digest())
        if digest in by_digest:
            raise InvalidPresentation("a disclosure is presented twice")
        by_digest[digest] = _decoded(encoded)
    walk = _Walk(by_digest)
    claims = walk.object(payload)
    if walk.used != set(by_digest):
        raise InvalidPresentation("a disclosure is not referenced by any digest")
    claims.pop("_sd_alg", None)
    return claims


def _decoded(encoded: str) -> list[Any]:
    if len(encoded) > MAX_DISCLOSURE_CHARS:
        raise InvalidPresentation("a disclosure is too long")
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), b"-_", validate=True)
        value = bounded_json(raw)
    except (binascii.Error, ValueError, MalformedInput):
        raise InvalidPresentation("a disclosure is not base64url JSON") from None
    if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
        raise InvalidPresentation("a disclosure is not [salt, (name,) value]")
    if len(value) == 3 and (not isinstance(value[1], str) or value[1] in FORBIDDEN_NAMES):
        raise InvalidPresentation("a disclosure's claim name is not allowed")
    return value


class _Walk:
    """One pass over the payload, recursing into disclosed values (§7.1 step 3)."""

    def __init__(self, by_digest: Mapping[str, list[Any]]) -> None:
        self._by_digest = by_digest
        self._seen: set[str] = set()
        self.used: set[str] = set()

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.object(value)
        if isinstance(value, list):
            return self.array(value)
        return value

    def object(self, value: Mapping[str, Any]) -> dict[str, Any]:
        if "..." in value:
            raise InvalidPresentation("an object outside an array carries '...'")
        out = {name: self.value(member) for name, member in value.items() if name != "_sd"}
        digests = value.get("_sd", [])
        if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
            raise InvalidPresentation("_sd is not an array of digests")
        for digest in digests:
            disclosure = self._take(digest)
            if disclosure is None:
                continue  # withheld, or a decoy
            if len(disclosure) != 3:
                raise InvalidPresentation("an array element's disclosure is referenced by _sd")
            _salt, name, claim = disclosure
            if name in out:
                raise InvalidPresentation("a disclosed claim name already exists at its level")
            out[name] = self.value(claim)
        return out

    def array(self, value: list[Any]) -> list[Any]:
        out = []
        for element in value:
            if not (isinstance(element, dict) and "..." in element):
                out.append(self.value(element))
                continue
            digest = element["..."]
            if len(element) != 1 or not isinstance(digest, str):
                raise InvalidPresentation("an array digest is not {'...': digest} alone")
            disclosure = self._take(digest)
            if disclosure is None:
                continue  # an element not disclosed is left out
            if len(disclosure) != 2:
                raise InvalidPresentation("an object property's disclosure is in an array")
            out.append(self.value(disclosure[1]))
        return out

    def _take(self, digest: str) -> list[Any] | None:
        if digest in self._seen:
            raise InvalidPresentation("a digest appears twice")
        self._seen.add(digest)
        disclosure = self._by_digest.get(digest)
        if disclosure is not None:
            self.used.add(digest)
        return disclosure
