"""The backchannel authentication endpoint of OpenID Connect CIBA Core 1.0, poll mode (§7): a
case worker's system (a confidential client registered for the CIBA grant) asks to identify the
person behind a personal identity number; a provider that `AuthenticatesByPhone` (BankID's
phone/auth) asks that person in their e-ID app; the client polls /token with the `auth_req_id`
it is given (gateway/oidc/ciba_grant.py).

Supported: `login_hint` (a 12-digit personal identity number), `binding_message`,
`requested_expiry`, `acr_values`, `authorization_details` of type `phoneAuth` (RFC 9396, as
Idura names it) with `callInitiator`. Refused with `invalid_request`: `id_token_hint`,
`login_hint_token`, `user_code` and signed requests (`request`).

A caller signs (Signature Extension 1.1): the scope `https://id.oidc.se/scope/sign` or
`…/signApproval` with `https://id.oidc.se/param/signRequest` as a JWT signed with the client's
keys (the only form: with no signed `request`, no member can carry it), checked as /authorize
checks it but for `prompt`, which CIBA has not: the question about the call and the e-ID's sign
dialog stand for login and consent. The person who signs is the `login_hint`."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.clock import Clock
from gateway.oidc.authorize import granted_scopes
from gateway.oidc.ciba_record import (
    MAX_EXPIRY_SECONDS,
    POLL_INTERVAL_SECONDS,
    BackchannelRecord,
    InvalidAuthorizationDetailsError,
    InvalidBindingMessageError,
    UpstreamUnavailableError,
    record_key,
)
from gateway.oidc.client_auth import ClientAuthenticator
from gateway.oidc.sign_request import (
    SIGN_REQUEST_PARAMETER,
    SignRequestTokens,
    checked_sign_request,
    looks_like_jwt,
    sign_request_of,
    sign_scopes_allowed,
)
from gateway.oidc.token import FORM_FIELDS, NO_STORE, single_valued
from gateway.ops.audit import Audit
from gateway.ops.rate_limit import RateLimited, RateLimiter
from gateway.settings import CIBA_GRANT, ClientSettings
from providers.base import (
    AuthenticatesByPhone,
    PhoneRequest,
    Provider,
    ProviderError,
    ProviderUnavailable,
    SignRequest,
    Signs,
    Store,
)
from providers.forms import read_form
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number
from providers.parsing import MalformedInput, ascii_integer, bounded_json

HINTS = ("login_hint", "id_token_hint", "login_hint_token")
PERSONAL_NUMBER = re.compile(r"[0-9]{12}")
MAX_BINDING_MESSAGE = 100
# Letters and digits of any script, spaces and plain punctuation: what an e-ID app shows as
# plain text and a case worker can read out (CIBA §7.1: "a limited set of plain text characters").
BINDING_MESSAGE = re.compile(r"[^\W_]|[ .,:;!?()'/&+#%-]")
CALL_INITIATORS = ("user", "RP")
PHONE_AUTH = "phoneAuth"


@dataclass(frozen=True)
class BackchannelParameters:
    """An authentication request as validated (CIBA §7.1)."""

    scopes: tuple[str, ...]
    person: str
    binding_message: str | None
    expires_in: int
    acr_values: tuple[str, ...]
    call_initiator: str
    sign_request: dict[str, Any] | None = None  # as /authorize keeps it (sign_request.py)

    @property
    def sign(self) -> SignRequest | None:
        return sign_request_of(self.sign_request)


class BackchannelAuthenticationEndpoint:
    """POST /bc-authorize: `{auth_req_id, expires_in, interval}`, or CIBA §13's JSON error."""

    def __init__(  # noqa: PLR0913  its collaborators, built once in create_app
        self,
        authenticator: ClientAuthenticator,
        providers: Mapping[str, Provider],
        store: Store,
        limiter: RateLimiter,
        audit: Audit,
        clock: Clock = time.time,
        sign_requests: SignRequestTokens | None = None,
    ) -> None:
        self._sign_requests = sign_requests
        self._authenticator = authenticator
        self._providers = providers
        self._store = store
        self._limiter = limiter
        self._audit = audit
        self._clock = clock

    async def __call__(self, request: Request) -> Response:
        form = await read_form(request, FORM_FIELDS)
        values = single_valued(form)
        try:
            client = await self._authenticator.authenticate(request, values)
        except InvalidClientError as error:
            error.status_code = 401  # CIBA §13: invalid_client is a 401 here, however sent
            self._audit.ciba("refused", "", None, error=error.error)
            raise
        person: str | None = None
        try:
            if not client.uses_ciba:
                raise UnauthorizedClientError(f"the client is not registered for {CIBA_GRANT}")
            hinted = hint_or_refusal(values)
            person = hinted if isinstance(hinted, str) else None
            await self._limiter.backchannel(client.client_id, person)
            if not isinstance(hinted, str):
                raise hinted
            asked = validated(values, client, hinted)
            asked = replace(asked, sign_request=await self._sign_request(values, client))
            name, provider = self.phone_provider(client, asked.acr_values, asked.sign)
            answer = await self._start(client, asked, name, provider)
        except (OAuth2Error, RateLimited) as refused:
            self._audit.ciba("refused", client.client_id, person, error=refusal_code(refused))
            raise
        return JSONResponse(answer, headers=NO_STORE)

    async def _sign_request(
        self, values: Mapping[str, str], client: ClientSettings
    ) -> dict[str, Any] | None:
        """Signature Extension §5.1 as /authorize applies it, without `prompt`: the JWT is
        verified with the client's keys, then its object checked; None when nothing is signed."""
        params = ImmutableMultiDict(values)
        sign_scopes_allowed(params, client)
        raw = values.get(SIGN_REQUEST_PARAMETER)
        signed: frozenset[str] = frozenset()
        if raw is not None and looks_like_jwt(raw):
            if self._sign_requests is None:
                raise InvalidRequestError(f"{SIGN_REQUEST_PARAMETER} is not supported here")
            verified = await self._sign_requests.verified(raw, client)
            params = ImmutableMultiDict({**values, SIGN_REQUEST_PARAMETER: verified})
            signed = frozenset({SIGN_REQUEST_PARAMETER})
        sign_request = checked_sign_request(params, signed, prompted=False)
        if sign_request is not None and "binding_message" in values:
            # The app shows the sign message, which is signed: nothing can be added to it, and
            # a code the case worker reads out would never be seen (CIBA §7.1).
            raise InvalidBindingMessageError(
                "binding_message is not shown with a sign request: put it in the sign_message"
            )
        return sign_request

    def phone_provider(
        self, client: ClientSettings, acr_values: tuple[str, ...], sign: SignRequest | None = None
    ) -> tuple[str, AuthenticatesByPhone]:
        """The first of the client's providers that identifies by phone (and can do what
        `sign` asks, if anything) and delivers one of the LoAs asked for (any, when none were)."""
        names = client.providers if client.providers is not None else list(self._providers)
        phones = [
            (name, provider)
            for name in names
            if isinstance(provider := self._providers[name], AuthenticatesByPhone)
        ]
        if not phones:
            raise UnauthorizedClientError("none of the client's e-ID providers identifies by phone")
        if sign is not None:
            phones = [(name, p) for name, p in phones if can_sign(p, sign)]
            if not phones:
                raise InvalidRequestError(
                    "no e-ID provider of the client can have this signed by phone"
                )
        for name, provider in phones:
            if not acr_values or set(acr_values) & self._providers[name].loa:
                return name, provider
        raise InvalidRequestError(
            "no e-ID provider of the client delivers the acr_values asked for"
        )

    async def _start(
        self,
        client: ClientSettings,
        asked: BackchannelParameters,
        name: str,
        provider: AuthenticatesByPhone,
    ) -> dict[str, Any]:
        phone_request = PhoneRequest(
            request_id=secrets.token_urlsafe(16),
            client_id=client.client_id,
            client_display=client.display,
            personal_identity_number=asked.person,
            call_initiator=asked.call_initiator,
            requested_loa=tuple(a for a in asked.acr_values if a in self._providers[name].loa),
            binding_message=asked.binding_message,
            sign=asked.sign,
        )
        try:
            handle = await provider.start_phone(phone_request)
        except ProviderUnavailable:
            raise UpstreamUnavailableError("the e-ID provider cannot be reached now") from None
        except ProviderError as error:
            # CIBA has no code for an upstream that refuses (BankID alreadyInProgress): the
            # client is told plainly; the detail, which may name the person, stays out.
            raise InvalidRequestError(
                f"the e-ID provider did not start it ({error.reason})"
            ) from None
        auth_req_id = secrets.token_urlsafe(32)  # 256 bits of [A-Za-z0-9_-] (CIBA §7.3)
        now = int(self._clock())
        record = BackchannelRecord(
            client_id=client.client_id,
            provider=name,
            handle=handle,
            person=asked.person,
            scopes=asked.scopes,
            acr_values=asked.acr_values,
            call_initiator=asked.call_initiator,
            expires_at=now + asked.expires_in,
            next_poll_at=now + POLL_INTERVAL_SECONDS,
            sign_request=asked.sign_request,
        )
        await self._store.put(record_key(auth_req_id), record.dumps(), record.ttl(now))
        self._audit.ciba(
            "started", client.client_id, asked.person, provider=name,
            call_initiator=asked.call_initiator,
        )  # fmt: skip
        return {
            "auth_req_id": auth_req_id,
            "expires_in": asked.expires_in,
            "interval": POLL_INTERVAL_SECONDS,
        }


def can_sign(provider: object, sign: SignRequest) -> bool:
    return isinstance(provider, Signs) and provider.can_sign(sign)


def refusal_code(refused: OAuth2Error | RateLimited) -> str:
    return refused.error if isinstance(refused, OAuth2Error) else "rate_limited"


def validated(
    values: Mapping[str, str], client: ClientSettings, person: str
) -> BackchannelParameters:
    """CIBA §7.1's parameters, each by its own rule (§13's errors)."""
    unsupported(values)
    return BackchannelParameters(
        scopes=openid_scopes(values, client),
        person=person,
        binding_message=binding_message(values),
        expires_in=requested_expiry(values),
        acr_values=tuple(values.get("acr_values", "").split()),
        call_initiator=call_initiator(values, client),
    )


def unsupported(values: Mapping[str, str]) -> None:
    if "request" in values:
        raise InvalidRequestError(
            "signed authentication requests (request) are not supported; send the parameters "
            "in the form"
        )
    if "user_code" in values:
        raise InvalidRequestError("user_code is not supported")


def openid_scopes(values: Mapping[str, str], client: ClientSettings) -> tuple[str, ...]:
    scopes = granted_scopes(values.get("scope", ""), client)
    if "openid" not in scopes:
        raise InvalidScopeError("scope must include openid")
    return scopes


def hinted_person(values: Mapping[str, str]) -> str:
    """CIBA §7.1: exactly one hint. Only `login_hint`, as a 12-digit personal identity number
    (a formally valid date and check digit); BankID knows no coordination numbers."""
    given = [name for name in HINTS if name in values]
    if len(given) != 1:
        raise InvalidRequestError("send exactly one of login_hint, id_token_hint, login_hint_token")
    if given[0] != "login_hint":
        raise InvalidRequestError(
            f"{given[0]} is not supported; send login_hint with a personal identity number"
        )
    hint = values["login_hint"]
    try:
        number = parse_identity_number(hint) if PERSONAL_NUMBER.fullmatch(hint) else None
    except InvalidIdentityNumber:
        number = None
    if number is None or number.is_coordination_number:
        raise InvalidRequestError(
            "login_hint must be a personal identity number of 12 digits (YYYYMMDDNNNC) with a "
            "valid date and check digit"
        )
    return number.digits


def hint_or_refusal(values: Mapping[str, str]) -> str | OAuth2Error:
    """The hinted number, or why there is none (raised once the request has been counted)."""
    try:
        return hinted_person(values)
    except OAuth2Error as refusal:
        return refusal


def binding_message(values: Mapping[str, str]) -> str | None:
    message = values.get("binding_message")
    if message is None:
        return None
    if len(message) > MAX_BINDING_MESSAGE or not all(BINDING_MESSAGE.fullmatch(c) for c in message):
        raise InvalidBindingMessageError(
            f"binding_message must be at most {MAX_BINDING_MESSAGE} letters, digits, spaces "
            "and plain punctuation"
        )
    return message


def requested_expiry(values: Mapping[str, str]) -> int:
    """CIBA §7.1: a positive integer of seconds; more than we allow is cut to our maximum."""
    raw = values.get("requested_expiry")
    if raw is None:
        return MAX_EXPIRY_SECONDS
    try:
        seconds = ascii_integer(raw)
    except MalformedInput:
        seconds = 0
    if seconds <= 0:
        raise InvalidRequestError("requested_expiry must be a positive integer of seconds")
    return min(seconds, MAX_EXPIRY_SECONDS)


def call_initiator(values: Mapping[str, str], client: ClientSettings) -> str:
    """Who called whom: `authorization_details` `[{"type": "phoneAuth", "callInitiator": …}]`
    (RFC 9396), else the client's registered default."""
    raw = values.get("authorization_details")
    if raw is None:
        return client.backchannel_call_initiator
    try:
        details = bounded_json(raw)
    except MalformedInput:
        details = None
    if (
        not isinstance(details, list)
        or len(details) != 1
        or not isinstance(details[0], dict)
        or details[0].get("type") != PHONE_AUTH
        or details[0].get("callInitiator", client.backchannel_call_initiator) not in CALL_INITIATORS
        or set(details[0]) - {"type", "callInitiator"}
    ):
        raise InvalidAuthorizationDetailsError(
            "authorization_details must be one object of type phoneAuth, its callInitiator "
            "user or RP"
        )
    return str(details[0].get("callInitiator", client.backchannel_call_initiator))
