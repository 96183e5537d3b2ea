"""The EU Digital Identity Wallet through OpenID4VP 1.0 as HAIP 1.0 profiles it (digest §1):
`start()` makes two requests of one login, each with its own nonce, state and ephemeral
encryption key, and sends the citizen to the wallet page (`wait_page.py`): a link for a wallet
on this device and a QR code for one on another.

- The wallet fetches the signed request object (`request/{id}`, GET or POST) and posts its
  encrypted answer to `response/{id}`; the answer is decrypted, the PID verified in full
  (`presentation.py`, `status_list.py`) and mapped (`claims.py`) there, and the outcome kept.
- **Same-device** (the link): the response URI answers with a `redirect_uri` carrying a fresh
  `response_code`; only the browser that started the login, coming back with that code, ends
  it (OpenID4VP §13.3, HAIP §5.1).
- **Cross-device** (the QR): the response URI answers `{}`, and the page that showed the QR,
  polling `/status` from the browser that started the login, ends it (the session-fixation
  mitigation the issue asks for: an answer is bound to that browser). The QR is a request of
  its own, not the link's: were it the same request, a link sent to someone else could be
  finished by polling without any code, defeating the same-device binding.

The W3C Digital Credentials API and mdoc (`mso_mdoc`) are not offered (docs/integrating.md).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.base import (
    Evidence,
    HasLifecycle,
    Identity,
    LoginContext,
    LoginStateLost,
    NotFinishedYet,
    ProviderError,
    ProviderServices,
    ReportsHealth,
    UnmetAssurance,
    UserCancelled,
    choose_loa,
)
from providers.eudi_wallet.access import AccessKey
from providers.eudi_wallet.claims import pid_identity
from providers.eudi_wallet.config import IDENTIFYING_CLAIMS, EudiWalletConfig
from providers.eudi_wallet.errors import InvalidPresentation, PresentationError
from providers.eudi_wallet.pid import PresentationExpectation
from providers.eudi_wallet.presentation import verify_pid_presentation
from providers.eudi_wallet.request_object import EphemeralKey, RequestParameters, request_object
from providers.eudi_wallet.response import (
    MalformedForm,
    WalletAnswer,
    bounded_form,
    decrypt,
    wallet_answer,
)
from providers.eudi_wallet.status_list import StatusLists
from providers.eudi_wallet.transactions import (
    Flow,
    Transactions,
    WalletAnswerRecord,
    WalletLogin,
    WalletRequest,
    code_hash,
)
from providers.eudi_wallet.trust import TrustList
from providers.eudi_wallet.wait_page import WalletPage
from providers.forms import login_form

log = logging.getLogger("portvakt.eudi_wallet")

NO_STORE = {"Cache-Control": "no-store"}
# The wallet's routes take every method, so that the ones they do not serve get a JSON 405
# of theirs rather than the gateway's HTML page (a wallet gets no HTML, never a redirect).
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_WALLET_NONCE = 256
# OIDC claim -> the PID claims (PID Rulebook §4.1) it is made from; the identifying ones are
# always asked for, as `sub` needs them.
PID_SOURCES: Mapping[str, Sequence[str]] = {
    "given_name": ["given_name"],
    "family_name": ["family_name"],
    "name": ["given_name", "family_name"],
    "birthdate": ["birthdate"],
}


class AnsweredInAnotherBrowser(ProviderError):
    """The wallet's redirect came back to another browser than the one that started the login
    (HAIP §5.1: the presentation is then rejected)."""

    reason = "wrong_browser"


class EudiWalletProvider(HasLifecycle, ReportsHealth):
    finish_path = "/done"
    finish_methods: Sequence[str] = ("GET",)

    def __init__(self, config: EudiWalletConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._config = config
        self._services = services
        self._access = AccessKey.load(config.access_certificate.key, config.access_certificate.cert)
        self._trust = TrustList.from_pem_files(config.trusted_issuers)
        self._statuses = StatusLists(
            self._trust, config.status_lists, services.environment, services.clock,
            services.upstream,
        )  # fmt: skip
        self._transactions = Transactions(services.store)
        self._page = WalletPage(config, services, self.finish_path)

    def certificates(self) -> dict[str, float]:
        return {"access_certificate": self._access.certificate.not_valid_after_utc.timestamp()}

    async def aclose(self) -> None:
        await self._statuses.aclose()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/wait", self._wait_page),
            Route("/status", self._status),
            Route("/request/{request_id}", self._request_object, methods=ANY_METHOD),
            Route("/response/{request_id}", self._response, methods=ANY_METHOD),
            Route("/retry", self._retry, methods=["POST"]),
            Route("/cancel", self._cancel, methods=["POST"]),
        ]

    async def start(self, request: Request, login: LoginContext) -> Response:
        loa = choose_loa(self.loa, login.requested_loa, self._config.loa[0])
        if loa is None:
            raise UnmetAssurance(self.name, login.login_id, "no requested LoA is configured")
        wallet_login = WalletLogin(
            login_id=login.login_id,
            client_id=login.client_id,
            client_display=dict(login.client_display),
            locale=self._services.pages.locale(request, login.locale),
            loa=loa,
            browser_token=self._services.forms.token(request, login.login_id),
            requests={},
            expires_at=0,
            claim_names=self._claim_names(login.scopes, login.requested_claims),
        )
        await self._ask(wallet_login)
        return RedirectResponse(self._page.url(login.login_id), status_code=303)

    async def finish(self, request: Request) -> tuple[str, Identity]:
        login = await self._own_login(request)
        answer = await self._transactions.answer_of(login.login_id)
        waiting = NotFinishedYet(self.name, self._page.url(login.login_id))
        if answer is None or answer.outcome != "ok":
            raise waiting  # the page says what happened, or waits on
        if answer.flow == "same":
            code = request.query_params.get("response_code")
            if code is None:
                raise waiting  # the polling page of a same-device login: never without the code
            if not secrets.compare_digest(code_hash(code), answer.response_code_hash or ""):
                raise LoginStateLost(self.name, None, "the response_code does not match")
        taken = await self._transactions.take_answer(login.login_id)
        if taken is None or taken.identity is None:
            raise LoginStateLost(self.name, None, "the wallet's answer was used already")
        await self._transactions.end(login)
        identity = Identity.from_dict(taken.identity)
        return login.login_id, replace(identity, evidence=Evidence(upstream=taken.issuer or ""))

    # -- the citizen's page -------------------------------------------------------------

    async def _wait_page(self, request: Request) -> Response:
        login = await self._own_login(request)
        state, reason = await self._state(login)
        if state == "complete":
            return RedirectResponse(self._page.finish_url(login.login_id), status_code=303)
        return self._page.render(request, login, state, reason, self._access.client_id)

    async def _status(self, request: Request) -> Response:
        login = await self._own_login(request)
        state, reason = await self._state(login)
        return JSONResponse(self._page.status(request, login, state, reason), headers=NO_STORE)

    async def _retry(self, request: Request) -> Response:
        login, _ = await self._posted_login(request)
        await self._transactions.forget_requests(login)
        await self._ask(login)
        return RedirectResponse(self._page.url(login.login_id), status_code=303)

    async def _cancel(self, request: Request) -> Response:
        login, form = await self._posted_login(request)
        await self._transactions.end(login)
        if "other" in form:
            return RedirectResponse(f"{self._services.base_url}/login/{login.login_id}", 303)
        raise UserCancelled(self.name, login.login_id)

    async def _state(self, login: WalletLogin) -> tuple[str, str | None]:
        """Where the login stands, for the page: (state, the refusal's reason if failed)."""
        answer = await self._transactions.answer_of(login.login_id)
        if answer is not None:
            if answer.outcome == "ok":
                return ("complete" if answer.flow == "cross" else "answered_elsewhere"), None
            if answer.outcome in ("declined", "wallet_error"):
                return answer.outcome, None
            return "failed", answer.outcome
        if self._services.clock() > login.expires_at:
            return "expired", None
        if await self._transactions.was_fetched(login.login_id):
            return "fetched", None
        return "pending", None

    async def _own_login(self, request: Request) -> WalletLogin:
        """The wallet login this browser's page names (`?login=`)."""
        return await self._login_of(request, request.query_params.get("login", ""))

    async def _posted_login(self, request: Request) -> tuple[WalletLogin, FormData]:
        """The wallet login this browser's page posted back, and the page's form."""
        login_id, form = await login_form(
            request, self._services.forms, self.name, 8, "wallet form"
        )
        return await self._login_of(request, login_id), form

    async def _login_of(self, request: Request, login_id: str) -> WalletLogin:
        """The wallet login, if it is this browser's; another browser learns nothing of it."""
        login = await self._transactions.login(login_id)
        if login is None:
            raise LoginStateLost(self.name, None, "no wallet login in progress")
        expected = self._services.forms.token(request, login_id)
        if not secrets.compare_digest(expected, login.browser_token):
            raise AnsweredInAnotherBrowser(self.name, login_id, "the login is another browser's")
        return login

    async def _ask(self, login: WalletLogin) -> None:
        """Two fresh requests for the login (same-device and cross-device), kept."""
        now = self._services.clock()
        expires_at = now + self._config.request_seconds
        requests = [self._new_request(login, flow, expires_at) for flow in ("same", "cross")]
        asked = replace(
            login,
            requests={r.flow: r.request_id for r in requests},
            expires_at=expires_at,
        )
        await self._transactions.begin(asked, requests, self._config.request_seconds)

    def _new_request(self, login: WalletLogin, flow: Flow, expires_at: float) -> WalletRequest:
        request_id = secrets.token_urlsafe(24)
        key = EphemeralKey.new()
        parameters = RequestParameters(
            response_uri=self._page.response_uri(request_id),
            nonce=secrets.token_urlsafe(24),
            state=secrets.token_urlsafe(24),
            claim_names=login.claim_names,
            expires_at=expires_at,
        )
        return WalletRequest(request_id, login.login_id, flow, parameters, key.private_jwk)

    def _claim_names(self, scopes: Iterable[str], claims: Iterable[str]) -> tuple[str, ...]:
        """The PID claims the e-service's scopes and claims need: no more (data minimisation)."""
        wanted = set(IDENTIFYING_CLAIMS)
        for scope in scopes:
            wanted.update(self._config.claims.get(scope, ()))
        for claim in claims:
            wanted.update(PID_SOURCES.get(claim, ()))
        return tuple(sorted(wanted))

    # -- the wallet's side: never an HTML page, never a redirect --------------------------

    async def _request_object(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD", "POST"):
            return _method_not_allowed("GET, POST")
        wanted = await self._transactions.request(request.path_params["request_id"])
        if wanted is None or self._services.clock() > wanted.parameters.expires_at:
            return _wallet_error("invalid_request", "unknown or expired request", 404)
        wallet_nonce = None
        if request.method == "POST":
            try:
                wallet_nonce = (await bounded_form(request)).get("wallet_nonce")
            except MalformedForm as problem:
                return _wallet_error("invalid_request", str(problem))
            if wallet_nonce is not None and not _printable(wallet_nonce, MAX_WALLET_NONCE):
                return _wallet_error("invalid_request", "wallet_nonce is not a short ASCII text")
        now = self._services.clock()
        token = request_object(self._access, wanted.parameters, wanted.key, now, wallet_nonce)
        await self._transactions.note_fetched(wanted.login_id, self._config.request_seconds)
        return Response(token, media_type="application/oauth-authz-req+jwt", headers=NO_STORE)

    async def _response(self, request: Request) -> Response:
        if request.method != "POST":
            return _method_not_allowed("POST")
        request_id = request.path_params["request_id"]
        try:
            form = await bounded_form(request)
        except MalformedForm as problem:
            return _wallet_error("invalid_request", str(problem))
        wanted = await self._transactions.request(request_id)
        if wanted is None or self._services.clock() > wanted.parameters.expires_at:
            return _wallet_error("invalid_request", "unknown, expired or answered request")
        try:
            answer = self._answer_of(form, wanted)
        except InvalidPresentation as refused:
            log.info("wallet response refused before use: %s", refused.detail)
            return _wallet_error("invalid_request", refused.detail)
        if await self._transactions.take_request(request_id) is None:
            return _wallet_error("invalid_request", "the request was answered already")
        return await self._conclude(wanted, answer)

    def _answer_of(self, form: Mapping[str, str], wanted: WalletRequest) -> WalletAnswer | str:
        """The decrypted answer for this request, or the wallet's error code (OpenID4VP §8.5);
        InvalidPresentation when it is neither, or names another request's state."""
        if "response" in form:
            payload = decrypt(form["response"], wanted.key)
            if isinstance(payload.get("error"), str):
                _check_state(payload.get("state"), wanted)
                return str(payload["error"])
            answer = wallet_answer(payload)
            _check_state(answer.state, wanted)
            return answer
        if "error" in form:
            _check_state(form.get("state"), wanted)
            return form["error"]
        if "vp_token" in form:
            raise InvalidPresentation("the response must be encrypted (direct_post.jwt)")
        raise InvalidPresentation("the form has neither response nor error")

    async def _conclude(self, wanted: WalletRequest, answer: WalletAnswer | str) -> Response:
        """Keep the outcome for the citizen's browser; tell the wallet where that browser goes."""
        login = await self._transactions.login(wanted.login_id)
        if login is None:
            return _wallet_error("invalid_request", "the login has ended")
        if isinstance(answer, str):
            outcome = "declined" if answer == "access_denied" else "wallet_error"
            record = WalletAnswerRecord(wanted.flow, outcome)
        else:
            record = await self._verified(login, wanted, answer)
        code = secrets.token_urlsafe(24) if wanted.flow == "same" else None
        if code is not None:
            record = replace(record, response_code_hash=code_hash(code))
        if not await self._transactions.answer(login.login_id, record, self._answer_ttl(login)):
            return _wallet_error("invalid_request", "the login was answered already")
        await self._transactions.forget_requests(login)
        body = {} if code is None else {"redirect_uri": self._page.finish_url(login.login_id, code)}
        return JSONResponse(body, headers=NO_STORE)

    async def _verified(
        self, login: WalletLogin, wanted: WalletRequest, answer: WalletAnswer
    ) -> WalletAnswerRecord:
        now = self._services.clock()
        expected = PresentationExpectation(
            nonce=wanted.parameters.nonce,
            audience=self._access.client_id,
            now=now,
            trust=self._trust,
            clock_skew=self._config.clock_skew_seconds,
            kb_max_age=self._config.kb_jwt_max_age_seconds,
        )
        try:
            pid = verify_pid_presentation(answer.presentation, expected)
            if pid.status is not None:
                await self._statuses.check(pid.status)
            asked = {k: v for k, v in pid.claims.items() if k in wanted.parameters.claim_names}
            identity = pid_identity(self.name, replace(pid, claims=asked), login.loa, int(now))
        except PresentationError as refused:
            log.info("wallet presentation refused: %s: %s", refused.reason, refused.detail)
            return WalletAnswerRecord(wanted.flow, refused.reason)
        return WalletAnswerRecord(wanted.flow, "ok", identity.to_dict(), pid.issuer)

    def _answer_ttl(self, login: WalletLogin) -> int:
        return max(60, int(login.expires_at - self._services.clock()) + 60)


def _check_state(state: object, wanted: WalletRequest) -> None:
    expected = wanted.parameters.state.encode()
    if not isinstance(state, str) or not secrets.compare_digest(state.encode(), expected):
        raise InvalidPresentation("the state is not this request's")


def _printable(text: str, limit: int) -> bool:
    return 0 < len(text) <= limit and text.isascii() and text.isprintable()


def _wallet_error(error: str, description: str, status: int = 400) -> JSONResponse:
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=NO_STORE)


def _method_not_allowed(allowed: str) -> JSONResponse:
    answer = _wallet_error("invalid_request", f"the method is not {allowed}", 405)
    answer.headers["Allow"] = allowed
    return answer
