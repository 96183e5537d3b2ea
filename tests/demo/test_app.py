"""The demo e-service at /demo/ as a relying party: its back-channel logout endpoint verifies
each logout token (Back-Channel Logout 1.0 §2.6) and really ends its own session. Logout tokens
for the checks are signed here with PyJWT, with the gateway's own key from its key directory."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.demo.defaults import demo_settings
from tests.clock import ManualClock
from tests.harness import TEST_PERSON, LiveGateway, base_settings, free_port, hidden_field

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
BACKCHANNEL = "/demo/backchannel-logout"


def demo_login(http: httpx2.Client) -> dict[str, Any]:
    """Through the demo, the gateway's sandbox and back; the claims the demo shows."""
    home = through_the_sandbox(http)
    assert home.url.path == "/demo/" and "Log out of the demo" in home.text, home.text
    shown = home.text.split('<pre class="claims"')[1].split(">", 1)[1].split("</pre>")[0]
    return dict(json.loads(shown.replace("&#34;", '"').replace("&quot;", '"')))


def through_the_sandbox(http: httpx2.Client) -> httpx2.Response:
    """The demo's login, the sandbox chosen and a test person logged in: the page it ends on."""
    sandbox = http.post("/demo/login")
    if 'name="provider"' in sandbox.text:  # the chooser: take the sandbox
        form = {"csrf": hidden_field(sandbox.text, "csrf"), "provider": "sandbox"}
        action = re.search(r'<form method="post" action="([^"]+)"', sandbox.text)
        assert action is not None
        sandbox = http.post(action.group(1), data=form)
    form = {
        "login": hidden_field(sandbox.text, "login"),
        "csrf": hidden_field(sandbox.text, "csrf"),
        "pnr": TEST_PERSON,
    }
    return http.post("/providers/sandbox/login", data=form)


def logged_in(http: httpx2.Client) -> bool:
    return "Log out of the demo" in http.get("/demo/").text


def english_client(gateway: LiveGateway) -> httpx2.Client:
    return httpx2.Client(
        base_url=gateway.url,
        follow_redirects=True,
        timeout=10,
        headers={"Accept-Language": "en"},
    )


def test_the_bundled_demo_is_told_of_a_logout_at_the_gateway() -> None:
    """The embedded defaults: logging out on the gateway's page ends the demo's session too."""
    issuer = f"http://127.0.0.1:{free_port()}"
    demo = demo_settings(issuer).client("demo-rp")
    assert demo is not None and demo.backchannel_logout_uri == f"{issuer}{BACKCHANNEL}"
    with LiveGateway(demo_settings(issuer)) as gateway, english_client(gateway) as http:
        demo_login(http)
        asked = http.get("/logout")
        out = http.post("/logout", data={"csrf": hidden_field(asked.text, "csrf"), "confirm": "1"})
        assert "Demo e-service" in out.text.split('id="told"')[1].split("</ul>")[0]
        deadline = time.monotonic() + 10  # the back-channel is delivered in the background
        while logged_in(http) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not logged_in(http)


@pytest.fixture(scope="module")
def signed_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveGateway, Path]]:
    keys = tmp_path_factory.mktemp("keys")
    issuer = f"http://127.0.0.1:{free_port()}"
    client = {
        "client_id": "demo-rp",
        "client_secret": "demo-rp-secret-for-tests",
        "redirect_uris": [f"{issuer}/demo/callback"],
        "post_logout_redirect_uris": [f"{issuer}/demo/"],
        "backchannel_logout_uri": f"{issuer}{BACKCHANNEL}",
    }
    settings = base_settings(issuer, demo=True, keys={"dir": str(keys)}, clients=[client])
    with LiveGateway(settings) as gateway:
        yield gateway, next(keys.glob("signing-*.pem"))


class LogoutTokens:
    """Logout tokens as the gateway would sign them, each claim open to change."""

    def __init__(self, gateway: LiveGateway, key_file: Path) -> None:
        self.issuer = gateway.url
        self.key = key_file.read_bytes()
        self.kid = key_file.stem.removeprefix("signing-")

    def claims(self, sid: str, sub: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "aud": "demo-rp",
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(12),
            "sub": sub,
            "sid": sid,
            "events": {LOGOUT_EVENT: {}},
        }

    def sign(self, claims: dict[str, Any], key: Any = None, typ: str = "logout+jwt") -> str:
        headers = {"kid": self.kid, "typ": typ}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers=headers)


def post_token(http: httpx2.Client, token: str) -> httpx2.Response:
    return http.post(BACKCHANNEL, data={"logout_token": token})


def rejected(answer: httpx2.Response) -> bool:
    no_store = answer.headers.get("cache-control") == "no-store"
    return answer.status_code == 400 and answer.json()["error"] == "invalid_request" and no_store


def test_a_verified_logout_token_ends_the_demo_session_once(
    signed_demo: tuple[LiveGateway, Path],
) -> None:
    gateway, key_file = signed_demo
    tokens = LogoutTokens(gateway, key_file)
    with (
        english_client(gateway) as http,
        english_client(gateway) as other,
        httpx2.Client(base_url=gateway.url) as rp_side,
    ):
        claims = demo_login(http)
        demo_login(other)  # another session of the demo: it stays
        token = tokens.sign(tokens.claims(claims["sid"], claims["sub"]))
        answer = post_token(rp_side, token)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        assert not logged_in(http)
        assert logged_in(other)
        assert rejected(post_token(rp_side, token))  # the same jti again


def bad_tokens(tokens: LogoutTokens, sid: str, sub: str) -> dict[str, str]:
    """§2.6: each of these must be refused, and end nothing."""
    good = tokens.claims(sid, sub)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    without = {name: {k: v for k, v in good.items() if k != name} for name in ("events", "iat")}
    return {
        "foreign key": tokens.sign(good, key=stranger),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "wrong iss": tokens.sign({**good, "iss": "https://other.example"}),
        "wrong aud": tokens.sign({**good, "aud": "someone-else"}),
        "no events": tokens.sign(without["events"]),
        "other event": tokens.sign({**good, "events": {"urn:other": {}}}),
        "nonce": tokens.sign({**good, "nonce": "n"}),
        "neither sid nor sub": tokens.sign(
            {k: v for k, v in good.items() if k not in ("sid", "sub")}
        ),
        "no iat": tokens.sign(without["iat"]),
        "stale iat": tokens.sign({**good, "iat": good["iat"] - 3600, "exp": good["iat"] + 60}),
        "future iat": tokens.sign({**good, "iat": good["iat"] + 3600}),
        "expired": tokens.sign({**good, "exp": good["iat"] - 60}),  # beyond the 30 s skew
        "no jti": tokens.sign({k: v for k, v in good.items() if k != "jti"}),
        "an ID token's typ": tokens.sign(good, typ="JWT"),
        "not a JWT": "not.a.jwt",
    }


def test_every_malformed_logout_token_is_refused_and_ends_nothing(
    signed_demo: tuple[LiveGateway, Path],
) -> None:
    gateway, key_file = signed_demo
    tokens = LogoutTokens(gateway, key_file)
    with english_client(gateway) as http, httpx2.Client(base_url=gateway.url) as rp_side:
        claims = demo_login(http)
        for name, token in bad_tokens(tokens, claims["sid"], claims["sub"]).items():
            assert rejected(post_token(rp_side, token)), name
        assert rejected(rp_side.post(BACKCHANNEL, data={}))
        assert logged_in(http)


def test_a_logout_token_with_only_sub_ends_that_persons_sessions(
    signed_demo: tuple[LiveGateway, Path],
) -> None:
    gateway, key_file = signed_demo
    tokens = LogoutTokens(gateway, key_file)
    with english_client(gateway) as http, httpx2.Client(base_url=gateway.url) as rp_side:
        claims = demo_login(http)
        only_sub = tokens.claims(claims["sid"], claims["sub"])
        del only_sub["sid"]
        assert post_token(rp_side, tokens.sign(only_sub)).status_code == 200
        assert not logged_in(http)


def test_an_id_token_the_demo_refuses_is_shown_as_an_error_not_a_500() -> None:
    """The gateway's clock an hour ahead of the demo e-service's: authlib refuses the ID
    token's `iat`; the demo says so on its page instead of failing with a 500."""
    ahead = ManualClock(time.time() + 3600)
    with (
        LiveGateway(demo_settings(f"http://127.0.0.1:{free_port()}"), ahead) as gateway,
        english_client(gateway) as http,
    ):
        home = through_the_sandbox(http)

    assert home.status_code == 200 and home.url.path == "/demo/"
    assert "Log out of the demo" not in home.text
