"""Every error family becomes a response here, in one place (Starlette's handler map, found by
walking the exception's MRO). The citizen gets a page that says what happened and the way back;
the e-service gets the right OAuth error; details stay in the log under a reference id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from gateway.login.flow import LoginFailed
from gateway.login.pending import LoginNotFound
from gateway.oidc.authorize import AuthorizeRequestRejected, authorization_response
from gateway.oidc.discovery import DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH, USERINFO_PATH
from gateway.oidc.end_session import LogoutRequestRejected
from gateway.oidc.token import NO_STORE
from gateway.ops.health import HEALTHZ_PATH, READYZ_PATH
from gateway.ops.metrics import Metrics
from gateway.ops.rate_limit import RateLimited
from gateway.store import StoreUnavailable
from gateway.ui.failure import FailurePages
from providers.base import ProviderError

log = logging.getLogger("portvakt.errors")
API_PATHS = (TOKEN_PATH, USERINFO_PATH, JWKS_PATH, DISCOVERY_PATH, HEALTHZ_PATH, READYZ_PATH)

Handler = Callable[[Request, Any], Awaitable[Response]]


def exception_handlers(failures: FailurePages, issuer: str, metrics: Metrics) -> dict[Any, Handler]:
    async def rejected_authorize_request(
        request: Request, exc: AuthorizeRequestRejected
    ) -> Response:
        # exc.client_id is only claimed (its redirect_uri did not match): not named on the page
        return failures.render(request, "bad_request", 400, None, None, str(exc))

    async def rejected_logout_request(request: Request, exc: LogoutRequestRejected) -> Response:
        return failures.render(request, "bad_request", 400, None, None, str(exc))

    async def oauth_error(request: Request, exc: OAuth2Error) -> Response:
        if exc.redirect_uri:
            params = {"error": exc.error, "error_description": exc.description, "state": exc.state}
            return RedirectResponse(authorization_response(issuer, exc.redirect_uri, params), 302)
        status, body, headers = exc()
        extra = {k: v for k, v in headers if k.lower() != "content-type"}
        return JSONResponse(body, status_code=status, headers={**extra, **NO_STORE})

    async def login_failed(request: Request, exc: LoginFailed) -> Response:
        # The flow has ended the login and chosen the way back already: only render here.
        error, way_back = exc.error, exc.way_back
        return failures.render(
            request,
            error.reason,
            error.status_code,
            way_back.url if way_back else None,
            way_back.client_id if way_back else None,
            f"login failed at {error.provider}: {error.detail}",
        )

    async def provider_error(request: Request, exc: ProviderError) -> Response:
        # Every login step and provider route runs through the flow, which answers these
        # (LoginFailed); one that escaped it still gets its page, without a way back.
        log.warning("provider error outside the login flow: %s", exc)
        return await login_failed(request, LoginFailed(exc, None))

    async def login_not_found(request: Request, exc: LoginNotFound) -> Response:
        return failures.render(request, "login_not_found", 400, detail="no such pending login")

    async def http_error(request: Request, exc: HTTPException) -> Response:
        # The exception's own headers (Allow on a 405, ...) are part of the answer.
        headers = dict(exc.headers or {})
        if _wants_json(request):
            body = {"error": "invalid_request", "error_description": exc.detail}
            return JSONResponse(body, exc.status_code, headers={**headers, **NO_STORE})
        reason = "not_found" if exc.status_code in (404, 405) else "bad_request"
        response = failures.render(request, reason, exc.status_code, detail=str(exc.detail))
        response.headers.update(headers)
        return response

    async def rate_limited(request: Request, exc: RateLimited) -> Response:
        retry = {"Retry-After": str(exc.retry_after)}
        if _wants_json(request):
            body = {"error": "temporarily_unavailable", "error_description": "too many requests"}
            return JSONResponse(body, 429, headers={**retry, **NO_STORE})
        response = failures.render(request, "rate_limited", 429, detail=str(exc))
        response.headers.update(retry)
        return response

    async def store_unavailable(request: Request, exc: StoreUnavailable) -> Response:
        metrics.store_errors.inc()
        if _wants_json(request):
            log.error("store unavailable: %s", exc)
            body = {"error": "temporarily_unavailable", "error_description": "try again later"}
            return JSONResponse(body, 503, headers={"Retry-After": "5", **NO_STORE})
        response = failures.render(request, "store_unavailable", 503, detail=str(exc))
        response.headers["Retry-After"] = "5"
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        if _wants_json(request):
            log.error("unexpected error", exc_info=exc)
            return JSONResponse({"error": "server_error"}, 500, headers=NO_STORE)
        return failures.render(request, "server_error", 500, detail="unexpected", exc_info=exc)

    return {
        AuthorizeRequestRejected: rejected_authorize_request,
        LogoutRequestRejected: rejected_logout_request,
        OAuth2Error: oauth_error,
        LoginFailed: login_failed,
        ProviderError: provider_error,
        LoginNotFound: login_not_found,
        HTTPException: http_error,
        RateLimited: rate_limited,
        StoreUnavailable: store_unavailable,
        Exception: server_error,
    }


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path in API_PATHS or ("json" in accept and "html" not in accept)
