"""What the property tests (tests/properties, the wallet's endpoints) found, each kept as a test
against the served gateway of tests/providers/eudi_wallet/conftest.py."""

from __future__ import annotations

import re

import httpx2
import pytest

from tests.providers.eudi_wallet.conftest import WalletSetup

# RFC 6749 §5.2: the characters an error_description may hold.
DESCRIPTION = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]*")


@pytest.mark.parametrize("name", ["\x1f", "ö", 'a"b', "a\\b", "x" * 41, ""])
def test_a_repeated_field_is_refused_with_a_clean_description(
    wallet: WalletSetup, name: str
) -> None:
    """A repeated form field named with a control character was echoed as its repr, with a
    backslash RFC 6749 does not allow in an error_description."""
    form = httpx2.QueryParams([(name, "1"), (name, "2")])
    answer = httpx2.post(
        f"{wallet.gateway.url}/providers/wallet/response/any",
        content=str(form).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert DESCRIPTION.fullmatch(body["error_description"]), body
    assert body["error_description"].endswith("is repeated")


def test_a_repeated_plain_field_is_named(wallet: WalletSetup) -> None:
    answer = httpx2.post(
        f"{wallet.gateway.url}/providers/wallet/response/any", content=b"state=a&state=b"
    )

    assert answer.status_code == 400
    assert answer.json()["error_description"] == "'state' is repeated"


@pytest.mark.parametrize(
    ("route", "method", "allowed"),
    [
        ("response", "GET", "POST"),
        ("response", "PUT", "POST"),
        ("response", "OPTIONS", "POST"),
        ("request", "DELETE", "GET, POST"),
        ("request", "PATCH", "GET, POST"),
    ],
)
def test_the_wallet_routes_refuse_other_methods_in_json(
    wallet: WalletSetup, route: str, method: str, allowed: str
) -> None:
    """Another method at the wallet's routes got the gateway's HTML 405 page; a wallet gets
    JSON (OpenID4VP's error shape) and never HTML."""
    answer = httpx2.request(method, f"{wallet.gateway.url}/providers/wallet/{route}/any")

    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["allow"] == allowed
    assert "no-store" in answer.headers["cache-control"]
    assert answer.json()["error"] == "invalid_request"
