"""The floor under bench/token_endpoint.py: a bare Starlette route on uvicorn (httptools, uvloop,
`--workers N`) that parses the same form and signs the same kind of RS256 ID token with joserfc,
with no client authentication, middleware, audit or metrics; driven by the same wrk script at
16 and 64 connections, next to the raw sign rate on one core measured just before each row.
What the real endpoint loses against this row is the gateway's own per-request work.

The "+ store" rows add only the two store round trips `/token` cannot do without, through the
gateway's own RedisStore on a throwaway redis-server: its two rate limits counted (one pipeline)
and the code taken (GETDEL of a prepared 600-byte record); the "+ take" rows only take the
code, as `/token` would without rate limits held in the store. The "+ resp" rows send the same
commands over one pipelined connection per worker with a minimal RESP reader (`RespStore` of
`bench/resp.py`, bench-only: no pool, timeouts, TLS, Sentinel or Cluster). Between them they show what
redis-py costs and what Redis itself (its server CPU and the loopback socket) costs.

    python bench/token_floor.py [--workers 1 2] [--seconds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.login import (
    CLIENT,
    REDIRECT_URI,
    answering,
    free_port,
    redis_server,
    rs256_signs_per_second,
)
from bench.resp import RespStore, connect
from bench.wrk_driver import redeem_with_wrk
from gateway.settings import StoreSettings
from gateway.store import open_store
from providers.base import Store

KEY = RSAKey.generate_key(2048, parameters={"kid": "floor"})
STORE_URL = os.environ.get("FLOOR_STORE_URL")
STORE_CLIENT = os.environ.get("FLOOR_STORE_CLIENT", "redis-py")
RECORD = b"r" * 600
CLIENT_OF_ROUTE = {"+ resp": "resp", "+ take": "take-only"}
RATE_KEYS = ("rl:token-ip:127.0.0.1:1", "rl:token-client:bench:1")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    if STORE_URL is None:
        yield
        return
    if STORE_CLIENT == "resp":
        connection = await connect(STORE_URL)
        app.state.store = RespStore([connection])
        yield
        connection.close()
        return
    async with open_store(StoreSettings(url=STORE_URL)) as store:  # the gateway's RedisStore
        app.state.store = store
        yield


async def code_taken(request: Request, code: str) -> bool:
    """The row's store work: the two rate limits counted (unless take-only), then the code taken."""
    store: Store = request.app.state.store
    if STORE_CLIENT != "take-only":
        await store.count(RATE_KEYS, 60)
    return await store.take(f"code:{code}") is not None


async def token(request: Request) -> JSONResponse:
    form = await request.form()
    if STORE_URL is not None and not await code_taken(request, str(form.get("code"))):
        return JSONResponse({"error": "invalid_grant"}, 400)
    now = int(time.time())
    claims: dict[str, Any] = {"iss": "http://127.0.0.1", "sub": "a" * 43, "aud": "bench",
        "iat": now, "exp": now + 300, "auth_time": now, "acr": "http://id.elegnamnden.se/loa/1.0/loa3",
        "nonce": str(form.get("code"))}  # fmt: skip
    id_token = jwt.encode({"alg": "RS256", "kid": "floor"}, claims, KEY)
    return JSONResponse({"access_token": "x" * 43, "token_type": "Bearer", "id_token": id_token},
                        headers={"Cache-Control": "no-store"})  # fmt: skip


app = Starlette(routes=[Route("/token", token, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'route':<8} {'workers':>7} {'conc':>4} {'signs/s':>8} {'tokens/s':>9} {'÷ signs/s':>9} {'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
    with tempfile.TemporaryDirectory() as workdir:
        redis_process, redis_url = redis_server(workdir)
        try:
            for route, store_url in (
                ("bare", None),
                ("+ store", redis_url),
                ("+ take", redis_url),
                ("+ resp", redis_url),
            ):
                for workers in args.workers:
                    measure(route, store_url, workers, args.seconds, Path(workdir))
        finally:
            redis_process.terminate()
            redis_process.wait()


def measure(route: str, store_url: str | None, workers: int, seconds: int, workdir: Path) -> None:
    port = free_port()
    env = {**os.environ, **({"FLOOR_STORE_URL": store_url} if store_url else {}),
           "FLOOR_STORE_CLIENT": CLIENT_OF_ROUTE.get(route, "redis-py")}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.token_floor:app", "--port", str(port),
         "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        cwd=Path(__file__).resolve().parents[1], env=env)  # fmt: skip
    answering(server, f"http://127.0.0.1:{port}/nothing", "the floor app")
    try:
        for concurrency in (16, 64):
            codes = [str(n) for n in range(seconds * 20_000)]
            if store_url is not None:
                prepare(store_url, codes)
            signs = rs256_signs_per_second()
            run = redeem_with_wrk(f"http://127.0.0.1:{port}", codes, concurrency, seconds,
                                  CLIENT, REDIRECT_URI, workdir)  # fmt: skip
            rate = run.requests / run.seconds
            print(f"{route:<8} {workers:>7} {concurrency:>4} {signs:>8.0f} {rate:>9.1f} {rate / signs:>9.2f}"
                  f" {run.p50_ms:>7.1f} {run.p99_ms:>7.1f}", flush=True)  # fmt: skip
            if run.errors:
                print(f"  ! {run.errors} of {run.requests} responses were errors: this row is void")
    finally:
        server.terminate()
        server.wait()


def prepare(store_url: str, codes: list[str]) -> None:
    """One record per code, as the login leaves it for `/token` to take."""
    client = redis.Redis.from_url(store_url)
    pipe = client.pipeline(transaction=False)
    for code in codes:
        pipe.set(f"code:{code}", RECORD, ex=600)
    pipe.execute()
    client.close()


if __name__ == "__main__":
    main()
