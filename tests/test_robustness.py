"""Odd and hostile input never produces a 500 (some odd but valid requests rightly succeed)."""

from __future__ import annotations

import httpx2
import pytest

from tests.harness import REDIRECT_URI, LiveGateway

VALID_AUTHORIZE = {"client_id": "basic", "redirect_uri": REDIRECT_URI, "response_type": "code",
                   "scope": "openid"}  # fmt: skip
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def authorize_with(**params: str) -> tuple[str, str, dict]:
    return ("GET", "/authorize", {"params": {**VALID_AUTHORIZE, **params}})


ODD_REQUESTS = [
    ("GET", "/authorize", {"params": {"client_id": "basic\x00", "redirect_uri": REDIRECT_URI}}),
    ("GET", "/authorize", {"params": {"client_id": "ö" * 5000}}),
    authorize_with(max_age="9" * 400),
    authorize_with(claims='{"id_token": {"acr": {"values": 5}}}'),
    authorize_with(claims='{"id_token": {"acr": {"essential": true, "values": "x"}}}'),
    authorize_with(claims="[]"),
    authorize_with(error_description='ü"\\'),
    (
        "POST",
        "/authorize",
        {"content": b"\xff\xfe", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ),
    ("POST", "/authorize", {"content": b"{}", "headers": {"content-type": "application/json"}}),
    ("POST", "/token", {"data": {"grant_type": "authorization_code"}}),
    (
        "POST",
        "/token",
        {"headers": {"Authorization": "Basic !!!notbase64"}, "data": {"grant_type": "x"}},
    ),
    ("POST", "/token", {"headers": {"Authorization": "Basic ö".encode("latin-1")}, "data": {}}),
    (
        "POST",
        "/token",
        {
            "data": {
                "client_assertion_type": JWT_BEARER,
                "client_assertion": "not.a.jwt",
                "grant_type": "authorization_code",
            }
        },
    ),
    (
        "POST",
        "/token",
        {
            "data": {
                "client_assertion_type": JWT_BEARER,
                "client_assertion": "e30.W10.",
                "grant_type": "authorization_code",
            }
        },
    ),
    (
        "POST",
        "/token",
        {"content": b"\xff", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ),
    ("POST", "/token", {"files": {"code": ("code.txt", b"abc")}}),
    ("POST", "/token", {"json": {"grant_type": "authorization_code"}}),
    ("GET", "/token", {}),
    ("GET", "/userinfo", {"headers": {"Authorization": "Bearer"}}),
    ("GET", "/userinfo", {"headers": {"Authorization": "Basic abc"}}),
    (
        "POST",
        "/userinfo",
        {
            "content": b"access_token=%FF",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
    ),
    ("GET", "/login/x", {}),
    ("POST", "/login/x", {"data": {"csrf": "x", "provider": "sandbox"}}),
    ("GET", "/login/x/resume", {}),
    ("GET", "/login/x/cancel", {}),
    ("GET", "/providers/sandbox/done", {}),
    ("GET", "/providers/sandbox/done", {"params": {"login": "x" * 3000}}),
    ("GET", "/providers/sandbox/login", {}),
    ("POST", "/providers/sandbox/login", {"data": {}}),
    ("POST", "/providers/sandbox/login", {"data": {"login": "x", "csrf": "y", "pnr": "1"}}),
    ("GET", "/static/../gateway/settings.py", {}),
    ("GET", "/nowhere", {}),
]


@pytest.mark.parametrize(("method", "path", "options"), ODD_REQUESTS)
def test_odd_request_never_gets_a_500(gateway: LiveGateway, method, path, options) -> None:
    with httpx2.Client(base_url=gateway.url, follow_redirects=False) as http:
        response = http.request(method, path, **options)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert "Traceback" not in response.text
