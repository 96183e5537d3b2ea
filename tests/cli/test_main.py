"""`portvakt serve` on its embedded defaults, exactly as the README's quick start runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
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
    lines = [process.stdout.readline()]
    while "Contact centre" not in lines[-1] and len(lines) < 20:  # the announcement's last line
        lines.append(process.stdout.readline())
    text = "".join(lines)
    assert f"Issuer: {url}" in text
    assert "client_id=demo client_secret=demo-secret" in text
    assert "client_id=demo-spa" in text
    assert f"open {url}/demo/" in text
    assert f"Contact centre (CIBA): {url}/demo/contact-centre" in text


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

    from gateway.cli.main import main as cli_main

    secret = "s" * 40
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    assert cli_main(["hash-secret"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(secret.encode()).hexdigest()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["hash-secret"]) == 2
    assert "at least 32 characters" in capsys.readouterr().err


REPOSITORY = Path(__file__).resolve().parents[2]
TAKEN_HINT = re.compile(
    r"^portvakt: cannot listen on 127\.0\.0\.1 port (\d+): another program already uses it\. "
    r"Choose another port, e\.g\. --port (\d+) \(make run PORT=\2\)$"
)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on, as another server would hold it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_serve_refuses_a_taken_port_in_one_line_before_any_banner(taken_port: int) -> None:
    result = subprocess.run(
        [console_script(), "serve", "--port", str(taken_port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    match = TAKEN_HINT.match(line)
    assert match, line
    assert int(match.group(1)) == taken_port
    with socket.socket() as suggested:  # the port it suggests is free
        suggested.bind(("127.0.0.1", int(match.group(2))))


def make_run(port: int) -> subprocess.Popen[str]:
    """`make run PORT=...` with this test run's virtual environment (already installed)."""
    venv = Path(sys.executable).parent.parent
    return subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(REPOSITORY), "run", f"PORT={port}",
         f"VENV={venv}", "-o", f"{venv}/.installed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # make and the gateway it starts end together, by group
    )  # fmt: skip


def test_make_run_serves_on_the_port_given_as_port() -> None:
    port = free_port()
    process = make_run(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "make run did not start on PORT"
                time.sleep(0.1)
        assert ready.status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=20)


def test_make_run_on_a_taken_port_says_how_to_choose_another(taken_port: int) -> None:
    process = make_run(taken_port)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # it served after all: end it and its gateway
            os.killpg(process.pid, signal.SIGTERM)
            process.communicate(timeout=20)
    assert process.returncode != 0
    assert "Portvakt is starting" not in out
    assert any(TAKEN_HINT.match(line) for line in err.splitlines()), err
    assert "Traceback" not in err and "ERROR" not in err


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_refuses_a_port_that_is_no_port_number(port: str) -> None:
    result = subprocess.run(
        [console_script(), "serve", "--port", port], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"portvakt serve: error: argument --port: {port!r} is not a port number (0-65535)"
    )
