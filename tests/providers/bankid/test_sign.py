"""BankID signs (issue 21, Signature Extension 1.1 through BankID's `/sign`): a LoginContext with
`sign` set places a `/sign` order (never `/auth`) with the sign message, `tbs_data` or a binding
to the request, and the named person; the completion's signature and OCSP response come back
verbatim in the Identity, with the time of signing.

The provider is driven through the real /authorize and the real gateway, with its LoginContext
given the `sign` a test chose (`SigningBankID`): so each case needs no signed request, and the
provider's own refusals are reached with requests /authorize would refuse first.
test_sign_end_to_end.py signs through /authorize with the e-service's signed signRequest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from html import unescape
from typing import Any, ClassVar

import httpx2
import pytest
import redis
from starlette.requests import Request
from starlette.responses import Response

from providers.bankid.config import BankIDConfig
from providers.bankid.ordering import approval_binding
from providers.bankid.provider import BankIDProvider
from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from providers.base import (
    Identity,
    LoginContext,
    ProviderError,
    ProviderServices,
    SignatureNotMade,
    SignRequest,
    UserMessage,
    WrongPerson,
)
from providers.registry import PROVIDER_TYPES, ProviderType
from tests.doubles.tls import LocalPKI
from tests.harness import Browser, LiveGateway, query_of, running_gateway, stored_value
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import (
    PERSON,
    Clock,
    ScriptedBankID,
    bankid_provider,
    latest_order,
    login_id,
    poll_until_done,
    retry,
    status,
)

# The BankID module's fixtures (test CA, clock, simulator over mutual TLS, gateway), by name.
pki, clock, simulator, gateway, scripted = (
    bankid_tests.pki,
    bankid_tests.clock,
    bankid_tests.simulator,
    bankid_tests.gateway,
    bankid_tests.scripted,
)
bankid = bankid_tests.bankid

SV_TEXT = "Jag ansöker om bygglov för Storgatan 1"
EN_TEXT = "I apply for a building permit for Storgatan 1"
# What an e-service signs is any bytes (here a DER-like prefix and a SHA-256), not text.
TBS_DATA = base64.b64encode(b"\x30\x31\xff" + hashlib.sha256(b"application 4711").digest()).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sign_request(
    tbs_data: str | None = TBS_DATA,
    texts: dict[str, str] | None = None,
    mime_type: str = "text/plain",
) -> SignRequest:
    message = UserMessage(texts or {"sv": SV_TEXT, "en": EN_TEXT}, mime_type)
    return SignRequest(message, tbs_data)


@dataclass
class Signing:
    """What the next login is handed, and what the providers did with it."""

    next: SignRequest | None = None
    providers: list[SigningBankID] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)


class SigningBankID(BankIDProvider):
    """The provider as a sign flow reaches it: `sign` set, `force_authn` True (shared decisions
    of issue 21). Records what start and finish raised and what finish returned."""

    signing: ClassVar[Signing] = Signing()

    def __init__(self, config: BankIDConfig, services: ProviderServices) -> None:
        super().__init__(config, services)
        self.signing.providers.append(self)

    async def start(self, request: Request, login: LoginContext) -> Response:
        sign, self.signing.next = self.signing.next, None
        if sign is not None:
            login = replace(login, sign=sign, force_authn=True)
        try:
            return await super().start(request, login)
        except ProviderError as error:
            self.signing.errors.append(error)
            raise

    async def finish(self, request: Request) -> tuple[str, Identity]:
        try:
            login, identity = await super().finish(request)
        except ProviderError as error:
            self.signing.errors.append(error)
            raise
        self.signing.identities.append(identity)
        return login, identity


@pytest.fixture(scope="module", autouse=True)
def bankid_signs_on_the_test_clock(clock: Clock) -> Iterator[None]:
    """Every BankID provider this module's gateways build signs what the test hands it."""

    def build(config: BankIDConfig, services: ProviderServices) -> BankIDProvider:
        return SigningBankID(config, replace(services, clock=clock))

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PROVIDER_TYPES, "bankid", ProviderType("bankid", BankIDConfig, build))
        yield


@pytest.fixture
def signing() -> Iterator[Signing]:
    SigningBankID.signing.next = None
    SigningBankID.signing.identities.clear()
    SigningBankID.signing.errors.clear()
    yield SigningBankID.signing
    SigningBankID.signing.next = None


def start_signing(browser: Browser, sign: SignRequest, **extra: str) -> httpx2.Response:
    """/authorize → the BankID order page of a sign flow."""
    SigningBankID.signing.next = sign
    response = browser.authorize(**browser.authorize_params("basic", **extra))
    assert response.status_code == 303, response.text
    assert "/providers/bankid/wait?login=" in response.headers["location"]
    page = browser.http.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return page


def calls(sim: BankIDSimulator, path: str) -> list[dict[str, Any]]:
    return [body for called, body in sim.calls if called == path]


def sign_body(sim: BankIDSimulator) -> dict[str, Any]:
    return calls(sim, "sign")[-1]


# -- the order: /sign with the sign message and what is signed -------------------------------------


@pytest.mark.usefixtures("gateway")
def test_a_signature_is_a_sign_order_with_the_message_and_tbs_data(
    browser: Browser, bankid: BankIDSimulator, signing: Signing
) -> None:
    auths = len(calls(bankid, "auth"))
    start_signing(browser, sign_request(), ui_locales="en")
    assert len(calls(bankid, "auth")) == auths  # never /auth
    body = sign_body(bankid)
    assert body["userVisibleData"] == b64(EN_TEXT)
    assert "userVisibleDataFormat" not in body  # text/plain
    assert body["userNonVisibleData"] == TBS_DATA  # verbatim: the e-service's Base64
    order = latest_order(bankid)  # what the simulator accepted and keeps for the signed XML
    assert order.sign is True
    assert order.user_visible_data == EN_TEXT
    assert order.user_non_visible_data == TBS_DATA
    start_signing(browser, sign_request(), ui_locales="sv")
    assert latest_order(bankid).user_visible_data == SV_TEXT


@pytest.mark.usefixtures("gateway", "signing")
def test_a_markdown_sign_message_is_simple_markdown(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    text = "# Bygglov\n\n*Storgatan 1*, ärende 2026-17"
    start_signing(browser, sign_request(texts={"": text}, mime_type="text/markdown"))
    assert sign_body(bankid)["userVisibleDataFormat"] == "simpleMarkdownV1"
    order = latest_order(bankid)
    assert order.user_visible_data == text
    assert order.user_visible_data_format == "simpleMarkdownV1"


@pytest.mark.usefixtures("gateway", "signing")
def test_an_approval_binds_the_order_to_this_request_also_on_retry(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    """Digest §2.9 (Sweden Connect's BankID profile §4.3.1.2 adapted): the non-visible data of
    an approval names the e-service and this login."""
    page = start_signing(browser, sign_request(tbs_data=None))
    binding = b64(f"clientId=basic;loginId={login_id(page)}")
    assert sign_body(bankid)["userNonVisibleData"] == binding
    assert sign_body(bankid)["userVisibleData"] == b64(SV_TEXT)
    signs = len(calls(bankid, "sign"))
    retry(browser, page)
    assert len(calls(bankid, "sign")) == signs + 1  # the retry is a sign order too
    assert sign_body(bankid)["userNonVisibleData"] == binding
    assert sign_body(bankid)["userVisibleData"] == b64(SV_TEXT)


@pytest.mark.usefixtures("gateway", "signing")
def test_a_sign_order_retried_signs_the_same(browser: Browser, bankid: BankIDSimulator) -> None:
    page = start_signing(browser, sign_request(), ui_locales="en")
    retry(browser, page)
    assert sign_body(bankid)["userNonVisibleData"] == TBS_DATA
    assert sign_body(bankid)["userVisibleData"] == b64(EN_TEXT)


@pytest.mark.usefixtures("gateway", "signing")
def test_the_named_person_is_bankids_requirement(browser: Browser, bankid: BankIDSimulator) -> None:
    start_signing(browser, sign_request(), login_hint="19990807-2391")
    assert sign_body(bankid)["requirement"]["personalNumber"] == PERSON


@pytest.mark.usefixtures("gateway", "signing")
@pytest.mark.parametrize(
    ("extra", "heading"),
    [({}, "Skriv under med BankID"), ({"ui_locales": "en"}, "Sign with BankID")],
)
def test_the_wait_page_says_the_citizen_is_signing(
    browser: Browser, bankid: BankIDSimulator, extra: dict[str, str], heading: str
) -> None:
    page = start_signing(browser, sign_request(), **extra)
    assert f"<h1>{heading}" in page.text
    assert "Logga in med BankID" not in page.text and "Log in with BankID" not in page.text
    assert SV_TEXT not in page.text and EN_TEXT not in page.text  # the app shows it, not this page
    assert status(browser, page)["status"] == "pending"
    assert latest_order(bankid).sign


# -- what BankID cannot take is refused before it is asked ---------------------------------------


def assert_not_signed(page: httpx2.Response) -> None:
    """The citizen's page for `not_signed`, leading back to the e-service with access_denied."""
    assert page.status_code == 400, page.text
    assert "<h1>Underskriften gjordes inte</h1>" in page.text
    back = re.search(r'href="(http://127\.0\.0\.1:9000/callback\?[^"]*)"', page.text)
    assert back is not None
    answer = query_of(unescape(back.group(1)))
    assert answer["error"] == "access_denied" and "code" not in answer


def too_long_for_sign() -> str:
    return "x" * (40_000 * 3 // 4 + 1)  # 40 004 Base64 characters


@pytest.mark.usefixtures("gateway")
@pytest.mark.parametrize(
    "sign",
    [
        sign_request(mime_type="text/html"),
        sign_request(texts={"en": too_long_for_sign()}),
        sign_request(tbs_data="QUFB" * 50_001),  # 200 004 characters
        sign_request(tbs_data="not base64!"),
        sign_request(tbs_data="QUFBQQ"),  # unpadded
        sign_request(tbs_data=""),
    ],
    ids=["html", "long message", "long tbs_data", "not base64", "unpadded", "empty"],
)
def test_what_bankid_cannot_sign_it_does_not_offer_to(signing: Signing, sign: SignRequest) -> None:
    assert signing.providers
    assert not any(provider.can_sign(sign) for provider in signing.providers)


@pytest.mark.usefixtures("gateway")
def test_what_bankid_can_sign_it_offers_to(signing: Signing) -> None:
    for sign in (
        sign_request(),
        sign_request(tbs_data=None),
        sign_request(mime_type="text/markdown"),
        sign_request(texts={"en": "x" * (40_000 * 3 // 4)}, tbs_data="QUFB" * 50_000),
    ):
        assert all(provider.can_sign(sign) for provider in signing.providers)


@pytest.mark.usefixtures("gateway")
@pytest.mark.parametrize(
    "sign",
    [sign_request(texts={"sv": too_long_for_sign()}), sign_request(tbs_data="QUFB" * 50_001)],
    ids=["long message", "long tbs_data"],
)
def test_a_sign_order_bankid_would_refuse_is_not_placed(
    browser: Browser, bankid: BankIDSimulator, signing: Signing, sign: SignRequest
) -> None:
    """Only if the gateway handed it what `can_sign` refused."""
    signs = len(calls(bankid, "sign"))
    SigningBankID.signing.next = sign
    response = browser.authorize(**browser.authorize_params("basic"))
    assert len(calls(bankid, "sign")) == signs
    assert_not_signed(response)
    assert [type(error) for error in signing.errors] == [SignatureNotMade]


# -- the completion: the signature, its OCSP response and the time of signing ---------------------


@pytest.mark.usefixtures("gateway")
def test_the_signature_and_ocsp_response_come_back_verbatim_with_the_signing_time(
    browser: Browser, bankid: BankIDSimulator, clock: Clock, signing: Signing
) -> None:
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    page = start_signing(browser, sign_request())
    final = poll_until_done(browser, page, clock)
    signed_at = clock()  # the collect that saw `complete`
    assert final["status"] == "complete"
    completion = latest_order(bankid).completion
    clock.advance(40)  # the citizen comes back later: auth_time stays the signing time
    browser.follow_to_client(browser.http.get(final["next"]))
    (identity,) = signing.identities
    assert identity.user_signature == completion["signature"]
    assert identity.authn_evidence == completion["ocspResponse"]
    assert identity.auth_time == int(signed_at)
    assert identity.personal_identity_number == PERSON


@pytest.mark.usefixtures("gateway")
def test_an_approval_returns_no_signature(
    browser: Browser, bankid: BankIDSimulator, clock: Clock, signing: Signing
) -> None:
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    page = start_signing(browser, sign_request(tbs_data=None))
    final = poll_until_done(browser, page, clock)
    signed_at = clock()
    clock.advance(40)
    browser.follow_to_client(browser.http.get(final["next"]))
    (identity,) = signing.identities
    assert identity.user_signature is None and identity.authn_evidence is None
    assert identity.auth_time == int(signed_at)


@pytest.mark.parametrize(
    "missing", [{}, {"signature": ""}], ids=["no signature", "empty signature"]
)
def test_a_sign_order_completed_without_a_signature_signs_nothing(
    store_url: str | None,
    pki: LocalPKI,
    scripted: tuple[ScriptedBankID, str],
    signing: Signing,
    missing: dict[str, str],
) -> None:
    data = {"user": {"personalNumber": PERSON, "givenName": "Erik"}, **missing}
    collected = {"orderRef": "131daac9-16c6-4618-beb0-365768f37288", "status": "complete"}
    answer = json.dumps({**collected, "completionData": data}).encode()
    scripted[0].answers = {"sign": (200, ScriptedBankID.STARTED), "collect": (200, answer)}
    with (
        running_gateway(store_url, providers={"bankid": bankid_provider(pki, scripted[1])}) as live,
        closing(Browser(live)) as citizen,
    ):
        SigningBankID.signing.next = sign_request()
        sent = citizen.authorize(**citizen.authorize_params("basic"))
        wait = citizen.http.get(sent.headers["location"])  # its one collect: complete
        assert wait.status_code == 303 and "/providers/bankid/done?" in wait.headers["location"]
        done = citizen.http.get(wait.headers["location"])
    assert_not_signed(done)
    assert signing.identities == []
    assert [type(error) for error in signing.errors] == [SignatureNotMade]
    assert signing.errors[0].reason == "not_signed"


def test_a_sign_order_completed_by_another_person_signs_nothing(
    store_url: str | None,
    pki: LocalPKI,
    scripted: tuple[ScriptedBankID, str],
    signing: Signing,
) -> None:
    data = {"user": {"personalNumber": PERSON}, "signature": b64("<Signature/>")}
    collected = {"orderRef": "131daac9-16c6-4618-beb0-365768f37288", "status": "complete"}
    answer = json.dumps({**collected, "completionData": data}).encode()
    scripted[0].answers = {"sign": (200, ScriptedBankID.STARTED), "collect": (200, answer)}
    with (
        running_gateway(store_url, providers={"bankid": bankid_provider(pki, scripted[1])}) as live,
        closing(Browser(live)) as citizen,
    ):
        page = start_signing(citizen, sign_request(), login_hint="196408233234")
        state = status(citizen, page)
    assert state["status"] == "failed" and "next" not in state
    assert signing.identities == []


@pytest.mark.usefixtures("gateway")
def test_a_logins_auth_time_is_also_when_bankid_completed(
    browser: Browser, bankid: BankIDSimulator, clock: Clock, signing: Signing
) -> None:
    """Not when the browser came back to /done: the clock the provider is handed decides."""
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    page = bankid_tests.start(browser)
    final = poll_until_done(browser, page, clock)
    identified_at = clock()
    clock.advance(40)
    browser.follow_to_client(browser.http.get(final["next"]))
    (identity,) = signing.identities
    assert identity.auth_time == int(identified_at)
    assert identity.user_signature is None and identity.authn_evidence is None


def put_stored(store_url: str | None, gateway: LiveGateway, key: str, value: bytes) -> None:
    """Overwrite a record the gateway stored, in Redis or in its in-memory store."""
    if store_url is not None:
        client = redis.Redis.from_url(store_url)
        try:
            client.set(key, value, ex=600)
        finally:
            client.close()
        return
    asyncio.run(gateway.app.state.store.target.put(key, value, 600))


def test_a_completion_of_another_person_in_the_record_is_the_wrong_person(
    store_url: str | None,
    gateway: LiveGateway,
    browser: Browser,
    bankid: BankIDSimulator,
    signing: Signing,
) -> None:
    """The last line, behind BankID's requirement and the collect's check: a completed order of
    another person than the named one (a record from before a fix, a BankID that erred)."""
    maja = "200002292399"
    bankid.behave(UserBehaviour(action="ignore"))
    page = start_signing(browser, sign_request(), login_hint=maja)
    key = f"p:bankid:order:{{{login_id(page)}}}"
    stored = stored_value(store_url, gateway, key)
    assert stored is not None
    record = json.loads(stored)
    completion = {"user": {"personalNumber": PERSON}, "signature": b64("<Signature/>")}
    record.update(status="complete", completion=completion)
    put_stored(store_url, gateway, key, json.dumps(record).encode())
    done = browser.http.get("/providers/bankid/done", params={"login": login_id(page)})
    assert done.status_code == 400, done.text
    assert "code=" not in done.headers.get("location", "")
    assert [type(error) for error in signing.errors] == [WrongPerson]
    assert signing.identities == []


def test_the_approval_binding_percent_encodes_the_client_id() -> None:
    """A client_id may hold `;` or `=`: encoded, the binding reads one way only."""
    binding = approval_binding("kommun;loginId=x y/ö", "L1")
    assert (
        base64.b64decode(binding).decode()
        == "clientId=kommun%3BloginId%3Dx%20y%2F%C3%B6;loginId=L1"
    )
