"""The CIBA grant at the token endpoint, poll mode (CIBA Core 1.0 §10.1, §11): the client polls
with its `auth_req_id`; the gateway asks the provider at most once per poll, never sooner than
the interval allows, and once the person has confirmed, issues the tokens exactly once through
the authorization-code path (gateway/oidc/codes.py), so that CIBA tokens are the same tokens."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc8628.errors import (
    AuthorizationPendingError,
    ExpiredTokenError,
    SlowDownError,
)

from gateway.clock import Clock
from gateway.oidc.authorize import AuthorizationParameters
from gateway.oidc.ciba_record import BackchannelRecord, record_key
from gateway.oidc.codes import AuthorizationCodes, Consuming, IssuedCode
from gateway.oidc.sign_request import sign_request_of
from gateway.ops.audit import Audit
from gateway.settings import ClientSettings
from providers.base import (
    AuthenticatesByPhone,
    Identity,
    PhoneStatus,
    Provider,
    ProviderError,
    ProviderUnavailable,
    Store,
)

log = logging.getLogger("portvakt.ciba")
DECLINED_CALL = "userDeclinedCall"  # BankID: the person says they are not on a call with us
DECLINED = frozenset({DECLINED_CALL, "userCancel"})  # the person said no, rather than it failed


class BackchannelGrant:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        codes: AuthorizationCodes,
        audit: Audit,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._providers = providers
        self._codes = codes
        self._audit = audit
        self._clock = clock

    async def poll(self, auth_req_id: str, client: ClientSettings) -> IssuedCode:
        """CIBA §11's answers as errors; the issued tokens' record when the person confirmed."""
        if not auth_req_id:
            raise InvalidRequestError("auth_req_id is missing")
        key = record_key(auth_req_id)
        raw = await self._store.get(key)
        record = BackchannelRecord.loads(raw) if raw is not None else None
        if record is None or record.client_id != client.client_id:
            raise InvalidGrantError("auth_req_id is unknown, expired or another client's")
        now = int(self._clock())
        if now >= record.expires_at:
            await self._expire(key, record)
        if now < record.next_poll_at or not await self._claim_poll(key, record):
            slower = record.slowed_down(now)
            await self._store.put(key, slower.dumps(), slower.ttl(now))
            raise SlowDownError(f"poll at most every {slower.interval} seconds")
        polled = record.polled(now)
        await self._store.put(key, polled.dumps(), polled.ttl(now))
        status = await self._status(record)
        if status.state == "complete" and status.identity is not None:
            return await self._complete(key, record, status.identity, client)
        if status.state == "failed":
            await self._fail(key, record, status)
        raise AuthorizationPendingError(status.hint or "waiting for the person to confirm")

    async def _claim_poll(self, key: str, record: BackchannelRecord) -> bool:
        """Of polls that arrive together in one slot, one asks the provider; the others are
        too early (the store's SET NX, so across instances too)."""
        slot = f"{key}:poll:{record.next_poll_at}"
        return await self._store.add(slot, b"1", record.interval + 1)

    async def _status(self, record: BackchannelRecord) -> PhoneStatus:
        """The provider's answer; one that could not be asked now (down, not finished) is still
        pending, one that failed is a failure (the next step takes the request)."""
        try:
            return await self._provider(record).phone_status(record.handle)
        except ProviderError as error:
            if not error.ends_login or isinstance(error, ProviderUnavailable):
                return PhoneStatus("pending", hint="upstreamUnavailable")
            return PhoneStatus("failed", hint=error.reason, outcome="access_denied")

    def _provider(self, record: BackchannelRecord) -> AuthenticatesByPhone:
        provider = self._providers.get(record.provider)
        if not isinstance(provider, AuthenticatesByPhone):  # the configuration changed since
            raise InvalidGrantError("the request's e-ID provider is no longer configured")
        return provider

    async def _expire(self, key: str, record: BackchannelRecord) -> None:
        if await self._store.take(key) is not None:
            try:
                await self._provider(record).cancel_phone(record.handle)
            except ProviderError as error:  # it ends upstream by itself; ours is over anyway
                log.warning("cancelling an expired CIBA request failed: %s", error.reason)
            self._audit.ciba("expired", record.client_id, record.person, provider=record.provider)
            self._sign_failed(record, "expired")
        raise ExpiredTokenError("auth_req_id has expired; start a new request")

    async def _fail(self, key: str, record: BackchannelRecord, status: PhoneStatus) -> None:
        await self._store.take(key)
        fields = {"provider": record.provider, "hint": status.hint}
        if status.outcome == "expired_token":
            self._audit.ciba("expired", record.client_id, record.person, **fields)
            self._sign_failed(record, "expired")
            raise ExpiredTokenError("the person did not confirm in time")
        if status.hint == DECLINED_CALL:
            self._audit.call_declined(record.client_id, record.person, **fields)
        outcome = "declined" if status.hint in DECLINED else "failed"
        self._audit.ciba(outcome, record.client_id, record.person, **fields)
        self._sign_failed(record, outcome)
        raise AccessDeniedError("the person did not confirm")

    async def _complete(
        self, key: str, record: BackchannelRecord, identity: Identity, client: ClientSettings
    ) -> IssuedCode:
        refusal = unfit(record, identity)
        if refusal is not None:
            await self._store.take(key)
            self._audit.ciba("refused", record.client_id, record.person, error=refusal)
            self._sign_failed(record, "access_denied")
            raise AccessDeniedError(refusal)
        # The code is written and the request taken in one round trip: of polls racing here,
        # one gets the code, the others find the request gone. A poll that read the request
        # before it was taken may still write it back (its slow_down), so a marker (SET NX)
        # that outlives the request lets only one completion ever issue tokens.
        now = int(self._clock())
        issued_once = await self._store.add(f"{key}:issued", b"1", record.ttl(now) + 60)
        code = (
            await self._codes.issue(
                client, parameters(record), identity, None, consuming=Consuming(key)
            )
            if issued_once
            else None
        )
        if code is None:
            await self._store.delete(key)
            raise InvalidGrantError("auth_req_id is unknown, expired or already used")
        self._audit.authenticated(identity)
        self._audit.ciba("completed", record.client_id, record.person, provider=record.provider)
        sign = sign_request_of(record.sign_request)
        if sign is not None:
            self._audit.signed(identity, record.client_id, sign)
        return await self._codes.redeem(code)

    def _sign_failed(self, record: BackchannelRecord, error: str) -> None:
        sign = sign_request_of(record.sign_request)
        if sign is not None:
            self._audit.sign_failed(record.client_id, record.provider, sign, error)


def unfit(record: BackchannelRecord, identity: Identity) -> str | None:
    """Why this identity cannot be the answer: another person than the hinted one, an LoA
    the client did not ask for, or a sign request that came back without its signature (never
    tokens without it, Signature Extension §5.2)."""
    if identity.personal_identity_number != record.person:
        return "another person than the one named confirmed"
    if record.acr_values and identity.loa not in record.acr_values:
        return "the e-ID provider delivered none of the acr_values asked for"
    sign = sign_request_of(record.sign_request)
    if sign is not None and sign.signs and not identity.user_signature:
        return "the e-ID provider returned no signature"
    return None


def parameters(record: BackchannelRecord) -> AuthorizationParameters:
    """The request as the code path keeps one: no browser, so no redirect, state or PKCE."""
    return AuthorizationParameters(
        client_id=record.client_id,
        redirect_uri="",
        state=None,
        nonce=None,
        scopes=record.scopes,
        code_challenge=None,
        prompt=(),
        max_age=None,
        acr_values=record.acr_values,
        claims={},
        ui_locales=None,
        login_hint=record.person,
        sign_request=record.sign_request,
    )
