"""Identity -> OIDC claims: the Swedish OpenID Connect profile's scopes and claims, the Sweden
Connect eIDAS claims, and the pairwise `sub` (one citizen is one `sub` per sector, whichever
e-ID they used; it never reveals the identity number)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from providers.base import Identity

PERSONAL_IDENTITY_NUMBER = "https://id.oidc.se/claim/personalIdentityNumber"
COORDINATION_NUMBER = "https://id.oidc.se/claim/coordinationNumber"
PRID = "https://id.swedenconnect.se/claim/prid"
PRID_PERSISTENCE = "https://id.swedenconnect.se/claim/pridPersistence"
EIDAS_PERSON_IDENTIFIER = "https://id.swedenconnect.se/claim/eidasPersonIdentifier"
EIDAS_COUNTRY = "https://id.swedenconnect.se/claim/eidasCountry"
# Claims §2.3.5: which e-ID provider authenticated; the e-service may send it back as the
# `https://id.oidc.se/param/authnProvider` parameter (RPar §2.2).
AUTHN_PROVIDER = "https://id.oidc.se/claim/authnProvider"
# Signature Extension 1.1 §3.2, Claims §2.3.2: the signature a sign request produced, and the
# proof that came with it (BankID's OCSP response).
USER_SIGNATURE = "https://id.oidc.se/claim/userSignature"
AUTHN_EVIDENCE = "https://id.oidc.se/claim/authnEvidence"
# Claims §2.3: the address of the device that holds the e-ID (BankID's `device.ipAddress`); in
# no scope, released when the `claims` request asks for it.
DEVICE_IP = "https://id.oidc.se/claim/deviceIp"
# Ours (no profile defines one, oidc-sweden-extensions.md §3.8): BankID's risk rating of the
# login, low | moderate | high | unknown (docs/integrating.md); released when asked for.
BANKID_RISK = "https://portvakt.se/claim/bankidRisk"

NATURAL_PERSON_INFO = "https://id.oidc.se/scope/naturalPersonInfo"
NATURAL_PERSON_NUMBER = "https://id.oidc.se/scope/naturalPersonNumber"
EIDAS_NATURAL_PERSON = "https://id.swedenconnect.se/scope/eidasNaturalPersonIdentity"
# Signature Extension 1.1 §3.2: sign `tbs_data`, or approve a signature made elsewhere.
SIGN_SCOPE = "https://id.oidc.se/scope/sign"
SIGN_APPROVAL_SCOPE = "https://id.oidc.se/scope/signApproval"
SIGN_SCOPES = (SIGN_SCOPE, SIGN_APPROVAL_SCOPE)

NAME_CLAIMS = frozenset({"given_name", "family_name", "middle_name", "name", "birthdate"})
NUMBER_CLAIMS = frozenset({PERSONAL_IDENTITY_NUMBER, COORDINATION_NUMBER})


class ScopeClaims(NamedTuple):
    """The claims one scope releases in each of the two places claims go."""

    id_token: frozenset[str]
    userinfo: frozenset[str]


# Claims spec §3, SC.Claims §3.
SCOPE_CLAIMS: dict[str, ScopeClaims] = {
    "profile": ScopeClaims(id_token=frozenset(), userinfo=NAME_CLAIMS),
    NATURAL_PERSON_INFO: ScopeClaims(id_token=frozenset(), userinfo=NAME_CLAIMS),
    NATURAL_PERSON_NUMBER: ScopeClaims(id_token=NUMBER_CLAIMS, userinfo=NUMBER_CLAIMS),
    EIDAS_NATURAL_PERSON: ScopeClaims(
        id_token=frozenset({PRID, PRID_PERSISTENCE}),
        userinfo=frozenset({PRID, PRID_PERSISTENCE, EIDAS_PERSON_IDENTIFIER}),
    ),
    # Only the ID token carries the signature (§5.2); auth_time is always there.
    SIGN_SCOPE: ScopeClaims(
        id_token=frozenset({USER_SIGNATURE, AUTHN_EVIDENCE}), userinfo=frozenset()
    ),
    SIGN_APPROVAL_SCOPE: ScopeClaims(id_token=frozenset(), userinfo=frozenset()),
}
SUPPORTED_SCOPES = ("openid", *SCOPE_CLAIMS)
# What a client may ask for when its `scopes` key is omitted: everything but signing.
IDENTITY_SCOPES = tuple(scope for scope in SUPPORTED_SCOPES if scope not in SIGN_SCOPES)
# Authentication information (Claims §2.3): always in the ID token, at userinfo when asked.
ALWAYS_IN_ID_TOKEN = frozenset({AUTHN_PROVIDER})
# Raw upstream attributes a provider may pass through in Identity.extra, by claim name.
PASSED_THROUGH = frozenset(
    {PRID_PERSISTENCE, EIDAS_PERSON_IDENTIFIER, EIDAS_COUNTRY, DEVICE_IP, BANKID_RISK}
)
SUPPORTED_CLAIMS = (
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr",
    *sorted(NAME_CLAIMS), *sorted(NUMBER_CLAIMS), PRID, *sorted(PASSED_THROUGH),
    AUTHN_PROVIDER,
)  # fmt: skip
SIGN_CLAIMS = (USER_SIGNATURE, AUTHN_EVIDENCE)


def identity_claims(identity: Identity) -> dict[str, Any]:
    """Every claim value this identity can support; which ones are released is decided later."""
    values: dict[str, Any] = {
        "given_name": identity.given_name,
        "family_name": identity.family_name,
        "name": identity.name,
        "birthdate": identity.birthdate,
        PERSONAL_IDENTITY_NUMBER: identity.personal_identity_number,
        COORDINATION_NUMBER: identity.coordination_number,
        PRID: identity.prid,
        AUTHN_PROVIDER: identity.authn_provider,
        USER_SIGNATURE: identity.user_signature,
        AUTHN_EVIDENCE: identity.authn_evidence,
        **{k: v for k, v in identity.extra.items() if k in PASSED_THROUGH},
    }
    return {name: value for name, value in values.items() if value is not None}


def id_token_claims(
    identity: Identity, scopes: Iterable[str], requested: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The person's claims in the ID token: its scopes' rules plus the `claims` request's
    `id_token` member, and the authentication information claims always."""
    by_scope = (SCOPE_CLAIMS[scope].id_token for scope in scopes if scope in SCOPE_CLAIMS)
    return _released(identity, set(requested or ()).union(ALWAYS_IN_ID_TOKEN, *by_scope))


def userinfo_claims(
    identity: Identity, scopes: Iterable[str], requested: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The person's claims at userinfo: its scopes' rules plus the `claims` request's
    `userinfo` member."""
    by_scope = (SCOPE_CLAIMS[scope].userinfo for scope in scopes if scope in SCOPE_CLAIMS)
    return _released(identity, set(requested or ()).union(*by_scope))


def _released(identity: Identity, names: set[str]) -> dict[str, Any]:
    available = identity_claims(identity)
    return {name: available[name] for name in sorted(names) if name in available}


def subject(salt: str, sector: str, identity: Identity) -> str:
    """Pairwise `sub` (OIDC Core §8.1): HMAC of the sector and the person's stable key."""
    digest = hmac.new(
        salt.encode(), f"{sector}\n{person_key(identity)}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def person_key(identity: Identity) -> str:
    if identity.personal_identity_number:
        return f"pnr:{identity.personal_identity_number}"
    if identity.coordination_number:
        return f"pnr:{identity.coordination_number}"
    if identity.prid:
        return f"prid:{identity.prid}"
    return f"upstream:{identity.provider}:{identity.subject}"
