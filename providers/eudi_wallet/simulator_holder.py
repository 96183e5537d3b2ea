"""The simulated wallet's answer (OpenID4VP 1.0 §8, HAIP 1.0 §5): the PID's disclosures the
DCQL query asks for (OID4VP §6-§7: claims paths; the first satisfiable `claim_sets` option),
a KB-JWT (RFC 9901 §4.3: `typ` `kb+jwt`, ES256 by the `cnf` key, `aud` the full client_id,
`nonce`, `iat`, `sd_hash`), and the response `{"vp_token": {id: [SD-JWT+KB]}, "state": ...}`
encrypted for `direct_post.jwt` (OID4VP §8.3: a compact JWE, `ECDH-ES` on P-256, the request
key's `kid`, `A256GCM` when offered).

`Twist` bends one answer for a negative end-to-end test: each is a presentation a verifier
must refuse.
"""

from __future__ import annotations

import base64
import enum
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey

from providers.eudi_wallet.simulator_issuer import (
    Disclosure,
    IssuedPid,
    b64url,
    sd_digest,
    signed,
)
from providers.eudi_wallet.simulator_request import ClaimPath, ClaimQuery, WalletRequest

STALE_SECONDS = 3600


class Twist(enum.Enum):
    """A way to bend the next answer; the value is what the simulator's page shows."""

    KB_OTHER_KEY = "KB-JWT signed with another key than the PID's cnf key"
    WRONG_NONCE = "KB-JWT with another nonce"
    WRONG_AUD = "KB-JWT with another audience"
    STALE_KB = "KB-JWT issued an hour ago"
    KB_ALG_NONE = "KB-JWT with alg none (unsigned)"
    NO_KEY_BINDING = "no KB-JWT at all"
    UNENCRYPTED = "unencrypted vp_token (direct_post instead of direct_post.jwt)"
    ALTERED_DISCLOSURE = "a disclosure altered after issuance"
    ADDED_DISCLOSURE = "a disclosure the issuer never signed"
    EXPIRED_PID = "an expired PID"
    UNTRUSTED_ISSUER = "a PID from an issuer not on the trust list"
    SHARE_WHAT_IT_HAS = "share the PID even when it lacks a requested claim"


def _resolves(claims: Any, path: ClaimPath) -> bool:
    """Does the person's PID have a value at this DCQL claims path (OID4VP §7.1)?"""
    if not path:
        return True
    head, rest = path[0], path[1:]
    if isinstance(head, str):
        return isinstance(claims, Mapping) and head in claims and _resolves(claims[head], rest)
    if not isinstance(claims, list):
        return False
    if head is None:
        return bool(claims) and all(_resolves(element, rest) for element in claims)
    return head < len(claims) and _resolves(claims[head], rest)


def requested_paths(request: WalletRequest, claims: Mapping[str, Any]) -> list[ClaimPath] | None:
    """The claims paths to disclose, or None when the PID cannot satisfy the query."""
    if not request.claim_sets:
        wanted: Iterable[ClaimQuery] = request.claims
        return [c.path for c in wanted] if all(_resolves(claims, c.path) for c in wanted) else None
    by_id = {c.id: c for c in request.claims}
    for option in request.claim_sets:
        paths = [by_id[i].path for i in option]
        if all(_resolves(claims, p) for p in paths):
            return paths
    return None


def missing_claims(request: WalletRequest, claims: Mapping[str, Any]) -> list[str]:
    return [
        ".".join("*" if e is None else str(e) for e in c.path)
        for c in request.claims
        if not _resolves(claims, c.path)
    ]


def _overlaps(query: ClaimPath, disclosed: tuple[str | int, ...]) -> bool:
    """A disclosure is needed when it is on the way to the queried value or inside it."""
    return all(
        q == d or (q is None and isinstance(d, int)) for q, d in zip(query, disclosed, strict=False)
    )


def chosen_disclosures(pid: IssuedPid, paths: list[ClaimPath]) -> list[Disclosure]:
    return [d for d in pid.disclosures if any(_overlaps(p, d.path) for p in paths)]


def _altered(disclosures: list[str]) -> list[str]:
    """The first disclosure of a string claim with its value changed (else the first one with
    its salt changed): in both, its digest is no longer the one the issuer signed."""
    for n, encoded in enumerate(disclosures):
        salt, *rest = json.loads(_b64decode(encoded))
        if len(rest) == 2 and isinstance(rest[1], str):  # [salt, name, value]
            forged = b64url(json.dumps([salt, rest[0], rest[1] + "x"]).encode())
            return [*disclosures[:n], forged, *disclosures[n + 1 :]]
    if disclosures:
        _salt, *rest = json.loads(_b64decode(disclosures[0]))
        return [b64url(json.dumps(["altered", *rest]).encode()), *disclosures[1:]]
    return disclosures


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bent_disclosures(disclosures: list[str], twist: Twist | None) -> list[str]:
    if twist is Twist.ALTERED_DISCLOSURE:
        return _altered(disclosures)
    if twist is Twist.ADDED_DISCLOSURE:
        unsigned = b64url(
            json.dumps([b64url(secrets.token_bytes(16)), "age_over_18", True]).encode()
        )
        return [*disclosures, unsigned]
    return disclosures


@dataclass(frozen=True)
class Binding:
    holder: ECKey
    now: float


def key_binding_jwt(
    sd_jwt: str, request: WalletRequest, binding: Binding, twist: Twist | None
) -> str:
    if twist is Twist.NO_KEY_BINDING:
        return ""
    stale = STALE_SECONDS if twist is Twist.STALE_KB else 0
    other_aud = "x509_hash:" + b64url(secrets.token_bytes(32))
    claims = {
        "iat": int(binding.now - stale),
        "aud": other_aud if twist is Twist.WRONG_AUD else request.client_id,
        "nonce": b64url(secrets.token_bytes(16)) if twist is Twist.WRONG_NONCE else request.nonce,
        "sd_hash": sd_digest(sd_jwt),
    }
    if twist is Twist.KB_ALG_NONE:
        header = b64url(json.dumps({"alg": "none", "typ": "kb+jwt"}).encode())
        return f"{header}.{b64url(json.dumps(claims).encode())}."
    key = ECKey.generate_key("P-256") if twist is Twist.KB_OTHER_KEY else binding.holder
    return signed({"alg": "ES256", "typ": "kb+jwt"}, claims, key)


def presentation(
    pid: IssuedPid,
    request: WalletRequest,
    paths: list[ClaimPath],
    binding: Binding,
    twist: Twist | None,
) -> str:
    """SD-JWT+KB (RFC 9901 §4): `<issuer JWT>~<D1>~...~<Dn>~<KB-JWT>`."""
    encoded = [d.encoded for d in chosen_disclosures(pid, paths)]
    sd_jwt = "~".join([pid.issuer_jwt, *bent_disclosures(encoded, twist)]) + "~"
    return sd_jwt + key_binding_jwt(sd_jwt, request, binding, twist)


def response_form(request: WalletRequest, vp: str, twist: Twist | None) -> dict[str, str]:
    """What is POSTed to the response_uri: `response=<JWE>`, or for the twist, the plain
    `direct_post` form a HAIP verifier must refuse."""
    vp_token = {request.query_id: [vp]}
    state = {"state": request.state} if request.state is not None else {}
    if twist is Twist.UNENCRYPTED:
        return {"vp_token": json.dumps(vp_token), **state}
    payload = json.dumps({"vp_token": vp_token, **state}).encode()
    header = {"alg": "ECDH-ES", "enc": request.enc, "kid": request.encryption_key["kid"]}
    key = ECKey.import_key(dict(request.encryption_key))
    return {
        "response": jwe.encrypt_compact(header, payload, key, algorithms=["ECDH-ES", request.enc])
    }
