"""Real parts for the tests: a redis-server process on a free loopback port, the gateway served by
uvicorn on another, and a browser-like HTTP client that walks a login the way a citizen does."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx2
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.app import create_app
from gateway.settings import Settings, settings_from_data

REDIRECT_URI = "http://127.0.0.1:9000/callback"
TEST_PERSON = "199908072391"
NUMBER_SCOPE = "https://id.oidc.se/scope/naturalPersonNumber"
INFO_SCOPE = "https://id.oidc.se/scope/naturalPersonInfo"
NO_RATE_LIMITS = {
    "authorize_per_ip_per_minute": 0,
    "token_per_ip_per_minute": 0,
    "token_per_client_per_minute": 0,
    "provider_starts_per_ip_per_minute": 0,
    "provider_starts_per_browser_per_minute": 0,
    "provider_starts_per_login_per_minute": 0,
}


# Servers of the tests listen below Linux's ephemeral range (32768-60999), from which the kernel
# gives every client socket its local port: a port handed out here and not yet bound by its
# server cannot be taken by some test's outgoing connection meanwhile. Under pytest-xdist each
# worker draws from its own share, so two workers never hand out the same port.
SERVER_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never handed out before by this process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = SERVER_PORTS[int(worker or 0) % workers :: workers]
    for _ in range(200):
        port = random.choice(share)
        if port in _handed_out:
            continue
        _handed_out.add(port)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


class RedisServer:
    """A throwaway redis-server: no persistence, loopback only, stopped and restarted at will."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed; run `make test` (it installs it) or "
                "`apt-get install redis-server`"
            )
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def command(self, *args: str) -> str:
        """One command through redis-cli-free RESP, for assertions (TTL, DBSIZE, FLUSHALL)."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(request.encode())
            return conn.recv(4096).decode().strip()


class ServedApp:
    """An ASGI app served by a real uvicorn server in a thread, on a loopback port; uvicorn's
    TLS options (`ssl_certfile`, `ssl_ca_certs`, `ssl_cert_reqs`, ...) make it HTTPS."""

    def __init__(self, app: Any, port: int, **uvicorn_options: Any) -> None:
        self.port = port
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            **uvicorn_options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class LiveGateway(ServedApp):
    """The gateway served on the port of its issuer."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.app = create_app(settings, clock=clock)
        super().__init__(self.app, int(urlsplit(settings.issuer).port or 80))

    @property
    def url(self) -> str:
        return self.settings.issuer


def base_settings(issuer: str, store_url: str | None = None, **overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "issuer": issuer,
        "environment": "test",
        "secret_key": "test-secret-key-" + "x" * 32,
        "subject_salt": "test-subject-salt",
        "providers": {"sandbox": {"type": "sandbox"}},
        "clients": [
            {
                "client_id": "basic",
                "client_secret": "basic-secret",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            {
                "client_id": "post",
                "client_secret": "post-secret",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "client_secret_post",
            },
            {"client_id": "spa", "redirect_uris": [REDIRECT_URI]},
        ],
    }
    if store_url is not None:
        data["store"] = {"url": store_url}
    data["rate_limits"] = NO_RATE_LIMITS  # tests/ops/test_rate_limit.py sets its own
    data.update(overrides)
    return settings_from_data(data)


@contextmanager
def running_gateway(
    store_url: str | None = None, clock: Callable[[], float] = time.time, **overrides: Any
) -> Iterator[LiveGateway]:
    """The gateway on a free port; `clock` (tests/clock.py) is what it judges time by."""
    issuer = f"http://127.0.0.1:{free_port()}"
    with LiveGateway(base_settings(issuer, store_url, **overrides), clock) as gateway:
        yield gateway


def stored_value(store_url: str | None, gateway: LiveGateway, key: str) -> bytes | None:
    """A record as the gateway stored it: from Redis, or from the in-memory store."""
    if store_url is not None:
        client = redis.Redis.from_url(store_url)
        try:
            value: bytes | None = client.get(key)
            return value
        finally:
            client.close()
    memory = gateway.app.state.store.target
    stored: bytes | None = asyncio.run(memory.get(key))
    return stored


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def hidden_field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None, f"no hidden field {name} in page"
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class LoginResult:
    callback: dict[str, str]
    verifier: str | None


class Browser:
    """A citizen's browser: keeps cookies, follows the gateway's pages by hand, stops at the RP."""

    def __init__(self, gateway: LiveGateway) -> None:
        self.gateway = gateway
        self.http = httpx2.Client(base_url=gateway.url, follow_redirects=False, timeout=10)

    def close(self) -> None:
        self.http.close()

    def authorize(self, **params: str) -> httpx2.Response:
        return self.http.get("/authorize", params=params)

    def authorize_params(self, client_id: str = "basic", **extra: str) -> dict[str, str]:
        params = {
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": f"openid {NUMBER_SCOPE} {INFO_SCOPE}",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
        }
        params.update(extra)
        return params

    def sandbox_page(
        self, client_id: str = "basic", pkce: bool = False, **extra: str
    ) -> tuple[httpx2.Response, str | None]:
        verifier = None
        if pkce:
            verifier, challenge = pkce_pair()
            extra = {"code_challenge": challenge, "code_challenge_method": "S256", **extra}
        page = self.authorize(**self.authorize_params(client_id, **extra))
        assert page.status_code == 200, page.text
        return page, verifier

    def submit_sandbox(self, page: httpx2.Response, number: str = TEST_PERSON) -> httpx2.Response:
        form = {
            "login": hidden_field(page.text, "login"),
            "csrf": hidden_field(page.text, "csrf"),
            "pnr": number,
        }
        return self.http.post("/providers/sandbox/login", data=form)

    def follow_to_client(self, response: httpx2.Response) -> dict[str, str]:
        """Follow the gateway's own redirects until one leaves for the e-service."""
        for _ in range(5):
            location = response.headers["location"]
            if location.startswith(REDIRECT_URI):
                return query_of(location)
            response = self.http.get(location)
            assert response.status_code in (302, 303), response.text
        raise AssertionError("no redirect to the e-service")

    def login(
        self, client_id: str = "basic", pkce: bool = False, number: str = TEST_PERSON, **extra: str
    ) -> LoginResult:
        page, verifier = self.sandbox_page(client_id, pkce, **extra)
        submitted = self.submit_sandbox(page, number)
        assert submitted.status_code == 303, submitted.text
        return LoginResult(self.follow_to_client(submitted), verifier)


def token_request(
    gateway: LiveGateway, data: dict[str, str], auth: tuple[str, str] | None = None
) -> httpx2.Response:
    with httpx2.Client(base_url=gateway.url, timeout=10) as http:
        return http.post("/token", data=data, auth=auth)


def code_form(result: LoginResult, **extra: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": result.callback["code"],
        "redirect_uri": REDIRECT_URI,
    }
    if result.verifier:
        form["code_verifier"] = result.verifier
    form.update(extra)
    return form


class LogoutListener:
    """An e-service's back-channel logout endpoint: records tokens, fails the first N calls."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.attempts = 0
        self.fail_first = 0
        self.served = ServedApp(
            Starlette(routes=[Route("/bc", self._receive, methods=["POST"])]), free_port()
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.served.port}/bc"

    async def _receive(self, request: Request) -> Response:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return Response(status_code=500)
        self.tokens.append(str((await request.form())["logout_token"]))
        return Response(status_code=200)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.tokens) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.tokens) >= count, f"{self.attempts} attempts, {len(self.tokens)} tokens"
