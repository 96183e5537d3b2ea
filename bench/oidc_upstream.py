"""Logins through an upstream OpenID Provider: `portvakt serve` (its own process) with a
`type: oidc` provider, against the upstream OP of tests/doubles/oidc_op.py in a second process
(uvicorn), on loopback. The OP approves at once, as the tests' does.

One login = GET /authorize (PKCE, state, nonce; 303 to the OP) -> GET the OP's /authorize (303
back) -> GET /providers/op/callback (the gateway redeems the upstream code at the OP's token
endpoint, checks its ID token against the OP's JWKS, issues our code) -> POST /token -> GET
/userinfo: four gateway requests. Runs RedisStore with 1 and 2 workers and MemoryStore with 1,
and prints the CPU per login of the gateway, the OP and the load generator from the same run.
Not a test: nothing asserts.

    python bench/oidc_upstream.py [--seconds 5] [--concurrency 16 64]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lean_http import LeanClient
from bench.login import (
    answering,
    cpu_seconds,
    free_port,
    lean_redeem,
    redis_server,
    serve,
)
from bench.saml import AUTHORIZE, Forgetful, gateway_config, gateway_cpu_seconds

PROVIDER = "op"


def config_text(port: int, store_url: str | None, keys: Path, op_url: str) -> str:
    return gateway_config(port, store_url, keys,
        f"  {PROVIDER}:\n    type: oidc\n    display: {{sv: Upstream, en: Upstream}}\n"
        f"    issuer: {op_url}\n    client_id: portvakt\n    client_secret: upstream-secret\n"
        "    loa: ['http://id.elegnamnden.se/loa/1.0/loa3']\n")  # fmt: skip


async def one_login(gateway: LeanClient, op: LeanClient) -> float:
    started = time.perf_counter()
    sent = await gateway.get("/authorize", AUTHORIZE)
    back = await op.get(sent.location)
    answered = await gateway.get(back.location)
    code = answered.location.split("code=", 1)[1].split("&", 1)[0]
    access_token = await lean_redeem(gateway, code)
    userinfo = await gateway.get("/userinfo", bearer=access_token)
    userinfo.raise_for_status()
    return time.perf_counter() - started


async def run_clients(base_url: str, op_url: str, concurrency: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def citizen() -> None:
        async with LeanClient(base_url) as gateway, LeanClient(op_url) as op:
            while time.perf_counter() < deadline:
                latencies.append(await one_login(gateway, op))
                gateway.cookies.clear()

    await asyncio.gather(*(citizen() for _ in range(concurrency)))
    return latencies


def run_op(port: int) -> None:
    """The OP process: python bench/oidc_upstream.py --op PORT."""
    import uvicorn

    from tests.doubles.oidc_op import UpstreamOP

    op = UpstreamOP(f"http://127.0.0.1:{port}")
    op.authorize_requests = Forgetful()
    uvicorn.run(op.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_op(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--op", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return answering(process, f"http://127.0.0.1:{port}/.well-known/openid-configuration", "the OP")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--op", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.op:
        run_op(args.op)
        return
    print(f"{'store':<8} {'workers':>7} {'conc':>4} {'logins/s':>10} {'gateway CPU ms/login':>21}"
          f" {'OP CPU ms/login':>16} {'client CPU ms/login':>19}")  # fmt: skip
    with tempfile.TemporaryDirectory() as workdir:
        op_port = free_port()
        op_url = f"http://127.0.0.1:{op_port}"
        op = start_op(op_port)
        redis, redis_url = redis_server(workdir)
        try:
            for store, url, workers in (("redis", redis_url, 1), ("redis", redis_url, 2),
                                        ("memory", None, 1)):  # fmt: skip
                port = free_port()
                config = Path(workdir) / f"{store}-{workers}.yaml"
                config.write_text(config_text(port, url, Path(workdir), op_url))
                server = serve(port, config, workers)
                try:
                    base_url = f"http://127.0.0.1:{port}"
                    asyncio.run(run_clients(base_url, op_url, 4, 1.0))  # warm-up
                    for concurrency in args.concurrency:
                        before = (gateway_cpu_seconds(server.pid), cpu_seconds(op.pid),
                                  time.process_time())  # fmt: skip
                        logins = len(
                            asyncio.run(run_clients(base_url, op_url, concurrency, args.seconds))
                        )
                        after = (gateway_cpu_seconds(server.pid), cpu_seconds(op.pid),
                                 time.process_time())  # fmt: skip
                        gateway_ms, op_ms, client_ms = (
                            (later - earlier) * 1000 / max(logins, 1)
                            for later, earlier in zip(after, before, strict=True)
                        )
                        print(f"{store:<8} {workers:>7} {concurrency:>4} {logins / args.seconds:>10.1f}"
                              f" {gateway_ms:>21.2f} {op_ms:>16.2f} {client_ms:>19.2f}", flush=True)  # fmt: skip
                finally:
                    server.terminate()
                    server.wait()
        finally:
            for process in (op, redis):
                process.terminate()
                process.wait()
    print("the gateway, the OP process, redis-server and the load generator share the machine's"
          " cores; the OP signs one RS256 ID token per login")  # fmt: skip


if __name__ == "__main__":
    main()
