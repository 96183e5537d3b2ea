"""BankID's `web` device data as it documents it (bankid-2026-and-ciba.md §0, §1.4) and
`returnUrl` (§1.2): what the gateway sends, and the simulator refusing what BankID refuses.
The device identifier's persistence is tested in test_provider.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from providers.bankid.config import BankIDConfig
from providers.bankid.device import referring_domain
from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from tests.doubles.tls import LocalPKI
from tests.harness import (
    Browser,
    LiveGateway,
    LoginResult,
    code_form,
    running_gateway,
    token_request,
)
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import (
    Clock,
    bankid_provider,
    latest_order,
    login_id,
    poll_until_done,
    start,
)
from tests.providers.bankid.test_simulator import call

pki, clock, simulator, gateway = (
    bankid_tests.pki,
    bankid_tests.clock,
    bankid_tests.simulator,
    bankid_tests.gateway,
)
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock
DEVICE_IP = "https://id.oidc.se/claim/deviceIp"


def web_sent(sim: BankIDSimulator) -> dict[str, str]:
    web: dict[str, str] = [body for path, body in sim.calls if path == "auth"][-1]["web"]
    return web


def test_the_user_agent_is_cut_to_bankids_limit(browser: Browser, bankid: BankIDSimulator) -> None:
    browser.http.headers["user-agent"] = "Mozilla/5.0 " + "x" * 400
    start(browser)
    assert web_sent(bankid)["userAgent"] == ("Mozilla/5.0 " + "x" * 400)[:256]
    assert len(web_sent(bankid)["deviceIdentifier"]) == 64


def test_no_user_agent_sends_the_other_members(browser: Browser, bankid: BankIDSimulator) -> None:
    del browser.http.headers["user-agent"]
    start(browser)
    assert set(web_sent(bankid)) == {"referringDomain", "deviceIdentifier"}
    assert "app" not in [body for path, body in bankid.calls if path == "auth"][-1]


@pytest.mark.parametrize(
    ("host", "sent"),
    [
        ("login.kommun.se", "login.kommun.se"),
        ("Login.Kommun.SE.", "login.kommun.se"),
        ("inloggning.växjö.se", "inloggning.xn--vxj-qla6g.se"),  # IDN: punycode
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("::1", None),  # no way to write it in BankID's alphabet: left out
        ("a", None),  # shorter than 3
        ("x" * 250 + ".se", None),  # longer than 253
        ("under_score.se", None),
    ],
)
def test_the_referring_domain_is_written_in_bankids_alphabet(host: str, sent: str | None) -> None:
    assert referring_domain(host) == sent


@pytest.fixture(scope="module")
def configured_domain_gateway(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> Iterator[LiveGateway]:
    provider = bankid_provider(pki, simulator[1], referring_domain="Exempelby.SE")
    with running_gateway(store_url, providers={"bankid": provider}) as live:
        yield live


def test_a_configured_referring_domain_is_sent(
    configured_domain_gateway: LiveGateway, bankid: BankIDSimulator
) -> None:
    with closing(Browser(configured_domain_gateway)) as citizen:
        start(citizen)
    assert web_sent(bankid)["referringDomain"] == "exempelby.se"


@pytest.mark.parametrize("domain", ["kommun_se", "https://kommun.se", "a", "::1"])
def test_a_referring_domain_bankid_would_refuse_is_refused_at_load(domain: str) -> None:
    config = {"type": "bankid", "url": "http://127.0.0.1/rp/v6.0", "referring_domain": domain}
    with pytest.raises(ValidationError, match="referring_domain"):
        BankIDConfig.model_validate(config)


# -- the simulator refuses device data as BankID does ----------------------------------------------


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(BankIDSimulator().app, raise_server_exceptions=False) as client:
        yield client


WEB = {"referringDomain": "kommun.se", "userAgent": "Mozilla/5.0", "deviceIdentifier": "d" * 64}
APP = {"appIdentifier": "se.kommun.app", "deviceOS": "IOS 17", "deviceIdentifier": "d"}


@pytest.mark.parametrize(
    "extra",
    [
        {"web": WEB, "app": APP},  # mutually exclusive
        {"web": {}},  # at least one member
        {"app": {}},
        {"web": {**WEB, "referringDomain": "Kommun.se"}},  # lower case only
        {"web": {**WEB, "referringDomain": "växjö.se"}},  # IDN must be punycode
        {"web": {**WEB, "referringDomain": "kommun.se:443"}},
        {"web": {**WEB, "referringDomain": "se"}},  # 3-253
        {"web": {**WEB, "referringDomain": "k" * 254}},
        {"web": {**WEB, "userAgent": "u" * 257}},
        {"web": {**WEB, "userAgent": ""}},
        {"web": {**WEB, "deviceIdentifier": "d" * 65}},
        {"web": {**WEB, "deviceIdentifier": 7}},
    ],
)
def test_the_simulator_refuses_device_data_bankid_refuses(
    api: TestClient, extra: dict[str, Any]
) -> None:
    status, answer = call(api, "auth", {"endUserIp": "192.0.2.1", **extra})
    assert status == 400 and answer["errorCode"] == "invalidParameters", answer


@pytest.mark.parametrize(
    "extra", [{"web": WEB}, {"web": {"deviceIdentifier": "d"}}, {"app": APP}, {}]
)
def test_the_simulator_takes_device_data_bankid_takes(
    api: TestClient, extra: dict[str, Any]
) -> None:
    status, answer = call(api, "auth", {"endUserIp": "192.0.2.1", **extra})
    assert status == 200, answer


# -- returnUrl: back to the browser that started the order -----------------------------------------


def test_the_return_url_leads_only_the_starting_browser_back(
    gateway: LiveGateway, browser: Browser, bankid: BankIDSimulator
) -> None:
    """§1.2: the device arriving at returnUrl must be the one that started the order."""
    page = start(browser)
    return_url = latest_order(bankid).return_url
    assert "nonce=" in return_url and latest_order(bankid).order_ref not in return_url
    with closing(Browser(gateway)) as stranger:
        answer = stranger.http.get(return_url)
        assert answer.status_code == 403 and "location" not in answer.headers
    back = browser.http.get(return_url)
    assert back.status_code == 303 and back.headers["location"].endswith(
        f"/providers/bankid/wait?login={login_id(page)}"
    )


# -- device.ipAddress reaches the e-service as deviceIp, when asked for ---------------------------


def test_the_apps_address_is_released_as_device_ip_when_asked_for(
    gateway: LiveGateway, browser: Browser, bankid: BankIDSimulator, clock: Clock
) -> None:
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    ask = json.dumps({"id_token": {DEVICE_IP: None}})
    state = poll_until_done(browser, start(browser, claims=ask), clock)
    callback = browser.follow_to_client(browser.http.get(state["next"]))
    form = code_form(LoginResult(callback, None))
    tokens = token_request(gateway, form, auth=("basic", "basic-secret")).json()
    userinfo = browser.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert DEVICE_IP not in userinfo  # not asked for there
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims[DEVICE_IP] == latest_order(bankid).completion["device"]["ipAddress"]
