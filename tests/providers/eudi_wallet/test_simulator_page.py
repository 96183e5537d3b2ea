"""The simulator's phone page, driven over HTTP as a browser does: open a link, see who asks
and for what, Share or Decline; same-device answers return the browser with a 303, cross-device
ones say to go back to the computer. Forms are bound to the browser that opened the request,
used once, and no input answers 5xx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx2
import jwt
import pytest
from lxml import html

from providers.eudi_wallet.simulator import WalletSimulator
from tests.harness import ServedApp, free_port
from tests.providers.eudi_wallet.relying_party import RelyingParty
from tests.providers.eudi_wallet.sd_jwt_check import unpack

MOUNT = "/wallet-simulator"


class Mounted:
    """The simulator served under its mount path, as the demo mounts it."""

    def __init__(self, verifier: RelyingParty) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Mount

        self.port = free_port()
        self.wallet = WalletSimulator(MOUNT, trusted_access_cas=[verifier.access_ca.certificate])
        app = Starlette(routes=[Mount(MOUNT, self.wallet.app)])
        self.served = ServedApp(app, self.port)
        self.url = f"http://127.0.0.1:{self.port}{MOUNT}"


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[RelyingParty]:
    with RelyingParty(tmp_path) as relying_party:
        yield relying_party


@pytest.fixture
def mounted(verifier: RelyingParty) -> Iterator[Mounted]:
    mounted = Mounted(verifier)
    with mounted.served:
        yield mounted


@pytest.fixture
def browser() -> Iterator[httpx2.Client]:
    with httpx2.Client(trust_env=False, follow_redirects=False, timeout=10) as client:
        yield client


def _open(browser: httpx2.Client, mounted: Mounted, link: str) -> tuple[httpx2.Response, str]:
    page = browser.get(f"{mounted.url}/", params={"request": link})
    found = re.search(r'name="pending" value="([^"]+)"', page.text)
    return page, found.group(1) if found else ""


def _labelled(page: str) -> None:
    """Valid enough to parse, lang set, every visible control named by a label."""
    tree = html.fromstring(page)
    assert tree.get("lang") == "en"
    labels = {label.get("for") for label in tree.iter("label")}
    for control in tree.xpath("//input[not(@type='hidden')] | //select"):
        assert control.get("id") in labels, html.tostring(control)


def test_the_page_offers_to_open_a_link(browser: httpx2.Client, mounted: Mounted) -> None:
    page = browser.get(f"{mounted.url}/")
    assert page.status_code == 200 and 'name="request"' in page.text
    _labelled(page.text)


def test_an_opened_request_shows_who_asks_and_what(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    page, pending = _open(browser, mounted, verifier.link())
    assert page.status_code == 200 and pending
    assert "Test municipality e-service" in page.text
    assert "personal_administrative_number" in page.text
    assert f'action="{MOUNT}/share"' in page.text
    _labelled(page.text)


def test_share_cross_device_says_go_back_to_the_computer(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    _page, pending = _open(browser, mounted, verifier.link())
    done = browser.post(f"{mounted.url}/share", data={"pending": pending, "person": "se"})
    assert done.status_code == 200 and "go back to the computer" in done.text
    assert "response" in verifier.posts[-1]
    vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
    status_uri = vp.payload["status"]["status_list"]["uri"]
    assert status_uri == f"{mounted.url}/status-lists/1"  # under the page's own URL
    token = browser.get(status_uri).text
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == status_uri


def test_share_same_device_returns_the_browser_with_a_303(
    tmp_path: Path, browser: httpx2.Client, mounted: Mounted
) -> None:
    (tmp_path / "x").mkdir()
    with RelyingParty(tmp_path / "x", same_device=True) as same_device:
        mounted.wallet.trusted_access_cas.append(same_device.access_ca.certificate)
        _page, pending = _open(browser, mounted, same_device.link())
        back = browser.post(f"{mounted.url}/share", data={"pending": pending, "person": "fi"})
    assert back.status_code == 303
    assert back.headers["location"] == f"{same_device.url}/done?response_code=abc"


def test_decline_posts_access_denied(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    _page, pending = _open(browser, mounted, verifier.link())
    assert browser.post(f"{mounted.url}/decline", data={"pending": pending}).status_code == 200
    assert verifier.posts == [{"error": "access_denied", "state": verifier.state}]


def test_a_form_from_another_browser_is_refused(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    _page, pending = _open(browser, mounted, verifier.link())
    with httpx2.Client(trust_env=False) as other:
        answer = other.post(f"{mounted.url}/share", data={"pending": pending, "person": "se"})
    assert answer.status_code == 400 and "another browser" in answer.text
    assert verifier.posts == []


def test_a_form_is_used_once(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    _page, pending = _open(browser, mounted, verifier.link())
    form = {"pending": pending, "person": "se"}
    assert browser.post(f"{mounted.url}/share", data=form).status_code == 200
    assert browser.post(f"{mounted.url}/share", data=form).status_code == 400
    assert len(verifier.posts) == 1


def test_a_refused_request_is_not_presented_and_says_why(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    verifier.payload_changes["response_mode"] = "direct_post"
    page, pending = _open(browser, mounted, verifier.link())
    assert page.status_code == 400 and not pending
    assert "response_mode is not direct_post.jwt" in page.text
    assert verifier.posts[0]["error"] == "invalid_request"


def test_a_pid_lacking_a_requested_claim_is_not_shared(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    _page, pending = _open(browser, mounted, verifier.link())
    form = {"pending": pending, "person": "se-no-number"}
    answer = browser.post(f"{mounted.url}/share", data=form)
    assert answer.status_code == 400 and "personal_administrative_number" in answer.text
    assert verifier.posts == []


def test_an_answer_the_verifier_refuses_is_said_so(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    verifier.response_status = 400
    _page, pending = _open(browser, mounted, verifier.link())
    answer = browser.post(f"{mounted.url}/share", data={"pending": pending, "person": "se"})
    assert answer.status_code == 200 and "answered HTTP 400" in answer.text


def test_a_twist_chosen_on_the_page_bends_the_answer(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    _page, pending = _open(browser, mounted, verifier.link())
    form = {"pending": pending, "person": "se", "twist": "UNENCRYPTED"}
    assert browser.post(f"{mounted.url}/share", data=form).status_code == 200
    assert "vp_token" in verifier.posts[-1]


JUNK_GETS = [
    "/?request=",
    "/?request=" + quote("openid4vp://?client_id=%ff&request_uri=%zz"),
    "/?request=" + "a" * 10_000,
    "/?request=" + quote("openid4vp://?client_id=a&request_uri=http://[::1"),
    "/?request=" + quote("haip-vp://?client_id=a&request_uri=http://127.0.0.1:1/"),
    "/status-lists/abc",
    "/status-lists/0",
    "/status-lists/" + "9" * 40,
    "/status-lists/-1",
    "/status-lists/" + "9" * 5000,
    "/status-lists/%D9%A1",  # an Arabic-Indic digit one
    "/nothing-here",
]


@pytest.mark.parametrize("path", JUNK_GETS)
def test_junk_gets_never_answer_5xx(browser: httpx2.Client, mounted: Mounted, path: str) -> None:
    assert browser.get(mounted.url + path).status_code < 500


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"pending=nope&person=se"),
        ("application/x-www-form-urlencoded", b"%ff%fe=\xff"),
        ("application/x-www-form-urlencoded", b"&".join([b"a=b"] * 50)),
        ("multipart/form-data; boundary=x", b"--x\r\nbroken"),
        ("multipart/form-data", b"no boundary"),
        ("application/json", b'{"pending": "x"}'),
        ("text/plain", b"\x00" * 100),
    ],
)
@pytest.mark.parametrize("action", ["share", "decline"])
def test_junk_posts_never_answer_5xx(
    browser: httpx2.Client, mounted: Mounted, action: str, content_type: str, body: bytes
) -> None:
    answer = browser.post(
        f"{mounted.url}/{action}", content=body, headers={"content-type": content_type}
    )
    assert 400 <= answer.status_code < 500


def test_a_cookie_of_junk_never_answers_5xx(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    _page, pending = _open(browser, mounted, verifier.link())
    with httpx2.Client(trust_env=False) as other:
        answer = other.post(
            f"{mounted.url}/share",
            data={"pending": pending, "person": "se"},
            headers={"cookie": "wallet_simulator_browser=åäö".encode()},
        )
    assert answer.status_code == 400 and verifier.posts == []


def test_junk_fields_of_a_real_form_never_answer_5xx(
    browser: httpx2.Client, mounted: Mounted, verifier: RelyingParty
) -> None:
    for fields in ({"person": "nobody"}, {"person": "se", "twist": "BOGUS"}, {"person": ""}):
        _page, pending = _open(browser, mounted, verifier.link())
        answer = browser.post(f"{mounted.url}/share", data={"pending": pending, **fields})
        assert answer.status_code == 400, fields
    assert verifier.posts == []
