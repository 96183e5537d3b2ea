"""The pending login record: one store record (`login:{<id>}`) between /authorize and the code.

It holds the authorization parameters as one value, the browser it belongs to, the provider
chosen and, while it waits for its browser to come back (a cross-site SAML POST arrives
without our cookie), the identity the provider returned. It lives `login_ttl_seconds` from its
creation, however often it is saved.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.clock import Clock
from gateway.oidc.authorize import AuthorizationParameters
from providers.base import Store, StoreWrite
from providers.records import login_key


class LoginNotFound(Exception):
    """The pending login expired, was completed already, or never existed."""


@dataclass(frozen=True)
class PendingLogin:
    id: str
    parameters: AuthorizationParameters
    authn_provider: str | None
    browser: str
    created_at: int
    provider: str | None = None
    identity: dict[str, Any] | None = None

    def dumps(self) -> bytes:
        own = {key: value for key, value in vars(self).items() if key != "parameters"}
        return json.dumps({**self.parameters.to_dict(), **own}, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> PendingLogin:
        parameters, own = AuthorizationParameters.split(json.loads(raw))
        return cls(parameters=parameters, **own)


def pending_login_key(login_id: str) -> str:
    return login_key("login", login_id)


class PendingLogins:
    """Load, take and save pending logins; each is one store round trip."""

    def __init__(self, store: Store, ttl_seconds: int, clock: Clock = time.time) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    async def load(self, login_id: str) -> PendingLogin:
        raw = await self._store.get(pending_login_key(login_id))
        if raw is None:
            raise LoginNotFound(login_id)
        return PendingLogin.loads(raw)

    async def take(self, login_id: str) -> PendingLogin | None:
        """Atomically: of two callers ending one login, one gets it."""
        raw = await self._store.take(pending_login_key(login_id))
        return PendingLogin.loads(raw) if raw is not None else None

    async def save(self, login: PendingLogin) -> None:
        await self._store.put(*self.record(login))

    def record(self, login: PendingLogin) -> StoreWrite:
        """The write that saves `login`, for the caller to send with its own round trip."""
        remaining = self._ttl - (self.now() - login.created_at)
        if remaining <= 0:
            raise LoginNotFound(login.id)
        return pending_login_key(login.id), login.dumps(), remaining
