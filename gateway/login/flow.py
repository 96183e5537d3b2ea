"""The pending login: created by /authorize, handed to a provider, completed with an Identity.

A pending login is one store record (`login:<id>`) that lives `login_ttl_seconds`. It belongs to
the browser that started it; the upstream's answer may arrive without that browser's cookie (a
cross-site SAML POST), and then the identity is parked in the record until the browser comes
back to /login/<id>/resume. Completing takes the record atomically, so a login completes once,
and only after its code is written (take-after-write): an instance that dies while finishing
leaves the login, and the provider's transaction, for the citizen's retry on another instance.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Concatenate, ParamSpec

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import LoginRequiredError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.clock import Clock
from gateway.login.browser import BrowserBinding
from gateway.login.pending import LoginNotFound, PendingLogin, PendingLogins, pending_login_key
from gateway.login.registry import Providers
from gateway.oidc import sweden_connect
from gateway.oidc.authorize import (
    AUTHN_PROVIDER_PARAMETER as AUTHN_PROVIDER_PARAMETER,  # where the tests have found it
)
from gateway.oidc.authorize import (
    AuthorizationParameters,
    AuthorizationRequest,
    UnmetAuthenticationRequirementsError,
    authorization_response,
)
from gateway.oidc.backchannel import BackchannelLogout
from gateway.oidc.client_auth import ClientRegistry
from gateway.oidc.codes import AuthorizationCodes, Consuming
from gateway.oidc.named_person import NamedPerson, named_person
from gateway.oidc.session import Sessions, SsoSession
from gateway.oidc.sign_request import sign_request_of
from gateway.oidc.user_message import user_message_of
from gateway.ops.audit import Audit
from gateway.ops.client_ip import client_ip
from gateway.ops.metrics import Metrics
from gateway.ops.rate_limit import RateLimiter
from gateway.ops.spans import span
from gateway.ops.tracing import Tracing
from gateway.settings import ClientSettings, Settings
from gateway.ui.failure import WayBack
from gateway.ui.pages import PageRenderer, allow_images_from, negotiate_locale
from gateway.ui.remembered import LAST_EID_COOKIE, LAST_SERVICE_COOKIE, recall, remember
from providers.base import (
    FormRejected,
    Identity,
    LoginContext,
    LoginStateLost,
    NotFinishedYet,
    Provider,
    ProviderError,
    ProviderUnavailable,
    RefusedForRisk,
    SelectableUpstream,
    SignatureNotMade,
    SignRequest,
    Signs,
    Store,
    StoreWrite,
    UnmetAssurance,
    UpstreamLogout,
    WrongPerson,
    identity_number,
)
from providers.forms import read_form


class WrongBrowser(ProviderError):
    reason = "wrong_browser"


class LoginFailed(Exception):
    """A provider error the flow has answered: the login it ended, if any, and the way back to
    the e-service. What is left is to render it (gateway/errors.py), with no store I/O."""

    def __init__(self, error: ProviderError, way_back: WayBack | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.way_back = way_back


Endpoint = Callable[[Request], Awaitable[Response]]
Step = ParamSpec("Step")


def _answering_failures(
    step: Callable[Concatenate[LoginFlow, Step], Awaitable[Response]],
) -> Callable[Concatenate[LoginFlow, Step], Awaitable[Response]]:
    """A public step of the login: a provider error raised in it is answered by the flow."""

    @functools.wraps(step)
    async def answered(flow: LoginFlow, /, *args: Step.args, **kwargs: Step.kwargs) -> Response:
        return await flow.answering(step(flow, *args, **kwargs))

    return answered


class LoginFlow:
    def __init__(  # noqa: PLR0913  its collaborators, built once in create_app
        self,
        settings: Settings,
        store: Store,
        clients: ClientRegistry,
        providers: Providers,
        pages: PageRenderer,
        browsers: BrowserBinding,
        sessions: Sessions,
        backchannel: BackchannelLogout,
        limiter: RateLimiter,
        metrics: Metrics,
        audit: Audit,
        codes: AuthorizationCodes,
        tracing: Tracing,
        clock: Clock = time.time,
    ) -> None:
        self._codes = codes
        self._tracing = tracing
        self._tracer = tracing.tracer
        self._audit = audit
        self._metrics = metrics
        self._limiter = limiter
        self._sessions = sessions
        self._backchannel = backchannel
        self._settings = settings
        self._logins = PendingLogins(store, settings.login_ttl_seconds, clock)
        self._clients = clients
        self._providers = providers
        self._pages = pages
        self._browsers = browsers

    @_answering_failures
    async def begin(
        self, request: Request, auth: AuthorizationRequest, authn_provider: str | None
    ) -> Response:
        auth = sweden_connect.adapted(auth)
        asked = auth.parameters
        eligible = self.eligible_providers(auth.client, asked)
        sign = sign_request_of(asked.sign_request)
        if sign is not None:
            self._check_signing(auth.client, eligible, sign, authn_provider)
        if not eligible:
            raise UnmetAuthenticationRequirementsError(
                "no e-ID provider available to this client can deliver the requested acr_values"
            )
        browser, is_new = self._browsers.ensure_browser_id(request)
        selected = _preselected(eligible, authn_provider)
        self._audit.event("login_started", client=asked.client_id)
        login = PendingLogin(
            id=secrets.token_urlsafe(24),
            parameters=asked,
            authn_provider=authn_provider,
            browser=browser,
            created_at=self._logins.now(),
            provider=selected.name if selected else None,
        )
        # A sign flow neither uses nor becomes a session (Signature Extension §5.1, SC 1.1 §2.4)
        session = None if sign else await self._sessions.current(request)
        now = self._logins.now()
        refusal = (
            sweden_connect.sso_refusal(session, auth, now)
            if session is not None and _reusable(session, auth, eligible, authn_provider, now)
            else LoginRequiredError("no session this e-service may use; the citizen must log in")
        )
        if session is not None and refusal is None:
            response = await self._silent_login(login, session)
        elif refusal is not None and "none" in asked.prompt:
            raise refusal
        else:
            response = await self._proceed(request, login, eligible, unsaved=True)
            self._tracing.remember_login(response)
        if is_new:
            self._browsers.set_cookie(response, browser)
        remember(response, LAST_SERVICE_COOKIE, asked.client_id, self._settings.secure_cookies)
        return response

    def eligible_providers(
        self, client: ClientSettings, asked: AuthorizationParameters
    ) -> list[Provider]:
        """The client's providers that deliver a requested LoA; for a sign request only those
        that can do it, and otherwise none that is only for signing (`Signs.logs_in`)."""
        names = client.providers if client.providers is not None else list(self._providers)
        candidates = [self._providers[name] for name in names]
        if asked.acr_values:
            candidates = [p for p in candidates if p.loa & set(asked.acr_values)]
        sign = sign_request_of(asked.sign_request)
        if sign is None:
            return [p for p in candidates if not isinstance(p, Signs) or p.logs_in]
        return [p for p in candidates if isinstance(p, Signs) and p.can_sign(sign)]

    def _check_signing(
        self,
        client: ClientSettings,
        eligible: list[Provider],
        sign: SignRequest,
        authn_provider: str | None,
    ) -> None:
        """Providers for a sign request: a named one must be among them, and one must exist.
        Both failures go back to the e-service as invalid_request: the request asks for
        something its (chosen) e-ID cannot do."""
        kind = "sign" if sign.signs else "approve a signature"
        if not eligible:
            raise InvalidRequestError(
                f"no e-ID provider available to this client can {kind} at the requested LoA"
            )
        names = client.providers if client.providers is not None else list(self._providers)
        named = _named_provider([self._providers[name] for name in names], authn_provider)
        if named is not None and named not in eligible:
            raise InvalidRequestError(f"the e-ID provider named by authnProvider cannot {kind}")

    @_answering_failures
    async def show(self, request: Request, login_id: str) -> Response:
        """GET /login/<id>: the chooser again (back button, language switch)."""
        login = await self._load_for_browser(request, login_id)
        return await self._proceed(request, login, self._eligible_for(login))

    @_answering_failures
    async def choose(self, request: Request, login_id: str) -> Response:
        """POST /login/<id>: the citizen picked a provider on the chooser."""
        form = await read_form(request, 8)
        if not self._browsers.verify(request, login_id, str(form.get("csrf", ""))):
            raise FormRejected("chooser", login_id, "chooser form failed its CSRF check")
        login = await self._load_for_browser(request, login_id)
        chosen = str(form.get("provider", ""))
        provider = next((p for p in self._eligible_for(login) if p.name == chosen), None)
        if provider is None:
            return self._chooser(request, login, self._eligible_for(login), status_code=400)
        response = await self._start(request, login, provider)
        remember(response, LAST_EID_COOKIE, provider.name, self._settings.secure_cookies)
        return response

    @_answering_failures
    async def finish(self, request: Request, provider: Provider) -> Response:
        """The provider's callback: it verifies its upstream's answer, we complete the login.
        Safe to repeat until the code is written: nothing is taken before that."""
        with span(self._tracer, "provider finish", {"portvakt.provider": provider.name}):
            login_id, identity = await provider.finish(request)
        self._audit.authenticated(identity)  # whether or not the login completes now
        login = await self._logins.load(login_id)
        if login.provider != provider.name or identity.provider != provider.name:
            raise LoginStateLost(provider.name, None, "answer from another provider than chosen")
        browser = self._browsers.browser_id(request)
        if browser is None:
            parked = replace(login, identity=identity.to_dict())
            await self._logins.save(parked)
            return RedirectResponse(self._url(f"/login/{login.id}/resume"), status_code=303)
        return await self._complete(request, login, identity, browser)

    def provider_endpoint(self, endpoint: Endpoint) -> Endpoint:
        """A provider's own route, whose provider errors the flow answers like its own."""

        @functools.wraps(endpoint)
        async def answered(request: Request) -> Response:
            return await self.answering(endpoint(request))

        return answered

    async def answering(self, step: Awaitable[Response]) -> Response:
        """Runs one step of a login. A provider error is answered here, once: the login it
        ends is taken (one store round trip) and the way back built, so that rendering the
        failure (`LoginFailed`) needs no store. An early visit leads back to the provider."""
        try:
            return await step
        except NotFinishedYet as early:  # an early visit must not end the citizen's login
            return RedirectResponse(early.url, status_code=303)
        except ProviderError as error:
            raise await self._failed(error) from error

    @_answering_failures
    async def resume(self, request: Request, login_id: str) -> Response:
        login = await self._logins.load(login_id)
        if login.identity is None:  # an early or stray visit must not end the citizen's login
            raise LoginStateLost("gateway", None, "nothing to resume yet")
        identity = Identity.from_dict(login.identity)
        return await self._complete(request, login, identity, self._browsers.browser_id(request))

    @_answering_failures
    async def cancel(self, request: Request, login_id: str) -> Response:
        login = await self._load_for_browser(request, login_id)
        back = await self._end(login.id, "access_denied", error_description("cancelled"))
        if back is None:
            raise LoginNotFound(login_id)
        return RedirectResponse(back.url, status_code=303)

    async def _failed(self, error: ProviderError) -> LoginFailed:
        login_id = error.ended_login
        description = error_description(error.reason)
        way_back = await self._end(login_id, error.oauth_error, description) if login_id else None
        self._metrics.logins_failed.labels(error.provider, error.reason).inc()
        self._audit.event(
            "login_failed",
            client=way_back.client_id if way_back else None,
            provider=error.provider,
            reason=error.reason,
        )
        if isinstance(error, RefusedForRisk):  # a security signal, apart from the failures
            client = way_back.client_id if way_back else None
            self._audit.event("login_refused_for_risk", client=client, **error.signal)
        return LoginFailed(error, way_back)

    async def _end(self, login_id: str, error: str, description: str) -> WayBack | None:
        """End a pending login with an error; the way back to the client with that answer.
        None when the login is gone already (completed, ended, expired)."""
        login = await self._logins.take(login_id)
        if login is None:
            return None
        sign = sign_request_of(login.parameters.sign_request)
        if sign is not None:
            self._audit.sign_failed(login.parameters.client_id, login.provider, sign, error)
        params = {"error": error, "error_description": description, "state": login.parameters.state}
        return WayBack(
            self._answer_url(login.parameters.redirect_uri, params), login.parameters.client_id
        )

    def _answer_url(self, redirect_uri: str, params: Mapping[str, str | None]) -> str:
        return authorization_response(self._settings.issuer, redirect_uri, params)

    async def _complete(
        self, request: Request, login: PendingLogin, identity: Identity, browser: str | None
    ) -> Response:
        if browser != login.browser:
            raise WrongBrowser(identity.provider, login.id, "finished in another browser")
        if login.parameters.acr_values and identity.loa not in login.parameters.acr_values:
            raise UnmetAssurance(identity.provider, login.id, "delivered LoA was not requested")
        if not _is_named_person(identity, _named(login.parameters)):
            raise WrongPerson(identity.provider, login.id, "another person than the one named")
        sign = sign_request_of(login.parameters.sign_request)
        if sign is not None:
            return await self._signed(login, identity, sign)
        client = self._clients.get(login.parameters.client_id)
        if client is None or not client.sso:
            return await self._issue_code(login, identity, None, consume=True)
        existing = await self._sessions.current(request)
        session, to_end = self._sessions.after_login(existing, identity, login.parameters.client_id)
        session = self._sessions.granted(session, identity, login.parameters)
        provider = self._providers.get(identity.provider)
        upstream_keys: list[str] = []
        if isinstance(provider, UpstreamLogout):
            upstream_keys = provider.session_keys(identity)
        records = self._sessions.records(session, identity.provider, upstream_keys)
        # Only the instance whose code won the login touches the sessions: the new one is
        # written with the take, if it wins; the one it replaces is ended after.
        response = await self._issue_code(
            login, identity, session.sid, consume=True, once_consumed=records
        )
        replaced = await self._sessions.end(to_end) if to_end is not None else None
        if replaced is not None:  # another person logged in on this browser
            self._backchannel.notify(replaced, except_client=None)
        self._sessions.set_cookie(response, session)
        return response

    async def _signed(self, login: PendingLogin, identity: Identity, sign: SignRequest) -> Response:
        """A sign flow's end: the signature must be there, and no session is made or touched."""
        if sign.signs and not identity.user_signature:
            raise SignatureNotMade(identity.provider, login.id, "no signature came back")
        response = await self._issue_code(login, identity, None, consume=True)
        self._audit.signed(identity, login.parameters.client_id, sign)
        return response

    async def _silent_login(self, login: PendingLogin, session: SsoSession) -> Response:
        """Single sign-on: the session's identity answers this e-service without a provider."""
        session = self._sessions.add_client(session, login.parameters.client_id)
        records = self._sessions.records(session)
        return await self._issue_code(login, session.person, session.sid, records)

    async def _issue_code(
        self,
        login: PendingLogin,
        identity: Identity,
        sid: str | None,
        session_records: Sequence[StoreWrite] = (),
        consume: bool = False,
        once_consumed: Sequence[StoreWrite] = (),
    ) -> Response:
        """The code, written before the pending login is taken (`consume`): of two instances
        finishing one login, the one whose take fails withdraws its code; `once_consumed` is
        written only by the one whose take wins."""
        client = self._clients.get(login.parameters.client_id)
        if client is None:  # unregistered while the citizen logged in: nowhere to send a code
            raise LoginNotFound(login.id)
        consuming = Consuming(pending_login_key(login.id), once_consumed) if consume else None
        code = await self._codes.issue(
            client, login.parameters, identity, sid, session_records, consuming
        )
        if code is None:
            raise LoginNotFound(login.id)
        self._metrics.logins_completed.labels(identity.provider, identity.loa).inc()
        asked = login.parameters
        who = self._audit.person(identity, asked.client_id)
        self._audit.event(
            "login_completed",
            client=asked.client_id,
            sso=str(sid is not None).lower(),
            **who,
        )
        self._audit.event("code_issued", client=asked.client_id, sub=who["sub"])
        location = self._answer_url(asked.redirect_uri, {"code": code, "state": asked.state})
        response = RedirectResponse(location, status_code=303)
        self._tracing.forget_login(response)
        return response

    async def _proceed(
        self, request: Request, login: PendingLogin, eligible: list[Provider], unsaved: bool = False
    ) -> Response:
        """The preselected provider's start, else the chooser. An `unsaved` (new) login is
        written with the start's rate-limit count, in its round trip, or before the chooser."""
        selected = _preselected(eligible, login.authn_provider)
        if selected is not None:
            return await self._start(request, login, selected, unsaved)
        if unsaved:
            await self._logins.save(login)
        return self._chooser(request, login, eligible)

    async def _start(
        self, request: Request, login: PendingLogin, provider: Provider, unsaved: bool = False
    ) -> Response:
        """`unsaved`: `login` is new, and is written with the start's rate-limit count (before
        it, as its own write would be)."""
        asked = login.parameters
        writes = [self._logins.record(login)] if unsaved else []
        await self._limiter.provider_start(request, login.id, login.browser, writes)
        problem = self._providers.problem(provider.name)
        if problem:  # fail now rather than make the citizen wait out the upstream's timeout
            raise ProviderUnavailable(provider.name, login.id, problem)
        self._metrics.logins_started.labels(provider.name).inc()
        self._audit.event("provider_chosen", client=asked.client_id, provider=provider.name)
        if login.provider != provider.name:
            login = replace(login, provider=provider.name)
            await self._logins.save(login)
        client = self._clients.get(asked.client_id)
        named = _named(asked)
        sign = sign_request_of(asked.sign_request)
        context = LoginContext(
            login_id=login.id,
            client_id=asked.client_id,
            client_display=client.display if client else {},
            requested_loa=asked.acr_values,
            locale=negotiate_locale(request, asked.ui_locales),
            client_ip=client_ip(request, self._settings.trusted_proxies),
            identity_hint=named.digits if named else None,
            force_authn="login" in asked.prompt or asked.max_age is not None or sign is not None,
            user_message=user_message_of(asked.user_message, asked.prompt),
            authn_provider=login.authn_provider,
            # A proxy in front of us named its e-service; else the e-service is our client.
            original_client_id=asked.original_client_id or asked.client_id,
            original_client_token=asked.original_client_token,
            identity_hint_claimed=named.claimed if named else False,
            sign=sign if isinstance(provider, Signs) else None,
            app_device=_app_device(client, asked.app_device),
            scopes=asked.scopes,
            requested_claims=frozenset(name for part in asked.claims.values() for name in part),
        )
        request.state.preferred_locale = asked.ui_locales
        attributes = {"portvakt.provider": provider.name, "portvakt.client_id": asked.client_id}
        with span(self._tracer, "provider start", attributes):
            return await provider.start(request, context)

    def _chooser(
        self,
        request: Request,
        login: PendingLogin,
        eligible: list[Provider],
        status_code: int = 200,
    ) -> Response:
        request.state.preferred_locale = login.parameters.ui_locales
        client = self._clients.get(login.parameters.client_id)
        last_used = recall(request, LAST_EID_COOKIE)
        sign = sign_request_of(login.parameters.sign_request)
        ordered = sorted(eligible, key=lambda provider: provider.name != last_used)
        context = {
            "login_id": login.id,
            "providers": ordered,
            "last_used": last_used,
            "unavailable": {p.name for p in ordered if self._providers.problem(p.name)},
            "client_id": login.parameters.client_id,
            "csrf": self._browsers.token(request, login.id),
            "action": self._url(f"/login/{login.id}"),
            "page_url": self._url(f"/login/{login.id}"),
            "cancel_url": self._url(f"/login/{login.id}/cancel"),
            "client_logo": client.logo_uri if client else None,
            "signing": sign is not None,
            "signs": sign is not None and sign.signs,
        }
        response = self._pages.render(
            request, "chooser.html", context, status_code, login.parameters.ui_locales
        )
        if client is not None and client.logo_origin is not None:
            allow_images_from(response, client.logo_origin)
        return response

    def _eligible_for(self, login: PendingLogin) -> list[Provider]:
        client = self._clients.get(login.parameters.client_id)
        return self.eligible_providers(client, login.parameters) if client else []

    async def _load_for_browser(self, request: Request, login_id: str) -> PendingLogin:
        login = await self._logins.load(login_id)
        if self._browsers.browser_id(request) != login.browser:
            raise WrongBrowser("gateway", None, "login belongs to another browser")
        return login

    def _url(self, path: str) -> str:
        return f"{self._settings.issuer}{path}"


def _reusable(
    session: SsoSession,
    auth: AuthorizationRequest,
    eligible: list[Provider],
    authn_provider: str | None,
    now: int,
) -> bool:
    """OIDC Core §3.1.2.1: the session answers silently only if it meets this very request."""
    identity, asked = session.person, auth.parameters
    return (
        auth.client.sso
        and "login" not in asked.prompt
        and identity.provider in {provider.name for provider in eligible}
        and (not asked.acr_values or identity.loa in asked.acr_values)
        and authn_provider in (None, identity.provider, identity.authn_provider)
        and (asked.max_age is None or now - identity.auth_time <= asked.max_age)
        and _is_named_person(identity, _named(asked))
    )


def _preselected(eligible: list[Provider], authn_provider: str | None) -> Provider | None:
    """The chooser is skipped when only one provider qualifies or the client named one: by its
    name, or by an `authnProvider` claim value it answers to (RPar §2.2). A value no provider
    answers to shows the chooser (RPar leaves unknown values to the OP)."""
    named = _named_provider(eligible, authn_provider)
    return named or (eligible[0] if len(eligible) == 1 else None)


def _named_provider(candidates: list[Provider], authn_provider: str | None) -> Provider | None:
    """The provider `authnProvider` names: by its name, or a claim value it answers to."""
    return next((p for p in candidates if p.name == authn_provider), None) or next(
        (
            p
            for p in candidates
            if authn_provider and isinstance(p, SelectableUpstream) and p.answers_to(authn_provider)
        ),
        None,
    )


def _app_device(
    client: ClientSettings | None, device: Mapping[str, str] | None
) -> dict[str, str] | None:
    """BankID's `app` object: the registered app's identifier (never the request's) and the
    device values its signed request carried; None (so `web`) without either."""
    if client is None or client.bankid_app is None or device is None:
        return None
    return {"appIdentifier": client.bankid_app.app_identifier, **device}


def _named(asked: AuthorizationParameters) -> NamedPerson | None:
    """The person the e-service named; /authorize has refused a request naming two."""
    return named_person(asked.login_hint, asked.claims)


def _is_named_person(identity: Identity, named: NamedPerson | None) -> bool:
    """No person named, or this identity is that person (by personal or coordination number)."""
    return named is None or identity_number(identity) == named.digits


def error_description(reason: str) -> str:
    """The `error_description` the e-service gets for a provider's failure reason: a fixed
    English sentence, never the upstream's own words (RFC 6749 §4.1.2.1 allows only
    printable ASCII there, and the detail belongs in our log)."""
    return {
        "cancelled": "the citizen cancelled the login",
        "unmet_loa": "the e-ID did not meet the requested level of assurance",
        "unavailable": "the e-ID provider is temporarily unavailable",
        "wrong_person": "another person than the one the e-service named logged in",
        "not_signed": "the e-ID did not deliver the signature or approval asked for",
    }.get(reason, f"login failed: {reason}")
