"""create_app(settings) -> the Starlette application: the parts wired together, the route table,
the lifespan of the long-lived resources, the error handlers and the middleware."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.clock import Clock
from gateway.demo.defaults import DEMO_SUBJECT_SALT
from gateway.demo.mounts import demo_mounts, home_route
from gateway.errors import exception_handlers
from gateway.login.browser import BrowserBinding
from gateway.login.flow import LoginFlow
from gateway.login.registry import GatewayServices, Providers, build_providers
from gateway.login.routes import login_routes
from gateway.oidc.authorize import AuthorizeEndpoint
from gateway.oidc.backchannel import BackchannelLogout
from gateway.oidc.ciba import BackchannelAuthenticationEndpoint
from gateway.oidc.ciba_grant import BackchannelGrant
from gateway.oidc.client_auth import ClientAuthenticator, ClientRegistry
from gateway.oidc.client_keys import ClientKeys
from gateway.oidc.codes import AuthorizationCodes
from gateway.oidc.discovery import (
    AUTHORIZE_PATH,
    BC_AUTHORIZE_PATH,
    DISCOVERY_PATH,
    JWKS_PATH,
    PAR_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
    Discovery,
)
from gateway.oidc.end_session import LOGOUT_PATH, LogoutEndpoint, UpstreamSessionEnd
from gateway.oidc.keys import SigningKeys, follow_key_directory, load_signing_keys
from gateway.oidc.par import PushedAuthorizationEndpoint
from gateway.oidc.request_object import RequestObjects
from gateway.oidc.session import Sessions
from gateway.oidc.sign_request import SignRequestTokens
from gateway.oidc.token import TokenEndpoint
from gateway.oidc.userinfo import UserinfoEndpoint
from gateway.ops.access_log import AccessLog
from gateway.ops.audit import Audit
from gateway.ops.cors import OriginCors
from gateway.ops.health import HEALTHZ_PATH, READYZ_PATH, Readiness, healthz
from gateway.ops.metrics import Metrics
from gateway.ops.rate_limit import RateLimiter
from gateway.ops.security import SecurityHeaders
from gateway.ops.tracing import Tracing
from gateway.settings import Settings
from gateway.store import DeferredStore, open_store
from gateway.ui.branding import BrandingAssets, load_brand
from gateway.ui.failure import ERROR_PATH, FailurePages
from gateway.ui.pages import UI_DIR, PageRenderer

log = logging.getLogger("portvakt")
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings, keys: SigningKeys | None = None, clock: Clock = time.time
) -> Starlette:
    """`clock` is what sessions, codes, pending logins and rate limits are judged by."""
    secret_key = settings.secret_key or secrets.token_urlsafe(32)
    subject_salt = settings.subject_salt or _development_salt()
    keys = keys or load_signing_keys(settings.keys.dir, settings.environment != "production")
    tracing = Tracing(settings.tracing, settings.login_ttl_seconds, settings.secure_cookies)
    deferred = DeferredStore()  # the real store is opened in the lifespan, on the serving loop
    store = tracing.store(deferred, "memory" if settings.store is None else "redis")
    branding = _branding(settings)
    pages = _pages(settings, branding)
    failures = FailurePages(settings, pages, secret_key)
    browsers = BrowserBinding(secret_key, secure=settings.secure_cookies)
    clients = ClientRegistry(settings)
    audit = Audit(clients, subject_salt)
    metrics = Metrics()
    sessions = Sessions(settings, store, secret_key, clock)
    backchannel = BackchannelLogout(settings, keys, clients, subject_salt)
    upstream_logout = UpstreamSessionEnd(sessions, backchannel, audit)
    upstream = tracing.upstream(metrics.upstream)
    shared = GatewayServices(store, pages, browsers, upstream, upstream_logout, clock)
    providers = build_providers(settings, shared, secret_key)
    metrics.watch(providers)
    limiter = RateLimiter(settings, store, clock)
    codes = AuthorizationCodes(settings, store, subject_salt, clock)
    flow = LoginFlow(
        settings, store, clients, providers, pages, browsers, sessions, backchannel, limiter,
        metrics, audit, codes, tracing, clock,
    )  # fmt: skip
    # CIBA §7.1: an assertion's aud may also be the backchannel authentication endpoint
    audiences = tuple(f"{settings.issuer}{path}" for path in ("", TOKEN_PATH, BC_AUTHORIZE_PATH))
    client_keys = ClientKeys(settings.clients, clock)
    authenticator = ClientAuthenticator(clients, client_keys, store, audiences)
    ciba_grant = BackchannelGrant(store, providers, codes, audit, clock)
    token = TokenEndpoint(
        settings, codes, keys, authenticator, subject_salt, limiter, audit, ciba_grant
    )
    # A caller's signRequest JWT: aud the issuer or the backchannel endpoint, as its assertion
    ciba_signs = SignRequestTokens(audiences[::2], client_keys, clock)
    ciba = BackchannelAuthenticationEndpoint(
        authenticator, providers, store, limiter, audit, clock, ciba_signs
    )
    userinfo = UserinfoEndpoint(settings, store, keys, clients)
    logout = LogoutEndpoint(
        settings, keys, clients, sessions, backchannel, pages, browsers, providers, audit
    )
    discovery = Discovery(settings.issuer, providers.values(), keys, settings.clients)
    # OIDC Sweden §2.1.7: a request object's aud may be the issuer or the authorization endpoint
    requests = RequestObjects(
        (settings.issuer, f"{settings.issuer}{AUTHORIZE_PATH}"), client_keys, store, clock
    )
    authorize = AuthorizeEndpoint(clients, limiter, flow, requests)
    pushed = PushedAuthorizationEndpoint(clients, authenticator, limiter, requests)
    readiness = Readiness(store, keys, providers, metrics.store_up)
    # An endpoint object is routed by its bound __call__: Starlette treats a bare instance as
    # an ASGI app, not as a request -> response endpoint.
    routes = [
        home_route(settings),
        Route(DISCOVERY_PATH, discovery.configuration),
        Route(JWKS_PATH, discovery.jwks),
        Route(AUTHORIZE_PATH, authorize.__call__, methods=["GET", "POST"]),
        Route(TOKEN_PATH, token.__call__, methods=["POST"]),
        Route(PAR_PATH, pushed.__call__, methods=["POST"]),
        Route(BC_AUTHORIZE_PATH, ciba.__call__, methods=["POST"]),
        Route(USERINFO_PATH, userinfo.__call__, methods=["GET", "POST"]),
        Route(LOGOUT_PATH, logout.__call__, methods=["GET", "POST"]),
        *login_routes(flow, providers.values()),
        Route(HEALTHZ_PATH, healthz),
        Route(READYZ_PATH, readiness.__call__),
        Route("/metrics", metrics.endpoint),
        Route(ERROR_PATH, failures.show),
        *branding.routes(),
        Mount("/static", StaticFiles(directory=UI_DIR / "static"), name="static"),
        *(demo_mounts(settings, pages, clock) if settings.demo else []),
    ]
    app = Starlette(
        routes=routes,
        lifespan=_lifespan(
            settings, deferred, keys, providers, (backchannel, client_keys, tracing)
        ),
        exception_handlers=exception_handlers(failures, settings.issuer, metrics),
        middleware=_middleware(settings, metrics),
    )
    tracing.instrument(app)
    app.state.store = deferred  # for operations tooling and the tests that inspect records
    app.state.tracing = tracing
    return app


def _lifespan(
    settings: Settings,
    store: DeferredStore,
    keys: SigningKeys,
    providers: Providers,
    http_users: tuple[BackchannelLogout, ClientKeys, Tracing],
) -> Lifespan:
    """The store's connections, the providers' background work and the key directory's
    follower live as long as the serving loop (a Redis pool made elsewhere breaks)."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
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
                for user in http_users:
                    await user.aclose()
                await providers.aclose()

    return lifespan


def _middleware(settings: Settings, metrics: Metrics) -> list[Middleware]:
    return [
        Middleware(AccessLog, metrics=metrics),
        Middleware(SecurityHeaders, hsts=settings.secure_cookies),
        Middleware(
            OriginCors,
            allow_origins=_public_client_origins(settings),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        ),
    ]


def _branding(settings: Settings) -> BrandingAssets:
    return BrandingAssets(
        load_brand(c.client_id, c.branding.colour, c.branding.text_colour, c.branding.logo)
        for c in settings.clients
        if c.branding is not None
    )


def _pages(settings: Settings, branding: BrandingAssets) -> PageRenderer:
    return PageRenderer(
        settings.environment,
        gateway_host=urlsplit(settings.issuer).netloc,
        clients={client.client_id: client.display for client in settings.clients},
        brands=branding.brands,
        secure_cookies=settings.secure_cookies,
    )


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
