"""HTTP-level errors keep the headers the protocol requires (RFC 9110 §15.5.6: a 405 MUST
carry Allow), whether answered as OAuth JSON or as the citizen's page."""

from __future__ import annotations

import httpx2
import pytest

from tests.harness import LiveGateway


def allowed(response: httpx2.Response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [("GET", "/token", {"POST"}), ("PUT", "/userinfo", {"GET", "HEAD", "POST"})],
)
def test_json_405_names_the_allowed_methods(
    gateway: LiveGateway, method: str, path: str, methods: set[str]
) -> None:
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert allowed(response) == methods


def test_page_405_names_the_allowed_methods(gateway: LiveGateway) -> None:
    with httpx2.Client(base_url=gateway.url) as http:
        response = http.delete("/authorize", headers={"accept": "text/html"})
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert allowed(response) == {"GET", "HEAD", "POST"}
