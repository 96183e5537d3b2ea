"""Issue 21's "done when": from the embedded defaults (`make run`), the demo e-service's
"sign this application" works end to end: its client signs the request object with its own key,
the gateway offers only e-IDs that can sign, the sandbox signs, and the demo receives the
signature in its ID token. Walked over HTTP with the demo's own session, as a browser would."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re

import httpx2

from gateway.demo.defaults import demo_settings
from gateway.demo.signing import APPLICATION, SIGN_MESSAGES
from tests.harness import TEST_PERSON, LiveGateway, free_port, hidden_field


def english_client(gateway: LiveGateway) -> httpx2.Client:
    return httpx2.Client(
        base_url=gateway.url, follow_redirects=True, timeout=10, headers={"Accept-Language": "en"}
    )


def choose(page: httpx2.Response, http: httpx2.Client, provider: str) -> httpx2.Response:
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None, page.text
    form = {"csrf": hidden_field(page.text, "csrf"), "provider": provider}
    return http.post(action.group(1), data=form)


def shown_signature(home: httpx2.Response) -> dict[str, object]:
    section = home.text.split('id="signature"')[1]
    details = section.split('<pre class="claims"')[1].split(">", 1)[1].split("</pre>")[0]
    return dict(json.loads(html.unescape(details)))


def test_the_demo_signs_the_application_through_the_sandbox() -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    with LiveGateway(demo_settings(issuer)) as gateway, english_client(gateway) as http:
        chooser = http.post("/demo/sign")
        assert 'value="sandbox"' in chooser.text and 'value="bankid"' in chooser.text
        login = choose(chooser, http, "sandbox")
        form = {
            "login": hidden_field(login.text, "login"),
            "csrf": hidden_field(login.text, "csrf"),
            "pnr": TEST_PERSON,
        }
        sign_page = http.post("/providers/sandbox/login", data=form)
        assert SIGN_MESSAGES["en"] in sign_page.text, sign_page.text
        signed = {
            "login": hidden_field(sign_page.text, "login"),
            "csrf": hidden_field(sign_page.text, "csrf"),
            "sign": "1",
        }
        home = http.post("/providers/sandbox/sign", data=signed)
        assert home.url.path == "/demo/", home.text
        signature = shown_signature(home)
    assert signature["test"] is True
    assert signature["signer"] == TEST_PERSON
    assert signature["client_id"] == "demo-rp-signer"
    tbs_data = base64.b64encode(APPLICATION.encode()).decode()
    assert signature["tbs_data_sha256"] == hashlib.sha256(tbs_data.encode()).hexdigest()


def test_the_demo_shows_a_refused_signature_as_an_error() -> None:
    """Cancelling on the sign page: the failure page leads back to the demo, which shows the
    error and no signature."""
    issuer = f"http://127.0.0.1:{free_port()}"
    with LiveGateway(demo_settings(issuer)) as gateway, english_client(gateway) as http:
        login = choose(http.post("/demo/sign"), http, "sandbox")
        form = {
            "login": hidden_field(login.text, "login"),
            "csrf": hidden_field(login.text, "csrf"),
            "pnr": TEST_PERSON,
        }
        sign_page = http.post("/providers/sandbox/login", data=form)
        cancelled = {
            "login": hidden_field(sign_page.text, "login"),
            "csrf": hidden_field(sign_page.text, "csrf"),
            "cancel": "1",
        }
        failure = http.post("/providers/sandbox/sign", data=cancelled)
        assert failure.status_code == 400  # the citizen's failure page, with the way back
        way_back = re.search(r'href="([^"]*error=access_denied[^"]*)"', failure.text)
        assert way_back is not None, failure.text
        home = http.get(html.unescape(way_back.group(1)))
    assert home.url.path == "/demo/"
    assert "access_denied" in home.text
    assert 'id="signature"' not in home.text
