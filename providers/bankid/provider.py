"""BankID natively, through its RP API v6.0 (shared/reference/bankid-rp-v6.md), with secure start.

`start()` places an `/auth` order and sends the citizen to the order's page: an animated QR code
for BankID on another device and an "open BankID on this device" button (autostart). The browser
never talks to BankID: the page polls `/status` (or, without JavaScript, is refreshed by hand),
and the gateway calls `/collect` at most once per two seconds per order, whichever instance
serves the poll; the order lives in the store and a store lock paces the collects. The QR
payload is computed here each second; the qrStartSecret never leaves the server.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import segno
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.bankid.client import (
    TEST_URL,
    BankIDClient,
    BankIDError,
    CollectedOrder,
    certificate_not_after,
    qr_payload,
    tls_context,
)
from providers.bankid.device import DeviceCookie
from providers.bankid.messages import N_, RFA, error_message, failed_message, pending_message
from providers.base import (
    AuthenticationFailed,
    ChecksConfig,
    ConfigPath,
    Evidence,
    FormRejected,
    HasLifecycle,
    Identity,
    LoginContext,
    LoginStateLost,
    NotFinishedYet,
    ProviderConfig,
    ProviderServices,
    ReportsHealth,
    UnmetAssurance,
    UserCancelled,
    choose_loa,
)
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number
from providers.records import StoreRecord, login_key

log = logging.getLogger("portvakt.bankid")

COLLECT_INTERVAL_SECONDS = 2  # §3: collect every two seconds, not more often
ORDER_TTL_SECONDS = 600
TEST_POLICIES = ["1.2.3.4.5", "1.2.3.4.10", "1.2.3.4.25", "1.2.752.60.1.6"]
PRODUCTION_POLICIES = ["1.2.752.78.1.1", "1.2.752.78.1.2", "1.2.752.78.1.5"]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MOBILE_MARKERS = ("iPhone", "iPad", "Android", "Mobile")


class ClientCertificate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: ConfigPath = Field(description="PKCS#12 (.p12/.pfx) or PEM certificate of this RP")
    key: ConfigPath | None = Field(default=None, description="PEM key, when file is a PEM cert")
    password: str | None = None


def _same_in_every_language(value: Any) -> Any:
    return {"sv": value, "en": value} if isinstance(value, str) else value


# A text shown to the citizen, {sv: …, en: …}; a plain string is used in every language.
LocalizedText = Annotated[dict[str, str], BeforeValidator(_same_in_every_language)]
DEFAULT_VISIBLE_TEXT = N_("Log in to {service}")


class BankIDConfig(ProviderConfig, ChecksConfig):
    type: Literal["bankid"]
    url: str = TEST_URL
    client_cert: ClientCertificate | None = None
    ca: ConfigPath | None = Field(default=None, description="the BankID server root CA to pin")
    display: dict[str, str] = Field(default_factory=lambda: {"sv": "BankID", "en": "BankID"})
    hint: dict[str, str] = Field(
        default_factory=lambda: {
            "sv": "Mobilt BankID eller BankID på kort",
            "en": "Mobile BankID or BankID on card",
        }
    )
    pin_code: bool = False
    mrtd: bool = False
    certificate_policies: list[str] | None = None
    user_visible_data: LocalizedText | None = Field(
        default=None, description="default: 'Logga in på {service}' / 'Log in to {service}'"
    )
    user_visible_data_per_client: dict[str, LocalizedText] = Field(default_factory=dict)
    launch_url: str | None = Field(
        default=None, description="only for the simulator: where 'open BankID' leads"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @model_validator(mode="after")
    def _connection(self) -> BankIDConfig:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            raise ValueError("url must be https (http only for the local simulator)")
        if parts.scheme == "https" and (self.client_cert is None or self.ca is None):
            raise ValueError(
                "client_cert and ca are required: BankID is reached with mutual TLS and its "
                "server CA pinned"
            )
        if parts.scheme not in ("http", "https"):
            raise ValueError("url must be https://…/rp/v6.0")
        return self

    @property
    def is_simulator(self) -> bool:
        return urlsplit(self.url).scheme == "http" or self.launch_url is not None

    def refused_in_production(self, name: str) -> str | None:
        if not self.is_simulator:
            return None
        return (
            f"provider {name!r} points at the BankID simulator (http url or "
            "launch_url); it refuses to load with environment: production"
        )

    def certificate_expiries(self) -> dict[str, float]:
        cert = self.client_cert
        if cert is None:
            return {}
        return {"client_cert": certificate_not_after(cert.file, cert.password)}


@dataclass(frozen=True)
class BankIDOrder(StoreRecord):
    """One pending login's BankID order, in the store under `order:{<login id>}`."""

    order_ref: str
    qr_start_token: str
    qr_start_secret: str
    auto_start_token: str
    started_at: float
    browser_token: str
    end_user_ip: str
    client_id: str
    locale: str
    loa: str
    mobile: bool
    return_nonce: str
    identity_hint: str | None = None
    required_mrtd: bool = False
    client_display: dict[str, str] = field(default_factory=dict)
    status: str = "pending"
    hint_code: str | None = None
    message: str = "RFA1"
    autostarted: bool = False
    completion: dict[str, Any] | None = field(default=None)

    def qr_time(self, now: float) -> int:
        return max(0, int(now - self.started_at))


class BankIDProvider(HasLifecycle, ReportsHealth):
    finish_path = "/done"
    finish_methods: Sequence[str] = ("GET",)

    def __init__(self, config: BankIDConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._config = config
        self._services = services
        self._base = f"{services.base_url}/providers/{services.name}"
        self._policies = config.certificate_policies or (
            PRODUCTION_POLICIES if services.environment == "production" else TEST_POLICIES
        )
        cert = config.client_cert
        context = (
            tls_context(config.ca, cert.file, cert.key, cert.password) if cert is not None else None
        )
        self._client = BankIDClient(config.url, context, config.timeout_seconds, services.upstream)
        secure = services.base_url.startswith("https://")
        self._device = DeviceCookie(services.name, services.secret, secure)
        self._certificate_expiry = (
            {"client": certificate_not_after(cert.file, cert.password)} if cert else {}
        )

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
        device = self._device.of(request)
        order = await self._place_order(
            request,
            login.login_id,
            login.client_id,
            dict(login.client_display),
            login.client_ip,
            self._services.pages.locale(request, login.locale),
            loa,
            login.identity_hint,
            device.identifier,
        )
        await self._save(login.login_id, order)
        response = self._to_wait_page(login.login_id)
        self._device.remember(response, device)
        return response

    async def finish(self, request: Request) -> tuple[str, Identity]:
        login_id = request.query_params.get("login", "")
        raw = await self._services.store.get(login_key("order", login_id)) if login_id else None
        if raw is None:
            raise LoginStateLost(self.name, None, "unknown or expired BankID order")
        order = BankIDOrder.loads(raw)
        if order.status != "complete" or order.completion is None:  # early: the order goes on
            raise NotFinishedYet(self.name, f"{self._base}/wait?login={login_id}")
        return login_id, self._identity(login_id, order)

    # -- the order's pages ---------------------------------------------------------------

    async def _wait_page(self, request: Request) -> Response:
        """The QR/autostart page; without JavaScript, reloading it is the manual refresh."""
        login_id, order = await self._own_order(request)
        order = await self._advance(login_id, order)
        if order.status == "complete":
            return RedirectResponse(self._finish_url(login_id), status_code=303)
        return self._render(request, login_id, order)

    async def _status(self, request: Request) -> Response:
        """What the page's script polls once a second: the state, the message and the QR."""
        login_id, order = await self._own_order(request)
        order = await self._advance(login_id, order)
        body: dict[str, Any] = {"status": order.status, "message": order.message}
        body["text"] = self._services.pages.translate(request, RFA[order.message], order.locale)
        if order.status == "complete":
            body["next"] = self._finish_url(login_id)
        elif self._shows_qr(order):
            payload = qr_payload(
                order.qr_start_token, order.qr_start_secret, order.qr_time(time.time())
            )
            body["qr"] = _qr_data_uri(payload)
            if self._config.is_simulator:
                body["phone"] = self._simulated_phone(payload)
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _open_app(self, request: Request) -> Response:
        """'Open BankID on this device': note the autostart (RFA13 vs RFA1), then launch."""
        login_id, order = await self._own_order(request)
        order = replace(order, autostarted=True)
        if order.status == "pending":
            order = replace(order, message=pending_message(order.hint_code, True, order.mobile))
        await self._save(login_id, order)
        return RedirectResponse(self._launch_url(order), status_code=303)

    async def _returned(self, request: Request) -> Response:
        """The BankID app's returnUrl after a same-device login (§2.1): back to the order."""
        login_id = request.query_params.get("login", "")
        order = await self._load(login_id)
        nonce = request.query_params.get("nonce", "").encode()  # bytes: any text compares
        if not secrets.compare_digest(nonce, order.return_nonce.encode()):
            raise LoginStateLost(self.name, None, "returnUrl nonce does not match")
        return self._to_wait_page(login_id)

    async def _retry(self, request: Request) -> Response:
        login_id, order = await self._own_order(request, from_form=True)
        await self._cancel_upstream(order)
        device = self._device.of(request)
        fresh = await self._place_order(
            request,
            login_id,
            order.client_id,
            order.client_display,
            order.end_user_ip,
            self._services.pages.locale(request, order.locale),
            order.loa,
            order.identity_hint,
            device.identifier,
        )
        await self._save(login_id, fresh)
        response = self._to_wait_page(login_id)
        self._device.remember(response, device)
        return response

    async def _cancel(self, request: Request) -> Response:
        """Cancel, or choose another e-ID: either way BankID's order is cancelled (§4)."""
        login_id, order = await self._own_order(request, from_form=True)
        form = await request.form(max_files=0, max_fields=8)
        await self._cancel_upstream(order)
        await self._services.store.delete(login_key("order", login_id))
        if "other" in form:
            return RedirectResponse(f"{self._services.base_url}/login/{login_id}", 303)
        raise UserCancelled(self.name, login_id)

    # -- orders --------------------------------------------------------------------------

    async def _place_order(
        self,
        request: Request,
        login_id: str,
        client_id: str,
        client_display: dict[str, str],
        end_user_ip: str,
        locale: str,
        loa: str,
        identity_hint: str | None,
        device_identifier: str,
    ) -> BankIDOrder:
        nonce = secrets.token_urlsafe(16)
        text = self._visible_text(request, client_id, client_display, locale)
        requirement: dict[str, Any] = {"certificatePolicies": self._policies}
        if self._config.pin_code:
            requirement["pinCode"] = True
        if self._config.mrtd:
            requirement["mrtd"] = True
        if identity_hint:  # restricts who may sign; secure start still needs QR or autostart
            requirement["personalNumber"] = identity_hint
        user_agent = request.headers.get("user-agent", "")
        browser_token = self._services.forms.token(request, login_id)
        # §2.1 `web`: binds the order to this browser for BankID's risk assessment
        web = {
            "referringDomain": urlsplit(self._services.base_url).hostname or "",
            "deviceIdentifier": device_identifier,
        }
        if user_agent:
            web["userAgent"] = user_agent[:256]
        body = {
            "endUserIp": end_user_ip,
            "requirement": requirement,
            "userVisibleData": base64.b64encode(text.encode()).decode(),
            "returnUrl": f"{self._base}/return?login={login_id}&nonce={nonce}",
            "web": web,
        }
        unplaced = BankIDOrder(
            order_ref="",
            qr_start_token="",
            qr_start_secret="",
            auto_start_token="",
            started_at=time.time(),
            browser_token=browser_token,
            end_user_ip=end_user_ip,
            client_id=client_id,
            client_display=client_display,
            locale=locale,
            loa=loa,
            mobile=any(marker in user_agent for marker in MOBILE_MARKERS),
            return_nonce=nonce,
            identity_hint=identity_hint,
            required_mrtd=self._config.mrtd,
        )
        try:
            started = await self._client.auth(body)
        except BankIDError as error:
            log.warning("BankID auth refused: %s", error.error_code)
            return replace(unplaced, status="failed", message=error_message(error.error_code))
        return replace(
            unplaced,
            order_ref=started.order_ref,
            qr_start_token=started.qr_start_token,
            qr_start_secret=started.qr_start_secret,
            auto_start_token=started.auto_start_token,
            started_at=time.time(),  # §6: qrTime counts from the response's arrival
        )

    def _visible_text(
        self, request: Request, client_id: str, client_display: dict[str, str], locale: str
    ) -> str:
        """What the BankID app shows: the e-service's name, in the citizen's language (§2.1)."""
        configured = self._config.user_visible_data_per_client.get(client_id)
        configured = configured or self._config.user_visible_data
        if configured:
            template = in_language(configured, locale)
        else:
            template = self._services.pages.translate(request, DEFAULT_VISIBLE_TEXT, locale)
        service = in_language(client_display, locale) or client_id
        return template.replace("{service}", service)  # not str.format: config text is literal

    async def _advance(self, login_id: str, order: BankIDOrder) -> BankIDOrder:
        """One `/collect`, if no poll on any instance made one in the last two seconds."""
        if order.status != "pending":
            return order
        lock = login_key("collect", login_id)
        if not await self._services.store.add(lock, b"1", COLLECT_INTERVAL_SECONDS):
            return order
        try:
            collected = await self._client.collect(order.order_ref)
        except BankIDError as error:
            if error.error_code.lower() == "maintenance":
                return order  # retried silently by the next poll
            log.warning("BankID collect failed: %s", error.error_code)
            order = replace(order, status="failed", message=error_message(error.error_code))
            await self._save(login_id, order)
            return order
        order = self._collected(order, collected)
        await self._save(login_id, order)
        return order

    def _collected(self, order: BankIDOrder, collected: CollectedOrder) -> BankIDOrder:
        hint = collected.hint_code
        if collected.status == "complete" and collected.completion is not None:
            refusal = completion_refusal(order, collected.completion)
            if refusal is not None:
                log.warning("BankID order %s refused: %s", order.order_ref, refusal)
                return replace(order, status="failed", message="RFA22")
            return replace(order, status="complete", completion=collected.completion)
        if collected.status == "failed":
            message = failed_message(hint, order.autostarted)
            return replace(order, status="failed", hint_code=hint, message=message)
        message = pending_message(hint, order.autostarted, order.mobile)
        return replace(order, hint_code=hint, message=message)

    async def _cancel_upstream(self, order: BankIDOrder) -> None:
        if order.status != "pending" or not order.order_ref:
            return
        try:
            await self._client.cancel(order.order_ref)
        except BankIDError as error:  # the order may have ended meanwhile; nothing to undo
            log.info("BankID cancel: %s", error.error_code)

    async def _own_order(
        self, request: Request, from_form: bool = False
    ) -> tuple[str, BankIDOrder]:
        """The order of this browser's login; another browser learns nothing of it."""
        if from_form:
            form = await request.form(max_files=0, max_fields=8)
            login_id = str(form.get("login", ""))
            if not self._services.forms.verify(request, login_id, str(form.get("csrf", ""))):
                raise FormRejected(self.name, login_id, "BankID form failed its CSRF check")
        else:
            login_id = request.query_params.get("login", "")
        order = await self._load(login_id)
        expected = self._services.forms.token(request, login_id)
        if not secrets.compare_digest(expected, order.browser_token):
            raise FormRejected(self.name, None, "BankID order belongs to another browser")
        return login_id, order

    async def _load(self, login_id: str) -> BankIDOrder:
        raw = await self._services.store.get(login_key("order", login_id)) if login_id else None
        if raw is None:
            raise LoginStateLost(self.name, None, "unknown or expired BankID order")
        return BankIDOrder.loads(raw)

    async def _save(self, login_id: str, order: BankIDOrder) -> None:
        await self._services.store.put(
            login_key("order", login_id), order.dumps(), ORDER_TTL_SECONDS
        )

    # -- presentation --------------------------------------------------------------------

    def _render(self, request: Request, login_id: str, order: BankIDOrder) -> Response:
        now = time.time()
        payload = None
        if self._shows_qr(order):
            payload = qr_payload(order.qr_start_token, order.qr_start_secret, order.qr_time(now))
        wait_url = f"{self._base}/wait?login={login_id}"
        context = {
            "provider": self,
            "login_id": login_id,
            "client_id": order.client_id,
            "csrf": self._services.forms.token(request, login_id),
            "page_url": wait_url,
            "wait_url": wait_url,
            "status_url": f"{self._base}/status?login={login_id}",
            "open_url": f"{self._base}/open?login={login_id}",
            "retry_url": f"{self._base}/retry",
            "cancel_url": f"{self._base}/cancel",
            "order": order,
            "message": RFA[order.message],
            "qr": _qr_data_uri(payload) if payload else None,
            "phone_url": self._simulated_phone(payload)
            if payload and self._config.is_simulator
            else None,
            "simulator": self._config.is_simulator,
        }
        return self._services.pages.render(request, "bankid_wait.html", context, 200, order.locale)

    def _shows_qr(self, order: BankIDOrder) -> bool:
        """§6: the QR code only while no app has picked the order up."""
        return order.status == "pending" and order.hint_code in (
            None,
            "outstandingTransaction",
            "noClient",
        )

    def _launch_url(self, order: BankIDOrder) -> str:
        """§7: app link on phones, bankid:/// on computers; returnUrl brings the citizen back."""
        token = quote(order.auto_start_token)
        if self._config.launch_url:
            return f"{self._config.launch_url}?autostarttoken={token}"
        if order.mobile:
            return f"https://app.bankid.com/?autostarttoken={token}&redirect=null"
        return f"bankid:///?autostarttoken={token}&redirect=null"

    def _simulated_phone(self, payload: str) -> str | None:
        if not self._config.launch_url:
            return None
        return f"{self._config.launch_url}?qr={quote(payload)}"

    def _to_wait_page(self, login_id: str) -> Response:
        return RedirectResponse(f"{self._base}/wait?login={login_id}", status_code=303)

    def _finish_url(self, login_id: str) -> str:
        return f"{self._base}{self.finish_path}?login={login_id}"

    def _identity(self, login_id: str, order: BankIDOrder) -> Identity:
        completion = order.completion or {}
        refusal = completion_refusal(order, completion) if completion else "no completion"
        if refusal is not None:  # collect refused it already; this is the last line of defence
            raise AuthenticationFailed(self.name, login_id, refusal)
        user = completion.get("user", {})
        number = parse_identity_number(str(user.get("personalNumber", "")))
        return Identity(
            provider=self.name,
            subject=number.digits,
            loa=order.loa,
            auth_time=int(time.time()),
            personal_identity_number=None if number.is_coordination_number else number.digits,
            coordination_number=number.digits if number.is_coordination_number else None,
            given_name=user.get("givenName"),
            family_name=user.get("surname"),
            name=user.get("name"),
            birthdate=number.birthdate,
            evidence=Evidence(  # the signature and OCSP response name the person: not kept
                upstream=self._config.url,
                reference=order.order_ref,
                device_ip=str(completion.get("device", {}).get("ipAddress", "")) or None,
                certificate_issued=str(completion.get("bankIdIssueDate", "")) or None,
            ),
        )


def in_language(texts: Mapping[str, str], locale: str) -> str:
    """A `{sv: …, en: …}` text in `locale`, else in Swedish, else any."""
    return texts.get(locale) or texts.get("sv") or next(iter(texts.values()), "")


def completion_refusal(order: BankIDOrder, completion: Mapping[str, Any]) -> str | None:
    """Why a completed order must not log anyone in (None: it may). Every requirement BankID was
    given whose outcome the completion shows must have been met; BankID checks them too, but a
    login that rests on a failed check is refused here whatever BankID answered.
    (`pinCode`, `cardReader` and `certificatePolicies` leave no trace in completionData.)"""
    try:
        number = parse_identity_number(str(completion["user"]["personalNumber"]))
    except InvalidIdentityNumber as invalid:
        return f"personalNumber: {invalid.reason}"
    if order.identity_hint and number.digits != order.identity_hint:
        return "another person than requirement.personalNumber"
    step_up = completion.get("stepUp") or {}
    if order.required_mrtd and step_up.get("mrtd") is not True:  # §3.1: false = made and failed
        return "the required passport or ID-card check (stepUp.mrtd) did not pass"
    return None


def _qr_data_uri(payload: str) -> str:
    qr = segno.make(payload, error="l", micro=False)
    data_uri: str = qr.svg_data_uri(scale=6, border=4, dark="#000000", light="#ffffff")
    return data_uri
