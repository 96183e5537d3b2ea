"""BankID logins against the bundled RP API v6.0 simulator, over mutual TLS, `portvakt serve` in
its own process. The simulated citizen scans the QR at the 1st collect and approves at the 2nd.

One login = GET /authorize -> GET the order page -> GET /status, polled every --poll seconds
(default 0.25: four times faster than the page's script, to show that polls do not become
collects) -> GET /done (code) -> POST /token -> GET /userinfo.
Prints logins/s, p50/p99 of the gateway's single requests (its own work plus one BankID call at
most), /collect calls per completed login and server CPU per login. Not a test.

    python bench/bankid.py [--seconds 10] [--concurrency 1 16 64] [--poll 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import ssl
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.login import RATE_LIMITS, cpu_seconds, free_port, p50_p99_ms, redis_server, serve
from providers.bankid_simulator import BankIDSimulator, UserBehaviour
from tests.harness import ServedApp
from tests.tls import P12_PASSWORD, make_pki

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--poll", type=float, default=0.25)
    args = parser.parse_args()
    print(f"{'store':<8} {'conc':>4} {'logins/s':>9} {'req p50 ms':>11} {'req p99 ms':>11}"
          f" {'collects/login':>15} {'server CPU ms/login':>20}")  # fmt: skip
    with tempfile.TemporaryDirectory() as workdir:
        pki = make_pki(Path(workdir))
        simulator = BankIDSimulator()
        simulator.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
        served = ServedApp(
            simulator.app, free_port(), ssl_certfile=str(pki.server.cert),
            ssl_keyfile=str(pki.server.key), ssl_ca_certs=str(pki.ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )  # fmt: skip
        bankid_url = f"https://127.0.0.1:{served.port}/rp/v6.0"
        redis, redis_url = redis_server(workdir)
        with served:
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
                            collects_before = simulator.collect_count()
                            cpu_before = cpu_seconds(server.pid)
                            completed, requests = asyncio.run(
                                run_clients(base, concurrency, args.seconds, args.poll)
                            )
                            cpu = cpu_seconds(server.pid) - cpu_before
                            collects = simulator.collect_count() - collects_before
                            p50, p99 = p50_p99_ms(requests)
                            print(f"{store:<8} {concurrency:>4} {completed / args.seconds:>9.1f}"
                                  f" {p50:>11.1f} {p99:>11.1f} {collects / max(completed, 1):>15.2f}"
                                  f" {cpu * 1000 / max(completed, 1):>20.2f}")  # fmt: skip
                    finally:
                        server.terminate()
                        server.wait()
            finally:
                redis.terminate()
                redis.wait()
    print("A login takes at least one collect interval (2 s), so logins/s ~ concurrency / 2.x;")
    print("collects/login stays 2.0 however often the pages poll (the 2nd collect completes).")
    print(f"pid {os.getpid()} ran the load and the simulator; the gateway ran in its own process")


if __name__ == "__main__":
    main()
