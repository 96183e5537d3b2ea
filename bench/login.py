"""Sandbox login round trips per second and latency, against `portvakt serve` in its own process.

One login = GET /authorize (sandbox page) -> POST sandbox form -> GET finish (code) ->
POST /token -> GET /userinfo: five HTTP requests, as a real e-service and citizen make them.
Runs MemoryStore and a throwaway redis-server, at 1, 16 and 64 concurrent clients, and prints
the machine's raw RS256 sign rate from the same run for scale. Not a test: nothing asserts.

    python bench/login.py [--seconds 5] [--concurrency 1 16 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

REDIRECT_URI = "http://127.0.0.1:9000/callback"
FIELD = re.compile(r'name="(login|csrf)" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_text(port: int, store_url: str | None) -> str:
    store = f"store: {{url: '{store_url}'}}\n" if store_url else ""
    return (
        f"issuer: http://127.0.0.1:{port}\n"
        f"secret_key: {'b' * 40}\nsubject_salt: bench-subject-salt\n{store}"
        # the load comes from one IP: the limits would measure themselves
        "rate_limits: {authorize_per_ip_per_minute: 0, token_per_ip_per_minute: 0, token_per_client_per_minute: 0, provider_starts_per_ip_per_minute: 0}\n"
        "providers: {sandbox: {type: sandbox}}\n"
        f"clients: [{{client_id: bench, client_secret: bench-secret, redirect_uris: ['{REDIRECT_URI}']}}]\n"
    )


async def one_login(http: httpx2.AsyncClient) -> float:
    started = time.perf_counter()
    page = await http.get("/authorize", params={
        "client_id": "bench", "redirect_uri": REDIRECT_URI, "response_type": "code",
        "scope": "openid https://id.oidc.se/scope/naturalPersonNumber", "state": "s", "nonce": "n"})  # fmt: skip
    fields = dict(FIELD.findall(page.text))
    submitted = await http.post("/providers/sandbox/login", data={**fields, "pnr": "199908072391"})
    finished = await http.get(submitted.headers["location"])
    code = finished.headers["location"].split("code=", 1)[1].split("&", 1)[0]
    tokens = await http.post("/token", auth=("bench", "bench-secret"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})  # fmt: skip
    access_token = tokens.json()["access_token"]
    userinfo = await http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    userinfo.raise_for_status()
    return time.perf_counter() - started


async def run_clients(base_url: str, concurrency: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def citizen() -> None:
        limits = httpx2.Limits(max_connections=1)
        async with httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
            while time.perf_counter() < deadline:
                latencies.append(await one_login(http))
                http.cookies.clear()

    await asyncio.gather(*(citizen() for _ in range(concurrency)))
    return latencies


def serve(port: int, config: Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).parent / "portvakt"
    process = subprocess.Popen(
        [str(script), "serve", "--port", str(port), "--config", str(config), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return answering(process, f"http://127.0.0.1:{port}/healthz", "portvakt serve")


def answering(process: subprocess.Popen[bytes], url: str, what: str) -> subprocess.Popen[bytes]:
    """`process` once `url` answers at all (any status); killed if it never does."""
    for _ in range(200):
        try:
            httpx2.get(url, timeout=0.2)
            return process
        except httpx2.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not start")


def redis_server(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (scripts/ensure-test-tools.sh installs it)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", directory], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.3)
    return process, f"redis://127.0.0.1:{port}/0"


def rs256_signs_per_second(seconds: float = 1.0) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        key.sign(b"x" * 300, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / seconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), independent of who else is running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p50_p99_ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def report(
    store: str, concurrency: int, seconds: float, latencies: list[float], cpu: float
) -> None:
    p50, p99 = p50_p99_ms(latencies)
    cpu_ms = cpu * 1000 / max(len(latencies), 1)
    print(f"{store:<8} {concurrency:>4} {len(latencies) / seconds:>10.1f} {p50:>9.1f} {p99:>9.1f}"
          f" {len(latencies) * 5 / seconds:>10.0f} {cpu_ms:>13.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    signs = rs256_signs_per_second()
    print(f"raw RS256 signatures/s on one core (same run): {signs:.0f}")
    print(
        f"{'store':<8} {'conc':>4} {'logins/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'requests/s':>10}"
        f" {'server CPU ms/login':>13}"
    )
    with tempfile.TemporaryDirectory() as workdir:
        redis, redis_url = redis_server(workdir)
        try:
            for store, url in (("memory", None), ("redis", redis_url)):
                port = free_port()
                config = Path(workdir) / f"{store}.yaml"
                config.write_text(config_text(port, url))
                server = serve(port, config)
                try:
                    asyncio.run(run_clients(f"http://127.0.0.1:{port}", 4, 1.0))  # warm-up
                    for concurrency in args.concurrency:
                        cpu_before = cpu_seconds(server.pid)
                        latencies = asyncio.run(
                            run_clients(f"http://127.0.0.1:{port}", concurrency, args.seconds)
                        )
                        cpu = cpu_seconds(server.pid) - cpu_before
                        report(store, concurrency, args.seconds, latencies, cpu)
                finally:
                    server.terminate()
                    server.wait()
        finally:
            redis.terminate()
            redis.wait()
    print("one gateway process (uvicorn, 1 worker); the load generator shares the 2 cores, so")
    print("logins/s is a lower bound: 1000 / (server CPU ms/login) is what one core could serve")


if __name__ == "__main__":
    main()
