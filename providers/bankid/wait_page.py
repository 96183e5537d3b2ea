"""What the citizen sees while the order runs: the page with the animated QR code and the
"open BankID on this device" button, and the state its script polls once a second (`/status`).
The QR payload is computed here each second; the qrStartSecret never leaves the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import segno
from starlette.requests import Request
from starlette.responses import Response

from providers.bankid.client import qr_payload
from providers.bankid.config import BankIDConfig
from providers.bankid.messages import RFA
from providers.bankid.order import BankIDOrder
from providers.base import ProviderServices


class WaitPage:
    def __init__(self, config: BankIDConfig, services: ProviderServices, finish_path: str) -> None:
        self._config = config
        self._services = services
        self._clock: Callable[[], float] = services.clock
        self._base = f"{services.base_url}/providers/{services.name}"
        self._finish_path = finish_path

    def url(self, login_id: str) -> str:
        return f"{self._base}/wait?login={login_id}"

    def finish_url(self, login_id: str) -> str:
        return f"{self._base}{self._finish_path}?login={login_id}"

    def render(self, request: Request, login_id: str, order: BankIDOrder) -> Response:
        payload = self._qr_payload(order) if order.shows_qr else None
        simulator = self._config.is_simulator
        context = {
            "provider": {"name": self._services.name, "display": self._config.display},
            "login_id": login_id,
            "client_id": order.client_id,
            "csrf": self._services.forms.token(request, login_id),
            "page_url": self.url(login_id),
            "wait_url": self.url(login_id),
            "status_url": f"{self._base}/status?login={login_id}",
            "open_url": f"{self._base}/open?login={login_id}",
            "retry_url": f"{self._base}/retry",
            "cancel_url": f"{self._base}/cancel",
            "order": order,
            "message": RFA[order.message],
            "qr": _qr_data_uri(payload) if payload else None,
            "phone_url": self._simulated_phone(payload) if payload and simulator else None,
            "simulator": simulator,
            "signing": order.signs,
        }
        return self._services.pages.render(request, "bankid_wait.html", context, 200, order.locale)

    def status(self, request: Request, login_id: str, order: BankIDOrder) -> dict[str, Any]:
        """The state, the message and the QR, as the page's script polls them."""
        body: dict[str, Any] = {"status": order.status, "message": order.message}
        body["text"] = self._services.pages.translate(request, RFA[order.message], order.locale)
        if order.status == "complete":
            body["next"] = self.finish_url(login_id)
        elif order.shows_qr:
            payload = self._qr_payload(order)
            body["qr"] = _qr_data_uri(payload)
            if self._config.is_simulator:
                body["phone"] = self._simulated_phone(payload)
        return body

    def launch_url(self, order: BankIDOrder) -> str:
        """§7: app link on phones, bankid:/// on computers; returnUrl brings the citizen back."""
        token = quote(order.auto_start_token)
        if self._config.launch_url:
            return f"{self._config.launch_url}?autostarttoken={token}"
        if order.mobile:
            return f"https://app.bankid.com/?autostarttoken={token}&redirect=null"
        return f"bankid:///?autostarttoken={token}&redirect=null"

    def _qr_payload(self, order: BankIDOrder) -> str:
        """§6: the animated QR's payload for this second of the order's life."""
        qr_time = order.qr_time(self._clock())
        return qr_payload(order.qr_start_token, order.qr_start_secret, qr_time)

    def _simulated_phone(self, payload: str) -> str | None:
        if not self._config.launch_url:
            return None
        return f"{self._config.launch_url}?qr={quote(payload)}"


def _qr_data_uri(payload: str) -> str:
    qr = segno.make(payload, error="l", micro=False)
    data_uri: str = qr.svg_data_uri(scale=6, border=4, dark="#000000", light="#ffffff")
    return data_uri
