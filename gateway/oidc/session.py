"""The gateway's single sign-on session: one store record per browser session, referenced by an
itsdangerous-signed cookie. It holds the Identity of the last upstream login and the e-services
it has served, and nothing outlives it: no citizen account is ever kept.

A session is reused silently for another e-service only when it meets that request (see
`LoginFlow`); it ends on logout, after `session.idle_seconds` without use, or after
`session.ttl_seconds` in all. Both are judged by the timestamps in the record against the clock;
the record's store TTL only cleans up.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

from gateway.clock import Clock
from gateway.oidc.authorize import AuthorizationParameters
from gateway.settings import Settings
from providers.base import Identity, Store, StoreWrite
from providers.records import StoreRecord

SESSION_COOKIE = "pv_session"


@dataclass(frozen=True)
class ClientGrant:
    """What one e-service's last full login in this session was: which upstream and LoA
    authenticated, and which identity claims it asked for (its scopes and `claims` request).
    SC.OIDC 1.0 §2.2.1 lets `prompt=none` reuse the session only for the same ones."""

    provider: str
    acr: str
    claims: tuple[str, ...]

    @classmethod
    def of(cls, identity: Identity, parameters: AuthorizationParameters) -> ClientGrant:
        return cls(identity.provider, identity.loa, requested_identity_claims(parameters))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientGrant:
        return cls(str(data["provider"]), str(data["acr"]), tuple(data["claims"]))


def requested_identity_claims(parameters: AuthorizationParameters) -> tuple[str, ...]:
    """The scopes and the claim names of the `claims` request, whatever their target."""
    named = {name for target in parameters.claims.values() for name in target}
    return tuple(sorted({*parameters.scopes, *named}))


@dataclass(frozen=True)
class SsoSession(StoreRecord):
    TUPLE_FIELDS = ("clients",)

    sid: str
    identity: dict[str, Any]
    created_at: int
    clients: tuple[str, ...]
    used_at: int = 0  # when last written; 0 in records from before it was kept
    # client_id -> ClientGrant as a dict; empty in records from before it was kept
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def grant(self, client_id: str) -> ClientGrant | None:
        """What `client_id`'s own full login in this session was; None if it had none."""
        data = self.grants.get(client_id)
        return ClientGrant.from_dict(data) if data is not None else None

    @property
    def last_used_at(self) -> int:
        return max(self.used_at, self.created_at)

    @property
    def person(self) -> Identity:
        return Identity.from_dict(self.identity)


class Sessions:
    def __init__(
        self, settings: Settings, store: Store, secret_key: str, clock: Clock = time.time
    ) -> None:
        self._settings = settings.session
        self._clock = clock
        self._store = store
        self._signer = Signer(secret_key, salt="portvakt.session")
        self._secure = settings.secure_cookies

    async def current(self, request: Request) -> SsoSession | None:
        """This browser's session, if its cookie is genuine and the session still lives."""
        raw_cookie = request.cookies.get(SESSION_COOKIE)
        if not raw_cookie:
            return None
        try:
            sid = self._signer.unsign(raw_cookie).decode()
        except BadSignature:
            return None
        raw = await self._store.get(f"session:{sid}")
        if raw is None:
            return None
        session = SsoSession.loads(raw)
        return session if self._lives(session) else None

    def _lives(self, session: SsoSession) -> bool:
        now = self._now()
        return (
            now - session.created_at < self._settings.ttl_seconds
            and now - session.last_used_at < self._settings.idle_seconds
        )

    def _now(self) -> int:
        return int(self._clock())

    def after_login(
        self, existing: SsoSession | None, identity: Identity, client_id: str
    ) -> tuple[SsoSession, SsoSession | None]:
        """After an upstream login: the same person's session grows; anyone else's is to be
        replaced. Returns the session, still to be written with `records`, and the one to end
        (with `end`, once the login's code is written), whose e-services must hear of it."""
        same_person = existing is not None and existing.person.subject == identity.subject
        if existing is not None and same_person:
            return replace(self.add_client(existing, client_id), identity=identity.to_dict()), None
        session = SsoSession(
            sid=secrets.token_urlsafe(24),
            identity=identity.to_dict(),
            created_at=self._now(),
            clients=(client_id,),
        )
        return session, existing

    def granted(
        self, session: SsoSession, identity: Identity, parameters: AuthorizationParameters
    ) -> SsoSession:
        """After a full login: remember what that e-service's login was (`ClientGrant`)."""
        grant = asdict(ClientGrant.of(identity, parameters))
        return replace(session, grants={**session.grants, parameters.client_id: grant})

    def add_client(self, session: SsoSession, client_id: str) -> SsoSession:
        """A silent login: the session serves one more e-service (write it with `records`; its
        idle time restarts then)."""
        return replace(session, clients=tuple(dict.fromkeys((*session.clients, client_id))))

    def records(
        self, session: SsoSession, provider: str | None = None, upstream_keys: Sequence[str] = ()
    ) -> list[StoreWrite]:
        """The session's record, and the index that lets its upstream's own logout (SAML SLO
        from the IdP) find it by `upstream_keys`: for the caller to write with its own records
        in one round trip. Nothing when the session has outlived its maximum."""
        now = self._now()
        left = self._settings.ttl_seconds - (now - session.created_at)
        if left <= 0:
            return []
        idle = min(self._settings.idle_seconds, left)
        used = replace(session, used_at=now)
        writes = [(f"session:{session.sid}", used.dumps(), idle)]
        sid = session.sid.encode()
        writes += [(f"upstream:{provider}:{key}", sid, left) for key in upstream_keys]
        return writes

    async def end(self, session: SsoSession) -> SsoSession | None:
        """Take the session atomically: of two concurrent logouts, one does the notifying."""
        raw = await self._store.take(f"session:{session.sid}")
        return SsoSession.loads(raw) if raw is not None else None

    async def end_by_upstream(self, provider: str, key: str) -> SsoSession | None:
        """End the session an upstream logout names; None when it is already gone."""
        sid = await self._store.take(f"upstream:{provider}:{key}")
        if sid is None:
            return None
        raw = await self._store.take(f"session:{sid.decode()}")
        return SsoSession.loads(raw) if raw is not None else None

    def set_cookie(self, response: Response, session: SsoSession) -> None:
        # No max-age: the session ends with the browser session, or earlier in the store.
        response.set_cookie(
            SESSION_COOKIE,
            self._signer.sign(session.sid).decode(),
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=self._secure, httponly=True, samesite="lax"
        )
