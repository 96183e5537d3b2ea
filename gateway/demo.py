"""A small demo e-service at /demo/: a relying party built with authlib's OIDC client that logs
in through this very gateway and shows the ID token claims and userinfo. Only on the embedded
defaults (or `demo: true`), never in production."""

from __future__ import annotations

import json
import secrets
from urllib.parse import urlencode

from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.oidc.claims import NATURAL_PERSON_INFO, NATURAL_PERSON_NUMBER
from gateway.ui.pages import PageRenderer

DEMO_SCOPES = f"openid {NATURAL_PERSON_NUMBER} {NATURAL_PERSON_INFO}"


def demo_app(issuer: str, client_id: str, client_secret: str, pages: PageRenderer) -> Starlette:
    oauth = OAuth()
    oauth.register(
        "portvakt",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": DEMO_SCOPES, "code_challenge_method": "S256"},
    )
    client = oauth.create_client("portvakt")

    async def home(request: Request) -> Response:
        result = request.session.get("result")
        context = {
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
        except OAuthError as error:
            request.session.pop("result", None)
            request.session["error"] = f"{error.error}: {error.description or ''}"
            return RedirectResponse(f"{issuer}/demo/", status_code=303)
        request.session["result"] = {"claims": dict(token["userinfo"]), "userinfo": dict(userinfo)}
        request.session["id_token"] = token["id_token"]
        return RedirectResponse(f"{issuer}/demo/", status_code=303)

    async def logout(request: Request) -> Response:
        """RP-initiated logout: the gateway's session ends too, not only the demo's."""
        id_token = request.session.get("id_token")
        request.session.clear()
        params = {"post_logout_redirect_uri": f"{issuer}/demo/", "client_id": client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return RedirectResponse(f"{issuer}/logout?{urlencode(params)}", status_code=303)

    return Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["POST"]),
            Route("/callback", callback),
            Route("/logout", logout, methods=["POST"]),
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
