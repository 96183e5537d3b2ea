"""The demo e-service's contact centre: a case worker's system identifying a caller with OpenID
Connect CIBA (poll mode) through this gateway, as a municipality's would (gateway/oidc/ciba.py).

It is its own client, `demo-contact-centre`, registered for the CIBA grant with a secret made
when the process starts (gateway/demo/defaults.py). The form starts a request at /bc-authorize;
the status page polls /token on each load (no sooner than the interval the gateway asked for,
longer after a `slow_down`) and reloads itself with `<meta http-equiv="refresh">`, so it needs no
JavaScript. The simulator's /phone-calls page plays the caller's BankID app.

What the case worker typed stays in this process under a random handle in the demo's session
(the session cookie is signed, not encrypted, and a personal identity number does not belong
in it); the demo is for one process."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.oidc.claims import NATURAL_PERSON_INFO, NATURAL_PERSON_NUMBER, PERSONAL_IDENTITY_NUMBER
from gateway.oidc.discovery import JWKS_PATH, USERINFO_PATH
from gateway.settings import CIBA_GRANT
from gateway.ui.pages import PageRenderer
from providers.forms import read_form

CONTACT_CENTRE_CLIENT_ID = "demo-contact-centre"
CONTACT_CENTRE_PATH = "/contact-centre"
CIBA_SCOPES = f"openid {NATURAL_PERSON_NUMBER} {NATURAL_PERSON_INFO}"
DEFAULT_BINDING_MESSAGE = "Samtal med Demokommunens kontaktcenter"
DEFAULT_PERSON = "196408233234"  # a test person the BankID simulator knows
CALL_INITIATORS = ("user", "RP")  # BankID's callInitiator: the citizen called, or we called
SLOW_DOWN_SECONDS = 5  # CIBA §11: each slow_down adds 5 s to the interval
KEPT_CALLS = 100
CLOCK_SKEW_SECONDS = 30
Clock = Callable[[], float]


@dataclass
class Call:
    """One identification: what was asked, when to poll next, and how it ended."""

    person: str
    call_initiator: str
    auth_req_id: str
    interval: int
    next_poll_at: float
    outcome: str = "pending"  # pending | identified | declined | expired | failed
    error: str = ""
    name: str = ""
    number: str = ""


class TokensRejected(Exception):
    """An ID token that fails the checks of OIDC Core §3.1.3.7, or a userinfo answer not for
    its person."""


class CallRefused(Exception):
    """An OAuth error answer of the gateway (or no answer)."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(description or error)
        self.error = error
        self.description = description or error


class ContactCentreDemo:
    def __init__(self, issuer: str, client_secret: str, pages: PageRenderer, clock: Clock) -> None:
        self._issuer = issuer
        self._auth = (CONTACT_CENTRE_CLIENT_ID, client_secret)
        self._pages = pages
        self._clock = clock
        self._calls: dict[str, Call] = {}

    def routes(self) -> list[Route]:
        return [
            Route(CONTACT_CENTRE_PATH, self.form, methods=["GET"]),
            Route(CONTACT_CENTRE_PATH, self.start, methods=["POST"]),
            Route(f"{CONTACT_CENTRE_PATH}/status", self.status),
        ]

    async def form(self, request: Request) -> Response:
        fields = {
            "person": DEFAULT_PERSON,
            "call_initiator": "user",
            "binding_message": DEFAULT_BINDING_MESSAGE,
        }
        return self._form_page(request, fields)

    async def start(self, request: Request) -> Response:
        form = await read_form(request, 8)
        fields = {
            name: str(form.get(name, "")).strip()
            for name in ("person", "call_initiator", "binding_message")
        }
        csrf = str(form.get("csrf", ""))
        expected = request.session.pop("contact_centre_csrf", "")
        if not expected or not secrets.compare_digest(csrf.encode(), str(expected).encode()):
            return self._form_page(request, fields, error="csrf", status_code=400)
        if fields["call_initiator"] not in CALL_INITIATORS:
            fields["call_initiator"] = "user"
        try:
            call = await self._start(fields)
        except CallRefused as refused:
            return self._form_page(request, fields, error=refused.description, status_code=400)
        handle = secrets.token_urlsafe(16)
        self._calls[handle] = call
        while len(self._calls) > KEPT_CALLS:
            del self._calls[next(iter(self._calls))]
        request.session["contact_centre_call"] = handle
        return RedirectResponse(f"{self._issuer}/demo{CONTACT_CENTRE_PATH}/status", 303)

    async def status(self, request: Request) -> Response:
        call = self._calls.get(str(request.session.get("contact_centre_call", "")))
        if call is None:
            return RedirectResponse(f"{self._issuer}/demo{CONTACT_CENTRE_PATH}", 303)
        now = self._clock()
        if call.outcome == "pending" and now >= call.next_poll_at:
            # Claimed before the await: a reload at the same moment (another tab) must not
            # poll too, or the gateway's slow_down would lengthen the interval for good.
            call.next_poll_at = now + call.interval
            await self._poll(call)
        context = {
            "call": call,
            "phone_calls_url": f"{self._issuer}/bankid-simulator/phone-calls",
            "form_url": f"{self._issuer}/demo{CONTACT_CENTRE_PATH}",
            "status_url": f"{self._issuer}/demo{CONTACT_CENTRE_PATH}/status",
            # WCAG 2.2.1: a page that refreshes itself must let its user turn that off.
            "auto_refresh": request.query_params.get("auto") != "0",
        }
        return self._pages.render(request, "contact_centre_status.html", context)

    def _form_page(
        self,
        request: Request,
        fields: dict[str, str],
        error: str = "",
        status_code: int = 200,
    ) -> Response:
        csrf = secrets.token_urlsafe(24)
        request.session["contact_centre_csrf"] = csrf
        context = {"fields": fields, "csrf": csrf, "error": error}
        return self._pages.render(request, "contact_centre.html", context, status_code)

    async def _start(self, fields: dict[str, str]) -> Call:
        details = [{"type": "phoneAuth", "callInitiator": fields["call_initiator"]}]
        form = {
            "scope": CIBA_SCOPES,
            "login_hint": fields["person"],
            "authorization_details": json.dumps(details),
        }
        if fields["binding_message"]:
            form["binding_message"] = fields["binding_message"]
        answer = await self._post("/bc-authorize", form)
        try:
            auth_req_id, interval = str(answer["auth_req_id"]), int(answer.get("interval", 5))
        except (KeyError, TypeError, ValueError):
            raise CallRefused("the gateway's answer had no auth_req_id") from None
        return Call(
            person=fields["person"],
            call_initiator=fields["call_initiator"],
            auth_req_id=auth_req_id,
            interval=interval,
            next_poll_at=self._clock() + interval,
        )

    async def _poll(self, call: Call) -> None:
        """One poll of /token with the CIBA grant (CIBA §10.1), its answer recorded (§11)."""
        grant = {"grant_type": CIBA_GRANT, "auth_req_id": call.auth_req_id}
        try:
            tokens = await self._post("/token", grant)
            claims = await self._verified(str(tokens.get("id_token", "")))
            names = await self._userinfo(str(tokens.get("access_token", "")), claims["sub"])
        except CallRefused as refused:
            self._record_refusal(call, refused)
            return
        except TokensRejected as error:
            call.outcome, call.error = "failed", str(error)
            return
        call.outcome = "identified"
        call.number = str(claims.get(PERSONAL_IDENTITY_NUMBER, ""))
        call.name = " ".join(
            str(names[part]) for part in ("given_name", "family_name") if names.get(part)
        )

    def _record_refusal(self, call: Call, refused: CallRefused) -> None:
        now = self._clock()
        if refused.error == "authorization_pending":
            call.next_poll_at = now + call.interval
        elif refused.error == "slow_down":
            call.interval += SLOW_DOWN_SECONDS
            call.next_poll_at = now + call.interval
        elif refused.error == "access_denied":
            call.outcome = "declined"
        elif refused.error == "expired_token":
            call.outcome = "expired"
        else:
            call.outcome, call.error = "failed", refused.description

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            async with httpx2.AsyncClient(timeout=10) as http:
                response = await http.post(f"{self._issuer}{path}", data=form, auth=self._auth)
            answer = response.json()
        except (httpx2.HTTPError, ValueError) as error:
            raise CallRefused("unreachable", f"the gateway did not answer: {error}") from None
        if not isinstance(answer, dict):
            raise CallRefused("the gateway's answer was not a JSON object")
        if response.status_code != 200:
            error_code = str(answer.get("error", "unknown"))
            raise CallRefused(error_code, f"{error_code}: {answer.get('error_description', '')}")
        return answer

    async def _userinfo(self, access_token: str, sub: str) -> dict[str, Any]:
        """The names: the Swedish OIDC profile releases them at userinfo, not in the ID token."""
        try:
            async with httpx2.AsyncClient(timeout=10) as http:
                response = await http.get(
                    f"{self._issuer}{USERINFO_PATH}",
                    headers={"Authorization": f"Bearer {access_token}"},
                )
            answer = response.json()
        except (httpx2.HTTPError, ValueError) as error:
            raise TokensRejected(f"userinfo did not answer: {error}") from None
        if response.status_code != 200 or not isinstance(answer, dict) or answer.get("sub") != sub:
            raise TokensRejected("userinfo did not answer for the person of the ID token")
        return answer

    async def _verified(self, id_token: str) -> dict[str, Any]:
        """The ID token as OIDC Core §3.1.3.7 checks it: the gateway's signature, iss, aud, exp."""
        try:
            async with httpx2.AsyncClient(timeout=10) as http:
                keys = KeySet.import_key_set((await http.get(f"{self._issuer}{JWKS_PATH}")).json())
            decoded = jwt.decode(id_token, keys, algorithms=["RS256"])
            jwt.JWTClaimsRegistry(
                now=int(self._clock()),
                leeway=CLOCK_SKEW_SECONDS,
                iss={"essential": True, "value": self._issuer},
                aud={"essential": True, "value": CONTACT_CENTRE_CLIENT_ID},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (httpx2.HTTPError, JoseError, ValueError, TypeError) as error:
            raise TokensRejected(f"the ID token is not valid: {error}") from None
        return dict(decoded.claims)
