"""`https://id.oidc.se/param/signRequest` (Signature Extension 1.1 §3.1, §5.1): what an
e-service asks the citizen to sign (scope `.../sign`) or to approve (`.../signApproval`).

The value must carry the client's signature (§3.1.2): either the parameter is a JWT signed with
a registered key, whose top-level claims `tbs_data` and `sign_message` are the object (OIDC
Sweden's library shape, digest §2.3), verified where the request is resolved (it needs the
client's keys); or it is a JSON member of a signed request object. Plain JSON in the query or
form, or in an `alg: none` object, is refused with `invalid_request`.

Limits: `tbs_data` at most MAX_TBS_DATA_LENGTH Base64 characters and each sign message text at
most MAX_SIGN_MESSAGE_LENGTH, so that a request object of 32 KiB carries both in two
languages (BankID's /sign would take 200 000 and 40 000; a request does not).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Collection, Mapping
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnauthorizedClientError
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.datastructures import ImmutableMultiDict

from gateway.clock import Clock
from gateway.oidc.claims import SIGN_APPROVAL_SCOPE, SIGN_SCOPE, SIGN_SCOPES
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
from gateway.oidc.user_message import checked_message, user_message_of
from gateway.settings import ClientSettings
from providers.base import SignRequest, UserMessage
from providers.parsing import MalformedInput, bounded_json, compact_jwt_parts

SIGN_REQUEST_PARAMETER = "https://id.oidc.se/param/signRequest"
MAX_TBS_DATA_LENGTH = 12_000
MAX_SIGN_MESSAGE_LENGTH = 4_000
# The parameter's whole text, a JWT or JSON: no more than a request object may be.
MAX_SIGN_REQUEST_LENGTH = 32 * 1024
STANDARD_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
REQUIRED_PROMPT = frozenset({"login", "consent"})


class SignRequestTokens:
    """The JWT form of the parameter, verified with the client's registered keys like a
    request object (Profile §2.1.7): iss the client, aud our issuer or /authorize."""

    def __init__(
        self, audiences: tuple[str, ...], keys: ClientKeys, clock: Clock = time.time
    ) -> None:
        self._audiences = audiences
        self._keys = keys
        self._clock = clock

    async def verified(self, token: str, client: ClientSettings) -> str:
        """The sign request the JWT carries, as the compact JSON a request object's member
        would have become."""
        header, payload = _jwt_parts(token)
        alg = header.get("alg")
        if alg not in SIGNING_ALGORITHMS:
            raise _invalid(f"alg {quoted(str(alg))} is not accepted (RS256, PS256 or ES256)")
        kid = header.get("kid")
        try:
            keys = await self._keys.for_token(client, kid if isinstance(kid, str) else None)
            jwt.decode(token, keys, algorithms=[str(alg)])
        except ClientKeysUnavailable as error:
            raise _invalid(f"the client's keys are unavailable: {quoted(str(error))}") from None
        except (JoseError, ValueError):
            raise _invalid("the JWT's signature is not valid") from None
        _check_claims(payload, client, self._audiences, self._clock())
        request = {name: value for name, value in payload.items() if name not in JWT_CLAIMS}
        return json.dumps(request, separators=(",", ":"), ensure_ascii=False)


def looks_like_jwt(value: str) -> bool:
    """A JSON object is a member's text; anything else is taken for the JWT form."""
    return not value.lstrip().startswith("{")


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(token) > MAX_SIGN_REQUEST_LENGTH:
        raise _invalid(f"longer than {MAX_SIGN_REQUEST_LENGTH} characters")
    if token.count(".") == 4:
        raise _invalid("encrypted sign requests are not supported")
    try:
        return compact_jwt_parts(token)
    except MalformedInput as problem:
        raise _invalid(
            f"must be a signed JWT or a member of a signed request object ({problem})"
        ) from None


def _check_claims(
    payload: Mapping[str, Any], client: ClientSettings, audiences: tuple[str, ...], now: float
) -> None:
    if payload.get("iss") != client.client_id:
        raise _invalid("iss must be the client_id")
    if not names_audience(payload.get("aud"), audiences):
        raise _invalid("aud must be this provider's issuer or authorization endpoint")
    exp, iat = payload.get("exp"), payload.get("iat")
    if exp is not None and (not is_time(exp) or exp < now - CLOCK_SKEW):
        raise _invalid("the JWT has expired")
    if exp is not None and exp - now > MAX_LIFETIME + CLOCK_SKEW:
        raise _invalid(f"the JWT lives longer than {MAX_LIFETIME} s")
    if iat is not None and (not is_time(iat) or not now - MAX_LIFETIME <= iat <= now + CLOCK_SKEW):
        raise _invalid("iat is not a time of the last hour")


def sign_scopes_allowed(params: ImmutableMultiDict[str, str], client: ClientSettings) -> None:
    """§5.1: a client not registered for a sign scope (its `scopes` key) may not ask for it."""
    asked = set(params.get("scope", "").split()) & set(SIGN_SCOPES)
    refused = sorted(asked - client.allowed_scopes)
    if refused:
        raise UnauthorizedClientError(f"this client may not ask for the scope {quoted(refused[0])}")


def checked_sign_request(
    params: ImmutableMultiDict[str, str], signed_members: Collection[str], prompted: bool = True
) -> dict[str, Any] | None:
    """§5.1's checks, in its order; the validated object (AuthorizationParameters keeps it).
    `prompted`: the request has a `prompt` to check (CIBA has none: the call's question and
    the e-ID's sign dialog stand for login and consent)."""
    asked = set(params.get("scope", "").split()) & set(SIGN_SCOPES)
    raw = params.get(SIGN_REQUEST_PARAMETER)
    if not asked:
        if raw is not None:
            raise _invalid("given without the sign or signApproval scope")
        return None
    if raw is None:
        raise InvalidRequestError(f"the scope {quoted(sorted(asked)[0])} needs a signRequest")
    if SIGN_REQUEST_PARAMETER not in signed_members:
        raise _invalid("must be a signed JWT or a member of a signed request object")
    request = _object(raw)
    tbs_data = _tbs_data(request.get("tbs_data"), signs=SIGN_SCOPE in asked)
    if prompted and not set(params.get("prompt", "").split()) >= REQUIRED_PROMPT:
        raise InvalidRequestError("a sign request needs prompt with login and consent")
    if "sign_message" not in request:
        raise _invalid("sign_message is missing")
    where = f"{SIGN_REQUEST_PARAMETER} sign_message"
    message = checked_message(request["sign_message"], where, MAX_SIGN_MESSAGE_LENGTH)
    return {"sign_message": message, **({"tbs_data": tbs_data} if tbs_data else {})}


def _object(raw: str) -> dict[str, Any]:
    try:
        request = bounded_json(raw)
    except MalformedInput as problem:
        raise _invalid(str(problem)) from None
    if not isinstance(request, dict):
        raise _invalid("must be a JSON object")
    return request


def _tbs_data(value: object, signs: bool) -> str | None:
    """Required with `.../sign`; refused for an approval only (§3.1's field rule)."""
    if not signs:
        if value is not None:
            raise _invalid(f"tbs_data is not for an approval only ({SIGN_APPROVAL_SCOPE})")
        return None
    if value is None:
        raise _invalid(f"tbs_data is missing (the scope {SIGN_SCOPE} signs it)")
    if not isinstance(value, str) or not value:
        raise _invalid("tbs_data must be a Base64 string")
    if len(value) > MAX_TBS_DATA_LENGTH:
        raise _invalid(f"tbs_data is longer than {MAX_TBS_DATA_LENGTH} Base64 characters")
    if not STANDARD_BASE64.fullmatch(value) or not _decodes(value):
        raise _invalid("tbs_data is not Base64")
    return value


def _decodes(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def sign_request_of(validated: Mapping[str, Any] | None) -> SignRequest | None:
    """The provider contract's SignRequest from what /authorize kept."""
    if not validated:
        return None
    message = user_message_of(validated["sign_message"], ())
    assert message is not None
    tbs_data = validated.get("tbs_data")
    return SignRequest(message, None if tbs_data is None else str(tbs_data))


def sample_requests() -> tuple[SignRequest, SignRequest]:
    """A signature and an approval, to ask providers what they can do (discovery)."""
    message = UserMessage({"": "Portvakt"}, "text/plain")
    return SignRequest(message, base64.b64encode(b"Portvakt").decode()), SignRequest(message)


def _invalid(problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"{SIGN_REQUEST_PARAMETER}: {problem}")
