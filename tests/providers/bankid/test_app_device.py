"""BankID's `app` device data (bankid-2026-and-ciba.md §1.5) for a registered native app's
login: its device values come only in a request object the client signed (with PyJWT here, not
the gateway's JOSE library), the appIdentifier only from the client's registration."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx2
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from gateway.oidc.app_device import APP_DEVICE_PARAMETER
from gateway.settings import ClientSettings
from providers.bankid.simulator import BankIDSimulator
from tests.doubles.tls import LocalPKI
from tests.harness import (
    NUMBER_SCOPE,
    REDIRECT_URI,
    Browser,
    LiveGateway,
    query_of,
    running_gateway,
)
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import bankid_provider, hidden

pki, clock, simulator = bankid_tests.pki, bankid_tests.clock, bankid_tests.simulator
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock

APP_IDENTIFIER = "se.kommun.minasidor"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE = {
    "deviceOS": "IOS 16.7.7",
    "deviceModelName": "Apple iPhone14,3",
    "deviceIdentifier": "f1a2" * 16,
}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = {"keys": [{**RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "app-1"}]}


def client(client_id: str, **extra: Any) -> dict[str, Any]:
    return {"client_id": client_id, "redirect_uris": [REDIRECT_URI], "jwks": JWKS, **extra}


@pytest.fixture(scope="module")
def gateway(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> Iterator[LiveGateway]:
    clients = [
        client("app", bankid_app={"app_identifier": APP_IDENTIFIER}),
        client("no-app"),
    ]
    with running_gateway(
        store_url, providers={"bankid": bankid_provider(pki, simulator[1])}, clients=clients
    ) as live:
        yield live


@pytest.fixture
def citizen(gateway: LiveGateway) -> Iterator[Browser]:
    with closing(Browser(gateway)) as browser:
        yield browser


def request_object(gateway: LiveGateway, client_id: str = "app", **members: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "aud": gateway.url,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": f"openid {NUMBER_SCOPE}",
        "state": "app-state",
        "nonce": "app-nonce",
        **members,
    }
    return pyjwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "app-1"})


def authorize(citizen: Browser, client_id: str = "app", **params: str) -> httpx2.Response:
    return citizen.http.get("/authorize", params={"client_id": client_id, **params})


def auth_body(sim: BankIDSimulator) -> dict[str, Any]:
    body: dict[str, Any] = [body for path, body in sim.calls if path == "auth"][-1]
    return body


def assert_invalid_request(response: httpx2.Response) -> None:
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    params = query_of(response.headers["location"])
    assert params["error"] == "invalid_request", params
    assert "code" not in params


def assert_order_page(citizen: Browser, response: httpx2.Response) -> httpx2.Response:
    assert response.status_code == 303, response.text
    assert "/providers/bankid/wait?login=" in response.headers["location"]
    page = citizen.http.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return page


def test_a_registered_apps_signed_device_values_are_sent_as_app(
    gateway: LiveGateway, citizen: Browser, bankid: BankIDSimulator
) -> None:
    signed = request_object(gateway, **{APP_DEVICE_PARAMETER: DEVICE})
    assert_order_page(citizen, authorize(citizen, request=signed))
    body = auth_body(bankid)
    assert body["app"] == {"appIdentifier": APP_IDENTIFIER, **DEVICE}
    assert "web" not in body
    assert not any(name.startswith("pv_device_") for name in citizen.http.cookies)


def test_a_registered_app_without_device_values_sends_web(
    gateway: LiveGateway, citizen: Browser, bankid: BankIDSimulator
) -> None:
    assert_order_page(citizen, authorize(citizen, request=request_object(gateway)))
    body = auth_body(bankid)
    assert "app" not in body
    assert body["web"]["deviceIdentifier"]


def test_device_values_outside_a_signed_object_are_refused(
    gateway: LiveGateway, citizen: Browser, bankid: BankIDSimulator
) -> None:
    orders_before = len(bankid.calls)
    plain = {"redirect_uri": REDIRECT_URI, "response_type": "code", "state": "s"}
    device = json.dumps(DEVICE)
    response = authorize(
        citizen, scope=f"openid {NUMBER_SCOPE}", **plain, **{APP_DEVICE_PARAMETER: device}
    )
    assert_invalid_request(response)
    beside = {"request": request_object(gateway), APP_DEVICE_PARAMETER: device}
    assert_invalid_request(authorize(citizen, **beside))  # a query value beside the object
    assert len(bankid.calls) == orders_before


def test_a_client_without_a_registered_app_is_refused(
    gateway: LiveGateway, citizen: Browser
) -> None:
    signed = request_object(gateway, "no-app", **{APP_DEVICE_PARAMETER: DEVICE})
    assert_invalid_request(authorize(citizen, "no-app", request=signed))


@pytest.mark.parametrize(
    "device",
    [
        "not json",
        ["IOS 16.7.7"],
        {},
        {**DEVICE, "deviceIdentifier": "d" * 65},
        {**DEVICE, "deviceOS": "o" * 257},
        {**DEVICE, "deviceModelName": ""},
        {**DEVICE, "deviceModelName": "iPhone\n14"},
        {**DEVICE, "deviceOS": 16},
        {k: v for k, v in DEVICE.items() if k != "deviceOS"},
        {**DEVICE, "appIdentifier": "com.evil.app"},  # never the request's own
    ],
)
def test_malformed_device_values_are_refused(
    gateway: LiveGateway, citizen: Browser, device: Any
) -> None:
    signed = request_object(gateway, **{APP_DEVICE_PARAMETER: device})
    assert_invalid_request(authorize(citizen, request=signed))


@pytest.mark.parametrize(
    "app_identifier", ["", "x" * 257, "se.kommun app", "se/kommun", "se.kommun.å"]
)
def test_an_app_identifier_of_the_wrong_shape_is_refused_at_load(app_identifier: str) -> None:
    registration = client("app", bankid_app={"app_identifier": app_identifier})
    with pytest.raises(ValidationError, match="app_identifier"):
        ClientSettings.model_validate(registration)


def test_a_registered_app_needs_the_clients_keys() -> None:
    registration = {
        "client_id": "app",
        "client_secret": "s" * 32,
        "redirect_uris": [REDIRECT_URI],
        "bankid_app": {"app_identifier": APP_IDENTIFIER},
    }
    with pytest.raises(ValidationError, match="bankid_app needs"):
        ClientSettings.model_validate(registration)


def test_a_retry_sends_the_same_app_again(
    gateway: LiveGateway, citizen: Browser, bankid: BankIDSimulator
) -> None:
    signed = request_object(gateway, **{APP_DEVICE_PARAMETER: DEVICE})
    page = assert_order_page(citizen, authorize(citizen, request=signed))
    login = str(page.url.params["login"])
    retried = citizen.http.post(
        "/providers/bankid/retry", data={"login": login, "csrf": hidden(page.text, "csrf")}
    )
    assert retried.status_code == 303, retried.text
    assert [path for path, _ in bankid.calls][-2:] == ["cancel", "auth"]
    assert auth_body(bankid)["app"] == {"appIdentifier": APP_IDENTIFIER, **DEVICE}
    assert "web" not in auth_body(bankid)


def client_assertion(gateway: LiveGateway) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": "app", "sub": "app", "aud": f"{gateway.url}/token", "iat": now}
    claims |= {"exp": now + 60, "jti": str(uuid.uuid4())}
    assertion = pyjwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "app-1"})
    return {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}


def push(gateway: LiveGateway, **form: str) -> httpx2.Response:
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        return http.post("/par", data={"client_id": "app", **form, **client_assertion(gateway)})


def test_a_pushed_signed_object_keeps_its_device_values(
    gateway: LiveGateway, citizen: Browser, bankid: BankIDSimulator
) -> None:
    pushed = push(gateway, request=request_object(gateway, **{APP_DEVICE_PARAMETER: DEVICE}))
    assert pushed.status_code == 201, pushed.text
    response = authorize(citizen, request_uri=pushed.json()["request_uri"])
    assert_order_page(citizen, response)
    assert auth_body(bankid)["app"] == {"appIdentifier": APP_IDENTIFIER, **DEVICE}


def test_device_values_pushed_as_plain_parameters_are_refused(gateway: LiveGateway) -> None:
    plain = {"redirect_uri": REDIRECT_URI, "response_type": "code", "state": "s"}
    device = {APP_DEVICE_PARAMETER: json.dumps(DEVICE)}
    pushed = push(gateway, scope=f"openid {NUMBER_SCOPE}", **plain, **device)
    assert pushed.status_code == 400, pushed.text
    assert pushed.json()["error"] == "invalid_request"
