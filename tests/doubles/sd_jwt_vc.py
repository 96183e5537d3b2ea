"""A test-only SD-JWT VC issuer and holder, written from RFC 9901 §4-§5 and SD-JWT VC with
PyJWT and `hashlib`: none of the verifier's code. It makes every claim selectively
disclosable, recursively (object members and array elements), can add decoy digests, and lets
a test bend any part (headers, claims, disclosures, the KB-JWT) to make the bad inputs the
verifier must refuse.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.doubles.wallet_pki import PidProvider


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(disclosure: str) -> str:
    """RFC 9901 §4.2.3: SHA-256 over the ASCII of the base64url disclosure, not decoded."""
    return b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def disclose(value: Any, name: str | None = None, salt: str | None = None) -> str:
    """An object-property disclosure `[salt, name, value]`, or an array-element one."""
    salt = salt or b64url(secrets.token_bytes(16))
    parts = [salt, value] if name is None else [salt, name, value]
    return b64url(json.dumps(parts).encode())


@dataclass
class Concealed:
    """A payload with every member replaced by digests, and the disclosures that reveal it,
    in the order a holder would present them."""

    payload: dict[str, Any]
    disclosures: list[str] = field(default_factory=list)


def conceal(claims: dict[str, Any], decoys: int = 0) -> Concealed:
    """All of `claims` selectively disclosable; nested objects and arrays recursively."""
    out = Concealed({})
    digests = []
    for name, value in claims.items():
        inner = _conceal_value(value, out.disclosures)
        encoded = disclose(inner, name)
        out.disclosures.append(encoded)
        digests.append(digest(encoded))
    digests += [digest(disclose("decoy", "decoy")) for _ in range(decoys)]
    out.payload["_sd"] = sorted(digests)
    return out


def _conceal_value(value: Any, disclosures: list[str]) -> Any:
    if isinstance(value, dict):
        inner = conceal(value)
        disclosures.extend(inner.disclosures)
        return inner.payload
    if isinstance(value, list):
        elements = []
        for element in value:
            encoded = disclose(_conceal_value(element, disclosures))
            disclosures.append(encoded)
            elements.append({"...": digest(encoded)})
        return elements
    return value


def holder_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return jwk


@dataclass
class Pid:
    """One issued PID: the issuer-signed JWT and every disclosure."""

    issuer_jwt: str
    disclosures: list[str]
    holder: ec.EllipticCurvePrivateKey

    def sd_jwt(self, disclosures: list[str] | None = None) -> str:
        """`<JWT>~<D1>~...~<Dn>~`: what the KB-JWT's sd_hash covers."""
        chosen = self.disclosures if disclosures is None else disclosures
        return "~".join([self.issuer_jwt, *chosen]) + "~"

    def present(  # noqa: PLR0913 -- a test bends any of these
        self,
        nonce: str,
        audience: str,
        *,
        disclosures: list[str] | None = None,
        iat: float | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        headers: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """SD-JWT+KB: the SD-JWT with a KB-JWT over it (RFC 9901 §4.3)."""
        sd_jwt = self.sd_jwt(disclosures)
        claims = {
            "iat": int(time.time() if iat is None else iat),
            "aud": audience,
            "nonce": nonce,
            "sd_hash": b64url(hashlib.sha256(sd_jwt.encode("ascii")).digest()),
            **(extra or {}),
        }
        kb = jwt.encode(
            claims,
            key or self.holder,
            algorithm="ES256",
            headers={"typ": "kb+jwt", **(headers or {})},
        )
        return sd_jwt + kb


SE_PERSON = {
    "given_name": "Tolvan",
    "family_name": "Tolvansson",
    "birthdate": "1912-12-12",
    "place_of_birth": {"locality": "Stockholm", "country": "SE"},
    "nationalities": ["SE"],
    "personal_administrative_number": "191212121212",
    "issuing_country": "SE",
    "issuing_authority": "Test PID Provider SE",
}


def issue_pid(  # noqa: PLR0913 -- a test bends any of these
    provider: PidProvider,
    person: dict[str, Any] | None = None,
    *,
    vct: str = "urn:eudi:pid:1",
    lifetime: int = 86400,
    iat: float | None = None,
    status: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    decoys: int = 2,
) -> Pid:
    """A PID in SD-JWT VC form signed by `provider`'s signer with `x5c` (HAIP §6.1)."""
    holder = holder_key()
    concealed = conceal(dict(SE_PERSON if person is None else person), decoys)
    issued_at = int(time.time() if iat is None else iat)
    payload = {
        **concealed.payload,
        "_sd_alg": "sha-256",
        "vct": vct,
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "cnf": {"jwk": public_jwk(holder)},
        **({"status": status} if status is not None else {}),
        **(extra or {}),
    }
    header = {"typ": "dc+sd-jwt", "x5c": provider.x5c, **(headers or {})}
    token = jwt.encode(payload, provider.signer.key, algorithm="ES256", headers=header)
    return Pid(token, concealed.disclosures, holder)
