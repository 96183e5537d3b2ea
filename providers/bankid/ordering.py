"""Placing an `/auth` or `/sign` order (RP API §2.1): what BankID is asked for (the requirement,
the text the app shows, what is signed, the browser it is bound to) and the order record that
starts from its answer.

A sign flow (`LoginContext.sign`, Signature Extension 1.1) is always a `/sign` order, for a
signature and for an approval alike (oidc-sweden-extensions.md §2.9): the app shows the sign
message (`userVisibleData`) and signs it with `userNonVisibleData`: the e-service's `tbs_data`
verbatim, or for an approval a binding to this request, after Sweden Connect's BankID profile
§4.3.1.2 (`clientId=<URL-encoded client_id>;loginId=<our login id>`, Base64).
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request

from providers.bankid.client import BankIDClient, BankIDError
from providers.bankid.config import DEFAULT_VISIBLE_TEXT, BankIDConfig, in_language
from providers.bankid.device import referring_domain, web_data
from providers.bankid.messages import error_message
from providers.bankid.order import BankIDOrder
from providers.base import ProviderServices, SignRequest, UserMessage
from providers.devices import is_mobile

log = logging.getLogger("portvakt.bankid")

TEST_POLICIES = ["1.2.3.4.5", "1.2.3.4.10", "1.2.3.4.25", "1.2.752.60.1.6"]
PRODUCTION_POLICIES = ["1.2.752.78.1.1", "1.2.752.78.1.2", "1.2.752.78.1.5"]
# §2.1 `/sign`: what BankID takes, in Base64 characters; and the sign messages it can show.
SIGN_VISIBLE_LIMIT = 40_000
SIGN_NON_VISIBLE_LIMIT = 200_000
SIGN_MIME_TYPES = frozenset({"text/plain", "text/markdown"})


def sign_refusal(sign: SignRequest) -> str | None:
    """Why BankID's `/sign` cannot take `sign` (None: it can), judged before BankID is asked:
    a message it cannot show, in any of the languages the citizen may read it in, or data
    longer than it signs."""
    if sign.message.mime_type not in SIGN_MIME_TYPES:
        return f"BankID cannot show a sign message of type {sign.message.mime_type}"
    texts = list(sign.message.texts.values())
    if not texts or not all(0 < len(_base64(text)) <= SIGN_VISIBLE_LIMIT for text in texts):
        return f"a sign message is empty or longer than {SIGN_VISIBLE_LIMIT} Base64 characters"
    if sign.tbs_data is not None and not _signable(sign.tbs_data):
        return f"tbs_data is not Base64 of 1 to {SIGN_NON_VISIBLE_LIMIT} characters"
    return None


def _signable(tbs_data: str) -> bool:
    """What `/sign` takes as `userNonVisibleData`: padded standard Base64, within its limit."""
    if not 0 < len(tbs_data) <= SIGN_NON_VISIBLE_LIMIT:
        return False
    try:
        base64.b64decode(tbs_data, validate=True)
    except binascii.Error:
        return False
    return True


def approval_binding(client_id: str, login_id: str) -> str:
    """An approval's `userNonVisibleData`: the e-service and this login, signed with the text."""
    return _base64(f"clientId={quote(client_id, safe='')};loginId={login_id}")


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass(frozen=True)
class OrderRequest:
    """What an order is placed for: the login, its e-service and the citizen; a retry asks
    for the same again."""

    login_id: str
    client_id: str
    client_display: dict[str, str]
    end_user_ip: str
    locale: str
    loa: str
    identity_hint: str | None
    user_message: UserMessage | None = None
    sign: SignRequest | None = None
    app_device: dict[str, str] | None = None  # §1.5 `app`, sent instead of `web`

    @classmethod
    def again(cls, login_id: str, order: BankIDOrder, locale: str) -> OrderRequest:
        sign = SignRequest.from_dict(order.sign_request) if order.sign_request else None
        return cls(
            login_id,
            order.client_id,
            order.client_display,
            order.end_user_ip,
            locale,
            order.loa,
            order.identity_hint,
            UserMessage.from_dict(order.user_message) if order.user_message else None,
            sign,
            order.app_device,
        )


class OrderPlacer:
    def __init__(
        self, config: BankIDConfig, services: ProviderServices, client: BankIDClient
    ) -> None:
        self._config = config
        self._services = services
        self._client = client
        self._return_url = f"{services.base_url}/providers/{services.name}/return"
        host = config.referring_domain or urlsplit(services.base_url).hostname or ""
        self._referring_domain = referring_domain(host)
        self._policies = config.certificate_policies or (
            PRODUCTION_POLICIES if services.environment == "production" else TEST_POLICIES
        )

    async def place(
        self, request: Request, wanted: OrderRequest, device_identifier: str | None
    ) -> BankIDOrder:
        """The new order; a failed one (with BankID's message) when BankID refused it."""
        nonce = secrets.token_urlsafe(16)
        user_agent = request.headers.get("user-agent", "")
        unplaced = BankIDOrder(
            order_ref="",
            qr_start_token="",
            qr_start_secret="",
            auto_start_token="",
            started_at=self._services.clock(),
            browser_token=self._services.forms.token(request, wanted.login_id),
            end_user_ip=wanted.end_user_ip,
            client_id=wanted.client_id,
            client_display=wanted.client_display,
            locale=wanted.locale,
            loa=wanted.loa,
            mobile=is_mobile(user_agent),
            return_nonce=nonce,
            identity_hint=wanted.identity_hint,
            required_mrtd=self._config.mrtd,
            certificate_policies=self._policies,
            user_message=wanted.user_message.to_dict() if wanted.user_message else None,
            sign_request=wanted.sign.to_dict() if wanted.sign else None,
            app_device=wanted.app_device,
        )
        body = {
            "endUserIp": wanted.end_user_ip,
            "requirement": self._requirement(wanted.identity_hint),
            **self._shown(request, wanted),
            "returnUrl": f"{self._return_url}?login={wanted.login_id}&nonce={nonce}",
            "returnRisk": True,  # §1.3: the provider's risk policy judges completionData.risk
            **self._device(wanted, user_agent, device_identifier),
        }
        place = self._client.sign if wanted.sign else self._client.auth
        try:
            started = await place(body)
        except BankIDError as error:
            log.warning("BankID %s refused: %s", place.__name__, error.error_code)
            return unplaced.failed(error_message(error.error_code))
        return replace(
            unplaced,
            order_ref=started.order_ref,
            qr_start_token=started.qr_start_token,
            qr_start_secret=started.qr_start_secret,
            auto_start_token=started.auto_start_token,
            started_at=self._services.clock(),  # §6: qrTime counts from the response's arrival
        )

    def _requirement(self, identity_hint: str | None) -> dict[str, Any]:
        requirement: dict[str, Any] = {"certificatePolicies": self._policies}
        if self._config.pin_code:
            requirement["pinCode"] = True
        if self._config.mrtd:
            requirement["mrtd"] = True
        if self._config.card_reader:  # BankID on card only with a reader of this class
            requirement["cardReader"] = self._config.card_reader
        if identity_hint:  # restricts who may sign; secure start still needs QR or autostart
            requirement["personalNumber"] = identity_hint
        return requirement

    def phone_requirement(self) -> dict[str, Any]:
        """A phone order's requirement: as a web order's, but the body names the person."""
        return self._requirement(None)

    def _device(
        self, wanted: OrderRequest, user_agent: str, device_identifier: str | None
    ) -> dict[str, dict[str, str]]:
        """§1.4/§1.5: `app` for a registered native app's login, else `web`; never both."""
        if wanted.app_device is not None:
            return {"app": dict(wanted.app_device)}
        return {"web": self._web(user_agent, device_identifier or "")}

    def _web(self, user_agent: str, device_identifier: str) -> dict[str, str]:
        """§2.1 `web`: binds the order to this browser for BankID's risk assessment."""
        return web_data(self._referring_domain, user_agent, device_identifier)

    def _visible_data(self, request: Request, wanted: OrderRequest) -> dict[str, str]:
        """§2.1 `userVisibleData`: the e-service's own message in the citizen's language when it
        sent one (RPar §2.1; /authorize kept it within /auth's 1 500 Base64 characters), with
        `simpleMarkdownV1` for Markdown; else our text naming the e-service."""
        message = wanted.user_message
        text = message.text_for(wanted.locale) if message else None
        if message is None or text is None:
            text = self._visible_text(request, wanted)
        fields = {"userVisibleData": base64.b64encode(text.encode()).decode()}
        if message is not None and message.is_markdown:
            fields["userVisibleDataFormat"] = "simpleMarkdownV1"
        return fields

    def _shown(self, request: Request, wanted: OrderRequest) -> dict[str, str]:
        """What the app shows, and for a sign order what it signs with it."""
        if wanted.sign is not None:
            return self._sign_data(wanted, wanted.sign)
        return self._visible_data(request, wanted)

    def _sign_data(self, wanted: OrderRequest, sign: SignRequest) -> dict[str, str]:
        """§2.1 `/sign`: the sign message in the citizen's language (`simpleMarkdownV1` for
        Markdown) and what is signed with it. `sign_refusal` has judged the sizes."""
        text = sign.message.text_for(wanted.locale) or ""
        fields = {"userVisibleData": _base64(text)}
        if sign.message.is_markdown:
            fields["userVisibleDataFormat"] = "simpleMarkdownV1"
        if sign.tbs_data is not None:
            fields["userNonVisibleData"] = sign.tbs_data  # verbatim: the e-service's Base64
        else:
            fields["userNonVisibleData"] = approval_binding(wanted.client_id, wanted.login_id)
        return fields

    def _visible_text(self, request: Request, wanted: OrderRequest) -> str:
        """What the BankID app shows: the e-service's name, in the citizen's language (§2.1)."""
        configured = self._config.user_visible_data_per_client.get(wanted.client_id)
        configured = configured or self._config.user_visible_data
        if configured:
            template = in_language(configured, wanted.locale)
        else:
            template = self._services.pages.translate(request, DEFAULT_VISIBLE_TEXT, wanted.locale)
        service = in_language(wanted.client_display, wanted.locale) or wanted.client_id
        return template.replace("{service}", service)  # not str.format: config text is literal
