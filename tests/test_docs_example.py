"""docs/integrating.md, kept true: its Python example runs against a live gateway on the embedded
demo settings (what `make run` serves), a citizen logs in through it, and what it gets back has
the shape of the example ID token and userinfo shown in the document. The facts the document
states about the demo clients, logout and the session's times are checked against the code."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError

from gateway.demo.defaults import DEMO_REDIRECT_URIS, demo_settings
from gateway.settings import SessionSettings, Settings
from tests.cli.test_main import choose_sandbox
from tests.harness import REDIRECT_URI, TEST_PERSON, LiveGateway, free_port, hidden_field

DOC = Path(__file__).parent.parent / "docs" / "integrating.md"
DOC_ISSUER = 'ISSUER = "http://127.0.0.1:8080"'


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def fenced_blocks(after_heading: str, language: str) -> list[str]:
    """The ```language blocks of one section of the document."""
    text = doc_text()
    section = text[text.index(after_heading) :]
    following = re.search(r"\n## ", section[len(after_heading) :])
    if following:
        section = section[: len(after_heading) + following.start()]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def json_objects(block: str) -> list[dict[str, Any]]:
    decoder, objects, position = json.JSONDecoder(), [], 0
    while position < len(block):
        if block[position].isspace():
            position += 1
            continue
        value, position = decoder.raw_decode(block, position)
        objects.append(value)
    return objects


@pytest.fixture(scope="module")
def demo_gateway() -> Iterator[LiveGateway]:
    with LiveGateway(demo_settings(f"http://127.0.0.1:{free_port()}")) as gateway:
        yield gateway


@pytest.fixture
def example(demo_gateway: LiveGateway) -> dict[str, Any]:
    """The document's code, run as a module whose ISSUER is the live gateway."""
    [code] = fenced_blocks("## Example: Python with authlib", "python")
    assert code.count(DOC_ISSUER) == 1, "the example names the make run issuer once"
    code = code.replace(DOC_ISSUER, f'ISSUER = "{demo_gateway.url}"')
    namespace: dict[str, Any] = {"__name__": "integrating_example"}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own document's example
    return namespace


class Citizen:
    """A browser that walks the gateway's pages and stops where it would leave for the e-service."""

    def __init__(self, gateway: LiveGateway) -> None:
        self.http = httpx2.Client(base_url=gateway.url, follow_redirects=False, timeout=10)

    def visit(self, url: str) -> httpx2.Response:
        return self.settle(self.http.get(url))

    def settle(self, response: httpx2.Response) -> httpx2.Response:
        while response.status_code in (302, 303) and not self.leaving(response):
            response = self.http.get(response.headers["location"])
        return response

    @staticmethod
    def leaving(response: httpx2.Response) -> bool:
        return response.headers.get("location", "").startswith(REDIRECT_URI)

    def log_in(self, url: str, number: str = TEST_PERSON) -> dict[str, str]:
        """Through the chooser and the sandbox; the query the e-service's redirect_uri gets."""
        sandbox = self.settle(choose_sandbox(self.http, self.visit(url)))
        answer = self.http.post(
            "/providers/sandbox/login",
            data={
                "login": hidden_field(sandbox.text, "login"),
                "csrf": hidden_field(sandbox.text, "csrf"),
                "pnr": number,
            },
        )
        answer = self.settle(answer)
        assert self.leaving(answer), answer.text
        query = httpx2.URL(answer.headers["location"]).params
        return dict(query.items())

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def citizen(demo_gateway: LiveGateway) -> Iterator[Citizen]:
    browser = Citizen(demo_gateway)
    yield browser
    browser.close()


def logged_in(example: dict[str, Any], citizen: Citizen) -> tuple[dict[str, Any], str]:
    """The example's result of one whole login, and the raw ID token it checked."""
    checked: list[str] = []
    verify = example["verify_id_token"]

    def recording(id_token: str, nonce: str) -> dict[str, Any]:
        checked.append(id_token)
        return dict(verify(id_token, nonce))

    example["verify_id_token"] = recording
    session: dict[str, str] = {}
    params = citizen.log_in(example["start_login"](session))
    result = example["finish_login"](session, params)
    example["verify_id_token"] = verify
    [id_token] = checked
    return result, id_token


def header_of(id_token: str) -> dict[str, Any]:
    encoded = id_token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))))


def test_the_documented_example_logs_a_citizen_in_with_the_documented_claims(
    example: dict[str, Any], citizen: Citizen
) -> None:
    result, id_token = logged_in(example, citizen)
    header, payload = json_objects(fenced_blocks("## Scopes and claims", "json")[0])
    [userinfo] = json_objects(fenced_blocks("## Scopes and claims", "json")[1])
    assert set(header_of(id_token)) == set(header)
    assert set(result["id_token"]) == set(payload)
    assert set(result["userinfo"]) == set(userinfo)
    claims = result["id_token"]
    assert claims["https://id.oidc.se/claim/personalIdentityNumber"] == TEST_PERSON
    assert claims["aud"] == "demo"
    assert claims["acr"] == payload["acr"]
    assert claims["exp"] - claims["iat"] == payload["exp"] - payload["iat"] == 300
    assert result["userinfo"]["given_name"] == userinfo["given_name"]


def test_the_example_refuses_another_nonce_a_forged_signature_and_an_expired_token(
    example: dict[str, Any], citizen: Citizen, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, id_token = logged_in(example, citizen)
    nonce = result["id_token"]["nonce"]
    with pytest.raises(InvalidClaimError):
        example["verify_id_token"](id_token, "another-nonce")
    head, payload, signature = id_token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    with pytest.raises(BadSignatureError):
        example["verify_id_token"](forged, nonce)
    later = result["id_token"]["exp"] + 1
    monkeypatch.setattr("joserfc._rfc7519.claims._generate_now", lambda: later)
    with pytest.raises(ExpiredTokenError):
        example["verify_id_token"](id_token, nonce)


@pytest.mark.parametrize("setting", ["ISSUER", "CLIENT_ID"])
def test_the_example_refuses_a_token_for_another_issuer_or_audience(
    example: dict[str, Any], citizen: Citizen, setting: str
) -> None:
    result, id_token = logged_in(example, citizen)
    example[setting] = "https://someone-else.example"
    with pytest.raises(InvalidClaimError):
        example["verify_id_token"](id_token, result["id_token"]["nonce"])


@pytest.mark.parametrize("answer", [{"state": "not-ours"}, {"iss": "https://op.example"}])
def test_the_example_refuses_a_callback_from_another_login_or_issuer(
    example: dict[str, Any], citizen: Citizen, answer: dict[str, str]
) -> None:
    session: dict[str, str] = {}
    params = citizen.log_in(example["start_login"](session))
    with pytest.raises(example["LoginFailed"]):
        example["finish_login"](session, {**params, **answer})


def test_logout_for_the_demo_client_is_as_documented(
    example: dict[str, Any], citizen: Citizen, demo_gateway: LiveGateway
) -> None:
    """`demo` has no post_logout_redirect_uri: one is never followed, yet the session ends."""
    _, id_token = logged_in(example, citizen)
    hint = {"id_token_hint": id_token, "client_id": "demo"}
    not_followed = citizen.http.get(
        "/logout", params={**hint, "post_logout_redirect_uri": "http://127.0.0.1:9000/"}
    )
    assert "location" not in not_followed.headers
    again = citizen.visit(example["start_login"]({}))
    assert again.status_code == 200 and 'class="chooser"' in again.text, "no session is left"
    _, id_token = logged_in(example, citizen)
    ended = citizen.http.get("/logout", params={"id_token_hint": id_token, "client_id": "demo"})
    assert ended.status_code == 200
    assert "location" not in ended.headers
    again = citizen.visit(example["start_login"]({}))
    assert again.status_code == 200 and 'class="chooser"' in again.text, "no session is left"


def test_the_documented_demo_clients_and_times_are_the_code_s() -> None:
    settings: Settings = demo_settings("http://127.0.0.1:8080")
    text = " ".join(doc_text().split())
    for client_id in ("demo", "demo-spa"):
        client = settings.client(client_id)
        assert client is not None
        assert client.redirect_uris == DEMO_REDIRECT_URIS
        assert client.post_logout_redirect_uris == []
    assert settings.client("demo").client_secret == "demo-secret"
    assert settings.client("demo-spa").is_public
    assert all(f"`{uri}`" in text for uri in DEMO_REDIRECT_URIS)
    rp = settings.client("demo-rp")
    assert rp.redirect_uris == ["http://127.0.0.1:8080/demo/callback"]
    assert rp.post_logout_redirect_uris == ["http://127.0.0.1:8080/demo/"]
    assert "registered as `demo-rp`" in text
    assert "`http://127.0.0.1:8080/demo/callback`" in text
    assert "post-logout redirect URI `http://127.0.0.1:8080/demo/`" in text
    session = SessionSettings()
    assert (session.idle_seconds, session.ttl_seconds) == (30 * 60, 8 * 3600)
    assert "30 minutes idle (8 hours at most)" in text
    assert settings.id_token_ttl_seconds == 300
    assert "after 5 minutes" in text
