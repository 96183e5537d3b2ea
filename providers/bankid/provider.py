"""BankID natively, through its RP API v6.0 (shared/reference/bankid-rp-v6.md), with secure start.

`start()` places an `/auth` order, or for a sign flow a `/sign` order (`ordering.py`), and sends
the citizen to the order's page (`wait_page.py`): an animated QR code for BankID on another
device and an "open BankID on this device" button (autostart). The browser never talks to
BankID: the page polls `/status` (or, without JavaScript, is refreshed by hand), and the gateway
calls `/collect` at most once per two seconds per order, whichever instance serves the poll; the
order lives in the store and its collects are paced by the clock (`order.py`). A sign order's
identity carries BankID's signature and OCSP response verbatim (`Identity.user_signature`,
`.authn_evidence`). Phone orders, started without a browser for CIBA, are `phone.py`'s.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.bankid.client import BankIDClient, BankIDError, certificate_not_after, tls_context
from providers.bankid.config import BankIDConfig
from providers.bankid.device import DeviceCookie
from providers.bankid.messages import error_message
from providers.bankid.order import ANOTHER_PERSON, BankIDOrder, Orders, completion_refusal
from providers.bankid.ordering import OrderPlacer, OrderRequest, sign_refusal
from providers.bankid.phone import BankIDPhone, PhoneOrders
from providers.bankid.risk import ip_address_or_none, released_claims, risk_level
from providers.bankid.wait_page import WaitPage
from providers.base import (
    AuthenticationFailed,
    Evidence,
    FormRejected,
    HasLifecycle,
    Identity,
    LoginContext,
    LoginStateLost,
    NotFinishedYet,
    ProviderServices,
    RefusedForRisk,
    ReportsHealth,
    SelectableUpstream,
    SignatureNotMade,
    SignRequest,
    Signs,
    UnmetAssurance,
    UserCancelled,
    WrongPerson,
    choose_loa,
)
from providers.forms import login_form
from providers.identity_numbers import mask, parse_identity_number

log = logging.getLogger("portvakt.bankid")

# The `authnProvider` claim value of a login with BankID itself (RPar §2.2, Claims §2.3.5). No
# URI is registered for BankID; this is ours (docs/integrating.md), BankID's own address.
BANKID_AUTHN_PROVIDER = "https://www.bankid.com"


class BankIDProvider(HasLifecycle, ReportsHealth, SelectableUpstream, Signs, BankIDPhone):
    finish_path = "/done"
    finish_methods: Sequence[str] = ("GET",)

    def __init__(self, config: BankIDConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._config = config
        self._services = services
        cert = config.client_cert
        context = (
            tls_context(config.ca, cert.file, cert.key, cert.password) if cert is not None else None
        )
        self._client = BankIDClient(config.url, context, config.timeout_seconds, services.upstream)
        self._orders = Orders(services.name, services.store, services.clock)
        self._placer = OrderPlacer(config, services, self._client)
        self._phone = PhoneOrders(config, services, self._client, self._placer, self._identity)
        self._page = WaitPage(config, services, self.finish_path)
        secure = services.base_url.startswith("https://")
        self._device = DeviceCookie(services.name, services.secret, secure)
        self._certificate_expiry = (
            {"client": certificate_not_after(cert.file, cert.password)} if cert else {}
        )

    def answers_to(self, authn_provider: str) -> bool:
        return authn_provider == BANKID_AUTHN_PROVIDER

    def can_sign(self, sign: SignRequest) -> bool:
        """Signs and approves (both with `/sign`) what BankID can show and take."""
        return sign_refusal(sign) is None

    def certificates(self) -> dict[str, float]:
        """Expiry of the RP certificate (Unix time), for /metrics."""
        return self._certificate_expiry

    async def aclose(self) -> None:
        await self._client.aclose()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/wait", self._wait_page),
            Route("/status", self._status),
            Route("/open", self._open_app),
            Route("/return", self._returned),
            Route("/retry", self._retry, methods=["POST"]),
            Route("/cancel", self._cancel, methods=["POST"]),
        ]

    async def start(self, request: Request, login: LoginContext) -> Response:
        loa = choose_loa(self.loa, login.requested_loa, self._config.loa[0])
        if loa is None:
            raise UnmetAssurance(self.name, login.login_id, "no requested LoA is configured")
        refusal = sign_refusal(login.sign) if login.sign else None
        if refusal is not None:  # the gateway asked can_sign; never send BankID what it refuses
            raise SignatureNotMade(self.name, login.login_id, refusal)
        wanted = OrderRequest(
            login.login_id,
            login.client_id,
            dict(login.client_display),
            login.client_ip,
            self._services.pages.locale(request, login.locale),
            loa,
            login.identity_hint,
            login.user_message,
            login.sign,
            dict(login.app_device) if login.app_device else None,
        )
        return await self._order_and_wait(request, wanted)

    async def finish(self, request: Request) -> tuple[str, Identity]:
        login_id = request.query_params.get("login", "")
        order = await self._orders.load(login_id)
        if order.status != "complete" or order.completion is None:  # early: the order goes on
            raise NotFinishedYet(self.name, self._page.url(login_id))
        return login_id, self._identity(login_id, order)

    # -- the order's pages ---------------------------------------------------------------

    async def _wait_page(self, request: Request) -> Response:
        """The QR/autostart page; without JavaScript, reloading it is the manual refresh."""
        login_id, order = await self._own_order(request)
        order = await self._advance(login_id, order)
        if order.status == "complete":
            return RedirectResponse(self._page.finish_url(login_id), status_code=303)
        return self._page.render(request, login_id, order)

    async def _status(self, request: Request) -> Response:
        """What the page's script polls once a second: the state, the message and the QR."""
        login_id, order = await self._own_order(request)
        order = await self._advance(login_id, order)
        body = self._page.status(request, login_id, order)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _open_app(self, request: Request) -> Response:
        """'Open BankID on this device': note the autostart (RFA13 vs RFA1), then launch."""
        login_id, order = await self._own_order(request)
        order = order.autostart()
        await self._orders.save(login_id, order)
        return RedirectResponse(self._page.launch_url(order), status_code=303)

    async def _returned(self, request: Request) -> Response:
        """The BankID app's returnUrl after a same-device login (§2.1): back to the order, for
        the browser that started it only (bankid-2026-and-ciba.md §1.2: the channel binding)."""
        login_id = request.query_params.get("login", "")
        order = await self._orders.load(login_id)
        nonce = request.query_params.get("nonce", "").encode()  # bytes: any text compares
        if not secrets.compare_digest(nonce, order.return_nonce.encode()):
            raise LoginStateLost(self.name, None, "returnUrl nonce does not match")
        self._check_browser(request, login_id, order)
        return self._to_wait_page(login_id)

    async def _retry(self, request: Request) -> Response:
        login_id, order, _ = await self._posted_order(request)
        await self._cancel_upstream(order)
        locale = self._services.pages.locale(request, order.locale)
        return await self._order_and_wait(request, OrderRequest.again(login_id, order, locale))

    async def _cancel(self, request: Request) -> Response:
        """Cancel, or choose another e-ID: either way BankID's order is cancelled (§4)."""
        login_id, order, form = await self._posted_order(request)
        await self._cancel_upstream(order)
        await self._orders.delete(login_id)
        if "other" in form:
            return RedirectResponse(f"{self._services.base_url}/login/{login_id}", 303)
        raise UserCancelled(self.name, login_id)

    # -- orders --------------------------------------------------------------------------

    async def _order_and_wait(self, request: Request, wanted: OrderRequest) -> Response:
        """Place the order, keep it, and send this browser (remembered by it) to its page."""
        # A native app's order carries its own device (`app`): no browser cookie is needed.
        device = None if wanted.app_device else self._device.of(request)
        identifier = device.identifier if device else None
        order = await self._placer.place(request, wanted, identifier)
        await self._orders.save(wanted.login_id, order)
        response = self._to_wait_page(wanted.login_id)
        if device is not None:
            self._device.remember(response, device)
        return response

    async def _advance(self, login_id: str, order: BankIDOrder) -> BankIDOrder:
        """One `/collect`, if no poll on any instance made one in the last two seconds."""
        if order.status != "pending" or not await self._orders.claim_collect(login_id):
            return order
        try:
            collected = await self._client.collect(order.order_ref)
        except BankIDError as error:
            if error.error_code.lower() == "maintenance":
                return order  # retried silently by the next poll
            log.warning("BankID collect failed: %s", error.error_code)
            order = order.failed(error_message(error.error_code))
        else:
            order = order.collected(collected, self._services.clock())
        await self._orders.save(login_id, order)
        return order

    async def _cancel_upstream(self, order: BankIDOrder) -> None:
        if order.status != "pending" or not order.order_ref:
            return
        try:
            await self._client.cancel(order.order_ref)
        except BankIDError as error:  # the order may have ended meanwhile; nothing to undo
            log.info("BankID cancel: %s", error.error_code)

    async def _own_order(self, request: Request) -> tuple[str, BankIDOrder]:
        """The order of the login this browser's page names (`?login=`)."""
        login_id = request.query_params.get("login", "")
        return login_id, await self._order_of(request, login_id)

    async def _posted_order(self, request: Request) -> tuple[str, BankIDOrder, FormData]:
        """The order of the login this browser's page posted back, and the page's form."""
        login_id, form = await login_form(
            request, self._services.forms, self.name, 8, "BankID form"
        )
        return login_id, await self._order_of(request, login_id), form

    async def _order_of(self, request: Request, login_id: str) -> BankIDOrder:
        """The login's order, if this browser placed it; another browser learns nothing of it."""
        order = await self._orders.load(login_id)
        self._check_browser(request, login_id, order)
        return order

    def _check_browser(self, request: Request, login_id: str, order: BankIDOrder) -> None:
        """Only the browser that placed the order may see or steer it."""
        expected = self._services.forms.token(request, login_id)
        if not secrets.compare_digest(expected, order.browser_token):
            raise FormRejected(self.name, None, "BankID order belongs to another browser")

    def _to_wait_page(self, login_id: str) -> Response:
        return RedirectResponse(self._page.url(login_id), status_code=303)

    def _identity(self, login_id: str, order: BankIDOrder) -> Identity:
        completion = order.completion or {}
        refusal = completion_refusal(order, completion) if completion else "no completion"
        if refusal == ANOTHER_PERSON:  # collect refused it already: the last line of defence
            raise WrongPerson(self.name, login_id, refusal)
        if refusal is not None:
            raise AuthenticationFailed(self.name, login_id, refusal)
        user = completion.get("user", {})
        number = parse_identity_number(str(user.get("personalNumber", "")))
        device_ip = ip_address_or_none(completion.get("device", {}).get("ipAddress"))
        risk = risk_level(completion)
        if self._config.risk.refuses(risk):
            raise self._refused_for_risk(login_id, order, risk, number.digits, device_ip)
        identity = Identity(
            provider=self.name,
            subject=number.digits,
            loa=order.loa,
            auth_time=int(self._completed_at(order)),
            personal_identity_number=None if number.is_coordination_number else number.digits,
            coordination_number=number.digits if number.is_coordination_number else None,
            given_name=user.get("givenName"),
            family_name=user.get("surname"),
            name=user.get("name"),
            birthdate=number.birthdate,
            extra=released_claims(device_ip, risk),
            evidence=self._evidence(order, completion, device_ip, risk),
            authn_provider=BANKID_AUTHN_PROVIDER,
        )
        if order.sign_request is None:
            return identity
        sign = SignRequest.from_dict(order.sign_request)
        return self._signed(login_id, sign, completion, identity)

    def _evidence(
        self, order: BankIDOrder, completion: Mapping[str, Any], device_ip: str | None, risk: str
    ) -> Evidence:
        """For the audit: the signature and OCSP response name the person, and are not kept."""
        uhi = completion.get("device", {}).get("uhi")
        return Evidence(
            upstream=self._config.url,
            reference=order.order_ref,
            device_ip=device_ip,
            certificate_issued=str(completion.get("bankIdIssueDate", "")) or None,
            risk=risk,
            device_uhi=uhi if isinstance(uhi, str) else None,
        )

    def _refused_for_risk(
        self, login_id: str, order: BankIDOrder, risk: str, number: str, device_ip: str | None
    ) -> RefusedForRisk:
        """The policy refuses this risk rating: a failed login, and a security event."""
        log.warning("BankID order %s refused by the risk policy: risk %s", order.order_ref, risk)
        signal = {
            "provider": self.name,
            "risk": risk,
            "reference": order.order_ref,
            "person": mask(number),
            "device_ip": device_ip,
        }
        return RefusedForRisk(self.name, login_id, f"BankID rated the login's risk {risk}", signal)

    def _completed_at(self, order: BankIDOrder) -> float:
        """When the collect saw the order complete: when the citizen identified or signed. Not
        the OCSP response's producedAt, which this gateway does not verify (the e-service does,
        docs/integrating.md): an unverified time is no better than our own, which lies at most
        one collect interval after BankID's. Orders completed before this was kept: now."""
        return order.completed_at if order.completed_at is not None else self._services.clock()

    def _signed(
        self, login_id: str, sign: SignRequest, completion: Mapping[str, Any], identity: Identity
    ) -> Identity:
        """A sign order's identity: for a signature, BankID's signature and OCSP response as it
        sent them (the OCSP nonce is over the exact Base64 string); an approval has neither."""
        if not sign.signs:
            return identity
        signature = completion.get("signature")
        if not isinstance(signature, str) or not signature:
            raise SignatureNotMade(self.name, login_id, "BankID's completion has no signature")
        ocsp = completion.get("ocspResponse")
        evidence = ocsp if isinstance(ocsp, str) and ocsp else None
        return replace(identity, user_signature=signature, authn_evidence=evidence)
