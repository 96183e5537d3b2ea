"""Verifying a PID presented as SD-JWT VC + KB-JWT, in the order of digest §4.5 (RFC 9901 §7.1
and §7.3, SD-JWT VC "Verification and Processing" as HAIP 1.0 pins it (-13), OpenID4VP 1.0
§8.6 and §14): the issuer's signature and `x5c` chain to the trust list, the disclosures, the
validity and type, then the key binding to this request. The status list comes after, in the
provider (`status_list.py`), as TSL §8.3 orders it.

Our policy where the specifications leave a choice: key binding always (a PID is holder-bound);
`exp` required (PIDs are short-lived technical credentials; one that never expires is refused);
only the `vct` values configured (by default `urn:eudi:pid:1`, not types that extend it).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping
from typing import Any

from providers.eudi_wallet import jose
from providers.eudi_wallet.errors import CredentialExpired, InvalidPresentation
from providers.eudi_wallet.pid import PresentationExpectation, StatusReference, VerifiedPid
from providers.eudi_wallet.sd_jwt import SdJwtParts, b64url, disclose, hash_of, split_presentation

MAX_PRESENTATION_CHARS = 200_000
ISSUER_TYP = "dc+sd-jwt"
KEY_BINDING_TYP = "kb+jwt"
# Claims SD-JWT VC keeps out of selective disclosure: about the credential, not the person.
CREDENTIAL_CLAIMS = frozenset(
    {"iss", "nbf", "exp", "iat", "cnf", "vct", "vct#integrity", "status", "sub", "aka_vcts"}
)


def verify_pid_presentation(presentation: str, expected: PresentationExpectation) -> VerifiedPid:
    """The PID's claims; a PresentationError saying why not."""
    if not isinstance(presentation, str) or len(presentation) > MAX_PRESENTATION_CHARS:
        raise InvalidPresentation("the presentation is not a string of bounded size")
    parts = split_presentation(presentation)
    issued = jose.read(parts.issuer_jwt, ISSUER_TYP)
    signer = expected.trust.signer(issued.header.get("x5c"), expected.now)
    jose.verify(issued, signer.public_key)
    payload = issued.payload
    hash_function = hash_of(payload.get("_sd_alg"))
    claims = disclose(payload, parts.disclosures, hash_function)
    if any(name in claims and name not in payload for name in CREDENTIAL_CLAIMS):
        raise InvalidPresentation("a credential claim was selectively disclosed")
    expires_at = _check_validity(payload, expected)
    vct = payload.get("vct")
    if not isinstance(vct, str) or vct not in expected.accepted_vcts:
        raise InvalidPresentation("the credential is not of an accepted type (vct)")
    _check_key_binding(parts, payload, expected, hash_function)
    person = {name: value for name, value in claims.items() if name not in CREDENTIAL_CLAIMS}
    return VerifiedPid(
        claims=person,
        vct=vct,
        issuer=signer.subject,
        expires_at=expires_at,
        status=_status_reference(payload.get("status")),
        issuer_chain=tuple(issued.header["x5c"]),
        issuer_country=signer.country,
    )


def _check_validity(payload: Mapping[str, Any], expected: PresentationExpectation) -> float:
    now, skew = expected.now, expected.clock_skew
    expires = _time(payload, "exp", required=True)
    not_before = _time(payload, "nbf")
    issued = _time(payload, "iat")
    assert expires is not None  # required above
    if expires <= now - skew:
        raise CredentialExpired("the PID has expired (exp)")
    if not_before is not None and not_before > now + skew:
        raise CredentialExpired("the PID is not valid yet (nbf)")
    if issued is not None and issued > now + skew:
        raise InvalidPresentation("the PID is issued in the future (iat)")
    return expires


def _time(payload: Mapping[str, Any], name: str, required: bool = False) -> float | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPresentation(f"{name} is not a NumericDate")
    try:
        moment = float(value)
    except OverflowError:  # an integer past any float
        raise InvalidPresentation(f"{name} is not a NumericDate") from None
    if not math.isfinite(moment):  # 1e999 reads as inf: never expired, never fresh
        raise InvalidPresentation(f"{name} is not a NumericDate")
    return moment


def _check_key_binding(
    parts: SdJwtParts,
    payload: Mapping[str, Any],
    expected: PresentationExpectation,
    hash_function: Any,
) -> None:
    """RFC 9901 §7.3 with OpenID4VP §8.6: signed by the `cnf` key, for our nonce and client_id,
    recently, over exactly the SD-JWT presented."""
    confirmation = payload.get("cnf")
    if not isinstance(confirmation, dict) or "jwk" not in confirmation:
        raise InvalidPresentation("the PID has no holder key (cnf.jwk)")
    holder_key = jose.public_ec_key(confirmation["jwk"])
    binding = jose.read(parts.key_binding_jwt, KEY_BINDING_TYP)
    jose.verify(binding, holder_key)
    claims = binding.payload
    issued = _time(claims, "iat", required=True)
    assert issued is not None  # required above
    if not expected.now - expected.kb_max_age <= issued <= expected.now + expected.clock_skew:
        raise InvalidPresentation("the key binding JWT is not fresh (iat)")
    if not _same(claims.get("nonce"), expected.nonce):
        raise InvalidPresentation("the key binding JWT is for another request (nonce)")
    if not _same(claims.get("aud"), expected.audience):
        raise InvalidPresentation("the key binding JWT is for another verifier (aud)")
    sd_hash = b64url(hash_function(parts.sd_jwt.encode("ascii", "replace")).digest())
    if not _same(claims.get("sd_hash"), sd_hash):
        raise InvalidPresentation("the key binding JWT covers another SD-JWT (sd_hash)")


def _same(value: object, expected: str) -> bool:
    return isinstance(value, str) and hmac.compare_digest(value.encode(), expected.encode())


def _status_reference(status: object) -> StatusReference | None:
    """HAIP §6.1: a `status`, when present, holds a `status_list` {idx, uri}."""
    if status is None:
        return None
    reference = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(reference, dict):
        raise InvalidPresentation("status has no status_list")
    idx, uri = reference.get("idx"), reference.get("uri")
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
        raise InvalidPresentation("status_list.idx is not a non-negative integer")
    if not isinstance(uri, str) or not uri:
        raise InvalidPresentation("status_list.uri is not a URI")
    return StatusReference(uri, idx)
