"""What a verified PID presentation gives (`VerifiedPid`) and what it is verified against
(`PresentationExpectation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from providers.eudi_wallet.trust import TrustList

PID_VCT = "urn:eudi:pid:1"
SD_JWT_VC_FORMAT = "dc+sd-jwt"


@dataclass(frozen=True)
class StatusReference:
    """The PID's `status.status_list` (Token Status List §6.1): where its status list is, and
    its index in it."""

    uri: str
    idx: int


@dataclass(frozen=True)
class PresentationExpectation:
    """What one presentation must be bound to and checked against: the request's `nonce`, our
    full `client_id` (the KB-JWT's `aud`), the time, and which issuers and types we accept."""

    nonce: str
    audience: str
    now: float
    trust: TrustList
    accepted_vcts: frozenset[str] = frozenset({PID_VCT})
    clock_skew: int = 60  # seconds either way for exp/nbf/iat
    kb_max_age: int = 300  # how old a KB-JWT's iat may be, in seconds


@dataclass(frozen=True)
class VerifiedPid:
    """A PID whose issuer signature, disclosures, validity and key binding all checked out:
    `claims` holds the disclosed claims (with the always-visible ones, `_sd`, `_sd_alg` and
    `cnf` removed); `issuer` names the PID provider (its signing certificate's subject) and
    `issuer_country` is that certificate's country (C), which must be the PID's
    `issuing_country`; `status` is where to check revocation, None when the PID has none."""

    claims: Mapping[str, Any]
    vct: str
    issuer: str
    expires_at: float | None = None
    status: StatusReference | None = None
    issuer_chain: tuple[str, ...] = field(default=())  # the x5c as presented (base64 DER)
    issuer_country: str | None = None
