"""The audit log: what happened to whose login, as its own stream (logger `portvakt.audit`).
This module is its one writer: providers return what happened (`Identity.evidence`) and never
log to it themselves.

Events: login_started, provider_chosen, authenticated (an upstream proved who the citizen is,
with its evidence: which IdP, OP or BankID, its reference, BankID's device address and
certificate date, its risk rating and the app's hardware id), login_completed, login_failed
(and login_refused_for_risk, a security event: the upstream rated the login too risky),
code_issued, token_issued, logout (with `by`: `citizen` when they confirmed on our page,
`e-service` when its request with an ID token ended it, `upstream` when the e-ID provider's
logout did), signed (a sign request completed:
`kind` sign or approval, the SHA-256 of `tbs_data` and the signing time) and sign_failed;
for CIBA (a case worker's system asking to identify a caller), `ciba` with `outcome` started,
completed, declined, failed, expired or refused (with its `error`), and `ciba_call_declined`, a
security signal: the person told their e-ID app they are not on a call with the organisation.
Each carries the client and, where known, the provider, LoA, the pairwise `sub` the e-service
sees and the identity number masked (`19121212****`). Never a code, token, secret, full
identity number, signature, sign message or the data signed. The JSON formatter
(gateway/ops/log_format.py) writes the fields as keys; the text form puts them after the event
name.
"""

from __future__ import annotations

import hashlib
import logging

from gateway.oidc.claims import subject
from gateway.oidc.client_auth import ClientRegistry
from providers.base import Evidence, Identity, SignRequest
from providers.identity_numbers import mask

audit_log = logging.getLogger("portvakt.audit")


class Audit:
    def __init__(self, clients: ClientRegistry, subject_salt: str) -> None:
        self._clients = clients
        self._salt = subject_salt

    def event(self, name: str, **fields: str | None) -> None:
        present = {key: value for key, value in fields.items() if value}
        text = " ".join(f"{key}={value}" for key, value in present.items())
        audit_log.info("%s %s", name, text, extra={"audit_event": name, "audit": present})

    def authenticated(self, identity: Identity) -> None:
        """An upstream proved who the citizen is (a provider's `finish` returned): written
        whether or not the login then completes. A provider without evidence (the sandbox)
        proved nothing anyone could check, and leaves no such event."""
        evidence = identity.evidence
        if evidence is None:
            return
        self.event(
            "authenticated",
            provider=identity.provider,
            loa=identity.loa,
            person=masked_person(identity),
            **evidence_fields(evidence),
        )

    def person(self, identity: Identity, client_id: str) -> dict[str, str | None]:
        """Who, as far as the audit may say: the client's pairwise sub and a masked number."""
        client = self._clients.get(client_id)
        return {
            "provider": identity.provider,
            "loa": identity.loa,
            "sub": subject(self._salt, client.subject_sector, identity) if client else None,
            "person": masked_person(identity),
        }

    def ciba(self, outcome: str, client_id: str, person: str | None, **fields: str | None) -> None:
        """A backchannel request and what came of it: which client (the case worker's system)
        asked for which person (masked)."""
        self.event("ciba", outcome=outcome, client=client_id, person=mask(person), **fields)

    def call_declined(self, client_id: str, person: str, **fields: str | None) -> None:
        """The person denied being on a call with the client's organisation: possible fraud."""
        self.event("ciba_call_declined", client=client_id, person=mask(person), **fields)

    def signed(self, identity: Identity, client_id: str, sign: SignRequest) -> None:
        """A sign request completed: who signed or approved what (a digest), when, with what."""
        self.event(
            "signed",
            client=client_id,
            **sign_fields(sign),
            signed_at=str(identity.auth_time),
            **self.person(identity, client_id),
        )

    def sign_failed(
        self, client_id: str, provider: str | None, sign: SignRequest, error: str
    ) -> None:
        fields = sign_fields(sign)
        self.event("sign_failed", client=client_id, provider=provider, error=error, **fields)


def sign_fields(sign: SignRequest) -> dict[str, str | None]:
    """What the audit says of a sign request: its kind and a digest, never the content."""
    return {"kind": "sign" if sign.signs else "approval", "tbs_data_sha256": tbs_digest(sign)}


def tbs_digest(sign: SignRequest) -> str | None:
    """SHA-256 (hex) of the `tbs_data` text as the e-service sent it, as the sandbox's test
    signature gives it too."""
    if sign.tbs_data is None:
        return None
    return hashlib.sha256(sign.tbs_data.encode()).hexdigest()


def masked_person(identity: Identity) -> str | None:
    """The identity number with its last four digits masked, or the prid's country only."""
    number = identity.personal_identity_number or identity.coordination_number
    if number:
        return mask(number)
    return f"prid:{identity.prid[:2]}…" if identity.prid else None


def evidence_fields(evidence: Evidence) -> dict[str, str | None]:
    mapped = evidence.mapped_identity_number
    return {
        "upstream": evidence.upstream,
        "reference": evidence.reference,
        "device_ip": evidence.device_ip,
        "certificate_issued": evidence.certificate_issued,
        "mapped_person": mask(mapped) if mapped else None,
        "risk": evidence.risk,
        "device_uhi": evidence.device_uhi,
    }
