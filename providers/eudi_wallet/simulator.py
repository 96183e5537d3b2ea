"""A simulated EU Digital Identity Wallet and its test PID provider, for the sandbox, the demo
and the tests; refused in production (its certificates name `SIMULATOR_ORGANISATION`).

Follows OpenID4VP 1.0 as HAIP 1.0 profiles it (signed request by reference, `x509_hash`
client ids, DCQL, `direct_post.jwt`), SD-JWT (RFC 9901), SD-JWT VC draft -13 and Token Status
List draft -14 (the versions HAIP pins). It does not do mdoc (`mso_mdoc`), the W3C Digital
Credentials API, `transaction_data`, `verifier_info` or wallet metadata.

A Starlette app (`.app`) mounted at `mount_path`:
- `GET /` the phone page: paste (or receive as `?request=`) an `openid4vp://` link; the wallet
  fetches and checks the request (simulator_request.py), shows who asks and for what, and lets
  the person pick a test person and Share or Decline. A request failing a check is not
  presented: the page says why, and the wallet posts `error=invalid_request` (with the `state`
  when it had one). After Share, a `redirect_uri` in the verifier's answer is followed with a
  303 (same-device); otherwise the page says to go back to the computer (cross-device).
- `GET /status-lists/{n}` the test PID provider's status lists.
`present()`, `decline()` do the same without a browser; `next_twist` bends the next answer.

The page's forms are bound to the browser that opened the request (a SameSite cookie and an
unguessable id, single use); no input answers 5xx.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
from cryptography import x509
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from providers.eudi_wallet import simulator_page as pages
from providers.eudi_wallet.simulator_holder import (
    Binding,
    Twist,
    missing_claims,
    presentation,
    requested_paths,
    response_form,
)
from providers.eudi_wallet.simulator_issuer import PID_LIFETIME, IssuedPid, PidIssuer, PidOptions
from providers.eudi_wallet.simulator_people import PEOPLE, SimulatedPerson
from providers.eudi_wallet.simulator_pki import SimulatorPki, shared_test_pki
from providers.eudi_wallet.simulator_request import (
    HTTP_TIMEOUT,
    RequestRefused,
    WalletRequest,
    fetch_request_object,
    parse_wallet_uri,
)
from providers.eudi_wallet.simulator_request_checks import checked_request
from providers.forms import read_form

COOKIE = "wallet_simulator_browser"
PENDING_SECONDS = 600
MAX_PENDING = 256
MAX_URI = 4096
MAX_LIST_DIGITS = 3
STATUS_LIST_TYPE = "application/statuslist+jwt"


class SimulatorError(Exception):
    """Something the simulator cannot do: said on its page, raised to a test."""


class VerifierRefused(SimulatorError):
    """The response URI did not answer 200 with a JSON object."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"the response URI answered HTTP {status_code}")
        self.status_code = status_code
        self.body = body


@dataclass
class Pending:
    request: WalletRequest
    browser: str
    opened_at: float


class WalletSimulator:
    def __init__(
        self,
        mount_path: str = "",
        *,
        pki: SimulatorPki | None = None,
        trusted_access_cas: Sequence[x509.Certificate] | None = None,
        clock: Callable[[], float] = time.time,
        public_url: str | None = None,
    ) -> None:
        """`public_url` is where the simulator is reached from outside (its status lists'
        base); without it, the URL of the page request that shares a PID is used."""
        self.mount_path = mount_path.rstrip("/")
        self.pki = pki or shared_test_pki()
        self.trusted_access_cas = list(trusted_access_cas or [self.pki.access_ca.certificate])
        self.clock = clock
        self.public_url = public_url.rstrip("/") if public_url else None
        self.issuer = PidIssuer(self.pki, clock)
        self.next_twist: Twist | None = None
        self.last_form: dict[str, str] | None = None  # what was last posted (tests replay it)
        self._holders: dict[str, ECKey] = {}
        self._pids: dict[tuple[str, str], IssuedPid] = {}
        self._pending: dict[str, Pending] = {}
        self.app = Starlette(
            routes=[
                Route("/", self._page),
                Route("/share", self._share, methods=["POST"]),
                Route("/decline", self._decline, methods=["POST"]),
                Route("/status-lists/{n}", self._status_list),
            ]
        )

    # -- the wallet, for tests and the page -------------------------------------------------

    async def open(self, wallet_uri: str) -> WalletRequest:
        """Fetches and checks the request; a refused one is answered `invalid_request`."""
        try:
            uri = parse_wallet_uri(wallet_uri)
            wallet_nonce = secrets.token_urlsafe(16) if uri.method == "post" else None
            request_object = await fetch_request_object(uri, wallet_nonce)
            return checked_request(
                request_object, uri, wallet_nonce, self.trusted_access_cas, self.clock()
            )
        except RequestRefused as refused:
            await self._report(refused)
            raise

    async def _report(self, refused: RequestRefused) -> None:
        """OID4VP §8.5: `invalid_request` to the response URI, when the request named one."""
        if refused.response_uri is None:
            return
        error = {"error": "invalid_request", "error_description": refused.reason}
        state = {"state": refused.state} if refused.state is not None else {}
        with contextlib.suppress(SimulatorError):  # the refusal stands either way
            await self._post(refused.response_uri, {**error, **state}, expect_json=False)

    async def present(
        self, wallet_uri: str, person_key: str, twist: Twist | None = None
    ) -> dict[str, Any]:
        """The page's Share: returns the response URI's JSON."""
        request = await self.open(wallet_uri)
        return await self.share(request, person_key, twist, self._base_url(None))

    async def decline(self, wallet_uri: str) -> dict[str, Any]:
        request = await self.open(wallet_uri)
        return await self.refuse(request)

    async def share(
        self, request: WalletRequest, person_key: str, twist: Twist | None, base_url: str
    ) -> dict[str, Any]:
        twist = twist or self.next_twist
        self.next_twist = None
        person = PEOPLE.get(person_key)
        if person is None:
            raise SimulatorError("no such test person")
        paths = requested_paths(request, person.claims)
        if paths is None and twist is not Twist.SHARE_WHAT_IT_HAS:
            lacking = ", ".join(missing_claims(request, person.claims))
            raise SimulatorError(f"this PID has no {lacking}: a wallet does not offer it")
        if paths is None:
            paths = [c.path for c in request.claims]
        pid = self._pid(person, base_url, twist)
        binding = Binding(self._holder(person.key), self.clock())
        vp = presentation(pid, request, paths, binding, twist)
        return await self._post(request.response_uri, response_form(request, vp, twist))

    async def refuse(self, request: WalletRequest) -> dict[str, Any]:
        """OID4VP §8.5: the person declined."""
        state = {"state": request.state} if request.state is not None else {}
        return await self._post(request.response_uri, {"error": "access_denied", **state})

    def _holder(self, person_key: str) -> ECKey:
        if person_key not in self._holders:
            self._holders[person_key] = ECKey.generate_key("P-256")
        return self._holders[person_key]

    def _pid(self, person: SimulatedPerson, base_url: str, twist: Twist | None) -> IssuedPid:
        holder = self._holder(person.key).as_dict(private=False)
        if twist is Twist.EXPIRED_PID:
            expired = PidOptions(issued_at=self.clock() - 2 * 86400, lifetime=86400)
            return self.issuer.issue(person, holder, base_url, expired)
        if twist is Twist.UNTRUSTED_ISSUER:
            rogue = PidOptions(signer=self.pki.rogue_signer)
            return self.issuer.issue(person, holder, base_url, rogue)
        cached = self._pids.get((person.key, base_url))
        if cached is None or cached.expires_at <= self.clock() + PID_LIFETIME // 2:
            cached = self._pids[(person.key, base_url)] = self.issuer.issue(
                person, holder, base_url
            )
        return cached

    async def _post(
        self, url: str, form: dict[str, str], *, expect_json: bool = True
    ) -> dict[str, Any]:
        self.last_form = form
        try:
            async with httpx2.AsyncClient(
                timeout=HTTP_TIMEOUT, follow_redirects=False, trust_env=False
            ) as http:
                answer = await http.post(url, data=form)
        except (httpx2.HTTPError, httpx2.InvalidURL, ValueError):
            raise SimulatorError("the response URI could not be reached") from None
        try:
            body = answer.json()
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict) or answer.status_code != 200:
            if not expect_json:
                return {}
            raise VerifierRefused(answer.status_code, answer.text[:2000])
        return body

    def _base_url(self, request: Request | None) -> str:
        if self.public_url is not None:
            return self.public_url
        if request is None:
            raise SimulatorError("without a page request, the simulator needs public_url")
        return str(request.base_url).rstrip("/") + self.mount_path

    # -- the routes ---------------------------------------------------------------------------

    async def _status_list(self, request: Request) -> Response:
        number = request.path_params["n"]
        known = number.isascii() and number.isdigit() and len(number) <= MAX_LIST_DIGITS
        status_list = self.issuer.lists.get(int(number)) if known else None
        if status_list is None:
            return Response("no such status list", 404, media_type="text/plain")
        uri = f"{self._base_url(request)}/status-lists/{number}"
        return Response(status_list.token(uri, self.clock()), media_type=STATUS_LIST_TYPE)

    async def _page(self, request: Request) -> Response:
        wallet_uri = request.query_params.get("request", "")
        if not wallet_uri:
            return pages.page(pages.paste_form(self.mount_path))
        if len(wallet_uri) > MAX_URI:
            return pages.page(pages.refused("the link is too long", self.mount_path), 400)
        try:
            opened = await self.open(wallet_uri)
        except (RequestRefused, SimulatorError) as refused:
            return pages.page(pages.refused(str(refused), self.mount_path), 400)
        browser = request.cookies.get(COOKIE) or secrets.token_urlsafe(16)
        pending_id = self._remember(Pending(opened, browser, self.clock()))
        response = pages.page(pages.consent(opened, pending_id, self.mount_path))
        response.set_cookie(
            COOKIE, browser, path=self.mount_path + "/", httponly=True, samesite="strict"
        )
        return response

    def _remember(self, pending: Pending) -> str:
        now = self.clock()
        for key in [k for k, p in self._pending.items() if p.opened_at + PENDING_SECONDS < now]:
            del self._pending[key]
        while len(self._pending) >= MAX_PENDING:
            del self._pending[next(iter(self._pending))]
        pending_id = secrets.token_urlsafe(24)
        self._pending[pending_id] = pending
        return pending_id

    async def _taken(self, request: Request) -> tuple[Pending, dict[str, str]]:
        """The pending request this browser's form names, used up; SimulatorError if none."""
        try:
            form = await read_form(request, 8)
        except Exception:
            raise SimulatorError("the form could not be read") from None
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        pending = self._pending.get(fields.get("pending", ""))
        if pending is None or pending.opened_at + PENDING_SECONDS < self.clock():
            raise SimulatorError("this request is unknown or has expired: open the link again")
        cookie = request.cookies.get(COOKIE, "").encode()
        if not secrets.compare_digest(pending.browser.encode(), cookie):
            raise SimulatorError("this request was opened in another browser")
        del self._pending[fields["pending"]]
        return pending, fields

    async def _share(self, request: Request) -> Response:
        try:
            pending, fields = await self._taken(request)
            twist = _twist(fields.get("twist", ""))
            answer = await self.share(
                pending.request, fields.get("person", ""), twist, self._base_url(request)
            )
        except VerifierRefused as refused:
            return pages.page(pages.not_accepted(refused.status_code, refused.body))
        except SimulatorError as error:
            return pages.page(pages.refused(str(error), self.mount_path), 400)
        return _after(answer)

    async def _decline(self, request: Request) -> Response:
        try:
            pending, _fields = await self._taken(request)
            answer = await self.refuse(pending.request)
        except SimulatorError as error:
            return pages.page(pages.refused(str(error), self.mount_path), 400)
        return _after(answer)


def _twist(name: str) -> Twist | None:
    if not name:
        return None
    if name not in Twist.__members__:
        raise SimulatorError("no such twist")
    return Twist[name]


def _after(answer: dict[str, Any]) -> Response:
    """OID4VP §8.2 / HAIP §5.1: a redirect_uri is followed in this browser (same-device)."""
    target = answer.get("redirect_uri")
    if isinstance(target, str) and target.startswith(("https://", "http://")):
        return RedirectResponse(target, status_code=303)
    return pages.page(pages.done())
