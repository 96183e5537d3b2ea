"""Authorization codes (RFC 6749 §4.1.2) and the access grants they are exchanged for.

A completed login writes its records in one pipelined round trip: the SSO session's, the access
grant (`at:`), a marker naming it under the code (`code-grant:`), and the code itself, written
last so a code that reaches the e-service always has its grant and its session. The token
endpoint then only takes the code: one round trip, with nothing left to write. The grant exists
before its token is handed out, but the token is a random value kept inside the code record, so
nothing can present it until the code is redeemed; the grant's lifetime runs from the login
(`expires_at`), and the token response says what is left of it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError

from gateway.clock import Clock
from gateway.oidc.authorize import AuthorizationParameters
from gateway.oidc.claims import subject
from gateway.ops.rate_limit import Counting, RateLimited
from gateway.settings import ClientSettings, Settings
from providers.base import Identity, Store, StoreWrite
from providers.records import StoreRecord


@dataclass(frozen=True)
class IssuedCode:
    """A code's record: the authorization request it answers, as one value, and who logged in."""

    request: AuthorizationParameters
    identity: dict[str, Any]
    access_token: str
    expires_at: int  # when the access token stops working, as epoch seconds
    sid: str | None = None

    def dumps(self) -> bytes:
        own = {key: value for key, value in vars(self).items() if key != "request"}
        return json.dumps({**self.request.to_dict(), **own}, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> IssuedCode:
        request, own = AuthorizationParameters.split(json.loads(raw))
        return cls(request=request, **own)


@dataclass(frozen=True)
class Consuming:
    """The store key a code replaces, taken after the code is written; and what only the
    caller whose take won may write (a new SSO session), in the same round trip where the
    store can."""

    key: str
    once_taken: Sequence[StoreWrite] = ()


@dataclass(frozen=True)
class AccessGrant(StoreRecord):
    """What an access token lets its bearer read at /userinfo."""

    TUPLE_FIELDS = ("scopes",)

    client_id: str
    sub: str
    scopes: tuple[str, ...]
    claims: dict[str, Any]
    identity: dict[str, Any]


class AuthorizationCodes:
    def __init__(
        self, settings: Settings, store: Store, subject_salt: str, clock: Clock = time.time
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._store = store
        self._subject_salt = subject_salt

    async def issue(
        self,
        client: ClientSettings,
        request: AuthorizationParameters,
        identity: Identity,
        sid: str | None,
        with_records: Sequence[StoreWrite] = (),
        consuming: Consuming | None = None,
    ) -> str | None:
        """The code for `request`; `with_records` (the SSO session's) go in the same round trip,
        before the code, so a code never names a session that was not written.

        `consuming` is what the code replaces (the pending login): it is taken in the same
        round trip, after the code is written, so a login is never gone without its code.
        None when it was gone already (another instance completed it): the code just written
        is withdrawn, never handed out."""
        code = secrets.token_urlsafe(32)
        access_token = secrets.token_urlsafe(32)
        grant_ttl = self._settings.code_ttl_seconds + self._settings.access_token_ttl_seconds
        person = identity.to_dict()
        grant = AccessGrant(
            client_id=client.client_id,
            sub=subject(self._subject_salt, client.subject_sector, identity),
            scopes=request.scopes,
            claims=request.claims.get("userinfo") or {},
            identity=person,
        )
        issued = IssuedCode(
            request=request,
            identity=person,
            access_token=access_token,
            expires_at=self.now() + grant_ttl,
            sid=sid,
        )
        records = [
            *with_records,
            (f"at:{access_token}", grant.dumps(), grant_ttl),
            (f"code-grant:{code}", f"at:{access_token}".encode(), grant_ttl),
            (f"code:{code}", issued.dumps(), self._settings.code_ttl_seconds),
        ]
        if consuming is None:
            await self._store.put_many(records)
            return code
        taken = await self._store.put_many_then_take(records, consuming.key, consuming.once_taken)
        if taken is None:
            for key, _, _ in records[-3:]:
                await self._store.delete(key)
            return None
        return code

    def now(self) -> int:
        """Epoch seconds by the clock that dates the grants (`expires_at`)."""
        return int(self._clock())

    async def redeem(self, code: str, counting: Counting | None = None) -> IssuedCode:
        """Single use; a code presented again revokes the access token it was exchanged for.
        With `counting`, the request's rate limits are counted in the take's round trip and
        checked first: a request over its limit has spent its code."""
        if not code:
            raise InvalidRequestError("code is missing")
        raw = await self._taken(f"code:{code}", counting)
        if raw is None:
            grant_key = await self._store.take(f"code-grant:{code}")
            if grant_key is not None:
                await self._store.delete(grant_key.decode())
            raise InvalidGrantError("code is unknown, expired or already used")
        return IssuedCode.loads(raw)

    async def _taken(self, key: str, counting: Counting | None) -> bytes | None:
        if counting is None:
            return await self._store.take(key)
        counts, raw = await self._store.count_then_take(counting.keys, counting.ttl, key)
        try:
            counting.check(counts)
        except RateLimited:
            if raw is not None:
                await self.withdraw(IssuedCode.loads(raw))
            raise
        return raw

    async def withdraw(self, issued: IssuedCode) -> None:
        """A redeemed code whose exchange was refused: its access token is never handed out."""
        await self._store.delete(f"at:{issued.access_token}")
