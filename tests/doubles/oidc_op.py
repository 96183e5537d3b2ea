"""An upstream OpenID Provider for the tests: discovery, JWKS, authorize, token, userinfo.

Built with joserfc (Authlib's JOSE library) for its keys and signed ID tokens. It approves every
authorization request at once for `person`, checks the client's secret and the PKCE verifier
like a real OP, and a `Twist` bends its next answers for the negative tests: another signing
key, `alg: none`, wrong iss/aud/nonce, an expired token, a 500, a slow token endpoint, an
authorization error, another `sub` at userinfo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

PERSON = {
    "sub": "upstream-subject-1",
    "https://id.oidc.se/claim/personalIdentityNumber": "199908072391",
    "given_name": "Erik",
    "family_name": "Provsson",
    "name": "Erik Provsson",
    "birthdate": "1999-08-07",
}
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"


@dataclass
class Twist:
    error: str | None = None  # authorization error instead of a code
    token_status: int = 200
    token_delay: float = 0.0
    alg_none: bool = False
    foreign_key: bool = False  # signed by a key not in the JWKS (same kid)
    iss: str | None = None
    aud: str | None = None
    nonce: str | None = None
    drop_nonce: bool = False
    nonce_in_a_list: bool = False  # [the right nonce, another]
    expired: bool = False
    acr: str | None = None
    userinfo_sub: str | None = None
    callback_iss: str | None = None
    id_token_claims: dict[str, Any] = field(default_factory=dict)  # added to the ID token's
    userinfo_claims: dict[str, Any] = field(default_factory=dict)  # replace userinfo's


@dataclass
class UpstreamOP:
    base_url: str
    client_id: str = "portvakt"
    client_secret: str = "upstream-secret"
    person: dict[str, Any] = field(default_factory=lambda: dict(PERSON))
    twist: Twist = field(default_factory=Twist)
    keys: list[RSAKey] = field(default_factory=list)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    jwks_fetches: int = 0
    client_auth: str = "client_secret_basic"
    client_jwks_url: str | None = None  # private_key_jwt: where the client publishes its keys
    discovery_extra: dict[str, Any] = field(default_factory=dict)  # more metadata to declare

    def __post_init__(self) -> None:
        if not self.keys:
            self.rotate()

    def rotate(self) -> RSAKey:
        """A new signing key with a new kid, published first; the old one stays in the JWKS."""
        key = RSAKey.generate_key(2048, parameters={"kid": f"k{secrets.token_hex(4)}"})
        self.keys.insert(0, key)
        return key

    def reset(self) -> None:
        self.person = dict(PERSON)
        self.twist = Twist()
        self.authorize_requests.clear()
        self.client_auth = "client_secret_basic"

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo),
            ]
        )

    async def _discovery(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.base_url,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "jwks_uri": f"{self.base_url}/jwks",
                "userinfo_endpoint": f"{self.base_url}/userinfo",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
                **self.discovery_extra,
            }
        )

    async def _jwks(self, _request: Request) -> Response:
        self.jwks_fetches += 1
        return JSONResponse(KeySet(self.keys).as_dict(private=False))

    async def _authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        if (
            params.get("client_id") != self.client_id
            or params.get("code_challenge_method") != "S256"
        ):
            return Response("bad authorization request", status_code=400)
        back = {"state": params["state"], "iss": self.twist.callback_iss or self.base_url}
        if self.twist.error:
            back["error"] = self.twist.error
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = params
            back["code"] = code
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(back)}", status_code=303)

    async def _token(self, request: Request) -> Response:
        import asyncio

        form = await request.form()  # read before stalling, as a slow server would
        if self.twist.token_delay:
            await asyncio.sleep(self.twist.token_delay)
        if self.twist.token_status != 200:
            return JSONResponse({"error": "server_error"}, status_code=self.twist.token_status)
        if not await self._client_authenticated(request, form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        params = self.codes.pop(str(form.get("code")), None)
        if params is None or form.get("redirect_uri") != params["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != params["code_challenge"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access_token = secrets.token_urlsafe(24)
        self.tokens[access_token] = dict(self.person)
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(params),
            }
        )

    async def _client_authenticated(self, request: Request, form: Any) -> bool:
        if self.client_auth == "client_secret_basic":
            pair = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            return request.headers.get("authorization") == f"Basic {pair}"
        if self.client_auth == "client_secret_post":
            return form.get("client_id") == self.client_id and (
                form.get("client_secret") == self.client_secret
            )
        assert self.client_jwks_url is not None
        if form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return False
        async with httpx2.AsyncClient() as http:
            keys = KeySet.import_key_set((await http.get(self.client_jwks_url)).json())
        try:
            claims = jwt.decode(str(form.get("client_assertion")), keys).claims
        except JoseError:
            return False
        return (
            claims.get("iss") == claims.get("sub") == self.client_id
            and claims.get("aud") == f"{self.base_url}/token"
            and claims.get("exp", 0) > time.time()
        )

    def id_token(self, params: dict[str, str]) -> str:
        twist = self.twist
        now = int(time.time()) - (3600 if twist.expired else 0)
        requested_acr = (params.get("acr_values") or LOA3).split()[0]
        claims: dict[str, Any] = {
            "iss": twist.iss or self.base_url,
            "aud": twist.aud or self.client_id,
            "sub": self.person["sub"],
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": twist.nonce or params.get("nonce"),
            "acr": twist.acr or requested_acr,
        }
        claims.update(twist.id_token_claims)
        if twist.drop_nonce:
            del claims["nonce"]
        if twist.nonce_in_a_list:
            claims["nonce"] = [claims["nonce"], "a-nonce-from-another-login"]
        key = self.keys[0]
        if twist.alg_none:
            header = _b64(json.dumps({"alg": "none", "kid": key.kid}).encode())
            return f"{header}.{_b64(json.dumps(claims).encode())}."
        if twist.foreign_key:
            key = RSAKey.generate_key(2048, parameters={"kid": key.kid})
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    async def _userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        person = self.tokens.get(token)
        if person is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        sub = self.twist.userinfo_sub or person["sub"]
        return JSONResponse({**person, "sub": sub, **self.twist.userinfo_claims})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
