"""BankID phone orders behind `AuthenticatesByPhone` (bankid-2026-and-ciba.md §1.10, §3.9): the
provider as the gateway's registry builds it (`build_providers`, with the real store: memory and
Redis), called the way the CIBA endpoint will call it, against the simulator over HTTPS with
mutual TLS: `start_phone` places `phone/auth` or `phone/sign`, `phone_status` collects once and
maps the answer, `cancel_phone` cancels."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.login.browser import BrowserBinding
from gateway.login.registry import GatewayServices, build_providers
from gateway.store import open_store
from gateway.ui.pages import PageRenderer
from providers.bankid.client import MAINTENANCE_RETRIES
from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from providers.base import (
    AuthenticatesByPhone,
    AuthenticationFailed,
    NoUpstreamMetrics,
    PhoneRequest,
    PhoneStatus,
    ProviderError,
    ProviderUnavailable,
    SignRequest,
    UserMessage,
    no_sessions_to_end,
)
from tests.doubles.tls import LocalPKI
from tests.harness import base_settings, free_port
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import Clock, ScriptedBankID, bankid_provider

# The BankID module's fixtures (test CA, clock, simulator and scripted BankID over mutual TLS).
pki, clock, simulator, scripted = (
    bankid_tests.pki,
    bankid_tests.clock,
    bankid_tests.simulator,
    bankid_tests.scripted,
)

PERSON = "196408233234"  # Ingrid Testsson
OTHER = "199908072391"
SECRET = "test-secret-key-" + "x" * 32
CONTACT_CENTRE = {"sv": "Kontaktcenter Exempelby", "en": "Contact centre, Exempelby"}
BINDING = "Samtal med Kontaktcenter, ärende 4711"
ORDER_REF = "131daac9-16c6-4618-beb0-365768f37288"
WEB_FIELDS = {"endUserIp", "returnUrl", "returnRisk", "web", "app"}


def b64decode(value: str) -> str:
    return base64.b64decode(value).decode()


def phone_request(**changes: Any) -> PhoneRequest:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "client_id": "contact-centre",
        "client_display": CONTACT_CENTRE,
        "personal_identity_number": PERSON,
        "call_initiator": "RP",
        "binding_message": BINDING,
        **changes,
    }
    return PhoneRequest(**fields)


@asynccontextmanager
async def registry_provider(
    store_url: str | None, url: str, pki: LocalPKI, clock: Clock, **config: Any
) -> AsyncIterator[AuthenticatesByPhone]:
    """The BankID provider as create_app builds it, on this test's event loop."""
    issuer = f"http://127.0.0.1:{free_port()}"
    provider_config = bankid_provider(pki, url, **config)
    settings = base_settings(issuer, store_url, providers={"bankid": provider_config})
    async with open_store(settings.store) as store:
        pages = PageRenderer(settings.environment, gateway_host=issuer.removeprefix("http://"))
        shared = GatewayServices(
            store,
            pages,
            BrowserBinding(SECRET, secure=False),
            lambda _name: NoUpstreamMetrics(),
            no_sessions_to_end,
            clock,
        )
        providers = build_providers(settings, shared, SECRET)
        await providers.astart()
        try:
            provider = providers["bankid"]
            assert isinstance(provider, AuthenticatesByPhone)
            yield provider
        finally:
            await providers.aclose()


@pytest.fixture
def bankid(simulator: tuple[BankIDSimulator, str]) -> Iterator[BankIDSimulator]:
    """The simulator with no automatic citizen: each test plays the phone itself; no phone
    order outlives its test (a pending one would make the next one alreadyInProgress)."""
    sim, _ = simulator
    sim.behave(None)
    yield sim
    for order in sim.orders.values():
        order.status = "failed" if order.status == "pending" else order.status
    sim.behave(UserBehaviour())


@pytest.fixture
async def provider(
    store_url: str | None,
    simulator: tuple[BankIDSimulator, str],
    pki: LocalPKI,
    clock: Clock,
    bankid: BankIDSimulator,
) -> AsyncIterator[AuthenticatesByPhone]:
    async with registry_provider(store_url, simulator[1], pki, clock) as built:
        yield built


def last_call(sim: BankIDSimulator, path: str) -> dict[str, Any]:
    return [body for called, body in sim.calls if called == path][-1]


async def test_a_confirmed_call_gives_the_identity_of_the_person_asked_for(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator, clock: Clock
) -> None:
    handle = await provider.start_phone(phone_request())
    order_ref = bankid.phone_order(PERSON).order_ref
    assert handle != order_ref and order_ref not in handle
    assert 0 < len(handle) <= 512
    walk = []
    for step in (None, bankid.open_call, bankid.confirm_call):
        if step is not None:
            step(PERSON)
        walk.append(await provider.phone_status(handle))
    assert walk == [
        PhoneStatus("pending", "outstandingTransaction"),
        PhoneStatus("pending", "userCallConfirm"),
        PhoneStatus("pending", "userSign"),
    ]
    bankid.identify_by_phone(PERSON)
    clock.advance(1)
    done = await provider.phone_status(handle)
    identity = done.identity
    assert done.state == "complete" and identity is not None and done.outcome is None
    assert (identity.personal_identity_number, identity.subject) == (PERSON, PERSON)
    assert (identity.given_name, identity.family_name) == ("Ingrid", "Testsson")
    assert identity.auth_time == int(clock()) and identity.loa
    assert identity.evidence is not None and identity.evidence.reference == order_ref
    assert identity.user_signature is None  # an identification, not a signature
    assert await provider.phone_status(handle) == done  # asked again: the same answer
    await provider.cancel_phone(handle)  # over already: quiet
    assert bankid.collect_count(order_ref) == 4


async def test_the_phone_auth_body_is_what_bankid_documents_and_no_web_field(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator
) -> None:
    await provider.start_phone(phone_request(request_id="req-2", call_initiator="user"))
    body = last_call(bankid, "phone/auth")
    assert not WEB_FIELDS & set(body)
    assert (body["personalNumber"], body["callInitiator"]) == (PERSON, "user")
    assert b64decode(body["userVisibleData"]) == BINDING
    assert "userVisibleDataFormat" not in body  # plain text
    assert b64decode(body["userNonVisibleData"]) == "clientId=contact-centre;requestId=req-2"
    assert "certificatePolicies" in body["requirement"]
    assert "personalNumber" not in body["requirement"]


async def test_without_a_binding_message_the_app_names_the_organisation_in_swedish(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator
) -> None:
    await provider.start_phone(phone_request(binding_message=None))
    shown = b64decode(last_call(bankid, "phone/auth")["userVisibleData"])
    assert shown == "Kontaktcenter Exempelby ber dig legitimera dig under samtalet"


@pytest.mark.parametrize("call_initiator", ["rp", "User", ""])
async def test_a_call_initiator_bankid_does_not_know_is_never_sent(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator, call_initiator: str
) -> None:
    calls = len(bankid.calls)
    with pytest.raises(AuthenticationFailed):
        await provider.start_phone(phone_request(call_initiator=call_initiator))
    assert len(bankid.calls) == calls


async def test_a_declined_call_is_access_denied_and_logged_as_a_warning(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    handle = await provider.start_phone(phone_request())
    bankid.decline_call(PERSON)
    status = await provider.phone_status(handle)
    assert status == PhoneStatus("failed", "userDeclinedCall", outcome="access_denied")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("not in this call" in warning for warning in warnings)
    assert not any(PERSON in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "changes",
    [
        {"binding_message": "x" * 1200},  # longer than BankID shows
        {"personal_identity_number": "19640823-3234"},  # not the 12 digits
        {"personal_identity_number": "196408233235"},  # wrong check digit
        {"requested_loa": ("http://id.elegnamnden.se/loa/1.0/loa4",)},
    ],
)
async def test_a_request_bankid_cannot_serve_is_refused_before_bankid_is_asked(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator, changes: dict[str, Any]
) -> None:
    calls = len(bankid.calls)
    with pytest.raises(ProviderError):
        await provider.start_phone(phone_request(**changes))
    assert len(bankid.calls) == calls


async def test_a_call_cancelled_in_the_app_is_access_denied(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator
) -> None:
    handle = await provider.start_phone(phone_request())
    order = bankid.confirm_call(PERSON)
    bankid.cancel_in_app(order.order_ref)
    status = await provider.phone_status(handle)
    assert status == PhoneStatus("failed", "userCancel", outcome="access_denied")


async def test_cancel_phone_cancels_at_bankid_and_is_quiet_after(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator
) -> None:
    handle = await provider.start_phone(phone_request())
    order = bankid.phone_order(PERSON)
    await provider.cancel_phone(handle)
    assert order.cancelled_by_rp and order.status == "failed"
    await provider.cancel_phone(handle)  # twice: quiet
    await provider.cancel_phone("no-such-handle")
    assert (await provider.phone_status(handle)).outcome == "access_denied"
    assert [path for path, body in bankid.calls if body.get("orderRef") == order.order_ref] == [
        "cancel"
    ]


async def test_a_call_nobody_answers_in_time_is_expired_token(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator, clock: Clock
) -> None:
    handle = await provider.start_phone(phone_request())
    clock.advance(bankid.phone_timeout)
    status = await provider.phone_status(handle)
    assert status == PhoneStatus("failed", "expiredTransaction", outcome="expired_token")
    assert (await provider.phone_status("unknown-handle")).outcome == "expired_token"


async def test_phone_sign_returns_the_signature_over_what_was_signed(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator
) -> None:
    tbs = base64.b64encode(b"\x30\x31\xff statement 4711").decode()
    texts = {"en": "I confirm **statement 4711**", "sv": "Jag intygar **uppgift 4711**"}
    sign = SignRequest(UserMessage(texts, "text/markdown"), tbs)
    handle = await provider.start_phone(phone_request(sign=sign))
    body = last_call(bankid, "phone/sign")
    assert b64decode(body["userVisibleData"]) == texts["sv"]
    assert body["userVisibleDataFormat"] == "simpleMarkdownV1"
    assert body["userNonVisibleData"] == tbs  # verbatim
    assert not WEB_FIELDS & set(body)
    order = bankid.phone_order(PERSON)
    bankid.identify_by_phone(PERSON)
    done = await provider.phone_status(handle)
    completion = order.completion
    assert done.identity is not None and completion is not None
    assert done.identity.user_signature == completion["signature"]
    assert done.identity.authn_evidence == completion["ocspResponse"]


async def test_the_configured_requirement_goes_to_bankid_and_is_checked(
    store_url: str | None,
    simulator: tuple[BankIDSimulator, str],
    pki: LocalPKI,
    clock: Clock,
    bankid: BankIDSimulator,
) -> None:
    config = {"pin_code": True, "mrtd": True}
    async with registry_provider(store_url, simulator[1], pki, clock, **config) as provider:
        handle = await provider.start_phone(phone_request())
        requirement = last_call(bankid, "phone/auth")["requirement"]
        assert requirement["pinCode"] is True and requirement["mrtd"] is True
        pending = await provider.phone_status(handle)
        assert pending == PhoneStatus("pending", "outstandingTransaction")
        bankid.identify_by_phone(PERSON, mrtd_passes=False)
        refused = await provider.phone_status(handle)
        assert refused == PhoneStatus("failed", outcome="access_denied")


async def test_a_completion_of_another_person_is_refused(
    store_url: str | None,
    scripted: tuple[ScriptedBankID, str],
    pki: LocalPKI,
    clock: Clock,
) -> None:
    """Never the identity of another person than the one asked for, whatever BankID says."""
    data = {"user": {"personalNumber": OTHER, "givenName": "Erik", "surname": "Provsson"}}
    collected = {"orderRef": ORDER_REF, "status": "complete", "completionData": data}
    scripted[0].answers = {
        "phone/auth": (200, json.dumps({"orderRef": ORDER_REF}).encode()),
        "collect": (200, json.dumps(collected).encode()),
    }
    async with registry_provider(store_url, scripted[1], pki, clock) as provider:
        handle = await provider.start_phone(phone_request())
        status = await provider.phone_status(handle)
        assert status == PhoneStatus("failed", outcome="access_denied")
        assert await provider.phone_status(handle) == status  # and stays refused


@pytest.mark.parametrize("error", ["internalError", "maintenance"])
async def test_bankid_errors_are_provider_unavailable(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator, error: str
) -> None:
    times = MAINTENANCE_RETRIES + 1 if error == "maintenance" else 1  # retried, then given up
    bankid.fail_next("phone/auth", error, times)
    with pytest.raises(ProviderUnavailable):
        await provider.start_phone(phone_request())
    handle = await provider.start_phone(phone_request())
    bankid.fail_next("collect", error, times)
    with pytest.raises(ProviderUnavailable):
        await provider.phone_status(handle)
    assert (await provider.phone_status(handle)).state == "pending"  # the order goes on


async def test_an_order_already_in_progress_is_refused_not_unavailable(
    provider: AuthenticatesByPhone, bankid: BankIDSimulator
) -> None:
    await provider.start_phone(phone_request())
    with pytest.raises(AuthenticationFailed):
        await provider.start_phone(phone_request(request_id="req-again"))


async def test_an_unreachable_bankid_is_provider_unavailable(
    store_url: str | None, pki: LocalPKI, clock: Clock
) -> None:
    url = f"https://127.0.0.1:{free_port()}/rp/v6.0"  # nothing listens there
    async with registry_provider(store_url, url, pki, clock) as provider:
        with pytest.raises(ProviderUnavailable):
            await provider.start_phone(phone_request())
