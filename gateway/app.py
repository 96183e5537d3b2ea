"""create_app(settings) -> the Starlette application: routes, lifespan, error handlers."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.clock import Clock
from gateway.demo.defaults import DEMO_SUBJECT_SALT
from gateway.demo.mounts import demo_mounts
from gateway.errors import exception_handlers
from gateway.login.browser import BrowserBinding
from gateway.login.flow import AUTHN_PROVIDER_PARAMETER, LoginFlow
from gateway.login.registry import GatewayServices, build_providers
from gateway.oidc import discovery
from gateway.oidc.authorize import read_parameters, trusted_client, validate
from gateway.oidc.backchannel import BackchannelLogout
from gateway.oidc.client_auth import ClientAuthenticator, ClientRegistry
from gateway.oidc.codes import AuthorizationCodes
from gateway.oidc.end_session import LOGOUT_PATH, LogoutEndpoint
from gateway.oidc.keys import (
    JWKS_MAX_AGE_SECONDS,
    SigningKeys,
    follow_key_directory,
    load_signing_keys,
)
from gateway.oidc.session import Sessions
from gateway.oidc.token import TokenEndpoint
from gateway.oidc.userinfo import UserinfoEndpoint
from gateway.ops.access_log import AccessLog
from gateway.ops.audit import Audit
from gateway.ops.metrics import Metrics
from gateway.ops.rate_limit import RateLimiter
from gateway.ops.security import SecurityHeaders
from gateway.settings import Settings
from gateway.store import DeferredStore, StoreUnavailable, open_store
from gateway.ui.branding import BrandingAssets, load_brand
from gateway.ui.failure import ERROR_PATH, FailurePages
from gateway.ui.pages import UI_DIR, PageRenderer
from providers.base import Provider

log = logging.getLogger("portvakt")
Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(
    settings: Settings, keys: SigningKeys | None = None, clock: Clock = time.time
) -> Starlette:
    """`clock` is what sessions, codes, pending logins and rate limits are judged by."""
    secret_key = settings.secret_key or secrets.token_urlsafe(32)
    subject_salt = settings.subject_salt or _development_salt()
    keys = keys or load_signing_keys(settings.keys.dir, settings.environment != "production")
    store = DeferredStore()
    branding = BrandingAssets(
        load_brand(c.client_id, c.branding.colour, c.branding.text_colour, c.branding.logo)
        for c in settings.clients
        if c.branding is not None
    )
    pages = PageRenderer(
        settings.environment,
        gateway_host=urlsplit(settings.issuer).netloc,
        clients={client.client_id: client.display for client in settings.clients},
        brands=branding.brands,
        secure_cookies=settings.secure_cookies,
    )
    failures = FailurePages(settings, pages, secret_key)
    browsers = BrowserBinding(secret_key, secure=settings.secure_cookies)
    clients = ClientRegistry(settings)
    audit = Audit(clients, subject_salt)
    metrics = Metrics()
    sessions = Sessions(settings, store, secret_key, clock)
    backchannel = BackchannelLogout(settings, keys, clients, subject_salt)

    async def end_upstream_session(provider: str, key: str) -> int:
        ended = await sessions.end_by_upstream(provider, key)
        if ended is None:
            return 0
        backchannel.notify(ended, except_client=None)
        audit.event("logout", provider=provider, by="upstream")
        return 1

    shared = GatewayServices(store, pages, browsers, metrics.upstream, end_upstream_session)
    providers = build_providers(settings, shared, secret_key)
    metrics.watch(providers)
    limiter = RateLimiter(settings, store, clock)
    codes = AuthorizationCodes(settings, store, subject_salt, clock)
    flow = LoginFlow(
        settings,
        store,
        clients,
        providers,
        pages,
        browsers,
        sessions,
        backchannel,
        limiter,
        metrics,
        audit,
        codes,
        clock,
    )
    audiences = (settings.issuer, f"{settings.issuer}{discovery.TOKEN_PATH}")
    token = TokenEndpoint(
        settings,
        codes,
        keys,
        ClientAuthenticator(clients, store, audiences),
        subject_salt,
        limiter,
        audit,
    )
    userinfo = UserinfoEndpoint(settings, store, keys, clients)
    logout = LogoutEndpoint(
        settings, keys, clients, sessions, backchannel, pages, browsers, providers, audit
    )
    metadata = discovery.provider_metadata(settings.issuer, providers.values())

    async def openid_configuration(request: Request) -> Response:
        return JSONResponse(metadata, headers={"Cache-Control": "public, max-age=300"})

    async def jwks_endpoint(request: Request) -> Response:
        return JSONResponse(
            keys.jwks(), headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"}
        )

    async def authorize(request: Request) -> Response:
        await limiter.authorize(request)
        params = await read_parameters(request)
        client, redirect_uri = trusted_client(params, clients)
        try:
            auth = validate(params, client, redirect_uri)
            return await flow.begin(request, auth, params.get(AUTHN_PROVIDER_PARAMETER))
        except OAuth2Error as error:
            error.redirect_uri, error.state = redirect_uri, params.get("state")
            raise

    async def login_page(request: Request) -> Response:
        login_id = request.path_params["login_id"]
        if request.method == "POST":
            return await flow.choose(request, login_id)
        return await flow.show(request, login_id)

    async def resume(request: Request) -> Response:
        return await flow.resume(request, request.path_params["login_id"])

    async def cancel(request: Request) -> Response:
        return await flow.cancel(request, request.path_params["login_id"])

    async def healthz(request: Request) -> Response:
        """Liveness: the process answers. Readiness is /readyz."""
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Readiness for a load balancer: the store answers and signing keys are loaded."""
        problems = {}
        try:
            await store.ping()
        except StoreUnavailable as error:
            problems["store"] = str(error) or "unreachable"
        if not keys.jwks()["keys"]:
            problems["keys"] = "no signing key loaded"
        degraded = {}
        for name in providers:
            problem = providers.problem(name)
            if problem:
                degraded[f"provider {name}"] = problem
        if len(degraded) == len(providers):
            problems.update(degraded)
        # One provider down leaves this instance as able as its peers to serve the others: still
        # ready, reported as degraded. Only when no provider can log anyone in is it not ready.
        status = 503 if problems else 200
        word = "not ready" if problems else ("degraded" if degraded else "ready")
        body = {"status": word, "problems": problems | degraded}
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    async def home(request: Request) -> Response:
        target = "/demo/" if settings.demo else discovery.DISCOVERY_PATH
        return RedirectResponse(target, status_code=307)

    routes: list[BaseRoute] = [
        Route("/", home),
        Route(discovery.DISCOVERY_PATH, openid_configuration),
        Route(discovery.JWKS_PATH, jwks_endpoint),
        Route(discovery.AUTHORIZE_PATH, authorize, methods=["GET", "POST"]),
        Route(discovery.TOKEN_PATH, token.__call__, methods=["POST"]),
        Route(discovery.USERINFO_PATH, userinfo.__call__, methods=["GET", "POST"]),
        Route(LOGOUT_PATH, logout.__call__, methods=["GET", "POST"]),
        Route("/login/{login_id}", login_page, methods=["GET", "POST"]),
        Route("/login/{login_id}/resume", resume),
        Route("/login/{login_id}/cancel", cancel),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics.endpoint),
        Route(ERROR_PATH, failures.show),
        *branding.routes(),
        *(provider_mount(provider, flow) for provider in providers.values()),
        Mount("/static", StaticFiles(directory=UI_DIR / "static"), name="static"),
    ]
    if settings.demo:
        routes += demo_mounts(settings, pages)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_store(settings.store) as opened:
            store.attach(opened)
            await providers.astart()
            reload_every = settings.keys.reload_seconds
            following = asyncio.create_task(follow_key_directory(keys, reload_every))
            try:
                yield
            finally:
                following.cancel()
                store.attach(None)
                await backchannel.aclose()
                await providers.aclose()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers(failures, settings.issuer, metrics),
        middleware=[
            Middleware(AccessLog, metrics=metrics),
            Middleware(SecurityHeaders, hsts=settings.secure_cookies),
            Middleware(
                CORSMiddleware,
                allow_origins=_public_client_origins(settings),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            ),
        ],
    )
    app.state.store = store  # for operations tooling and the tests that inspect records
    return app


def provider_mount(provider: Provider, flow: LoginFlow) -> Mount:
    """A provider's own pages plus its finish endpoint, under /providers/<name>/. Every one of
    them runs through the flow, which answers a provider error raised there (DESIGN.md: the
    finish path is straight; error handlers only render)."""

    async def finish(request: Request) -> Response:
        return await flow.finish(request, provider)

    routes = [_answered_by(flow, route) for route in provider.routes()]
    finish_route = Route(provider.finish_path, finish, methods=list(provider.finish_methods))
    return Mount(f"/providers/{provider.name}", routes=[*routes, finish_route])


def _answered_by(flow: LoginFlow, route: BaseRoute) -> Route:
    if not isinstance(route, Route):  # a Mount or WebSocket route would bypass the flow
        raise TypeError(f"a provider route must be a starlette Route, not {route!r}")
    endpoint = flow.provider_endpoint(route.endpoint)
    return Route(route.path, endpoint, methods=route.methods, name=route.name)


def _public_client_origins(settings: Settings) -> list[str]:
    """Browser apps (public clients) call /token and /userinfo from their own origin."""
    origins = set()
    for client in settings.clients:
        if client.is_public:
            for uri in client.redirect_uris:
                parts = urlsplit(uri)
                origins.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(origins)


def _development_salt() -> str:
    log.warning("subject_salt is not set: using the demo salt; set it before going live")
    return DEMO_SUBJECT_SALT
