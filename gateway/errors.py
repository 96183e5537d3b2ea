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
from gateway.oidc.discovery import (
    BC_AUTHORIZE_PATH,
    DISCOVERY_PATH,
    JWKS_PATH,
    PAR_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
)
from gateway.oidc.end_session import LogoutRequestRejected
from gateway.oidc.token import NO_STORE
from gateway.ops.health import HEALTHZ_PATH, READYZ_PATH
from gateway.ops.metrics import Metrics
from gateway.ops.rate_limit import RateLimited
from gateway.store import StoreUnavailable
from gateway.ui.failure import FailurePages
from providers.base import ProviderError

log = logging.getLogger("portvakt.errors")
API_PATHS = (
    TOKEN_PATH, PAR_PATH, USERINFO_PATH, JWKS_PATH, DISCOVERY_PATH, HEALTHZ_PATH, READYZ_PATH,
    BC_AUTHORIZE_PATH,
)  # fmt: skip

Handler = Callable[[Request, Any], Awaitable[Response]]


def exception_handlers(failures: FailurePages, issuer: str, metrics: Metrics) -> dict[Any, Handler]:
    answers = ErrorAnswers(failures, issuer, metrics)
    return {
        AuthorizeRequestRejected: answers.rejected_authorize_request,
        LogoutRequestRejected: answers.rejected_logout_request,
        OAuth2Error: answers.oauth_error,
        LoginFailed: answers.login_failed,
        ProviderError: answers.provider_error,
        LoginNotFound: answers.login_not_found,
        HTTPException: answers.http_error,
        RateLimited: answers.rate_limited,
        StoreUnavailable: answers.store_unavailable,
        Exception: answers.server_error,
    }


class ErrorAnswers:
    """One handler per error family; each renders, none does store I/O."""

    def __init__(self, failures: FailurePages, issuer: str, metrics: Metrics) -> None:
        self._failures = failures
        self._issuer = issuer
        self._metrics = metrics

    async def rejected_authorize_request(
        self, request: Request, exc: AuthorizeRequestRejected
    ) -> Response:
        # exc.client_id is only claimed (its redirect_uri did not match): not named on the page
        return self._failures.render(request, "bad_request", 400, detail=str(exc))

    async def rejected_logout_request(
        self, request: Request, exc: LogoutRequestRejected
    ) -> Response:
        return self._failures.render(request, "bad_request", 400, detail=str(exc))

    async def oauth_error(self, _request: Request, exc: OAuth2Error) -> Response:
        if exc.redirect_uri:
            params = {"error": exc.error, "error_description": exc.description, "state": exc.state}
            location = authorization_response(self._issuer, exc.redirect_uri, params)
            return RedirectResponse(location, 302)
        status, body, headers = exc()
        extra = {k: v for k, v in headers if k.lower() != "content-type"}
        return JSONResponse(body, status_code=status, headers={**extra, **NO_STORE})

    async def login_failed(self, request: Request, exc: LoginFailed) -> Response:
        # The flow has ended the login and chosen the way back already: only render here.
        error = exc.error
        detail = f"login failed at {error.provider}: {error.detail}"
        return self._failures.render(request, error.reason, error.status_code, exc.way_back, detail)

    async def provider_error(self, request: Request, exc: ProviderError) -> Response:
        # Every login step and provider route runs through the flow, which answers these
        # (LoginFailed); one that escaped it still gets its page, without a way back.
        log.warning("provider error outside the login flow: %s", exc)
        return await self.login_failed(request, LoginFailed(exc, None))

    async def login_not_found(self, request: Request, _exc: LoginNotFound) -> Response:
        detail = "no such pending login"
        return self._failures.render(request, "login_not_found", 400, detail=detail)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        # The exception's own headers (Allow on a 405, ...) are part of the answer.
        headers = dict(exc.headers or {})
        if _wants_json(request):
            body = {"error": "invalid_request", "error_description": exc.detail}
            return JSONResponse(body, exc.status_code, headers={**headers, **NO_STORE})
        reason = "not_found" if exc.status_code in (404, 405) else "bad_request"
        response = self._failures.render(request, reason, exc.status_code, detail=str(exc.detail))
        response.headers.update(headers)
        return response

    async def rate_limited(self, request: Request, exc: RateLimited) -> Response:
        retry = {"Retry-After": str(exc.retry_after)}
        if _wants_json(request):
            body = {"error": "temporarily_unavailable", "error_description": "too many requests"}
            return JSONResponse(body, 429, headers={**retry, **NO_STORE})
        response = self._failures.render(request, "rate_limited", 429, detail=str(exc))
        response.headers.update(retry)
        return response

    async def store_unavailable(self, request: Request, exc: StoreUnavailable) -> Response:
        self._metrics.store_errors.inc()
        if _wants_json(request):
            log.error("store unavailable: %s", exc)
            body = {"error": "temporarily_unavailable", "error_description": "try again later"}
            return JSONResponse(body, 503, headers={"Retry-After": "5", **NO_STORE})
        response = self._failures.render(request, "store_unavailable", 503, detail=str(exc))
        response.headers["Retry-After"] = "5"
        return response

    async def server_error(self, request: Request, exc: Exception) -> Response:
        if _wants_json(request):
            log.error("unexpected error", exc_info=exc)
            return JSONResponse({"error": "server_error"}, 500, headers=NO_STORE)
        return self._failures.render(
            request, "server_error", 500, detail="unexpected", exc_info=exc
        )


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path in API_PATHS or ("json" in accept and "html" not in accept)
