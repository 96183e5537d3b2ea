"""BankID phone orders (`phone/auth`, `phone/sign`; bankid-2026-and-ciba.md §1.10, §3.9): the
back end of CIBA poll mode (`AuthenticatesByPhone`), with no browser taking part.

The body names the person (`personalNumber`, always: a phone order has no QR code or autostart
to route it) and who called whom (`callInitiator`, exactly `user` or `RP`); the app shows the
binding message, or our text naming the organisation, and asks the citizen whether they are in a
call with it. Never `endUserIp`, `returnUrl`, `returnRisk`, `web` or `app`: BankID's phone
endpoints take none of them. `userNonVisibleData` binds the order to the client and the
gateway's request (`clientId=…;requestId=…`, as the web flow's approval binding), or is the
`tbs_data` a caller signs. The orderRef stays in the provider's store record: the gateway holds
only a random handle to it.

A completion is turned into an Identity exactly as a web order's is (`BankIDProvider._identity`),
so the same requirement checks apply; one of another person than the one asked for is a failure,
never an identity.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from providers.bankid.client import BankIDClient, BankIDError, CollectedOrder
from providers.bankid.config import BankIDConfig, in_language
from providers.bankid.messages import N_
from providers.bankid.order import BankIDOrder
from providers.bankid.ordering import OrderPlacer, sign_refusal
from providers.base import (
    AuthenticatesByPhone,
    AuthenticationFailed,
    Identity,
    PhoneRequest,
    PhoneStatus,
    ProviderError,
    ProviderServices,
    ProviderUnavailable,
    SignatureNotMade,
    UnmetAssurance,
    choose_loa,
)
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number
from providers.records import StoreRecord, login_key

log = logging.getLogger("portvakt.bankid")

PHONE_ORDER_TTL_SECONDS = 600
CALL_INITIATORS = ("user", "RP")
AUTH_VISIBLE_LIMIT = 1_500  # Base64 characters, as /auth (phone's own limit: unverified)
PHONE_LOCALE = "sv"  # no citizen's browser to ask: Swedish, as BankID's app is set by default
DEFAULT_PHONE_TEXT = N_("{organisation} asks you to identify yourself during your call")
# BankID said no to the request itself; any other error means BankID could not serve it.
REFUSALS = ("alreadyInProgress", "invalidParameters")
# A request with nothing to negotiate: the text is asked for in PHONE_LOCALE.
NO_BROWSER = Request(
    {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
)

IdentityOf = Callable[[str, BankIDOrder], Identity]


@dataclass(frozen=True)
class PhoneOrder(StoreRecord):
    """One phone order, in the store under `phone:{<handle>}`; the handle never names it."""

    order_ref: str
    request_id: str
    client_id: str
    personal_identity_number: str
    call_initiator: str
    loa: str
    started_at: float
    client_display: dict[str, str] = field(default_factory=dict)
    sign_request: dict[str, Any] | None = None
    required_mrtd: bool = False
    status: str = "pending"
    hint_code: str | None = None
    completion: dict[str, Any] | None = None
    completed_at: float | None = None

    def as_web_order(self) -> BankIDOrder:
        """The order as the web flow keeps it, for the one mapping of a completion."""
        return BankIDOrder(
            order_ref=self.order_ref,
            qr_start_token="",
            qr_start_secret="",
            auto_start_token="",
            started_at=self.started_at,
            browser_token="",
            end_user_ip="",
            client_id=self.client_id,
            locale=PHONE_LOCALE,
            loa=self.loa,
            mobile=False,
            return_nonce="",
            identity_hint=self.personal_identity_number,  # the completion must be this person
            required_mrtd=self.required_mrtd,
            client_display=self.client_display,
            status=self.status,
            completion=self.completion,
            sign_request=self.sign_request,
            completed_at=self.completed_at,
        )


def phone_binding(client_id: str, request_id: str) -> str:
    """`userNonVisibleData` of a phone order: the client and the gateway's request, Base64."""
    return _base64(f"clientId={quote(client_id, safe='')};requestId={request_id}")


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def outcome_of(hint: str | None) -> str:
    """CIBA's answer to a failed order (§3.9): expired, or else denied."""
    return "expired_token" if hint == "expiredTransaction" else "access_denied"


class PhoneOrders:
    """Starts, collects and cancels phone orders for one BankID provider."""

    def __init__(
        self,
        config: BankIDConfig,
        services: ProviderServices,
        client: BankIDClient,
        placer: OrderPlacer,
        identity_of: IdentityOf,
    ) -> None:
        self._name = services.name
        self._config = config
        self._services = services
        self._client = client
        self._placer = placer
        self._identity_of = identity_of

    async def start(self, request: PhoneRequest) -> str:
        loa = self._checked(request)
        body = {
            "personalNumber": request.personal_identity_number,
            "callInitiator": request.call_initiator,
            "requirement": self._placer.phone_requirement(),
            **self._shown(request),
        }
        try:
            order_ref = await self._client.phone(body, sign=request.sign is not None)
        except BankIDError as error:
            raise self._error(error, "phone order") from error
        handle = secrets.token_urlsafe(32)
        order = PhoneOrder(
            order_ref=order_ref,
            request_id=request.request_id,
            client_id=request.client_id,
            personal_identity_number=request.personal_identity_number,
            call_initiator=request.call_initiator,
            loa=loa,
            started_at=self._services.clock(),
            client_display=dict(request.client_display),
            sign_request=request.sign.to_dict() if request.sign else None,
            required_mrtd=self._config.mrtd,
        )
        await self._save(handle, order)
        log.info("BankID phone order %s started (%s)", order_ref, request.call_initiator)
        return handle

    async def status(self, handle: str) -> PhoneStatus:
        order = await self._load(handle)
        if order is None:  # never started here, or long over
            return PhoneStatus("failed", outcome="expired_token")
        if order.status == "pending":
            order = await self._collect(order)
            await self._save(handle, order)
        return self._status_of(order)

    async def cancel(self, handle: str) -> None:
        order = await self._load(handle)
        if order is None or order.status != "pending":
            return
        try:
            await self._client.cancel(order.order_ref)
        except BankIDError as error:  # ended meanwhile, or BankID away: nothing to undo
            log.info("BankID cancel of phone order %s: %s", order.order_ref, error.error_code)
        await self._save(handle, replace(order, status="failed", hint_code=None))

    # -- starting ------------------------------------------------------------------------

    def _checked(self, request: PhoneRequest) -> str:
        """The LoA to deliver; refuses what BankID must never be sent."""
        if request.call_initiator not in CALL_INITIATORS:
            raise AuthenticationFailed(self._name, None, "callInitiator must be user or RP")
        try:
            number = parse_identity_number(request.personal_identity_number)
        except InvalidIdentityNumber as invalid:
            raise AuthenticationFailed(self._name, None, invalid.reason) from None
        if number.digits != request.personal_identity_number:
            raise AuthenticationFailed(self._name, None, "not 12 digits")
        if request.sign is not None and (refusal := sign_refusal(request.sign)) is not None:
            raise SignatureNotMade(self._name, None, refusal)
        loa = choose_loa(frozenset(self._config.loa), request.requested_loa, self._config.loa[0])
        if loa is None:
            raise UnmetAssurance(self._name, None, "no requested LoA is configured")
        return loa

    def _shown(self, request: PhoneRequest) -> dict[str, str]:
        """What the app shows, and what is signed with it."""
        binding = phone_binding(request.client_id, request.request_id)
        if request.sign is not None:
            message = request.sign.message
            fields = {"userVisibleData": _base64(message.text_for(PHONE_LOCALE) or "")}
            if message.is_markdown:
                fields["userVisibleDataFormat"] = "simpleMarkdownV1"
            fields["userNonVisibleData"] = request.sign.tbs_data or binding
            return fields
        text = request.binding_message or self._default_text(request)
        shown = _base64(text)
        if len(shown) > AUTH_VISIBLE_LIMIT:
            raise AuthenticationFailed(self._name, None, "the binding message is too long")
        return {"userVisibleData": shown, "userNonVisibleData": binding}

    def _default_text(self, request: PhoneRequest) -> str:
        template = self._services.pages.translate(NO_BROWSER, DEFAULT_PHONE_TEXT, PHONE_LOCALE)
        organisation = in_language(request.client_display, PHONE_LOCALE) or request.client_id
        return template.replace("{organisation}", organisation)  # config text is literal

    def _error(self, error: BankIDError, what: str) -> ProviderError:
        log.warning("BankID %s: %s", what, error.error_code)
        if error.error_code in REFUSALS:
            return AuthenticationFailed(self._name, None, f"BankID refused: {error.error_code}")
        return ProviderUnavailable(self._name, None, f"BankID: {error.error_code}")

    # -- collecting ----------------------------------------------------------------------

    async def _collect(self, order: PhoneOrder) -> PhoneOrder:
        try:
            collected = await self._client.collect(order.order_ref)
        except BankIDError as error:
            if error.error_code not in REFUSALS:
                raise self._error(error, "collect of a phone order") from error
            log.warning("BankID phone order %s is gone: %s", order.order_ref, error.error_code)
            return replace(order, status="failed", hint_code=None)
        return self._after(order, collected)

    def _after(self, order: PhoneOrder, collected: CollectedOrder) -> PhoneOrder:
        if collected.hint_code == "userDeclinedCall":  # §3.9: a sign of fraud, for the log
            log.warning("BankID phone order %s: the citizen is not in this call", order.order_ref)
        if collected.status != "complete":
            return replace(order, status=collected.status, hint_code=collected.hint_code)
        done = replace(
            order,
            status="complete",
            hint_code=None,
            completion=collected.completion,
            completed_at=self._services.clock(),
        )
        try:
            self._identity_of(order.request_id, done.as_web_order())
        except ProviderError as refused:  # another person, a failed check: nobody
            log.warning("BankID phone order %s refused: %s", order.order_ref, refused.reason)
            return replace(order, status="failed", hint_code=None)
        return done

    def _status_of(self, order: PhoneOrder) -> PhoneStatus:
        if order.status == "complete":
            identity = self._identity_of(order.request_id, order.as_web_order())
            return PhoneStatus("complete", identity=identity)
        if order.status == "failed":
            return PhoneStatus("failed", order.hint_code, outcome=outcome_of(order.hint_code))
        return PhoneStatus("pending", order.hint_code)

    async def _load(self, handle: str) -> PhoneOrder | None:
        raw = await self._services.store.get(login_key("phone", handle)) if handle else None
        return PhoneOrder.loads(raw) if raw is not None else None

    async def _save(self, handle: str, order: PhoneOrder) -> None:
        key = login_key("phone", handle)
        await self._services.store.put(key, order.dumps(), PHONE_ORDER_TTL_SECONDS)


class BankIDPhone(AuthenticatesByPhone):
    """The capability as the BankID provider mixes it in; its `_phone` does the work."""

    _phone: PhoneOrders

    async def start_phone(self, request: PhoneRequest) -> str:
        return await self._phone.start(request)

    async def phone_status(self, handle: str) -> PhoneStatus:
        return await self._phone.status(handle)

    async def cancel_phone(self, handle: str) -> None:
        await self._phone.cancel(handle)
