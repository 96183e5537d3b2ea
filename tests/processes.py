"""Gateways as real operating-system processes (`portvakt serve`), and a round-robin load balancer
in front of them: what a deployment with several instances looks like, on loopback."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Self

import httpx2
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.harness import REDIRECT_URI, free_port

ONE_LINE_LIMITS = (
    "{authorize_per_ip_per_minute: 0, token_per_ip_per_minute: 0, "
    "token_per_client_per_minute: 0, provider_starts_per_ip_per_minute: 0, "
    "provider_starts_per_browser_per_minute: 0, provider_starts_per_login_per_minute: 0}"
)


def cluster_config(directory: Path, issuer: str, store_url: str) -> Path:
    """One configuration every instance reads: shared store, secret, salt and key directory."""
    path = directory / "portvakt.yaml"
    path.write_text(
        f"issuer: {issuer}\n"
        f"secret_key: {'s' * 40}\n"
        "subject_salt: scale-out-subject-salt\n"
        f"store: {{url: '{store_url}'}}\n"
        f"keys: {{dir: '{directory / 'keys'}'}}\n"
        f"rate_limits: {ONE_LINE_LIMITS}\n"
        "providers: {sandbox: {type: sandbox}}\n"
        "clients: [{client_id: basic, client_secret: basic-secret, "
        f"redirect_uris: ['{REDIRECT_URI}']}}]\n"
    )
    return path


class GatewayProcess:
    """`portvakt serve --config FILE` in its own process group on a free loopback port."""

    def __init__(
        self,
        config: Path,
        workers: int = 1,
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.config = config
        self.workers = workers
        self.env = {**os.environ, **(env or {})}
        self.log_path = log or config.with_name(f"gateway-{self.port}.log")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        command = [
            sys.executable,
            "-m",
            "gateway.cli.main",
            "serve",
            "--config",
            str(self.config),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "info",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"portvakt serve exited: {self.log_path.read_text()}")
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"portvakt serve did not answer: {self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no goodbye, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, as an orchestrator does. uvicorn shuts down gracefully, then re-raises the
        signal, so a clean exit is -SIGTERM with "Application shutdown complete" in the log."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def worker_pids(self) -> list[int]:
        """The uvicorn workers under `--workers N`: multiprocessing's spawned children (not the
        supervisor itself, nor multiprocessing's resource tracker)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        workers = []
        for child in children.split():
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    workers.append(int(child))
            except FileNotFoundError:
                continue  # exited meanwhile
        return workers

    def listening_workers(
        self, count: int, seconds: float = 20, until_gone: int | None = None
    ) -> list[int]:
        """The worker pids once `count` of them listen on the port (the first to listen answers
        /healthz, which is all `start` waits for), and `until_gone` is no longer among them."""
        deadline = time.monotonic() + seconds
        while True:
            workers = self.worker_pids()
            listening = [pid for pid in workers if tcp_sockets(pid, self.port, TCP_LISTEN)]
            done = len(listening) >= count and until_gone not in workers
            if done or time.monotonic() > deadline:
                return workers
            time.sleep(0.05)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])
HOP_HEADERS = ("content-length", "content-encoding", "transfer-encoding", "connection")


class RoundRobinBalancer:
    """An HTTP load balancer that sends each request to the next live backend in turn, so the
    steps of one login land on different instances. A backend that refuses the connection is
    skipped (as a balancer's health check would), and `served` counts who answered what."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self._turn = itertools.count()
        self.served: dict[str, int] = dict.fromkeys(backends, 0)
        self._http: httpx2.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the client lives on the serving loop, closed with it
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    # a jar that keeps nothing: the citizens' cookies are theirs, passed through
                    self._http = httpx2.AsyncClient(timeout=10, cookies=CookieJar(NO_COOKIES))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._http is not None:
                        await self._http.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        response = await self._forward(Request(scope, receive))
        await response(scope, receive, send)

    async def _forward(self, request: Request) -> Response:
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "host"]
        assert self._http is not None
        for _ in range(len(self.backends)):
            backend = self.backends[next(self._turn) % len(self.backends)]
            target = f"{backend}{request.url.path}"
            if request.url.query:
                target += f"?{request.url.query}"
            try:
                answer = await self._http.request(
                    request.method, target, content=body, headers=headers
                )
            except httpx2.ConnectError:
                continue
            self.served[backend] += 1
            passed = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in answer.headers.multi_items()
                if k.lower() not in HOP_HEADERS
            ]
            response = Response(answer.content, status_code=answer.status_code)
            response.raw_headers = [
                *passed,
                (b"content-length", str(len(answer.content)).encode()),
            ]
            return response
        return Response("no backend answers", status_code=502)


TCP_LISTEN, TCP_ESTABLISHED = "0A", "01"


def tcp_sockets(pid: int, local_port: int, state: str) -> int:
    """How many of the process's TCP sockets on `local_port` (IPv4) are in `state`, from /proc:
    its socket inodes in /proc/PID/fd matched against /proc/net/tcp."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if port == local_port and fields[3] == state and fields[9] in inodes:
            count += 1
    return count
