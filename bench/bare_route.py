"""The floor of the design under a login: what one HTTP request costs on a bare Starlette route
served by uvicorn (httptools, uvloop, one worker, no middleware: what `portvakt serve` is built
on), and what one store round trip adds when that route makes it through the gateway's own
`RedisStore` (redis-py, the pool and deadline the gateway uses). Both are CPU of the server
process, from the same lean keep-alive clients as bench/saml.py, so `bench/saml.py` can set a
login's requests and round trips against them. Not a test: nothing asserts.

    python bench/bare_route.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.lean_http import LeanClient
from bench.login import answering, cpu_seconds, free_port, redis_server
from gateway.settings import StoreSettings
from gateway.store import open_store

STORE_URL = os.environ.get("BARE_STORE_URL")
TRIPS = 8  # round trips per request in the store rows: enough to stand out of the noise
CONCURRENCY = 16


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    if STORE_URL is None:
        yield
        return
    async with open_store(StoreSettings(url=STORE_URL)) as store:  # the gateway's RedisStore
        app.state.store = store
        yield


async def bare(request: Request) -> PlainTextResponse:
    """?trips=N: N reads of a 600-byte record, one round trip each, as the gateway reads a login."""
    for _ in range(int(request.query_params.get("trips", "0"))):
        await request.app.state.store.get("bare:record")
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/bare", bare)], lifespan=lifespan)


@dataclass(frozen=True)
class BareFloor:
    request_ms: float  # server CPU per bare request
    round_trip_ms: float  # server CPU each store round trip adds to a request


def cpu_ms_per_request(base_url: str, path: str, cpu: Callable[[], float], seconds: float) -> float:
    """Server CPU (`cpu()`, seconds so far) per GET of `path`, from CONCURRENCY keep-alive clients."""

    async def citizen(deadline: float, done: list[int]) -> None:
        async with LeanClient(base_url) as http:
            while time.perf_counter() < deadline:
                (await http.get(path)).raise_for_status()
                done[0] += 1

    async def run(for_seconds: float) -> int:
        done = [0]
        deadline = time.perf_counter() + for_seconds
        await asyncio.gather(*(citizen(deadline, done) for _ in range(CONCURRENCY)))
        return done[0]

    asyncio.run(run(0.5))  # warm-up: connections opened, code paths taken
    before = cpu()
    requests = asyncio.run(run(seconds))
    return (cpu() - before) * 1000 / max(requests, 1)


def measure(redis_url: str, seconds: float) -> BareFloor:
    """One uvicorn process holding a store on `redis_url`; bare requests, then with TRIPS."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare_route:app", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=Path(__file__).resolve().parents[1], env={**os.environ, "BARE_STORE_URL": redis_url},
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        answering(server, f"{base_url}/bare", "the bare route")
        redis.Redis.from_url(redis_url).set("bare:record", b"r" * 600)
        cpu = partial(cpu_seconds, server.pid)
        request_ms = cpu_ms_per_request(base_url, "/bare", cpu, seconds)
        with_trips = cpu_ms_per_request(base_url, f"/bare?trips={TRIPS}", cpu, seconds)
        return BareFloor(request_ms, (with_trips - request_ms) / TRIPS)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        process, url = redis_server(workdir)
        try:
            floor = measure(url, args.seconds)
        finally:
            process.terminate()
            process.wait()
    print(f"bare request: {floor.request_ms:.3f} ms of server CPU; each store round trip through"
          f" RedisStore adds {floor.round_trip_ms:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
