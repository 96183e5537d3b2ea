"""A small demo e-service at /demo/: a relying party built with authlib's OIDC client that logs
in through this very gateway and shows the ID token claims and userinfo. Only on the embedded
defaults (or `demo: true`), never in production.

It receives back-channel logout (Back-Channel Logout 1.0) like a real e-service must, so that a
logout anywhere ends its session too: each logout token is verified (§2.6) against the gateway's
published JWKS. What it has been told lives in this process, as the demo and its BankID
simulator do: the demo is for one process, not for `--workers`.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.demo.contact_centre import ContactCentreDemo
from gateway.demo.signing import SigningDemo
from gateway.oidc.claims import EIDAS_NATURAL_PERSON, NATURAL_PERSON_INFO, NATURAL_PERSON_NUMBER
from gateway.ui.pages import PageRenderer
from providers.forms import read_form

# eidasNaturalPersonIdentity: a foreign citizen (eIDAS, an EU wallet's PID) is shown by prid.
DEMO_SCOPES = f"openid {NATURAL_PERSON_NUMBER} {NATURAL_PERSON_INFO} {EIDAS_NATURAL_PERSON}"
BACKCHANNEL_LOGOUT_PATH = "/backchannel-logout"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE_SECONDS = 120  # the gateway's logout tokens live this long
CLOCK_SKEW_SECONDS = 30
NO_STORE = {"Cache-Control": "no-store"}
Clock = Callable[[], float]


class LogoutTokenRejected(Exception):
    """A logout token that fails a check of Back-Channel Logout 1.0 §2.6."""


@dataclass
class LogoutRecord:
    """What the demo has been told: sessions (by `sid`) and people (by `sub`, with when) whose
    login has ended, and the `jti`s already used; each forgotten after `keep_seconds`."""

    keep_seconds: float
    ended_sids: dict[str, float] = field(default_factory=dict)
    ended_subs: dict[str, float] = field(default_factory=dict)
    used_jtis: dict[str, float] = field(default_factory=dict)

    def first_use(self, jti: str, now: float) -> bool:
        self._forget(now)
        if jti in self.used_jtis:
            return False
        self.used_jtis[jti] = now
        return True

    def end(self, sid: str | None, sub: str | None, now: float) -> None:
        if sid:
            self.ended_sids[sid] = now
        elif sub:
            self.ended_subs[sub] = now

    def has_ended(self, session: dict[str, Any]) -> bool:
        if session.get("sid") in self.ended_sids:
            return True
        ended_at = self.ended_subs.get(session.get("sub", ""))
        return ended_at is not None and ended_at >= session.get("logged_in_at", 0)

    def _forget(self, now: float) -> None:
        for seen in (self.ended_sids, self.ended_subs, self.used_jtis):
            for key in [key for key, at in seen.items() if now - at > self.keep_seconds]:
                del seen[key]


def verify_logout_token(
    token: str, keys: KeySet, issuer: str, client_id: str, now: float
) -> dict[str, Any]:
    """Back-Channel Logout 1.0 §2.6: signature (RS256, the gateway's keys), explicit type,
    iss, aud, a fresh iat, jti, the logout event, sid or sub, and no nonce."""
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256"])
        registry = jwt.JWTClaimsRegistry(
            now=int(now),
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            iat={"essential": True},
            jti={"essential": True},
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as error:
        raise LogoutTokenRejected(f"not a valid token from the gateway: {error}") from None
    claims = dict(decoded.claims)
    if decoded.header.get("typ") != "logout+jwt":
        raise LogoutTokenRejected("typ is not logout+jwt")
    if abs(now - claims["iat"]) > LOGOUT_TOKEN_MAX_AGE_SECONDS + CLOCK_SKEW_SECONDS:
        raise LogoutTokenRejected("iat is not recent")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise LogoutTokenRejected("no back-channel logout event")
    if "nonce" in claims:
        raise LogoutTokenRejected("a logout token carries no nonce")
    if not isinstance(claims.get("sid"), str) and not isinstance(claims.get("sub"), str):
        raise LogoutTokenRejected("neither sid nor sub")
    return claims


class BackchannelReceiver:
    """The demo's back-channel logout endpoint (§2.5, answers per §2.8)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        oidc: StarletteOAuth2App,
        record: LogoutRecord,
        clock: Clock,
    ) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self._oidc = oidc
        self._record = record
        self._clock = clock

    async def __call__(self, request: Request) -> Response:
        form = await read_form(request, 4)
        try:
            claims = await self._verified(str(form.get("logout_token", "")))
        except LogoutTokenRejected as error:
            body = {"error": "invalid_request", "error_description": str(error)}
            return JSONResponse(body, status_code=400, headers=NO_STORE)
        self._record.end(claims.get("sid"), claims.get("sub"), self._clock())
        return Response(status_code=200, headers=NO_STORE)

    async def _verified(self, token: str) -> dict[str, Any]:
        if not token:
            raise LogoutTokenRejected("no logout_token")
        now = self._clock()
        keys = await self._keys(token)
        claims = verify_logout_token(token, keys, self._issuer, self._client_id, now)
        if not self._record.first_use(claims["jti"], now):
            raise LogoutTokenRejected("jti already used")
        return claims

    async def _keys(self, token: str) -> KeySet:
        """The gateway's JWKS, fetched again when the token names a key not yet known (a key
        rotation)."""
        keys = KeySet.import_key_set(await self._oidc.fetch_jwk_set())
        try:
            kid = json.loads(_segment(token.split(".")[0])).get("kid")
        except (ValueError, AttributeError):
            return keys
        if kid and all(key.kid != kid for key in keys):
            keys = KeySet.import_key_set(await self._oidc.fetch_jwk_set(force=True))
        return keys


def _segment(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def demo_app(
    issuer: str,
    client_id: str,
    client_secret: str,
    pages: PageRenderer,
    clock: Clock = time.time,
    contact_centre_secret: str | None = None,
) -> Starlette:
    oauth = OAuth()
    oauth.register(
        "portvakt",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": DEMO_SCOPES, "code_challenge_method": "S256"},
    )
    client: StarletteOAuth2App = oauth.create_client("portvakt")
    signing = SigningDemo(oauth, issuer, clock)
    record = LogoutRecord(keep_seconds=24 * 3600)
    contact_centre = (
        ContactCentreDemo(issuer, contact_centre_secret, pages, clock).routes()
        if contact_centre_secret
        else []
    )

    async def home(request: Request) -> Response:
        if record.has_ended(request.session):  # told over the back-channel
            request.session.clear()
        result = request.session.get("result")
        context = {
            "signature": signing.latest(request),
            "claims": json.dumps(result["claims"], indent=2, ensure_ascii=False)
            if result
            else None,
            "userinfo": (
                json.dumps(result["userinfo"], indent=2, ensure_ascii=False) if result else None
            ),
            "error": request.session.pop("error", None),
        }
        return pages.render(request, "demo.html", context)

    async def login(request: Request) -> Response:
        response: Response = await client.authorize_redirect(request, f"{issuer}/demo/callback")
        return response

    async def callback(request: Request) -> Response:
        try:
            token = await client.authorize_access_token(request)
            userinfo = await client.userinfo(token=token)
        except (AuthlibBaseError, JoseError) as error:  # OAuthError; the ID token refused
            request.session.pop("result", None)
            request.session["error"] = f"{error.error}: {error.description or ''}"
            return RedirectResponse(f"{issuer}/demo/", status_code=303)
        claims = dict(token["userinfo"])
        request.session["result"] = {"claims": claims, "userinfo": dict(userinfo)}
        request.session["id_token"] = token["id_token"]
        request.session.update(sid=claims.get("sid"), sub=claims["sub"], logged_in_at=clock())
        return RedirectResponse(f"{issuer}/demo/", status_code=303)

    async def logout(request: Request) -> Response:
        """RP-initiated logout: the gateway's session ends too, not only the demo's."""
        id_token = request.session.get("id_token")
        request.session.clear()
        params = {"post_logout_redirect_uri": f"{issuer}/demo/", "client_id": client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return RedirectResponse(f"{issuer}/logout?{urlencode(params)}", status_code=303)

    backchannel = BackchannelReceiver(issuer, client_id, client, record, clock)
    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/callback", callback),
            *signing.routes(),
            *contact_centre,
            Route("/logout", logout, methods=["POST"]),
            Route(BACKCHANNEL_LOGOUT_PATH, backchannel.__call__, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=secrets.token_urlsafe(32),
                session_cookie="demo_session",
                path="/demo",
                same_site="lax",
                https_only=issuer.startswith("https://"),
            )
        ],
    )
