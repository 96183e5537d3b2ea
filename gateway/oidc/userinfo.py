"""The userinfo endpoint (OIDC Core §5.3): the claims the granted scopes allow, for a bearer token
(RFC 6750 §2.1 header or §2.2 form body). Signed as a JWT when the client registered
`userinfo_signed_response_alg`, and always for a client with `profile: sweden-connect`
(Swedish profile §4.1)."""

from __future__ import annotations

import time

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.oidc import sweden_connect
from gateway.oidc.claims import userinfo_claims
from gateway.oidc.client_auth import ClientRegistry
from gateway.oidc.codes import AccessGrant
from gateway.oidc.keys import SigningKeys
from gateway.oidc.token import FORM_FIELDS, NO_STORE, sign
from gateway.settings import ClientSettings, Settings
from providers.base import Identity, Store
from providers.forms import read_form


class UserinfoEndpoint:
    def __init__(
        self, settings: Settings, store: Store, keys: SigningKeys, clients: ClientRegistry
    ) -> None:
        self._settings = settings
        self._store = store
        self._keys = keys
        self._clients = clients

    async def __call__(self, request: Request) -> Response:
        token = await bearer_token(request)
        raw = await self._store.get(f"at:{token}")
        if raw is None:
            raise InvalidTokenError("the access token is unknown or expired", realm="portvakt")
        grant = AccessGrant.loads(raw)
        claims = {
            "sub": grant.sub,
            **userinfo_claims(Identity.from_dict(grant.identity), grant.scopes, grant.claims),
        }
        client = self._clients.get(grant.client_id)
        if client is not None and signs_userinfo(client):
            issued = {"iss": self._settings.issuer, "aud": grant.client_id, "iat": int(time.time())}
            signed_claims = {**claims, **issued}
            return Response(
                sign(self._keys, signed_claims), media_type="application/jwt", headers=NO_STORE
            )
        return JSONResponse(claims, headers=NO_STORE)


def signs_userinfo(client: ClientSettings) -> bool:
    """Signed when registered so, and always for a sweden-connect client: the Swedish profile
    §4.1 says UserInfo responses MUST be signed, whatever the client's Accept header says."""
    return client.userinfo_signed_response_alg is not None or sweden_connect.applies(client)


async def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    from_header = value.strip() if scheme.lower() == "bearer" else None
    from_body = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        from_body = (await read_form(request, FORM_FIELDS)).get("access_token")
    if from_header and from_body:
        raise InvalidRequestError("send the access token in one place only (RFC 6750 section 2)")
    token = from_header or from_body
    if not token or not isinstance(token, str):
        raise InvalidTokenError("an access token is required", realm="portvakt")
    return token
