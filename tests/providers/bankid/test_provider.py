"""BankID end to end against the simulator of the RP API v6.0 (providers/bankid/simulator.py),
served over real HTTPS with mutual TLS: the gateway presents an RP client certificate and pins
the test CA that issued the simulator's server certificate (tests/doubles/tls.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import ssl
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
import segno
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.bankid.client import qr_payload
from providers.bankid.config import BankIDConfig
from providers.bankid.provider import BankIDProvider
from providers.bankid.simulator import API_VERSION, BankIDSimulator, UserBehaviour
from providers.base import ProviderServices
from providers.registry import PROVIDER_TYPES, ProviderType
from tests.doubles.tls import P12_PASSWORD, BrokenBankID, LocalPKI, make_pki, tls_server_context
from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    LoginResult,
    ServedApp,
    code_form,
    free_port,
    query_of,
    running_gateway,
    stored_value,
    token_request,
)
from tests.ops.test_audit import authenticated_event

PERSON = "199908072391"


class Clock:
    """Now, for the simulator and the gateway's BankID providers alike: it moves only when a
    test moves it, so intervals are tested without waiting for them."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module", autouse=True)
def bankid_on_the_test_clock(clock: Clock) -> Iterator[None]:
    """Every BankID provider this module's gateways build is handed the test's clock."""

    def build(config: BankIDConfig, services: ProviderServices) -> BankIDProvider:
        return BankIDProvider(config, replace(services, clock=clock))

    with pytest.MonkeyPatch.context() as patch:  # the row replaced in place, then put back
        patch.setitem(PROVIDER_TYPES, "bankid", ProviderType("bankid", BankIDConfig, build))
        yield


@pytest.fixture(scope="module")
def simulator(pki: LocalPKI, clock: Clock) -> Iterator[tuple[BankIDSimulator, str]]:
    """The simulator over HTTPS that demands a client certificate from the test CA."""
    bankid = BankIDSimulator(clock=clock)
    served = ServedApp(
        bankid.app,
        free_port(),
        ssl_certfile=str(pki.server.cert),
        ssl_keyfile=str(pki.server.key),
        ssl_ca_certs=str(pki.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    with served:
        yield bankid, f"https://127.0.0.1:{served.port}/rp/v6.0"


def bankid_provider(pki: LocalPKI, url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": "bankid",
        "url": url,
        "client_cert": {"file": str(pki.client_p12), "password": P12_PASSWORD},
        "ca": str(pki.ca),
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def gateway(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> Iterator[LiveGateway]:
    _, url = simulator
    clients = [
        {
            "client_id": "basic",
            "client_secret": "basic-secret",
            "redirect_uris": [REDIRECT_URI],
            "display": {"sv": "Bygglov", "en": "Building permits"},
        }
    ]
    with running_gateway(
        store_url,
        providers={"bankid": bankid_provider(pki, url)},
        clients=clients,
        trusted_proxies=["127.0.0.0/8"],
    ) as live:
        yield live


@pytest.fixture
def bankid(simulator: tuple[BankIDSimulator, str]) -> Iterator[BankIDSimulator]:
    sim, _ = simulator
    sim.behave(UserBehaviour())
    yield sim
    sim.behave(UserBehaviour())


def start(browser: Browser, **extra: str) -> httpx2.Response:
    """/authorize → the BankID order page."""
    response = browser.authorize(**browser.authorize_params("basic", **extra))
    assert response.status_code == 303, response.text
    assert "/providers/bankid/wait?login=" in response.headers["location"]
    page = browser.http.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return page


def login_id(page: httpx2.Response) -> str:
    return str(page.url.params["login"])


def status(browser: Browser, page: httpx2.Response) -> dict[str, Any]:
    answer = browser.http.get("/providers/bankid/status", params={"login": login_id(page)})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def poll_until_done(browser: Browser, page: httpx2.Response, clock: Clock) -> dict[str, Any]:
    """Poll like the page's script, once a second, until the order is no longer pending."""
    for _ in range(12):
        state = status(browser, page)
        if state["status"] != "pending":
            return state
        clock.advance(1)
    raise AssertionError("the order stayed pending")


def latest_order(sim: BankIDSimulator) -> Any:
    return list(sim.orders.values())[-1]


def test_simulator_states_its_api_version() -> None:
    assert API_VERSION == "6.0"


def test_whole_bankid_login_with_the_animated_qr(
    gateway: LiveGateway, browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    bankid.behave(UserBehaviour(starts_on_collect=2, acts_on_collect=2))  # scans, then approves
    page = start(browser)
    order = latest_order(bankid)
    first = status(browser, page)
    assert first["status"] == "pending" and first["text"] == "Starta BankID-appen."
    # The QR is the documented payload, recomputed here from the simulator's secret (§6).
    clock.advance(1.5)
    age = int(clock() - order.created_at)
    qr = segno.make(qr_payload(order.qr_start_token, order.qr_start_secret, age), error="l")
    svg = qr.svg_data_uri(scale=6, border=4, dark="#000000", light="#ffffff")
    assert age == 1 and status(browser, page)["qr"] == svg
    assert order.qr_start_secret not in page.text and order.qr_start_secret not in str(first)
    assert order.order_ref not in page.text and order.order_ref not in str(first)
    final = poll_until_done(browser, page, clock)
    assert final["status"] == "complete"
    assert bankid.collect_count(order.order_ref) == 2  # the page's, then one 2 s later
    done = browser.http.get(final["next"])
    callback = browser.follow_to_client(done)
    tokens = token_request(
        gateway, code_form(LoginResult(callback, None)), auth=("basic", "basic-secret")
    ).json()
    userinfo = browser.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert userinfo["https://id.oidc.se/claim/personalIdentityNumber"] == PERSON
    assert userinfo["given_name"] == "Erik" and userinfo["family_name"] == "Provsson"
    assert not any("bankid" in key for key in userinfo)  # signature, OCSP, device stay here
    auth_body = [body for path, body in bankid.calls if path == "auth"][-1]
    visible = base64.b64decode(auth_body["userVisibleData"]).decode()
    assert visible == "Logga in på Bygglov"
    assert auth_body["requirement"]["certificatePolicies"] == [
        "1.2.3.4.5",
        "1.2.3.4.10",
        "1.2.3.4.25",
        "1.2.752.60.1.6",
    ]
    assert auth_body["returnUrl"].startswith(f"{gateway.url}/providers/bankid/return?login=")
    assert auth_body["web"]["referringDomain"] == "127.0.0.1"
    assert len(auth_body["web"]["deviceIdentifier"]) == 64


def test_many_polls_make_one_collect_per_two_seconds(
    browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    bankid.behave(UserBehaviour(action="ignore"))
    page = start(browser)
    order = latest_order(bankid)
    for _ in range(15):
        status(browser, page)
    assert bankid.collect_count(order.order_ref) == 1
    clock.advance(1.9)
    for _ in range(15):
        status(browser, page)
    assert bankid.collect_count(order.order_ref) == 1
    clock.advance(0.1)
    for _ in range(15):
        status(browser, page)
    assert bankid.collect_count(order.order_ref) == 2


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("cancel", "Åtgärden avbröts."),
        ("certificate_error", "Ditt BankID är för gammalt eller spärrat."),
        ("expire", "BankID-appen svarar inte."),
    ],
)
def test_failed_orders_show_bankids_message_and_offer_a_retry(
    browser: Browser, bankid: BankIDSimulator, action: str, message: str
) -> None:
    bankid.behave(UserBehaviour(action=action, starts_on_collect=1, acts_on_collect=1))  # type: ignore[arg-type]
    page = start(browser)
    state = status(browser, page)
    assert state["status"] == "failed" and state["text"].startswith(message)
    failed_page = browser.http.get(page.url)
    assert message in failed_page.text and "Försök igen" in failed_page.text
    bankid.behave(UserBehaviour())
    retried = browser.http.post(
        "/providers/bankid/retry",
        data={"login": login_id(page), "csrf": hidden(failed_page.text, "csrf")},
    )
    assert retried.status_code == 303
    assert status(browser, page)["status"] == "pending"


def test_a_qr_nobody_scans_ends_in_start_failed(
    browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    bankid.behave(UserBehaviour(action="ignore", starts_on_collect=99))
    page = start(browser)
    clock.advance(31)  # BankID gives up after about 30 s without an app
    state = status(browser, page)
    assert state["status"] == "failed"
    assert (
        state["text"]
        == "Misslyckades att läsa av QR-koden. Starta BankID-appen och läs av QR-koden."
    )


def test_unknown_pending_hint_gets_the_generic_message(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    bankid.behave(UserBehaviour(action="unknown_hint", starts_on_collect=1, acts_on_collect=1))
    page = start(browser)
    assert status(browser, page)["text"] == "En identifiering eller underskrift pågår."


def test_same_device_autostart(browser: Browser, bankid: BankIDSimulator) -> None:
    bankid.behave(UserBehaviour(action="ignore", starts_on_collect=99))
    page = start(browser)
    order = latest_order(bankid)
    opened = browser.http.get("/providers/bankid/open", params={"login": login_id(page)})
    assert opened.headers["location"] == (
        f"bankid:///?autostarttoken={order.auto_start_token}&redirect=null"
    )
    assert status(browser, page)["text"] == "Försöker starta BankID-appen."  # RFA13
    phone = Browser(browser.gateway)
    phone.http.headers["user-agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
    mobile_page = start(phone)
    mobile_order = latest_order(bankid)
    opened = phone.http.get("/providers/bankid/open", params={"login": login_id(mobile_page)})
    assert opened.headers["location"] == (
        f"https://app.bankid.com/?autostarttoken={mobile_order.auto_start_token}&redirect=null"
    )
    phone.close()


def test_return_url_needs_its_nonce(browser: Browser, bankid: BankIDSimulator) -> None:
    start(browser)
    return_url = latest_order(bankid).return_url
    back = browser.http.get(return_url)
    assert back.status_code == 303 and "/providers/bankid/wait?login=" in back.headers["location"]
    forged = browser.http.get(return_url.replace("nonce=", "nonce=x"))
    assert forged.status_code == 400 and "location" not in forged.headers


@pytest.mark.parametrize(
    ("error", "message", "auth_calls"),
    [
        ("alreadyInProgress", "En identifiering eller underskrift pågår redan", 1),
        ("internalError", "Något gick fel. Försök igen.", 1),
        ("requestTimeout", "Något gick fel. Försök igen.", 1),
        ("invalidParameters", "Något gick fel. Försök igen.", 1),
        ("someFutureError", "Något gick fel. Försök igen.", 1),
    ],
)
def test_bankid_errors_become_messages_and_are_not_retried(
    browser: Browser, bankid: BankIDSimulator, error: str, message: str, auth_calls: int
) -> None:
    before = sum(1 for path, _ in bankid.calls if path == "auth")
    bankid.fail_next("auth", error)
    page = start(browser)
    assert message in page.text and "Försök igen" in page.text
    assert sum(1 for path, _ in bankid.calls if path == "auth") - before == auth_calls
    assert status(browser, page)["status"] == "failed"


def test_maintenance_is_retried_silently(browser: Browser, bankid: BankIDSimulator) -> None:
    before = sum(1 for path, _ in bankid.calls if path == "auth")
    bankid.fail_next("auth", "maintenance")
    page = start(browser)
    assert status(browser, page)["status"] == "pending"
    assert sum(1 for path, _ in bankid.calls if path == "auth") - before == 2
    bankid.fail_next("auth", "maintenance", times=5)
    page = start(browser)
    assert "Något gick fel" in page.text
    bankid.fail_next("auth", "maintenance", times=0)


@pytest.mark.usefixtures("gateway")
def test_cancel_cancels_the_order_at_bankid(browser: Browser, bankid: BankIDSimulator) -> None:
    bankid.behave(UserBehaviour(action="ignore", starts_on_collect=99))
    page = start(browser, state="s-cancel")
    order = latest_order(bankid)
    cancelled = browser.http.post(
        "/providers/bankid/cancel",
        data={"login": login_id(page), "csrf": hidden(page.text, "csrf"), "cancel": "1"},
    )
    assert cancelled.status_code == 400 and "Du avbröt inloggningen" in cancelled.text
    assert order.cancelled_by_rp
    back = cancelled.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    assert query_of(back)["error"] == "access_denied" and query_of(back)["state"] == "s-cancel"


def test_choosing_another_e_id_cancels_the_order(browser: Browser, bankid: BankIDSimulator) -> None:
    bankid.behave(UserBehaviour(action="ignore", starts_on_collect=99))
    page = start(browser)
    order = latest_order(bankid)
    other = browser.http.post(
        "/providers/bankid/cancel",
        data={"login": login_id(page), "csrf": hidden(page.text, "csrf"), "other": "1"},
    )
    assert other.status_code == 303 and other.headers["location"].endswith(
        f"/login/{login_id(page)}"
    )
    assert order.cancelled_by_rp


@pytest.mark.usefixtures("bankid")
def test_another_browser_learns_nothing_of_the_order(
    gateway: LiveGateway, browser: Browser
) -> None:
    page = start(browser)
    stranger = Browser(gateway)
    for path in ("/providers/bankid/status", "/providers/bankid/wait", "/providers/bankid/open"):
        answer = stranger.http.get(path, params={"login": login_id(page)})
        assert answer.status_code == 403, path
        assert "bankid." not in answer.text and "autostarttoken" not in answer.text
    stranger.close()


def test_end_user_ip_comes_from_a_trusted_proxy_only(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    browser.http.headers["x-forwarded-for"] = "198.51.100.7, 127.0.0.1"
    start(browser)
    auth_body = [body for path, body in bankid.calls if path == "auth"][-1]
    assert auth_body["endUserIp"] == "198.51.100.7"  # 127.0.0.0/8 is the trusted proxy here


def test_login_hint_restricts_the_order_to_that_person(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    start(browser, login_hint="19990807-2391")
    auth_body = [body for path, body in bankid.calls if path == "auth"][-1]
    assert auth_body["requirement"]["personalNumber"] == PERSON


def test_an_untrusted_client_certificate_is_refused_by_bankid(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> None:
    _, url = simulator
    rogue = bankid_provider(
        pki, url, client_cert={"file": str(pki.rogue_client.cert), "key": str(pki.rogue_client.key)}
    )
    with running_gateway(store_url, providers={"bankid": rogue}) as live:
        citizen = Browser(live)
        page = start(citizen)
        assert "Något gick fel. Försök igen." in page.text
        citizen.close()


def test_a_server_outside_the_pinned_ca_is_refused(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> None:
    sim, url = simulator
    before = len(sim.calls)
    pinned_elsewhere = bankid_provider(pki, url, ca=str(pki.rogue_ca))
    with running_gateway(store_url, providers={"bankid": pinned_elsewhere}) as live:
        citizen = Browser(live)
        page = start(citizen)
        assert "Något gick fel. Försök igen." in page.text
        citizen.close()
    assert len(sim.calls) == before  # nothing reached the server we do not trust


def hidden(html: str, name: str) -> str:
    return html.split(f'name="{name}" value="')[1].split('"')[0]


def test_config_demands_mutual_tls_and_refuses_the_simulator_in_production(
    tmp_path: Path,
) -> None:
    from gateway.settings import SettingsError, settings_from_data

    base = {
        "issuer": "https://login.kommun.example",
        "clients": [{"client_id": "a", "client_secret": "s", "redirect_uris": [REDIRECT_URI]}],
    }
    with pytest.raises(SettingsError) as missing_tls:
        settings_from_data({**base, "providers": {"bankid": {"type": "bankid"}}})
    assert "client_cert and ca are required" in missing_tls.value.problems[0]
    simulated = {"type": "bankid", "url": "http://127.0.0.1:8080/bankid-simulator/rp/v6.0"}
    production = {
        **base,
        "environment": "production",
        "secret_key": "k" * 40,
        "subject_salt": "s" * 20,
        "keys": {"dir": str(tmp_path)},
        "providers": {"bankid": simulated},
    }
    with pytest.raises(SettingsError) as refused:
        settings_from_data(production)
    assert "BankID simulator" in refused.value.problems[0]


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/providers/bankid/wait", {}),
        ("GET", "/providers/bankid/wait", {"login": "x" * 5000}),
        ("GET", "/providers/bankid/status", {"login": "../../etc"}),
        ("GET", "/providers/bankid/open", {"login": ""}),
        ("GET", "/providers/bankid/return", {"login": "x", "nonce": "y"}),
        ("GET", "/providers/bankid/done", {"login": "made-up"}),
        ("POST", "/providers/bankid/retry", {}),
        ("POST", "/providers/bankid/cancel", {"login": "x", "csrf": "y"}),
        ("GET", "/providers/bankid/retry", {}),
    ],
)
def test_odd_requests_never_get_a_500(
    browser: Browser, method: str, path: str, params: dict[str, str]
) -> None:
    if method == "GET":
        answer = browser.http.get(path, params=params)
    else:
        answer = browser.http.post(path, data=params)
    assert 400 <= answer.status_code < 500, (path, answer.status_code)
    assert "Traceback" not in answer.text


# -- whatever breaks on the way to BankID ends as BankID's error, never as a 500 ----------------

SOMETHING_WENT_WRONG = "Något gick fel. Försök igen."  # RFA5 and RFA22 read the same


def assert_failed_with_a_way_out(citizen: Browser, page: httpx2.Response) -> None:
    """The citizen sees BankID's message and can try again or go back to the e-service."""
    assert page.status_code == 200 and SOMETHING_WENT_WRONG in page.text
    assert status(citizen, page)["status"] == "failed"
    retried = citizen.http.post(
        "/providers/bankid/retry", data={"login": login_id(page), "csrf": hidden(page.text, "csrf")}
    )
    assert retried.status_code == 303
    again = citizen.http.get(retried.headers["location"])
    assert again.status_code == 200 and SOMETHING_WENT_WRONG in again.text
    cancelled = citizen.http.post(
        "/providers/bankid/cancel",
        data={"login": login_id(page), "csrf": hidden(again.text, "csrf"), "cancel": "1"},
    )
    assert cancelled.status_code == 400  # the citizen's page, with the way back to the e-service
    back = cancelled.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    assert query_of(back)["error"] == "access_denied"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_bankid_refusing_our_certificate_is_rfa5_under_any_tls_version(
    store_url: str | None, pki: LocalPKI, version: ssl.TLSVersion
) -> None:
    """Under TLS 1.3 the refusal arrives after the handshake, when the answer is read."""
    refusing = tls_server_context(pki, version, client_ca=pki.rogue_ca)
    with (
        BrokenBankID(refusing, "refuse") as server,
        running_gateway(store_url, providers={"bankid": bankid_provider(pki, server.url)}) as live,
        closing(Browser(live)) as citizen,
    ):
        assert_failed_with_a_way_out(citizen, start(citizen))
        assert server.connections >= 2  # the start and the retry both reached the server


@pytest.mark.parametrize("behaviour", ["close", "garbage"])
def test_a_bankid_that_hangs_up_or_answers_garbage_is_rfa5(
    store_url: str | None, pki: LocalPKI, behaviour: str
) -> None:
    accepting = tls_server_context(pki, ssl.TLSVersion.TLSv1_3, client_ca=pki.ca)
    with (
        BrokenBankID(accepting, behaviour) as server,
        running_gateway(store_url, providers={"bankid": bankid_provider(pki, server.url)}) as live,
        closing(Browser(live)) as citizen,
    ):
        assert_failed_with_a_way_out(citizen, start(citizen))


class ScriptedBankID:
    """BankID over mutual TLS answering what a test scripts: (status, body) per path."""

    STARTED = (
        b'{"orderRef": "131daac9-16c6-4618-beb0-365768f37288",'
        b' "autoStartToken": "7c40b5c9-fa74-49cf-b98c-bfe651f9a7c6",'
        b' "qrStartToken": "67df3917-fa0d-44e5-b327-edcc928297f8",'
        b' "qrStartSecret": "d28db9a7-4cde-429e-a983-359be676944c"}'
    )

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.app = Starlette(routes=[Route("/rp/v6.0/{path:path}", self._answer, methods=["POST"])])

    async def _answer(self, request: Request) -> Response:
        status_code, body = self.answers.get(request.path_params["path"], (200, b"{}"))
        return Response(body, status_code, media_type="application/json")


@pytest.fixture(scope="module")
def scripted(pki: LocalPKI) -> Iterator[tuple[ScriptedBankID, str]]:
    bankid = ScriptedBankID()
    served = ServedApp(
        bankid.app,
        free_port(),
        ssl_certfile=str(pki.server.cert),
        ssl_keyfile=str(pki.server.key),
        ssl_ca_certs=str(pki.ca),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    with served:
        yield bankid, f"https://127.0.0.1:{served.port}/rp/v6.0"


@pytest.fixture
def scripted_gateway(
    store_url: str | None, pki: LocalPKI, scripted: tuple[ScriptedBankID, str]
) -> Iterator[LiveGateway]:
    provider = bankid_provider(pki, scripted[1])
    with running_gateway(store_url, providers={"bankid": provider}) as live:
        yield live


@pytest.mark.parametrize(
    "answer",
    [
        (200, b"not json"),
        (200, b"\xff\xfe\x00"),
        (200, b"[]"),
        (200, b'{"orderRef": "131daac9-16c6-4618-beb0-365768f37288"}'),
        (200, b'{"orderRef": 1, "autoStartToken": 2, "qrStartToken": 3, "qrStartSecret": 4}'),
        (200, ScriptedBankID.STARTED.replace(b'"d28db9a7', '"\u00e9d28db9a7'.encode())),
        (502, b"<html>Bad gateway</html>"),
        (400, b'["errorCode", "details"]'),
        (400, b'{"errorCode": {"nested": 1}, "details": []}'),
    ],
)
def test_a_malformed_start_answer_is_bankids_error(
    scripted: tuple[ScriptedBankID, str], scripted_gateway: LiveGateway, answer: tuple[int, bytes]
) -> None:
    scripted[0].answers = {"auth": answer}
    with closing(Browser(scripted_gateway)) as citizen:
        assert_failed_with_a_way_out(citizen, start(citizen))


@pytest.mark.parametrize(
    "collected",
    [
        b'"pending"',
        b'{"status": 5}',
        b'{"status": "pending", "hintCode": ["userSign"]}',
        b'{"status": "complete"}',
        b'{"status": "complete", "completionData": []}',
        b'{"status": "complete", "completionData": {"user": {}}}',
        b'{"status": "complete", "completionData": {"user": {"personalNumber": "19990807239X"}}}',
        b'{"status": "complete", "completionData": {"user": {"personalNumber": 199908072391}}}',
        b'{"status": "complete", "completionData": {"user": {"personalNumber": "199908072391",'
        b' "givenName": ["Erik"]}}}',
    ],
)
def test_a_malformed_collect_answer_fails_the_order(
    scripted: tuple[ScriptedBankID, str], scripted_gateway: LiveGateway, collected: bytes
) -> None:
    scripted[0].answers = {"auth": (200, ScriptedBankID.STARTED), "collect": (200, collected)}
    with closing(Browser(scripted_gateway)) as citizen:
        state = status(citizen, start(citizen))
    assert state["status"] == "failed" and state["text"] == SOMETHING_WENT_WRONG
    assert "next" not in state


# -- a check BankID was asked for must have passed ------------------------------------------------


@pytest.fixture
def mrtd_gateway(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> Iterator[LiveGateway]:
    provider = bankid_provider(pki, simulator[1], mrtd=True)
    with running_gateway(store_url, providers={"bankid": provider}) as live:
        yield live


@pytest.mark.parametrize(("passes", "outcome"), [(True, "complete"), (False, "failed")])
def test_a_required_mrtd_check_must_have_passed(
    mrtd_gateway: LiveGateway, bankid: BankIDSimulator, clock: Clock, passes: bool, outcome: str
) -> None:
    """§2.2/§3.1: with requirement.mrtd, stepUp.mrtd false means the check was made and failed."""
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2, mrtd_passes=passes))
    with closing(Browser(mrtd_gateway)) as citizen:
        state = poll_until_done(citizen, start(citizen), clock)
    assert [body for path, body in bankid.calls if path == "auth"][-1]["requirement"]["mrtd"]
    assert latest_order(bankid).completion["stepUp"] == {"mrtd": passes}
    assert state["status"] == outcome
    assert ("next" in state) == passes


@pytest.mark.parametrize(
    ("config", "hint", "completion"),
    [
        ({"mrtd": True}, None, {}),  # stepUp missing
        ({"mrtd": True}, None, {"stepUp": {}}),
        ({"mrtd": True}, None, {"stepUp": {"mrtd": "true"}}),
        ({}, "19990807-2391", {"user": {"personalNumber": "196408233234"}}),
    ],
)
def test_a_completion_that_misses_a_requirement_logs_nobody_in(
    store_url: str | None,
    pki: LocalPKI,
    scripted: tuple[ScriptedBankID, str],
    config: dict[str, Any],
    hint: str | None,
    completion: dict[str, Any],
) -> None:
    data = {"user": {"personalNumber": PERSON, "givenName": "Erik"}, **completion}
    collected = {"orderRef": "131daac9-16c6-4618-beb0-365768f37288", "status": "complete"}
    answer = json.dumps({**collected, "completionData": data}).encode()
    scripted[0].answers = {"auth": (200, ScriptedBankID.STARTED), "collect": (200, answer)}
    provider = bankid_provider(pki, scripted[1], **config)
    extra = {"login_hint": hint} if hint else {}
    with (
        running_gateway(store_url, providers={"bankid": provider}) as live,
        closing(Browser(live)) as citizen,
    ):
        state = status(citizen, start(citizen, **extra))
    assert state["status"] == "failed" and "next" not in state


# -- web.deviceIdentifier names the browser, not the login ----------------------------------------


def device_identifier(sim: BankIDSimulator) -> str:
    identifier: str = [body for path, body in sim.calls if path == "auth"][-1]["web"][
        "deviceIdentifier"
    ]
    return identifier


def test_the_device_identifier_is_stable_per_browser_and_survives_a_restart(
    gateway: LiveGateway, bankid: BankIDSimulator
) -> None:
    """§2.1: deviceIdentifier identifies the device (a cookie of its own or its hash), so BankID's
    risk assessment recognises it; it is neither the login's nor the session's."""
    with closing(Browser(gateway)) as citizen, closing(Browser(gateway)) as restarted:
        start(citizen)
        first = device_identifier(bankid)
        page = start(citizen)
        assert device_identifier(bankid) == first
        citizen.http.post(
            "/providers/bankid/retry",
            data={"login": login_id(page), "csrf": hidden(page.text, "csrf")},
        )
        assert device_identifier(bankid) == first
        # A browser restart keeps persistent cookies; the session's may be gone by then.
        year = time.time() + 300 * 86400
        kept = [c for c in citizen.http.cookies.jar if c.expires and c.expires > year]
        assert kept, "no long-lived cookie"
        for cookie in kept:
            if cookie.name != "pv_browser":
                restarted.http.cookies.set(cookie.name, cookie.value or "", domain=cookie.domain)
        start(restarted)
        assert device_identifier(bankid) == first
    with closing(Browser(gateway)) as stranger:
        start(stranger)
        assert device_identifier(bankid) != first


def test_a_forged_device_cookie_is_not_believed(
    gateway: LiveGateway, bankid: BankIDSimulator
) -> None:
    with closing(Browser(gateway)) as citizen:
        start(citizen)
        first = device_identifier(bankid)
        for cookie in list(citizen.http.cookies.jar):
            if cookie.name not in ("pv_browser",):
                citizen.http.cookies.set(cookie.name, "forged.value", domain=cookie.domain)
        start(citizen)
        assert device_identifier(bankid) not in (first, sha256_hex("forged"))
        assert device_identifier(bankid) != sha256_hex("forged.value")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- the text in the BankID app: the e-service's name, in the citizen's language ------------------


def visible_text(sim: BankIDSimulator) -> str:
    body = [body for path, body in sim.calls if path == "auth"][-1]
    return base64.b64decode(body["userVisibleData"]).decode()


def retry(citizen: Browser, page: httpx2.Response) -> httpx2.Response:
    form = {"login": login_id(page), "csrf": hidden(page.text, "csrf")}
    retried = citizen.http.post("/providers/bankid/retry", data=form)
    assert retried.status_code == 303
    return retried


@pytest.mark.parametrize(
    ("extra", "text"),
    [({}, "Logga in på Bygglov"), ({"ui_locales": "en"}, "Log in to Building permits")],
)
def test_the_app_shows_the_services_name_in_the_citizens_language_also_on_retry(
    browser: Browser, bankid: BankIDSimulator, extra: dict[str, str], text: str
) -> None:
    page = start(browser, **extra)
    assert visible_text(bankid) == text
    retry(browser, page)
    assert visible_text(bankid) == text


def test_a_language_switched_on_the_order_page_carries_to_the_retry(
    browser: Browser, bankid: BankIDSimulator
) -> None:
    page = start(browser)
    switched = browser.http.get(f"{page.url}&lang=en")
    assert switched.status_code == 200 and "Log in with BankID" in switched.text
    retry(browser, switched)
    assert visible_text(bankid) == "Log in to Building permits"
    assert "Log in with BankID" in browser.http.get(page.url).text


def test_a_configured_text_may_differ_per_language(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> None:
    texts = {"sv": "Kommunen: {service}", "en": "The municipality: {service}"}
    provider = bankid_provider(pki, simulator[1], user_visible_data=texts)
    clients = [
        {
            "client_id": "basic",
            "client_secret": "basic-secret",
            "redirect_uris": [REDIRECT_URI],
            "display": {"sv": "Bygglov", "en": "Building permits"},
        }
    ]
    with (
        running_gateway(store_url, providers={"bankid": provider}, clients=clients) as live,
        closing(Browser(live)) as citizen,
    ):
        start(citizen, ui_locales="en")
        assert visible_text(simulator[0]) == "The municipality: Building permits"
        start(citizen, ui_locales="sv")
        assert visible_text(simulator[0]) == "Kommunen: Bygglov"


def test_an_early_done_leads_back_to_the_order_and_the_login_goes_on(
    browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    bankid.behave(UserBehaviour(starts_on_collect=2, acts_on_collect=2))
    page = start(browser)
    early = browser.http.get("/providers/bankid/done", params={"login": login_id(page)})
    assert early.status_code == 303
    assert early.headers["location"].endswith(f"/providers/bankid/wait?login={login_id(page)}")
    final = poll_until_done(browser, page, clock)
    assert final["status"] == "complete"
    assert "code" in browser.follow_to_client(browser.http.get(final["next"]))


def test_the_audit_writes_the_bankid_login_with_the_number_masked(
    store_url: str | None,
    gateway: LiveGateway,
    browser: Browser,
    bankid: BankIDSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=1))
    sent = browser.authorize(**browser.authorize_params("basic"))
    order = latest_order(bankid)
    wait_page = browser.http.get(sent.headers["location"])  # its one collect: approved
    assert wait_page.status_code == 303, wait_page.text
    callback = browser.follow_to_client(wait_page)
    code_record = stored_value(store_url, gateway, f"code:{callback['code']}")
    event = authenticated_event(caplog, PERSON)
    assert (event["provider"], event["person"]) == ("bankid", PERSON[:8] + "****")
    assert event["reference"] == order.order_ref and event["device_ip"] == "127.0.0.1"
    assert event["loa"].endswith("loa3") and event["upstream"].endswith("/rp/v6.0")
    # The completion's signature and OCSP response (which name the person) are not kept with
    # the code, its grant or the session: nothing ever read them there.
    assert code_record is not None
    assert b"signature" not in code_record and b"ocsp" not in code_record.lower()
    assert b"bankid_" not in code_record and order.order_ref.encode() not in code_record


# -- the person the e-service names, and the authnProvider claim -----------------------------------

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
AUTHN_PROVIDER_CLAIM = "https://id.oidc.se/claim/authnProvider"


def claims_value(number: str) -> str:
    return json.dumps({"id_token": {PNR_CLAIM: {"essential": True, "value": number}}})


def test_a_claims_value_restricts_the_order_and_the_id_token_names_bankid(
    gateway: LiveGateway, browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    """Claims §2.3.5: a BankID login's authnProvider is BankID's fixed URI (docs/integrating.md)."""
    ingrid = "196408233234"  # whom no other test's order left pending (BankID's RFA4)
    bankid.behave(UserBehaviour(personal_number=ingrid, given_name="Ingrid", surname="Testsson"))
    page = start(browser, claims=claims_value(ingrid))
    auth_body = [body for path, body in bankid.calls if path == "auth"][-1]
    assert auth_body["requirement"]["personalNumber"] == ingrid
    final = poll_until_done(browser, page, clock)
    assert final["status"] == "complete", final
    callback = browser.follow_to_client(browser.http.get(final["next"]))
    tokens = token_request(
        gateway, code_form(LoginResult(callback, None)), auth=("basic", "basic-secret")
    ).json()
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims[PNR_CLAIM] == ingrid
    assert claims[AUTHN_PROVIDER_CLAIM] == "https://www.bankid.com"


def test_a_completion_of_another_person_than_the_claims_value_logs_nobody_in(
    store_url: str | None, pki: LocalPKI, scripted: tuple[ScriptedBankID, str]
) -> None:
    data = {"user": {"personalNumber": PERSON, "givenName": "Erik"}}
    collected = {"orderRef": "131daac9-16c6-4618-beb0-365768f37288", "status": "complete"}
    answer = json.dumps({**collected, "completionData": data}).encode()
    scripted[0].answers = {"auth": (200, ScriptedBankID.STARTED), "collect": (200, answer)}
    with (
        running_gateway(store_url, providers={"bankid": bankid_provider(pki, scripted[1])}) as live,
        closing(Browser(live)) as citizen,
    ):
        state = status(citizen, start(citizen, claims=claims_value("196408233234")))
    assert state["status"] == "failed" and "next" not in state
