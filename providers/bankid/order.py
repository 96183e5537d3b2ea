"""One login's BankID order: its record in the store, the states it goes through (pending ->
complete or failed, with the message the citizen sees at each hint), and the pacing of
`/collect` that every instance serving the login's polls shares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from providers.bankid.client import CollectedOrder
from providers.bankid.messages import failed_message, pending_message
from providers.bankid.signature_check import SignatureNotVerified, certificate_policies
from providers.base import LoginStateLost, NamespacedStore
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number
from providers.records import StoreRecord, login_key

log = logging.getLogger("portvakt.bankid")

COLLECT_INTERVAL_SECONDS = 2  # §3: collect every two seconds, not more often
ORDER_TTL_SECONDS = 600
# How long a collect claimed by an instance that then died holds the order back. Only cleanup:
# the interval is judged by the clock's timestamps, never by when a record expires.
COLLECT_CLAIM_TTL_SECONDS = 30
QR_HINTS = (None, "outstandingTransaction", "noClient")  # §6: no app has the order yet
ANOTHER_PERSON = "another person than requirement.personalNumber"


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
    user_message: dict[str, Any] | None = None  # UserMessage.to_dict(): shown again on retry
    # SignRequest.to_dict() of a sign order (`/sign`, signed again on retry); None: a login.
    sign_request: dict[str, Any] | None = None
    completed_at: float | None = None  # when a collect saw `complete`, by the provider's clock
    # requirement.certificatePolicies as sent; None: an order from before they were kept.
    certificate_policies: list[str] | None = None
    # The `app` object sent (a registered native app's login; placed again on retry); None:
    # `web`, or an order from before it was kept.
    app_device: dict[str, str] | None = None

    @property
    def signs(self) -> bool:
        """A sign order: `/sign`, for a signature or an approval."""
        return self.sign_request is not None

    def qr_time(self, now: float) -> int:
        return max(0, int(now - self.started_at))

    @property
    def shows_qr(self) -> bool:
        """§6: the QR code only while no app has picked the order up."""
        return self.status == "pending" and self.hint_code in QR_HINTS

    def failed(self, message: str) -> BankIDOrder:
        return replace(self, status="failed", message=message)

    def autostart(self) -> BankIDOrder:
        """'Open BankID on this device' was pressed: RFA13's wording instead of RFA1's."""
        order = replace(self, autostarted=True)
        if order.status != "pending":
            return order
        return replace(order, message=pending_message(order.hint_code, True, order.mobile))

    def collected(self, collected: CollectedOrder, now: float) -> BankIDOrder:
        """The order after BankID's `/collect` answer, which arrived at `now`."""
        hint = collected.hint_code
        if collected.status == "complete" and collected.completion is not None:
            refusal = completion_refusal(self, collected.completion)
            if refusal is not None:
                log.warning("BankID order %s refused: %s", self.order_ref, refusal)
                return self.failed("RFA22")
            completion = collected.completion
            return replace(self, status="complete", completion=completion, completed_at=now)
        if collected.status == "failed":
            message = failed_message(hint, self.autostarted)
            return replace(self, status="failed", hint_code=hint, message=message)
        message = pending_message(hint, self.autostarted, self.mobile)
        return replace(self, hint_code=hint, message=message)


def completion_refusal(order: BankIDOrder, completion: Mapping[str, Any]) -> str | None:
    """Why a completed order must not log anyone in (None: it may). Every requirement BankID was
        given whose outcome the completion shows must have been met; BankID checks them too, but a
        login that rests on a failed check is refused here whatever BankID answered.
        (`pinCode` and `cardReader` leave no trace in completionData; `certificatePolicies` only in
    the certificate its signature was made with.)"""
    try:
        number = parse_identity_number(str(completion["user"]["personalNumber"]))
    except InvalidIdentityNumber as invalid:
        return f"personalNumber: {invalid.reason}"
    if order.identity_hint and number.digits != order.identity_hint:
        return ANOTHER_PERSON
    step_up = completion.get("stepUp") or {}
    if order.required_mrtd and step_up.get("mrtd") is not True:  # §3.1: false = made and failed
        return "the required passport or ID-card check (stepUp.mrtd) did not pass"
    return policy_refusal(order.certificate_policies, completion.get("signature"))


def policy_refusal(policies: list[str] | None, signature: Any) -> str | None:
    """§2.2 certificatePolicies, as far as the completion shows it: the certificate in its
    signature must hold one of the policies asked for (`1.2.752.78.*` asks for a prefix). No
    signature, no check: BankID alone had it (a sign order without one fails by itself)."""
    if not policies or not isinstance(signature, str) or not signature:
        return None
    try:
        held = certificate_policies(signature)
    except SignatureNotVerified:
        return "the certificate in the signature cannot be read"
    if any(_policy_matches(oid, wanted) for oid in held for wanted in policies):
        return None
    return "the certificate's policy is none of requirement.certificatePolicies"


def _policy_matches(oid: str, wanted: str) -> bool:
    return oid == wanted or (wanted.endswith(".*") and oid.startswith(wanted[:-1]))


class Orders:
    """The orders of one provider in the store, and whose turn it is to collect."""

    def __init__(self, provider: str, store: NamespacedStore, clock: Callable[[], float]) -> None:
        self._provider = provider
        self._store = store
        self._clock = clock

    async def load(self, login_id: str) -> BankIDOrder:
        raw = await self._store.get(login_key("order", login_id)) if login_id else None
        if raw is None:
            raise LoginStateLost(self._provider, None, "unknown or expired BankID order")
        return BankIDOrder.loads(raw)

    async def save(self, login_id: str, order: BankIDOrder) -> None:
        await self._store.put(login_key("order", login_id), order.dumps(), ORDER_TTL_SECONDS)

    async def delete(self, login_id: str) -> None:
        await self._store.delete(login_key("order", login_id))

    async def claim_collect(self, login_id: str) -> bool:
        """True for exactly one caller, on any instance, once the last collect of this order is
        COLLECT_INTERVAL_SECONDS old by the clock. Each claim is a write-once record named after
        the claim before it, so of the callers that saw the same last collect one wins."""
        collected_key = login_key("collected", login_id)
        raw = await self._store.get(collected_key)
        last = float(raw) if raw is not None else None
        now = self._clock()
        if last is not None and now - last < COLLECT_INTERVAL_SECONDS:
            return False
        claim = f"{login_key('collect', login_id)}:{raw.decode() if raw else 'first'}"
        if not await self._store.add(claim, b"1", COLLECT_CLAIM_TTL_SECONDS):
            return False
        await self._store.put(collected_key, repr(now).encode(), ORDER_TTL_SECONDS)
        return True
