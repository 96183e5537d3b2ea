"""The audit log: what happened to whose login, as its own stream (logger `portvakt.audit`).

Events: login_started, provider_chosen, login_completed, login_failed, code_issued,
token_issued, logout (with `by`: `citizen` when they confirmed on our page, `e-service` when
its request with an ID token ended it, `upstream` when the e-ID provider's logout did). Each
carries the client and, where known, the provider, LoA, the pairwise `sub` the e-service sees
and the identity number masked (`19121212****`). Never a code, token, secret or full identity
number. The JSON formatter (gateway/ops/log_format.py) writes the fields as
keys; the text form puts them after the event name.
"""

from __future__ import annotations

import logging

from gateway.oidc.claims import subject
from gateway.oidc.client_auth import ClientRegistry
from providers.base import Identity
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

    def person(self, identity: Identity, client_id: str) -> dict[str, str | None]:
        """Who, as far as the audit may say: the client's pairwise sub and a masked number."""
        client = self._clients.get(client_id)
        number = identity.personal_identity_number or identity.coordination_number
        return {
            "provider": identity.provider,
            "loa": identity.loa,
            "sub": subject(self._salt, client.subject_sector, identity) if client else None,
            "person": mask(number)
            if number
            else (f"prid:{identity.prid[:2]}…" if identity.prid else None),
        }
