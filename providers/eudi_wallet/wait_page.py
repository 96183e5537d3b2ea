"""What the citizen sees while the wallet is asked: the wallet page with the same-device link
(`openid4vp://…`, opened on this phone) and the QR code of the cross-device request, and the
state its script polls (`/status`). Without JavaScript, the page's refresh link does the same."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import segno
from starlette.requests import Request
from starlette.responses import Response

from providers.base import ProviderServices
from providers.devices import is_mobile
from providers.eudi_wallet.config import EudiWalletConfig
from providers.eudi_wallet.messages import REFUSAL_TEXTS, STATE_TEXTS
from providers.eudi_wallet.transactions import WalletLogin

# States in which the citizen can only try again, choose another e-ID or cancel.
ENDED_STATES = frozenset({"expired", "declined", "wallet_error", "failed"})


class WalletPage:
    def __init__(
        self, config: EudiWalletConfig, services: ProviderServices, finish_path: str
    ) -> None:
        self._config = config
        self._services = services
        self._base = f"{services.base_url}/providers/{services.name}"
        self._finish_path = finish_path

    def url(self, login_id: str) -> str:
        return f"{self._base}/wait?login={login_id}"

    def finish_url(self, login_id: str, response_code: str | None = None) -> str:
        code = f"&response_code={response_code}" if response_code else ""
        return f"{self._base}{self._finish_path}?login={login_id}{code}"

    def request_uri(self, request_id: str) -> str:
        return f"{self._base}/request/{request_id}"

    def response_uri(self, request_id: str) -> str:
        return f"{self._base}/response/{request_id}"

    def wallet_link(self, client_id: str, request_id: str) -> str:
        """OpenID4VP §5.10: the request by reference, which the wallet fetches by POST."""
        query = urlencode(
            {
                "client_id": client_id,
                "request_uri": self.request_uri(request_id),
                "request_uri_method": "post",
            }
        )
        base = self._config.wallet_url  # openid4vp://, haip-vp:// or an https link
        separator = "&" if "?" in base else "?"
        return f"{base}{separator}{query}"

    def render(
        self, request: Request, login: WalletLogin, state: str, reason: str | None, client_id: str
    ) -> Response:
        same = self.wallet_link(client_id, login.requests["same"])
        cross = self.wallet_link(client_id, login.requests["cross"])
        simulator = self._config.simulator_url
        context = {
            "provider": {"name": self._services.name, "display": self._config.display},
            "login_id": login.login_id,
            "client_id": login.client_id,  # the page names the e-service, as every login page
            "csrf": self._services.forms.token(request, login.login_id),
            "state": state,
            "ended": state in ENDED_STATES,
            "message": _text(state, reason),
            "same_device_link": same,
            "qr": _qr_data_uri(cross),
            "cross_device_link": cross,
            "simulator_same": f"{simulator}?request={quote(same)}" if simulator else None,
            "simulator_cross": f"{simulator}?request={quote(cross)}" if simulator else None,
            "status_url": f"{self._base}/status?login={login.login_id}",
            "wait_url": self.url(login.login_id),
            "retry_url": f"{self._base}/retry",
            "cancel_url": f"{self._base}/cancel",
            "simulator": simulator is not None,
            "mobile": is_mobile(request.headers.get("user-agent", "")),
        }
        pages = self._services.pages
        return pages.render(request, "eudi_wallet_wait.html", context, 200, login.locale)

    def status(
        self, request: Request, login: WalletLogin, state: str, reason: str | None
    ) -> dict[str, Any]:
        text = self._services.pages.translate(request, _text(state, reason), login.locale)
        body: dict[str, Any] = {"status": state, "text": text}
        if state == "complete":
            body["next"] = self.finish_url(login.login_id)
        return body


def _text(state: str, reason: str | None) -> str:
    if state == "failed":
        return REFUSAL_TEXTS.get(reason or "", REFUSAL_TEXTS["wallet_invalid"])
    return STATE_TEXTS[state]


def _qr_data_uri(payload: str) -> str:
    qr = segno.make(payload, error="l", micro=False)
    data_uri: str = qr.svg_data_uri(scale=4, border=4, dark="#000000", light="#ffffff")
    return data_uri
