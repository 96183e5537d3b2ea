"""Request objects (RFC 9101, OIDC Core §6.1) and pushed requests' `request_uri` (RFC 9126 §4):
what turns an authorization request's `request` or `request_uri` into ONE set of parameters,
before any step of the authorization request runs on them.

A member of a verified request object wins over the same query parameter. Every member becomes
the text a query would carry: a string as it is, anything else as compact JSON (so a `claims`
object reaches its step as the JSON text it would have been in the query; 300 becomes "300").

Encrypted (JWE) request objects are not supported and are refused as such.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import InvalidRequestObjectError, InvalidRequestURIError
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.datastructures import ImmutableMultiDict

from gateway.clock import Clock
from gateway.oidc.client_auth import replay_key
from gateway.oidc.client_jwt import (
    CLOCK_SKEW,
    JWT_CLAIMS,
    MAX_LIFETIME,
    SIGNING_ALGORITHMS,
    is_time,
    names_audience,
)
from gateway.oidc.client_keys import ClientKeys, ClientKeysUnavailable
from gateway.oidc.error_text import quoted
from gateway.oidc.sign_request import SIGN_REQUEST_PARAMETER, SignRequestTokens, looks_like_jwt
from gateway.settings import ClientSettings
from providers.base import Store
from providers.parsing import MalformedInput, compact_jwt_parts

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PUSHED_REQUEST_TTL_SECONDS = 60  # RFC 9126 §2.2: short; 60 s is what the RFC's example uses
# A signed object with a few kB of parameters fits easily; a URL much longer does not travel.
MAX_REQUEST_OBJECT_LENGTH = 32 * 1024
MAX_MEMBERS = 64
MAX_JTI_LENGTH = 256
MAX_HANDLE_LENGTH = 128

Parameters = ImmutableMultiDict[str, str]


@dataclass(frozen=True)
class ResolvedRequest:
    """The authorization request's parameters, and how they came: inside a signed request
    object, and/or pushed to /par first."""

    params: Parameters
    signed: bool = False
    pushed: bool = False
    # The parameters whose value the client's signature covers: the members of a signed
    # request object, and a signRequest JWT verified on its own (gateway/oidc/sign_request.py).
    signed_members: frozenset[str] = frozenset()

    def to_json(self, client_id: str) -> bytes:
        return json.dumps(
            {
                "client_id": client_id,
                "params": list(self.params.multi_items()),
                "signed": self.signed,
                "signed_members": sorted(self.signed_members),
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> tuple[str, ResolvedRequest]:
        record = json.loads(raw)
        pairs = [(str(key), str(value)) for key, value in record["params"]]
        # A record pushed before signed_members existed vouches for no member.
        members = frozenset(str(name) for name in record.get("signed_members", ()))
        resolved = cls(ImmutableMultiDict(pairs), record["signed"], True, members)
        return record["client_id"], resolved


def required_forms(client: ClientSettings, resolved: ResolvedRequest, pushing: bool) -> None:
    """The client's own rules: RFC 9101 §10.5 and RFC 9126 §6 client metadata."""
    if client.require_signed_request_object and not resolved.signed:
        raise InvalidRequestError("this client must send a signed request object (RFC 9101)")
    if client.require_pushed_authorization_requests and not (pushing or resolved.pushed):
        raise InvalidRequestError("this client must push its authorization requests (RFC 9126)")


class RequestObjects:
    """`request` verified and merged, `request_uri` taken from what was pushed (single use)."""

    def __init__(
        self, audiences: tuple[str, ...], keys: ClientKeys, store: Store, clock: Clock = time.time
    ) -> None:
        self._audiences = audiences
        self._keys = keys
        self._store = store
        self._clock = clock
        self._sign_requests = SignRequestTokens(audiences, keys, clock)

    async def with_sign_request(
        self, resolved: ResolvedRequest, client: ClientSettings
    ) -> ResolvedRequest:
        """A signRequest given as a JWT (Signature Extension §3.1.2), verified and replaced by
        the object it carries, which then counts as signed. Run once the client is trusted:
        its errors go back to the e-service."""
        values = resolved.params.getlist(SIGN_REQUEST_PARAMETER)
        if len(values) != 1 or not looks_like_jwt(values[0]):
            return resolved  # none, several (single_values refuses), or JSON: the steps judge
        request = await self._sign_requests.verified(values[0], client)
        params = merged(resolved.params, {SIGN_REQUEST_PARAMETER: request})
        members = resolved.signed_members | {SIGN_REQUEST_PARAMETER}
        return replace(resolved, params=params, signed_members=members)

    async def resolve(self, query: Parameters, client: ClientSettings) -> ResolvedRequest:
        for name in ("request", "request_uri"):
            if len(query.getlist(name)) > 1:
                raise InvalidRequestError(f"{name} is given more than once")
        if "request" in query and "request_uri" in query:
            raise InvalidRequestError("send request or request_uri, not both")
        if "request_uri" in query:
            return await self._pushed(query["request_uri"], client)
        if "request" in query:
            members, signed = await self.verified_members(query["request"], client)
            vouched = frozenset(members) if signed else frozenset()
            return ResolvedRequest(merged(query, members), signed=signed, signed_members=vouched)
        return ResolvedRequest(query)

    async def push(self, client_id: str, resolved: ResolvedRequest) -> str:
        """RFC 9126 §2.2: the request stored under a random handle; its request_uri."""
        handle = secrets.token_urlsafe(32)
        await self._store.put(
            _pushed_key(handle), resolved.to_json(client_id), PUSHED_REQUEST_TTL_SECONDS
        )
        return REQUEST_URI_PREFIX + handle

    async def _pushed(self, request_uri: str, client: ClientSettings) -> ResolvedRequest:
        """RFC 9126 §4: only our own request_uri, once, by the client that pushed it."""
        handle = request_uri.removeprefix(REQUEST_URI_PREFIX)
        if handle == request_uri or not handle or len(handle) > MAX_HANDLE_LENGTH:
            raise InvalidRequestURIError(
                "only a request_uri from this provider's pushed authorization request "
                "endpoint is accepted"
            )
        raw = await self._store.take(_pushed_key(handle))
        if raw is None:
            raise InvalidRequestURIError("request_uri is unknown, expired or already used")
        pushed_by, resolved = ResolvedRequest.from_json(raw)
        if pushed_by != client.client_id:
            raise InvalidRequestURIError("request_uri was pushed by another client")
        return resolved

    async def verified_members(
        self, token: str, client: ClientSettings
    ) -> tuple[dict[str, str], bool]:
        """RFC 9101 §6: the object's parameters, once its signature and claims hold; and
        whether it was signed (`none` only for a client registered for it)."""
        header, payload = _parts(token)
        alg = header.get("alg")
        if alg not in _accepted_algorithms(client):
            raise InvalidRequestObjectError(
                f"alg {quoted(str(alg))} is not accepted from this client"
            )
        if alg == "none":
            if not token.endswith("."):
                raise InvalidRequestObjectError("an unsigned request object has no signature")
        else:
            await self._verify_signature(token, client, header, str(alg))
        now = self._clock()
        expires_in = check_claims(payload, client, self._audiences, now)
        once = replay_key("request", client.client_id, payload["jti"])
        if not await self._store.add(once, b"1", int(expires_in) + CLOCK_SKEW + 1):
            raise InvalidRequestObjectError("request object was already used (jti)")
        return as_parameters(payload), alg != "none"

    async def _verify_signature(
        self, token: str, client: ClientSettings, header: Mapping[str, Any], alg: str
    ) -> None:
        kid = header.get("kid")
        try:
            keys = await self._keys.for_token(client, kid if isinstance(kid, str) else None)
            jwt.decode(token, keys, algorithms=[alg])
        except ClientKeysUnavailable as error:
            raise InvalidRequestObjectError(
                f"the client's keys are unavailable: {quoted(str(error))}"
            ) from None
        except (JoseError, ValueError):
            raise InvalidRequestObjectError("request object signature is not valid") from None


def _pushed_key(handle: str) -> str:
    return f"par:{handle}"


def _accepted_algorithms(client: ClientSettings) -> tuple[str, ...]:
    """A client that registered an alg gets only that one (OIDC Registration §2)."""
    if client.request_object_signing_alg is not None:
        return (client.request_object_signing_alg,)
    return SIGNING_ALGORITHMS


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(token) > MAX_REQUEST_OBJECT_LENGTH:
        raise InvalidRequestObjectError(
            f"request object is longer than {MAX_REQUEST_OBJECT_LENGTH} characters"
        )
    if token.count(".") == 4:
        raise InvalidRequestObjectError("encrypted request objects are not supported")
    try:
        return compact_jwt_parts(token)
    except MalformedInput as problem:
        raise InvalidRequestObjectError(f"request object is malformed: {problem}") from None


def check_claims(
    payload: Mapping[str, Any], client: ClientSettings, audiences: tuple[str, ...], now: float
) -> float:
    """RFC 9101 §4, §6.3 and OIDC Core §6.1; the seconds until the object expires."""
    if payload.get("iss") != client.client_id:
        raise InvalidRequestObjectError("iss must be the client_id")
    if "client_id" in payload and payload["client_id"] != client.client_id:
        raise InvalidRequestObjectError("client_id differs from the request's client_id")
    if not names_audience(payload.get("aud"), audiences):
        raise InvalidRequestObjectError("aud must be this provider's issuer")
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidRequestObjectError("jti is missing or malformed")
    if "request" in payload or "request_uri" in payload:
        raise InvalidRequestObjectError("a request object cannot hold request or request_uri")
    if len(payload) > MAX_MEMBERS:
        raise InvalidRequestObjectError("request object has too many members")
    return _lifetime(payload, now)


def _lifetime(payload: Mapping[str, Any], now: float) -> float:
    exp: Any = payload.get("exp")
    nbf: Any = payload.get("nbf")
    iat: Any = payload.get("iat")
    if not is_time(exp):
        raise InvalidRequestObjectError("exp is missing or not a number")
    if exp < now - CLOCK_SKEW:
        raise InvalidRequestObjectError("request object has expired")
    if exp - now > MAX_LIFETIME + CLOCK_SKEW or (is_time(iat) and exp - iat > MAX_LIFETIME):
        raise InvalidRequestObjectError(f"request object lives longer than {MAX_LIFETIME} s")
    if nbf is not None and (not is_time(nbf) or nbf > now + CLOCK_SKEW):
        raise InvalidRequestObjectError("request object is not valid yet (nbf)")
    if iat is not None and (not is_time(iat) or iat > now + CLOCK_SKEW):
        raise InvalidRequestObjectError("request object is issued in the future (iat)")
    return max(float(exp) - now, 0.0)


def as_parameters(payload: Mapping[str, Any]) -> dict[str, str]:
    """Members as query text: strings as they are, other values as compact JSON; null absent."""
    return {
        name: value if isinstance(value, str) else compact_json(value)
        for name, value in payload.items()
        if name not in JWT_CLAIMS and value is not None
    }


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def merged(query: Parameters, members: Mapping[str, str]) -> Parameters:
    """OIDC Core §6.3.3: the object's members win over the query's parameters of the same name."""
    kept = [(k, v) for k, v in query.multi_items() if k not in members and k != "request"]
    return ImmutableMultiDict([*kept, *members.items()])
