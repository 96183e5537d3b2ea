"""OpenID Connect RP-Initiated Logout 1.0 at `end_session_endpoint` (/logout).

With a valid `id_token_hint` for this browser's session the session ends at once; without one
the citizen confirms on a page first, so that a link from anywhere cannot log them out. The
`post_logout_redirect_uri` must be registered exactly for the client; an unregistered one is
never followed, but the session still ends (the e-service has already dropped its own), and the
citizen stays on our "logged out" page with a note. Ending a session notifies the session's
other e-services through back-channel logout, and the page says which were told and which were
not. An e-service is named (on the page, in the audit) only when the hint proves which it is.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.login.browser import BrowserBinding
from gateway.oidc.backchannel import BackchannelLogout, Notified
from gateway.oidc.client_auth import ClientRegistry
from gateway.oidc.keys import SigningKeys
from gateway.oidc.session import Sessions, SsoSession
from gateway.ops.audit import Audit
from gateway.settings import Settings
from gateway.ui.pages import PageRenderer
from providers.base import Provider, UpstreamLogout
from providers.forms import read_form

log = logging.getLogger("portvakt.logout")
LOGOUT_PATH = "/logout"
LOGOUT_FIELDS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
CONFIRM_FORM = "logout"
OUTCOME_FORM = "logout-outcome"


class LogoutRequestRejected(Exception):
    """An id_token_hint that is not our ID token or names another client: nobody is logged out,
    and the citizen gets a page, never a redirect to an address nobody has proven."""


@dataclass(frozen=True)
class LogoutOutcome:
    """What the logged-out page may truthfully say."""

    client_id: str | None = None  # the e-service that asked, proven by its ID token
    told: tuple[str, ...] = ()
    not_told: tuple[str, ...] = ()
    no_return: bool = False  # the e-service's return address was not registered

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(json.dumps(asdict(self)).encode()).decode()

    @classmethod
    def decoded(cls, text: str) -> LogoutOutcome:
        data = json.loads(base64.urlsafe_b64decode(text.encode()))
        return cls(
            client_id=data["client_id"],
            told=tuple(data["told"]),
            not_told=tuple(data["not_told"]),
            no_return=bool(data["no_return"]),
        )


class UpstreamSessionEnd:
    """What a provider calls when its upstream ends a session (SAML SLO from the IdP): the
    gateway session it names ends, and that session's e-services hear of it."""

    def __init__(self, sessions: Sessions, backchannel: BackchannelLogout, audit: Audit) -> None:
        self._sessions = sessions
        self._backchannel = backchannel
        self._audit = audit

    async def __call__(self, provider: str, key: str) -> int:
        ended = await self._sessions.end_by_upstream(provider, key)
        if ended is None:
            return 0
        self._backchannel.notify(ended, except_client=None)
        self._audit.event("logout", provider=provider, by="upstream")
        return 1


class LogoutEndpoint:
    def __init__(  # noqa: PLR0913  its collaborators, built once in create_app
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
        if request.method == "GET" and "outcome" in request.query_params:
            return self._after_upstream_logout(request)
        params, confirmed = await self._parameters(request)
        request.state.preferred_locale = params["ui_locales"] or None
        hint = self._read_hint(params["id_token_hint"])
        proven_client = str(hint.get("aud", "")) or None
        client_id = params["client_id"] or proven_client or ""
        if params["client_id"] and hint and proven_client != params["client_id"]:
            raise LogoutRequestRejected("id_token_hint is for another client")
        return_to = self._return_uri(client_id, params["post_logout_redirect_uri"], params["state"])
        outcome = LogoutOutcome(
            proven_client, no_return=bool(params["post_logout_redirect_uri"]) and not return_to
        )
        session = await self._sessions.current(request)
        if session is not None and not confirmed and hint.get("sid") != session.sid:
            return self._confirmation(request, params, proven_client)
        response: Response | None = None
        ended = await self._sessions.end(session) if session is not None else None
        if ended is not None:
            notified = self._end(ended, proven_client, by="citizen" if confirmed else "e-service")
            outcome = LogoutOutcome(
                proven_client, notified.told, notified.not_told, outcome.no_return
            )
            response = await self._upstream_logout(request, ended, outcome, return_to)
        if response is None and return_to is not None:
            response = RedirectResponse(return_to, status_code=303)
        elif response is None:
            response = self._logged_out(request, outcome)
        self._sessions.clear_cookie(response)
        return response

    async def _parameters(self, request: Request) -> tuple[dict[str, str], bool]:
        """The request's logout parameters, and whether the citizen confirmed on our page."""
        if request.method != "POST":
            return {name: request.query_params.get(name, "") for name in LOGOUT_FIELDS}, False
        form = await read_form(request, 12)
        params = {name: str(form.get(name, "")) for name in (*LOGOUT_FIELDS, "csrf")}
        confirmed = "confirm" in form and self._browsers.verify(
            request, CONFIRM_FORM, params["csrf"]
        )
        return params, confirmed

    def _end(self, ended: SsoSession, proven_client: str | None, by: str) -> Notified:
        """Audit who ended the session; tell its other e-services over the back-channel."""
        log.info("session ended by RP-initiated logout (%s)", by)
        provider = ended.person.provider
        self._audit.event("logout", client=proven_client, provider=provider, by=by)
        return self._backchannel.notify(ended, except_client=proven_client)

    def _logged_out(self, request: Request, outcome: LogoutOutcome) -> Response:
        context = {
            "client_id": outcome.client_id,
            "told": self._names(outcome.told),
            "not_told": self._names(outcome.not_told),
            "no_return": outcome.no_return,
        }
        return self._pages.render(request, "logged_out.html", context)

    def _names(self, client_ids: tuple[str, ...]) -> list[dict[str, str] | str]:
        found = (self._clients.get(client_id) for client_id in client_ids)
        return [client.display or client.client_id for client in found if client is not None]

    async def _upstream_logout(
        self, request: Request, ended: SsoSession, outcome: LogoutOutcome, return_to: str | None
    ) -> Response | None:
        """Single logout at the upstream too (SAML SLO), which then sends the citizen on: to the
        e-service, or to our page with what it may say, signed for this browser."""
        identity = ended.person
        provider = self._providers.get(identity.provider)
        if not isinstance(provider, UpstreamLogout):
            return None
        encoded = outcome.encoded()
        mac = self._browsers.token(request, f"{OUTCOME_FORM}:{encoded}")
        after = return_to or f"{self._issuer}{LOGOUT_PATH}?" + urlencode(
            {"outcome": encoded, "mac": mac}
        )
        return await provider.logout(request, identity, after)

    def _after_upstream_logout(self, request: Request) -> Response:
        """Back from the upstream's single logout. An outcome not signed for this browser is
        not believed: then the page claims nothing about the e-services."""
        encoded = request.query_params["outcome"]
        mac = request.query_params.get("mac", "")
        outcome = LogoutOutcome()
        if self._browsers.verify(request, f"{OUTCOME_FORM}:{encoded}", mac):
            try:
                outcome = LogoutOutcome.decoded(encoded)
            except (ValueError, KeyError, TypeError):
                outcome = LogoutOutcome()
        response = self._logged_out(request, outcome)
        self._sessions.clear_cookie(response)
        return response

    def _read_hint(self, token: str) -> dict[str, Any]:
        """Our own ID token, signature checked; expired hints are fine (Logout 1.0 §2)."""
        if not token:
            return {}
        try:
            claims = dict(jwt.decode(token, self._keys.key_set()).claims)
        except (JoseError, ValueError, TypeError):
            raise LogoutRequestRejected("id_token_hint is not our ID token") from None
        if claims.get("iss") != self._issuer:
            raise LogoutRequestRejected("id_token_hint was issued by someone else")
        return claims

    def _return_uri(self, client_id: str, uri: str, state: str) -> str | None:
        """The registered return address, or None: an unregistered one is never followed."""
        client = self._clients.get(client_id)
        if not uri or client is None or uri not in client.post_logout_redirect_uris:
            if uri:
                log.info("post_logout_redirect_uri is not registered for %r", client_id)
            return None
        return str(add_params_to_uri(uri, [("state", state)])) if state else uri

    def _confirmation(
        self, request: Request, params: dict[str, str], proven_client: str | None
    ) -> Response:
        browser, is_new = self._browsers.ensure_browser_id(request)
        context = {
            "client_id": proven_client,
            "fields": {k: v for k, v in params.items() if k in LOGOUT_FIELDS and v},
            "csrf": self._browsers.token(request, CONFIRM_FORM),
            "action": f"{self._issuer}{LOGOUT_PATH}",
        }
        response = self._pages.render(request, "logout_confirm.html", context)
        if is_new:
            self._browsers.set_cookie(response, browser)
        return response
