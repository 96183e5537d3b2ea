"""Every error family becomes a response here, in one place (Starlette's handler map, found by
walking the exception's MRO). The citizen gets a page that says what happened and the way back;
the e-service gets the right OAuth error; details stay in the log under a reference id."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from gateway.flow import LoginFlow, LoginNotFound
from gateway.oidc.authorize import AuthorizeRequestRejected
from gateway.oidc.discovery import DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH, USERINFO_PATH
from gateway.oidc.token import NO_STORE
from gateway.store import StoreUnavailable
from gateway.ui.pages import PageRenderer
from providers.base import ProviderError

log = logging.getLogger("portvakt.errors")
API_PATHS = (TOKEN_PATH, USERINFO_PATH, JWKS_PATH, DISCOVERY_PATH, "/healthz")


def N_(message: str) -> str:
    return message


# reason -> (what happened, what the citizen can do); translated in the page's language.
ERROR_TEXTS: dict[str, tuple[str, str]] = {
    "bad_request": (
        N_("The e-service sent a request we cannot accept"),
        N_("Go back to the e-service and try again. If it happens again, contact the e-service."),
    ),
    "login_not_found": (
        N_("Your login has expired or is already finished"),
        N_("Go back to the e-service and start the login again."),
    ),
    "cancelled": (
        N_("You cancelled the login"),
        N_("You can go back to the e-service and start again whenever you want."),
    ),
    "failed": (
        N_("The login did not succeed"),
        N_("Go back to the e-service and try again, or choose another e-ID."),
    ),
    "state_lost": (
        N_("The login could not be completed"),
        N_("The answer from the e-ID service did not match a login in progress. Start again."),
    ),
    "form_rejected": (
        N_("The page had expired"),
        N_("The form was old or sent from another page. Go back to the e-service and start again."),
    ),
    "wrong_browser": (
        N_("The login was started in another browser"),
        N_("Finish the login in the browser where you started it, or start again here."),
    ),
    "unavailable": (
        N_("The e-ID service is not available right now"),
        N_("Try again in a few minutes, or choose another e-ID."),
    ),
    "unmet_loa": (
        N_("Your e-ID does not meet the e-service's security requirements"),
        N_("Use an e-ID with a higher level of assurance, or contact the e-service."),
    ),
    "store_unavailable": (
        N_("The login service is temporarily unavailable"),
        N_("Nothing has been saved. Wait a minute and try again."),
    ),
    "server_error": (
        N_("Something went wrong on our side"),
        N_("Go back to the e-service and try again. If it keeps happening, contact support."),
    ),
}

Handler = Callable[[Request, Any], Awaitable[Response]]


def exception_handlers(pages: PageRenderer, flow: LoginFlow) -> dict[Any, Handler]:
    def error_page(
        request: Request, reason: str, status: int, back_url: str | None = None
    ) -> Response:
        reference = secrets.token_hex(4)
        title, advice = ERROR_TEXTS[reason]
        context = {"title": title, "advice": advice, "back_url": back_url, "reference": reference}
        request.state.error_reference = reference
        return pages.render(request, "error.html", context, status)

    async def rejected_authorize_request(
        request: Request, exc: AuthorizeRequestRejected
    ) -> Response:
        log.info("authorize request rejected: %s", exc)
        return error_page(request, "bad_request", 400)

    async def oauth_error(request: Request, exc: OAuth2Error) -> Response:
        if exc.redirect_uri:
            params = {"error": exc.error, "error_description": exc.description, "state": exc.state}
            return RedirectResponse(flow.client_redirect(exc.redirect_uri, params), 302)
        status, body, headers = exc()
        extra = {k: v for k, v in headers if k.lower() != "content-type"}
        return JSONResponse(body, status_code=status, headers={**extra, **NO_STORE})

    async def provider_error(request: Request, exc: ProviderError) -> Response:
        log.info("login failed: %s (%s)", exc.reason, exc.provider)
        back_url = None
        if exc.login_id:
            back_url = await flow.abandon(exc.login_id, exc.oauth_error, _ascii(exc.reason))
        return error_page(request, exc.reason, exc.status_code, back_url)

    async def login_not_found(request: Request, exc: LoginNotFound) -> Response:
        return error_page(request, "login_not_found", 400)

    async def store_unavailable(request: Request, exc: StoreUnavailable) -> Response:
        log.error("store unavailable: %s", exc)
        if _wants_json(request):
            body = {"error": "temporarily_unavailable", "error_description": "try again later"}
            return JSONResponse(body, 503, headers={"Retry-After": "5", **NO_STORE})
        response = error_page(request, "store_unavailable", 503)
        response.headers["Retry-After"] = "5"
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        reference = secrets.token_hex(4)
        log.error("unexpected error, reference %s", reference, exc_info=exc)
        if _wants_json(request):
            return JSONResponse({"error": "server_error"}, 500, headers=NO_STORE)
        return error_page(request, "server_error", 500)

    return {
        AuthorizeRequestRejected: rejected_authorize_request,
        OAuth2Error: oauth_error,
        ProviderError: provider_error,
        LoginNotFound: login_not_found,
        StoreUnavailable: store_unavailable,
        Exception: server_error,
    }


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path in API_PATHS or ("json" in accept and "html" not in accept)


def _ascii(reason: str) -> str:
    return {
        "cancelled": "the citizen cancelled the login",
        "unmet_loa": "the e-ID did not meet the requested level of assurance",
        "unavailable": "the e-ID provider is temporarily unavailable",
    }.get(reason, f"login failed: {reason}")
