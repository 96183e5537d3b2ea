"""Headers and cookies every citizen page carries."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.ops.security import SecurityHeaders
from tests.harness import Browser, LiveGateway, base_settings, free_port


def test_pages_carry_a_strict_content_security_policy(browser: Browser) -> None:
    page, _ = browser.sandbox_page()
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<style" not in page.text and "style=" not in page.text and "<script" not in page.text


def test_browser_cookie_is_httponly_and_samesite_lax(browser: Browser) -> None:
    page, _ = browser.sandbox_page()
    cookie = page.headers["set-cookie"].lower()
    assert cookie.startswith("pv_browser=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "domain=" not in cookie  # host-only
    assert "secure" not in cookie  # http://127.0.0.1 in tests; see the https test below


def test_browser_cookie_is_secure_behind_https() -> None:
    settings = base_settings("https://login.kommun.example")
    with TestClient(
        create_app(settings), base_url="https://login.kommun.example", follow_redirects=False
    ) as client:
        response = client.get("/authorize", params=Browser.authorize_params(None, "basic"))
    cookie = response.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_forged_browser_cookie_is_ignored(gateway: LiveGateway) -> None:
    citizen = Browser(gateway)
    citizen.http.cookies.set("pv_browser", "forged.value", domain="127.0.0.1")
    page, _ = citizen.sandbox_page()
    assert "pv_browser=" in page.headers["set-cookie"]  # a fresh, signed one replaces it
    citizen.close()


def test_pages_are_swedish_by_default_and_english_on_request(browser: Browser) -> None:
    swedish, _ = browser.sandbox_page()
    assert '<html lang="sv">' in swedish.text and "Personnummer" in swedish.text
    english, _ = browser.sandbox_page(ui_locales="en")
    assert '<html lang="en">' in english.text and "Personal identity number" in english.text


def test_every_page_says_test_in_the_test_environment(browser: Browser) -> None:
    page, _ = browser.sandbox_page()
    assert "<strong>TEST</strong>" in page.text


def test_unused_port_helper_is_loopback() -> None:
    assert 1024 < free_port() < 65536


def test_security_headers_keep_what_a_response_set() -> None:
    async def cached(_: Request) -> Response:
        return PlainTextResponse("x", headers={"Cache-Control": "max-age=60"})

    async def plain(_: Request) -> Response:
        return PlainTextResponse("x")

    app = SecurityHeaders(
        Starlette(
            routes=[Route("/cached", cached), Route("/plain", plain), Route("/static/a", plain)]
        ),
        hsts=True,
    )
    with TestClient(app) as client:
        kept, defaulted, static = (
            client.get("/cached"),
            client.get("/plain"),
            client.get("/static/a"),
        )
    assert kept.headers.get_list("cache-control") == ["max-age=60"]
    assert defaulted.headers.get_list("cache-control") == ["no-store"]
    assert "cache-control" not in static.headers
    for response in (kept, defaulted, static):
        assert response.headers.get_list("x-frame-options") == ["DENY"]
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert response.headers["content-type"].startswith("text/plain")
