"""BankID logins against the bundled RP API v6.0 simulator, over mutual TLS, `portvakt serve` in
its own process. The simulated citizen scans the QR at the 1st collect and approves at the 2nd.

One login = GET /authorize -> GET the order page -> GET /status, polled every --poll seconds
(default 0.25: four times faster than the page's script, to show that polls do not become
collects) -> GET /done (code) -> POST /token -> GET /userinfo.
Prints logins/s, p50/p99 of the gateway's single requests (its own work plus one BankID call at
most), /collect calls per completed login, and the CPU per login of the gateway and of the
simulator, which runs in a process of its own (spawned, uvicorn over mutual TLS) so that its
work does not stall the load generator's requests. Not a test.

    python bench/bankid.py [--seconds 10] [--concurrency 1 16 64] [--poll 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import re
import socket
import ssl
import sys
import tempfile
import time
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.login import RATE_LIMITS, cpu_seconds, free_port, p50_p99_ms, redis_server, serve
from providers.bankid.simulator import BankIDSimulator, UserBehaviour
from tests.doubles.tls import P12_PASSWORD, LocalPKI, make_pki

REDIRECT_URI = "http://127.0.0.1:9000/callback"
LOGIN = re.compile(r"login=([A-Za-z0-9_-]+)")


def config_text(port: int, store_url: str | None, bankid_url: str, pki_dir: Path) -> str:
    store = f"store: {{url: '{store_url}'}}\n" if store_url else ""
    return (
        f"issuer: http://127.0.0.1:{port}\n"
        f"secret_key: {'b' * 40}\nsubject_salt: bench-subject-salt\n{store}"
        + RATE_LIMITS
        + "providers:\n  bankid:\n    type: bankid\n"
        f"    url: {bankid_url}\n    ca: {pki_dir / 'test-bankid-root.pem'}\n"
        f"    client_cert: {{file: {pki_dir / 'rp-client.p12'}, password: {P12_PASSWORD}}}\n"
        f"clients: [{{client_id: bench, client_secret: bench-secret, redirect_uris: ['{REDIRECT_URI}']}}]\n"
    )


async def timed(
    requests: list[float], call: asyncio.Future[httpx2.Response] | object
) -> httpx2.Response:
    started = time.perf_counter()
    response: httpx2.Response = await call  # type: ignore[misc]
    requests.append(time.perf_counter() - started)
    return response


async def one_login(http: httpx2.AsyncClient, requests: list[float], poll: float) -> None:
    start = await timed(requests, http.get("/authorize", params={
        "client_id": "bench", "redirect_uri": REDIRECT_URI, "response_type": "code",
        "scope": "openid https://id.oidc.se/scope/naturalPersonNumber", "state": "s", "nonce": "n"}))  # fmt: skip
    wait_url = start.headers["location"]
    login_id = LOGIN.search(wait_url).group(1)  # type: ignore[union-attr]
    await timed(requests, http.get(wait_url))
    while True:
        state = (await timed(requests, http.get("/providers/bankid/status", params={"login": login_id}))).json()  # fmt: skip
        if state["status"] == "complete":
            break
        if state["status"] == "failed":
            raise RuntimeError(f"order failed: {state}")
        await asyncio.sleep(poll)
    done = await timed(requests, http.get(state["next"]))
    code = done.headers["location"].split("code=", 1)[1].split("&", 1)[0]
    tokens = await timed(requests, http.post("/token", auth=("bench", "bench-secret"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}))  # fmt: skip
    userinfo = await timed(requests, http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}))  # fmt: skip
    userinfo.raise_for_status()


async def run_clients(
    base_url: str, concurrency: int, seconds: float, poll: float
) -> tuple[int, list[float]]:
    requests: list[float] = []
    completed = 0
    deadline = time.perf_counter() + seconds

    async def citizen() -> None:
        nonlocal completed
        limits = httpx2.Limits(max_connections=1)
        async with httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
            while time.perf_counter() < deadline:
                await one_login(http, requests, poll)
                completed += 1
                http.cookies.clear()

    await asyncio.gather(*(citizen() for _ in range(concurrency)))
    return completed, requests


class CollectCounter:
    """ASGI wrapper around the simulator: counts /collect calls into a number the benchmark's
    process can read."""

    def __init__(self, app: ASGIApp, collects: Synchronized[int]) -> None:
        self.app = app
        self.collects = collects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/collect"):
            with self.collects.get_lock():
                self.collects.value += 1
        await self.app(scope, receive, send)


def run_simulator(port: int, pki: LocalPKI, collects: Synchronized[int]) -> None:
    """The simulator's own process: the RP API v6.0 over mutual TLS on `port`."""
    import uvicorn

    simulator = BankIDSimulator()
    simulator.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    uvicorn.run(CollectCounter(simulator.app, collects), host="127.0.0.1", port=port,
                log_level="warning", ssl_certfile=str(pki.server.cert), ssl_keyfile=str(pki.server.key),
                ssl_ca_certs=str(pki.ca), ssl_cert_reqs=ssl.CERT_REQUIRED)  # fmt: skip


def start_simulator(port: int, pki: LocalPKI, collects: Synchronized[int]) -> SpawnProcess:
    process = multiprocessing.get_context("spawn").Process(
        target=run_simulator, args=(port, pki, collects), daemon=True
    )
    process.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return process
        time.sleep(0.05)
    raise RuntimeError("the BankID simulator did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--poll", type=float, default=0.25)
    args = parser.parse_args()
    print(f"{'store':<8} {'conc':>4} {'logins/s':>9} {'req p50 ms':>11} {'req p99 ms':>11}"
          f" {'collects/login':>15} {'server CPU ms/login':>20} {'simulator CPU ms/login':>23}")  # fmt: skip
    with tempfile.TemporaryDirectory() as workdir:
        pki = make_pki(Path(workdir))
        collects = multiprocessing.get_context("spawn").Value("q", 0)
        simulator_port = free_port()
        simulator = start_simulator(simulator_port, pki, collects)
        bankid_url = f"https://127.0.0.1:{simulator_port}/rp/v6.0"
        redis, redis_url = redis_server(workdir)
        try:
            try:
                for store, url in (("memory", None), ("redis", redis_url)):
                    port = free_port()
                    config = Path(workdir) / f"{store}.yaml"
                    config.write_text(config_text(port, url, bankid_url, Path(workdir)))
                    server = serve(port, config)
                    try:
                        base = f"http://127.0.0.1:{port}"
                        asyncio.run(run_clients(base, 2, 0.5, args.poll))  # warm-up
                        for concurrency in args.concurrency:
                            collects_before = collects.value
                            cpu_before = cpu_seconds(server.pid), cpu_seconds(simulator.pid)
                            completed, requests = asyncio.run(
                                run_clients(base, concurrency, args.seconds, args.poll)
                            )
                            cpu = cpu_seconds(server.pid) - cpu_before[0]
                            simulator_cpu = cpu_seconds(simulator.pid) - cpu_before[1]
                            per_login = max(completed, 1)
                            p50, p99 = p50_p99_ms(requests)
                            print(f"{store:<8} {concurrency:>4} {completed / args.seconds:>9.1f}"
                                  f" {p50:>11.1f} {p99:>11.1f} {(collects.value - collects_before) / per_login:>15.2f}"
                                  f" {cpu * 1000 / per_login:>20.2f} {simulator_cpu * 1000 / per_login:>23.2f}")  # fmt: skip
                    finally:
                        server.terminate()
                        server.wait()
            finally:
                redis.terminate()
                redis.wait()
        finally:
            simulator.terminate()
            simulator.join()
    print("A login takes at least one collect interval (2 s), so logins/s ~ concurrency / 2.x;")
    print("collects/login stays 2.0 however often the pages poll (the 2nd collect completes).")
    print("The load generator, the gateway and the simulator each ran in a process of their own.")


if __name__ == "__main__":
    main()
