"""OpenID Connect RP-Initiated Logout 1.0 at `end_session_endpoint` (/logout).

With a valid `id_token_hint` for this browser's session the session ends at once; without one
the citizen confirms on a page first, so that a link from anywhere cannot log them out. The
`post_logout_redirect_uri` must be registered exactly for the client; otherwise the citizen
stays on our "logged out" page. Ending a session notifies the session's other e-services
through back-channel logout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.audit import Audit
from gateway.browser import BrowserBinding
from gateway.keys import SigningKeys
from gateway.oidc.authorize import AuthorizeRequestRejected
from gateway.oidc.backchannel import BackchannelLogout
from gateway.oidc.client_auth import ClientRegistry
from gateway.session import Sessions, SsoSession
from gateway.settings import Settings
from gateway.ui.pages import PageRenderer
from providers.base import Provider

log = logging.getLogger("portvakt.logout")
LOGOUT_PATH = "/logout"
LOGOUT_FIELDS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
CONFIRM_FORM = "logout"


class LogoutEndpoint:
    def __init__(
        self,
        settings: Settings,
        keys: SigningKeys,
        clients: ClientRegistry,
        sessions: Sessions,
        backchannel: BackchannelLogout,
        pages: PageRenderer,
        browsers: BrowserBinding,
        providers: Mapping[str, Provider],
        audit: Audit,
    ) -> None:
        self._audit = audit
        self._providers = providers
        self._issuer = settings.issuer
        self._keys = keys
        self._clients = clients
        self._sessions = sessions
        self._backchannel = backchannel
        self._pages = pages
        self._browsers = browsers

    async def __call__(self, request: Request) -> Response:
        if request.method == "POST":
            form = await request.form(max_files=0, max_fields=12)
            params = {name: str(form.get(name, "")) for name in (*LOGOUT_FIELDS, "csrf")}
            confirmed = "confirm" in form and self._browsers.verify(
                request, CONFIRM_FORM, params["csrf"]
            )
        else:
            params = {name: request.query_params.get(name, "") for name in LOGOUT_FIELDS}
            confirmed = False
        request.state.preferred_locale = params["ui_locales"] or None
        hint = self._read_hint(params["id_token_hint"])
        client_id = params["client_id"] or str(hint.get("aud", ""))
        if params["client_id"] and hint and hint.get("aud") != params["client_id"]:
            raise AuthorizeRequestRejected("logout", "id_token_hint is for another client")
        return_to = self._return_uri(client_id, params["post_logout_redirect_uri"], params["state"])
        session = await self._sessions.current(request)
        if session is not None and not confirmed and hint.get("sid") != session.sid:
            return self._confirmation(request, params, client_id)
        response: Response | None = None
        if session is not None:
            ended = await self._sessions.end(session)
            if ended is not None:
                log.info("session ended by RP-initiated logout from %s", client_id or "-")
                self._audit.event(
                    "logout", client=client_id, provider=ended.person.provider, by="e-service"
                )
                self._backchannel.notify(ended, except_client=client_id or None)
                response = await self._upstream_logout(request, ended, client_id, return_to)
        if response is None and return_to is not None:
            response = RedirectResponse(return_to, status_code=303)
        elif response is None:
            context = {"client_id": client_id or None}
            response = self._pages.render(request, "logged_out.html", context)
        self._sessions.clear_cookie(response)
        return response

    async def _upstream_logout(
        self, request: Request, ended: SsoSession, client_id: str, return_to: str | None
    ) -> Response | None:
        """Single logout at the upstream too (SAML SLO), which then sends the citizen on."""
        identity = ended.person
        upstream_logout = getattr(self._providers.get(identity.provider), "logout", None)
        if upstream_logout is None:
            return None
        after = return_to or f"{self._issuer}{LOGOUT_PATH}?" + urlencode(
            {"client_id": client_id} if client_id else {}
        )
        response: Response | None = await upstream_logout(request, identity, after)
        return response

    def _read_hint(self, token: str) -> dict[str, Any]:
        """Our own ID token, signature checked; expired hints are fine (Logout 1.0 §2)."""
        if not token:
            return {}
        try:
            claims = dict(jwt.decode(token, self._keys.key_set()).claims)
        except (JoseError, ValueError, TypeError):
            raise AuthorizeRequestRejected("logout", "id_token_hint is not our ID token") from None
        if claims.get("iss") != self._issuer:
            raise AuthorizeRequestRejected("logout", "id_token_hint was issued by someone else")
        return claims

    def _return_uri(self, client_id: str, uri: str, state: str) -> str | None:
        if not uri:
            return None
        client = self._clients.get(client_id)
        if client is None or uri not in client.post_logout_redirect_uris:
            raise AuthorizeRequestRejected(
                "logout", "post_logout_redirect_uri is not registered for this client", client_id
            )
        return str(add_params_to_uri(uri, [("state", state)])) if state else uri

    def _confirmation(self, request: Request, params: dict[str, str], client_id: str) -> Response:
        browser, is_new = self._browsers.ensure_browser_id(request)
        context = {
            "client_id": client_id or None,
            "fields": {k: v for k, v in params.items() if k in LOGOUT_FIELDS and v},
            "csrf": self._browsers.token(request, CONFIRM_FORM),
            "action": f"{self._issuer}{LOGOUT_PATH}",
        }
        response = self._pages.render(request, "logout_confirm.html", context)
        if is_new:
            self._browsers.set_cookie(response, browser)
        return response
