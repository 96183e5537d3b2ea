"""`portvakt serve` on its embedded defaults, exactly as the README's quick start runs it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.harness import free_port, hidden_field

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"


def console_script() -> str:
    beside_python = Path(sys.executable).parent / "portvakt"
    script = str(beside_python) if beside_python.exists() else shutil.which("portvakt")
    assert script, "the portvakt console script is not installed (pip install -e .)"
    return script


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [console_script(), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx2.get(f"{url}/healthz", timeout=0.5)
            break
        except httpx2.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                output = process.communicate()
                raise RuntimeError(f"portvakt serve did not start: {output}") from None
            time.sleep(0.1)
    yield url, process
    process.terminate()
    process.communicate(timeout=10)


def test_serve_prints_issuer_demo_client_and_the_url_to_try(served) -> None:
    url, process = served
    lines = []
    while len(lines) < 8:
        lines.append(process.stdout.readline())
    text = "".join(lines)
    assert f"Issuer: {url}" in text
    assert "client_id=demo client_secret=demo-secret" in text
    assert "client_id=demo-spa" in text
    assert f"open {url}/demo/" in text


def test_discovery_on_defaults_names_the_issuer(served) -> None:
    url, _ = served
    metadata = httpx2.get(f"{url}/.well-known/openid-configuration").json()
    assert metadata["issuer"] == url
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_the_demo_e_service_completes_a_whole_login(served) -> None:
    """Demo RP (authlib client) -> gateway -> sandbox -> code -> token -> userinfo -> claims."""
    url, _ = served
    with httpx2.Client(base_url=url, follow_redirects=True, timeout=10) as browser:
        home = browser.get("/demo/")
        assert "Logga in" in home.text
        sandbox = choose_sandbox(browser, browser.post("/demo/login"))
        assert 'name="pnr"' in sandbox.text
        result = browser.post(
            "/providers/sandbox/login",
            data={
                "login": hidden_field(sandbox.text, "login"),
                "csrf": hidden_field(sandbox.text, "csrf"),
                "pnr": "196408233234",
            },
        )
    assert result.url.path == "/demo/"
    blocks = re.findall(r'<pre class="claims"[^>]*>(.*?)</pre>', result.text, re.S)
    assert len(blocks) == 2
    claims, userinfo = (json.loads(b.replace("&#34;", '"').replace("&quot;", '"')) for b in blocks)
    assert claims[PNR_CLAIM] == "196408233234"
    assert claims["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"
    assert userinfo["given_name"] == "Ingrid"
    assert userinfo["sub"] == claims["sub"]


def test_the_demo_shows_a_cancelled_login_as_an_error(served) -> None:
    url, _ = served
    with httpx2.Client(base_url=url, follow_redirects=True, timeout=10) as browser:
        sandbox = choose_sandbox(browser, browser.post("/demo/login"))
        cancelled = browser.post(
            "/providers/sandbox/login",
            data={
                "login": hidden_field(sandbox.text, "login"),
                "csrf": hidden_field(sandbox.text, "csrf"),
                "cancel": "1",
            },
        )
        back = cancelled.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
        demo = browser.get(back)
    assert "access_denied" in demo.text


def choose_sandbox(browser: httpx2.Client, chooser: httpx2.Response) -> httpx2.Response:
    """The demo offers the sandbox and BankID (simulated): pick the sandbox."""
    action = chooser.text.split('class="chooser"')[0].rsplit('action="', 1)[1].split('"')[0]
    return browser.post(
        action, data={"csrf": hidden_field(chooser.text, "csrf"), "provider": "sandbox"}
    )


def test_hash_secret_prints_the_sha256_of_a_long_random_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib
    import io

    from gateway.cli import main as cli_main

    secret = "s" * 40
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    assert cli_main(["hash-secret"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(secret.encode()).hexdigest()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["hash-secret"]) == 2
    assert "at least 32 characters" in capsys.readouterr().err
