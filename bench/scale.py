"""Does the number of registered clients change a login's cost, and what does a pending login cost
in Redis? `portvakt serve` in its own process with RedisStore.

1. The login benchmark of bench/login.py (5 requests per login) with 10 and with 10,000 clients in
   the YAML (the benchmark's client is the last one), and the ratio between them.
2. Start-up with each: seconds until /healthz answers and until every worker is idle, the
   workers' resident memory, and (in this process) how long reading the YAML, validating the
   settings and building the app take.
3. Redis memory per pending login: --pending logins taken up to the sandbox page (GET /authorize,
   not submitted) against a FLUSHALLed throwaway redis-server; `used_memory` before and after,
   and `MEMORY USAGE` of each kind of key a pending login writes. Target: <= 2 KB.

Not a test: nothing asserts.

    python bench/scale.py [--seconds 5] [--concurrency 16 64] [--clients 10 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.lean_http import LeanClient
from bench.login import (
    CLIENT,
    Gateway,
    Row,
    client_entry,
    descendants,
    gateway,
    header,
    in_parallel,
    lean_page,
    measure,
    p50_p99_ms,
    redis_server,
    report,
    uvicorn_workers,
    warm_up,
)
from gateway.app import create_app
from gateway.settings import load_settings

TARGET_BYTES_PER_PENDING_LOGIN = 2048
RANDOM_PART = re.compile(r"\{[^}]+\}|[A-Za-z0-9_-]{20,}")


def registered(count: int) -> str:
    """`clients:` with `count` entries, each its own host; the benchmark's client is the last."""
    others = (
        f"  - {{client_id: svc-{i:05d}, client_secret: svc-{i:05d}-secret,"
        f" redirect_uris: ['https://svc-{i:05d}.example/callback']}}\n"
        for i in range(count - 1)
    )
    return "clients:\n" + "".join(others) + f"  - {client_entry(*CLIENT)}\n"


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def startup_breakdown(config: Path) -> str:
    """Seconds, in this process, for the steps a worker takes before it serves."""
    text = config.read_text()
    _, pure = timed(lambda: yaml.safe_load(text))
    _, c_loader = timed(lambda: yaml.load(text, Loader=yaml.CSafeLoader))
    settings, loaded = timed(lambda: load_settings(config))
    _, built = timed(lambda: create_app(settings))
    return (
        f"yaml.safe_load {pure:.2f} s (CSafeLoader would take {c_loader:.2f} s); "
        f"load_settings in all {loaded:.2f} s; create_app {built:.2f} s"
    )


async def pending_logins(base_url: str, count: int, concurrency: int = 16) -> None:
    """`count` citizens who open the sandbox page and walk away."""

    async def abandon(client: LeanClient, _: str) -> None:
        await lean_page(client)
        client.cookies.clear()

    await in_parallel(base_url, concurrency, [""] * count, abandon)


def redis_memory(served: Gateway, redis_url: str, count: int) -> None:
    store = redis.Redis.from_url(redis_url)
    store.flushall()
    before = settled_memory(store)
    asyncio.run(pending_logins(served.base_url, count))
    after = settled_memory(store)
    print(f"\nRedis memory per pending login ({count} pending logins, GET /authorize only):")
    for field in ("used_memory", "used_memory_dataset"):
        per_login = (after[field] - before[field]) / count
        verdict = "within" if per_login <= TARGET_BYTES_PER_PENDING_LOGIN else "OVER"
        print(f"  {field:<19} {before[field]:>9} -> {after[field]:>9} bytes: {per_login:>5.0f} bytes"
              f" per pending login, {verdict} the {TARGET_BYTES_PER_PENDING_LOGIN} byte target")  # fmt: skip
    kinds: Counter[str] = Counter()
    example: dict[str, bytes] = {}
    for key in store.scan_iter(count=1000):
        kind = RANDOM_PART.sub("<id>", key.decode())
        kinds[kind] += 1
        example.setdefault(kind, key)
    for kind, number in kinds.most_common():
        key = example[kind]
        usage, length, ttl = store.memory_usage(key), store.strlen(key), store.ttl(key)
        print(f"  {kind:<28} {number / count:>5.2f} per login; MEMORY USAGE {usage} bytes"
              f" (value {length} bytes, TTL {ttl} s)")  # fmt: skip
    store.close()


def settled_memory(store: redis.Redis) -> dict[str, int]:
    """INFO memory once Redis's once-a-second client cron has trimmed the connections' buffers
    (used_memory counts them; used_memory_dataset does not)."""
    time.sleep(1.5)
    info = store.info("memory")
    return {field: int(info[field]) for field in ("used_memory", "used_memory_dataset")}


def report_ratio(rows: list[Row], counts: list[int]) -> None:
    """Each concurrency's figures with the most clients over those with the fewest, all the
    repeated rows of each pooled."""
    print(f"\nratio {counts[-1]} clients / {counts[0]} clients (rows pooled):")
    for concurrency in sorted({row.concurrency for row in rows}):
        few, many = (pooled([r for r in rows if r.concurrency == concurrency and r.label == f"{n}"])
                     for n in (counts[0], counts[-1]))  # fmt: skip
        rate, p99, cpu = (b / a for a, b in zip(few, many, strict=True))
        print(f"  {concurrency:>3} concurrent: logins/s x{rate:.2f}, p99 x{p99:.2f},"
              f" server CPU per login x{cpu:.2f}")  # fmt: skip


def pooled(rows: list[Row]) -> tuple[float, float, float]:
    """logins/s, p99 ms and server CPU ms per login over several rows."""
    latencies = [latency for row in rows for latency in row.latencies]
    rate = len(latencies) / sum(row.seconds for row in rows)
    cpu_ms = sum(row.cpu.server_total for row in rows) * 1000 / len(latencies)
    return rate, p50_p99_ms(latencies)[1], cpu_ms


def startup_line(count: int, served: Gateway) -> str:
    parent = served.process.pid
    workers = uvicorn_workers(descendants(parent))
    memory = f"RSS {rss_mb(parent):.0f} MB"
    if workers:
        memory = f"RSS per worker {', '.join(f'{rss_mb(pid):.0f}' for pid in workers)} MB, parent {rss_mb(parent):.0f} MB"  # fmt: skip
    return (
        f"{count:>6} clients: /healthz after {served.answered_seconds:.1f} s, every worker idle"
        f" after {served.ready_seconds:.1f} s; {memory}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 10_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="rows per client count, alternated")
    parser.add_argument("--pending", type=int, default=5000, help="pending logins for the memory")
    args = parser.parse_args()
    rows: list[Row] = []
    print("RedisStore; 'clients' is the number of registered clients; the gateways run side by")
    print("side and their rows alternate, so that the machine's drift hits both alike")
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        server, redis_url = redis_server(workdir)
        stack.callback(server.wait)
        stack.callback(server.terminate)
        gateways = {count: stack.enter_context(gateway(Path(workdir), f"clients-{count}",
            redis_url, args.workers, registered(count), 120)) for count in args.clients}  # fmt: skip
        startups = [startup_line(count, served) for count, served in gateways.items()]
        startups += [f"{count:>6} clients, in this process: "
            + startup_breakdown(Path(workdir) / f"clients-{count}.yaml") for count in args.clients]  # fmt: skip
        for served in gateways.values():
            warm_up(served.base_url)
        print(header("clients"))
        for concurrency in args.concurrency:
            for _, (count, served) in itertools.product(range(args.repeat), gateways.items()):
                setup = (f"{count}", args.workers, concurrency)
                rows.append(measure(served, server.pid, setup, args.seconds))
                report(rows[-1])
        report_ratio(rows, args.clients)
        redis_memory(gateways[args.clients[0]], redis_url, args.pending)
    print(f"\nstart-up, `portvakt serve --workers {args.workers}`, one gateway at a time:")
    print("\n".join(startups))


if __name__ == "__main__":
    main()
