"""The token endpoint (RFC 6749 §4.1.3, OIDC Core §3.1.3): one authorization code, redeemed once,
for its opaque access token and a signed ID token (gateway/oidc/codes.py wrote both records);
or, for a client registered for it, the CIBA grant (gateway/oidc/ciba_grant.py), whose tokens
come from the same code records."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, compare_s256_code_challenge
from joserfc import jwt
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.oidc import sweden_connect
from gateway.oidc.ciba_grant import BackchannelGrant
from gateway.oidc.claims import id_token_claims, subject
from gateway.oidc.client_auth import ClientAuthenticator
from gateway.oidc.codes import AuthorizationCodes, IssuedCode
from gateway.oidc.error_text import quoted
from gateway.oidc.keys import SIGNING_ALGORITHM, SigningKeys
from gateway.ops.audit import Audit
from gateway.ops.rate_limit import Counting, RateLimiter
from gateway.settings import AUTHORIZATION_CODE, CIBA_GRANT, ClientSettings, Settings
from providers.base import Identity
from providers.forms import read_form

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_FIELDS = 32  # no OAuth request needs more; uploads are refused outright (max_files=0)


class TokenEndpoint:
    def __init__(  # noqa: PLR0913  its collaborators, built once in create_app
        self,
        settings: Settings,
        codes: AuthorizationCodes,
        keys: SigningKeys,
        authenticator: ClientAuthenticator,
        subject_salt: str,
        limiter: RateLimiter,
        audit: Audit,
        backchannel: BackchannelGrant | None = None,
    ) -> None:
        self._backchannel = backchannel
        self._audit = audit
        self._limiter = limiter
        self._settings = settings
        self._codes = codes
        self._keys = keys
        self._authenticator = authenticator
        self._subject_salt = subject_salt

    async def __call__(self, request: Request) -> Response:
        form = await read_form(request, FORM_FIELDS)
        values = single_valued(form)
        client = await self._authenticator.authenticate(request, values)
        counting = self._limiter.token(request, client.client_id)
        grant_type = values.get("grant_type")
        code = values.get("code")
        if grant_type == AUTHORIZATION_CODE and code and grant_type in client.grant_types:
            return await self._code_exchanged(client, values, code, counting)
        await self._limiter.count(counting)
        if not grant_type:
            raise InvalidRequestError("grant_type is missing")
        if grant_type == CIBA_GRANT and self._backchannel is not None:
            allowed(client, grant_type)
            issued = await self._backchannel.poll(values.get("auth_req_id", ""), client)
            return JSONResponse(self.tokens(issued, client), headers=NO_STORE)
        if grant_type != AUTHORIZATION_CODE:
            error = UnsupportedGrantTypeError(grant_type)
            error.description = f"only {AUTHORIZATION_CODE} and {CIBA_GRANT} are supported"
            raise error
        allowed(client, grant_type)
        raise InvalidRequestError("code is missing")

    async def _code_exchanged(
        self, client: ClientSettings, values: dict[str, str], code: str, counting: Counting
    ) -> Response:
        """The usual request: its rate limits are counted in the code's round trip."""
        issued = await self._codes.redeem(code, counting)
        try:
            check_code_binding(issued, client, values)
        except InvalidGrantError:
            await self._codes.withdraw(issued)
            raise
        return JSONResponse(self.tokens(issued, client), headers=NO_STORE)

    def tokens(self, issued: IssuedCode, client: ClientSettings) -> dict[str, Any]:
        identity = Identity.from_dict(issued.identity)
        sub = subject(self._subject_salt, client.subject_sector, identity)
        self._audit.event("token_issued", client=client.client_id, sub=sub)
        return {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": max(issued.expires_at - self._codes.now(), 0),
            "scope": " ".join(issued.request.scopes),
            "id_token": self.id_token(issued, client, identity, sub),
        }

    def id_token(
        self, issued: IssuedCode, client: ClientSettings, identity: Identity, sub: str
    ) -> str:
        """OIDC Core §2 and the Swedish profile §3.2.1: auth_time always, exp at most 5 minutes."""
        now = self._codes.now()
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "sub": sub,
            "aud": client.client_id,
            "iat": now,
            "exp": now + self._settings.id_token_ttl_seconds,
            "auth_time": identity.auth_time,
            "acr": sweden_connect.delivered_acr(client, identity.loa),
            **id_token_claims(
                identity, issued.request.scopes, issued.request.claims.get("id_token")
            ),
        }
        if issued.request.nonce is not None:
            claims["nonce"] = issued.request.nonce
        if issued.sid is not None:
            claims["sid"] = issued.sid  # Back-Channel Logout 1.0 §2.1
        return sign(self._keys, claims)


def sign(keys: SigningKeys, claims: dict[str, Any], typ: str | None = None) -> str:
    header = {"alg": SIGNING_ALGORITHM, "kid": keys.kid, **({"typ": typ} if typ else {})}
    return jwt.encode(header, claims, keys.active)


def allowed(client: ClientSettings, grant_type: str) -> None:
    """RFC 6749 §5.2: a grant the client is not registered for (`grant_types`)."""
    if grant_type not in client.grant_types:
        raise UnauthorizedClientError(f"the client is not registered for {grant_type}")


def single_valued(form: FormData) -> dict[str, str]:
    """RFC 6749 §3.2: parameters sent without a value are omitted; none may repeat."""
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidRequestError(f"{quoted(key)} must be a plain form field")
        if key in values:
            raise InvalidRequestError(f"{quoted(key)} is given more than once")
        if value != "":
            values[key] = value
    return values


def check_code_binding(issued: IssuedCode, client: ClientSettings, form: dict[str, str]) -> None:
    """The code is bound to its client, its redirect_uri and its PKCE challenge (RFC 7636 §4.6)."""
    asked = issued.request
    if asked.client_id != client.client_id:
        raise InvalidGrantError("code was issued to another client")
    if form.get("redirect_uri") != asked.redirect_uri:
        raise InvalidGrantError("redirect_uri differs from the authorization request")
    verifier = form.get("code_verifier")
    if asked.code_challenge is None:
        if verifier is not None:
            raise InvalidGrantError("code_verifier sent, but no code_challenge was")
        return
    if verifier is None or not CODE_VERIFIER_PATTERN.match(verifier):
        raise InvalidGrantError("code_verifier is missing or malformed")
    if not compare_s256_code_challenge(verifier, asked.code_challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge")
