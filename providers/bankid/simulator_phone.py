"""The simulated BankID app for phone orders (`/phone/auth`, `/phone/sign`): the page
`/phone-calls`, where a person playing the citizen sees the phone orders waiting (the number
masked, the organisation, who called whom, the text), opens one, answers the app's question
whether they are in a call with the organisation, and identifies or signs. What the real app
shows (a phone icon, the organisation's name, a yes/no question worded by who called, a fraud
warning on "no") is digested in bankid-2026-and-ciba.md §1.10.

Marked TEST, every value escaped; no CSRF token, since this page is the citizen's phone, not a
page of the gateway. Any form it did not send answers 400, never 5xx.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

# simulator.py imports this module only when a simulator is built, so no cycle at import time.
from providers.bankid.simulator import BankIDSimulator, Order, SimulatorError, _page
from providers.bankid.simulator_evidence import RP_DISPLAY_NAME
from providers.forms import read_form

TITLE = "Simulated BankID app: phone calls — TEST"
ORGANISATION = RP_DISPLAY_NAME  # the name the real app shows comes from the RP certificate
Act = Callable[[str, dict[str, str]], object]  # (orderRef, the form's fields)


def masked(number: str) -> str:
    """The birth date, not the whole number: enough to pick the right test person."""
    return f"{number[:8]}-****"


def _who_called(order: Order) -> str:
    if order.call_initiator == "RP":
        return f"{ORGANISATION} called you"
    return f"You called {ORGANISATION}"


def _question(order: Order) -> str:
    if order.call_initiator == "RP":
        return f"Is {ORGANISATION} on the phone with you right now?"
    return f"Did you call {ORGANISATION}, and are you still in that call?"


class PhoneCallsPage:
    """The routes of the page, acting through the simulator's own controls."""

    def __init__(self, simulator: BankIDSimulator) -> None:
        self._simulator = simulator
        self._path = f"{simulator.mount_path}/phone-calls"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/phone-calls", self._list),
            Route("/phone-calls/open", self._open, methods=["POST"]),
            Route("/phone-calls/answer", self._answer, methods=["POST"]),
            Route("/phone-calls/identify", self._identify, methods=["POST"]),
            Route("/phone-calls/cancel", self._cancel, methods=["POST"]),
        ]

    async def _list(self, _request: Request) -> Response:
        waiting = [
            order
            for order in self._simulator.orders.values()
            if order.call_initiator is not None and order.status == "pending"
        ]
        intro = (
            "<p>Phone orders (BankID <code>phone/auth</code> and <code>phone/sign</code>) wait "
            "here for the person they name. Play that person: open the order in the app, say "
            "whether you are in a call with the organisation, then identify or sign.</p>"
        )
        if not waiting:
            body = intro + (
                "<p>No phone orders are waiting. This page does not refresh itself: reload it "
                "once the case worker has started an identification.</p>"
            )
        else:
            body = intro + "".join(self._call(n, order) for n, order in enumerate(waiting, 1))
        return self._page(body)

    def _call(self, n: int, order: Order) -> str:
        number = str(order.requirement.get("personalNumber", ""))
        text = html.escape(order.user_visible_data or "(no text)")
        details = (
            f'<section aria-labelledby="call-{n}"><h2 id="call-{n}">'
            f"{html.escape(_who_called(order))}</h2><dl>"
            f"<dt>Personal identity number</dt><dd>{html.escape(masked(number))}</dd>"
            f"<dt>Organisation</dt><dd>{html.escape(ORGANISATION)}</dd>"
            f"<dt>{'Text to sign' if order.sign else 'Text'}</dt><dd>{text}</dd>"
            f"<dt>Status</dt><dd>{html.escape(order.hint_code or '')}</dd></dl>"
        )
        return details + self._actions(order) + "</section>"

    def _actions(self, order: Order) -> str:
        if order.started_via is None:
            return self._form("open", order, "Open in the BankID app")
        if order.hint_code == "userCallConfirm":
            ref = html.escape(order.order_ref)
            return (
                f'<form method="post" action="{self._path}/answer">'
                f'<input type="hidden" name="orderRef" value="{ref}">'
                f"<p>{html.escape(_question(order))}</p><p>"
                '<button type="submit" class="button" name="answer" value="yes">Yes</button> '
                '<button type="submit" class="button button-secondary" name="answer" value="no">'
                "No</button></p></form>"
            )
        verb = "Sign" if order.sign else "Identify"
        cancel = self._form("cancel", order, "Cancel", "button button-secondary")
        return self._form("identify", order, verb) + cancel

    def _form(self, action: str, order: Order, label: str, style: str = "button") -> str:
        ref = html.escape(order.order_ref)
        return (
            f'<form method="post" action="{self._path}/{action}">'
            f'<input type="hidden" name="orderRef" value="{ref}">'
            f'<p><button type="submit" class="{style}">{label}</button></p></form>'
        )

    async def _open(self, request: Request) -> Response:
        return await self._act(request, lambda ref, _form: self._simulator.open_call(ref))

    async def _answer(self, request: Request) -> Response:
        def answer(ref: str, form: dict[str, str]) -> object:
            if form.get("answer") == "yes":
                return self._simulator.confirm_call(ref)
            if form.get("answer") == "no":
                self._simulator.decline_call(ref)
                return None
            raise SimulatorError("answer yes or no")

        return await self._act(request, answer)

    async def _identify(self, request: Request) -> Response:
        def identify(ref: str, _form: dict[str, str]) -> None:
            order = self._simulator.phone_order(ref)
            if order.started_via is None or order.hint_code == "userCallConfirm":
                raise SimulatorError("open the order and answer the question about the call first")
            self._simulator.identify_by_phone(ref)

        return await self._act(request, identify)

    async def _cancel(self, request: Request) -> Response:
        return await self._act(request, lambda ref, _form: self._simulator.cancel_in_app(ref))

    async def _act(self, request: Request, act: Act) -> Response:
        """Does it, then back to the list (303); a form not of this page gets a 400 page."""
        try:
            form = await read_form(request, 4)
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
            ref = fields.get("orderRef", "")
            self._simulator.phone_order(ref)  # only pending phone orders, by orderRef
            act(ref, fields)
        except SimulatorError as error:
            back = f'<p><a href="{self._path}">Back to the phone calls</a></p>'
            return self._page(f'<p class="error">{html.escape(str(error))}.</p>{back}', 400)
        return RedirectResponse(self._path, status_code=303)

    @staticmethod
    def _page(body: str, status: int = 200) -> Response:
        return _page(TITLE, body, status)
