"""Sandbox login round trips per second and latency, against `portvakt serve` in its own process.

One login = GET /authorize (sandbox page) -> POST sandbox form -> GET finish (code) ->
POST /token -> GET /userinfo: five HTTP requests, as a real e-service and citizen make them.
Runs MemoryStore (1 worker) and a throwaway redis-server (1 and 2 worker processes), at 1, 16
and 64 concurrent clients, and prints the machine's raw RS256 sign rate from the same run for
scale. The load comes from bench/lean_http.py (one keep-alive connection per citizen) unless
--client httpx. Those rows are closed loops (the next login starts when the last ends), which
saturate the server; a last table offers logins at fixed rates on 64 connections (open loop,
bench/open_loop.py) to show latency below capacity. Not a test: nothing asserts.

    python bench/login.py [--seconds 5] [--concurrency 1 16 64] [--workers 1 2] [--client lean]
                          [--open-rates 100 150 200 250 300] [--open-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.lean_http import LeanClient, LeanHttpError
from bench.open_loop import OpenLoopRun, open_loop

REDIRECT_URI = "http://127.0.0.1:9000/callback"
FIELD = re.compile(r'name="(login|csrf)" value="([^"]+)"')
AUTHORIZE = {
    "client_id": "bench", "redirect_uri": REDIRECT_URI, "response_type": "code",
    "scope": "openid https://id.oidc.se/scope/naturalPersonNumber", "state": "s", "nonce": "n",
}  # fmt: skip
CLIENT = ("bench", "bench-secret")
PNR = "199908072391"
REQUESTS_PER_LOGIN = 5
# Counted on every request as with the defaults (it costs store round trips), but never reached:
# the whole load comes from one IP.
RATE_LIMITS = (
    "rate_limits: {authorize_per_ip_per_minute: 1000000000, token_per_ip_per_minute: 1000000000,"
    " token_per_client_per_minute: 1000000000, provider_starts_per_ip_per_minute: 1000000000,"
    " provider_starts_per_browser_per_minute: 1000000000,"
    " provider_starts_per_login_per_minute: 1000000000}\n"
)
C = TypeVar("C", LeanClient, httpx2.AsyncClient)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_text(
    port: int, store_url: str | None, keys_dir: Path | None = None, clients: str | None = None,
    replicas: int = 0,
) -> str:  # fmt: skip
    """`keys_dir` (with store_url) is what --workers 2 needs; `clients` replaces the one client;
    `replicas` is store.replicas_to_acknowledge."""
    store = (
        f"store: {{url: '{store_url}', replicas_to_acknowledge: {replicas}}}\n" if store_url else ""
    )
    keys = f"keys: {{dir: '{keys_dir}'}}\n" if keys_dir else ""
    return (
        f"issuer: http://127.0.0.1:{port}\n"
        f"secret_key: {'b' * 40}\nsubject_salt: bench-subject-salt\n{store}{keys}"
        + RATE_LIMITS
        + "providers: {sandbox: {type: sandbox}}\n"
        + (clients or f"clients: [{client_entry(*CLIENT)}]\n")
    )


def client_entry(client_id: str, secret: str) -> str:
    return f"{{client_id: {client_id}, client_secret: {secret}, redirect_uris: ['{REDIRECT_URI}']}}"


async def one_login(http: httpx2.AsyncClient) -> float:
    started = time.perf_counter()
    page = await http.get("/authorize", params=AUTHORIZE)
    fields = dict(FIELD.findall(page.text))
    submitted = await http.post("/providers/sandbox/login", data={**fields, "pnr": PNR})
    finished = await http.get(submitted.headers["location"])
    code = finished.headers["location"].split("code=", 1)[1].split("&", 1)[0]
    tokens = await http.post("/token", auth=CLIENT, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})  # fmt: skip
    access_token = tokens.json()["access_token"]
    userinfo = await http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    userinfo.raise_for_status()
    http.cookies.clear()  # the next login is a new citizen on the same connection
    return time.perf_counter() - started


async def lean_page(http: LeanClient, client_id: str = "bench") -> dict[str, str]:
    """GET /authorize: the sandbox page's hidden fields (a pending login now exists)."""
    page = await http.get("/authorize", {**AUTHORIZE, "client_id": client_id})
    fields = dict(FIELD.findall(page.text))
    if page.status != 200 or len(fields) != 2:
        raise LeanHttpError(f"/authorize: HTTP {page.status}, not the sandbox page: {page.body[:300]!r}")  # fmt: skip
    return fields


async def lean_code(http: LeanClient, client_id: str = "bench") -> str:
    """A sandbox login up to the authorization code, which is left unredeemed."""
    fields = await lean_page(http, client_id)
    submitted = await http.post("/providers/sandbox/login", {**fields, "pnr": PNR})
    finished = await http.get(submitted.location)
    location = finished.location
    if "code=" not in location:
        raise LeanHttpError(f"the finish redirect carries no code: {location}")
    return location.split("code=", 1)[1].split("&", 1)[0]


async def lean_redeem(http: LeanClient, code: str, client: tuple[str, str] = CLIENT) -> str:
    """POST /token: the access token."""
    tokens = await http.post("/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}, auth=client)  # fmt: skip
    tokens.raise_for_status()
    return str(tokens.json()["access_token"])


async def one_login_lean(http: LeanClient, client: tuple[str, str] = CLIENT) -> float:
    started = time.perf_counter()
    access_token = await lean_redeem(http, await lean_code(http, client[0]), client)
    userinfo = await http.get("/userinfo", bearer=access_token)
    userinfo.raise_for_status()
    http.cookies.clear()  # the next login is a new citizen on the same connection
    return time.perf_counter() - started


async def run_clients(
    base_url: str,
    concurrency: int,
    seconds: float,
    client: str = "lean",
    started: Callable[[], object] = lambda: None,
) -> list[float]:
    """Citizens logging in one after another on `concurrency` connections for `seconds`; each
    login's seconds. `started()` is called once the connections are open, just before."""
    latencies: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        logins: list[Callable[[], Awaitable[float]]]
        if client == "lean":
            lean = await opened(stack, concurrency, lambda: LeanClient(base_url))
            logins = [functools.partial(one_login_lean, http) for http in lean]
        else:
            limits = httpx2.Limits(max_connections=1)
            pool = await opened(stack, concurrency, lambda: httpx2.AsyncClient(
                base_url=base_url, limits=limits, timeout=30))  # fmt: skip
            logins = [functools.partial(one_login, http) for http in pool]
        started()
        deadline = time.perf_counter() + seconds

        async def citizen(login: Callable[[], Awaitable[float]]) -> None:
            while time.perf_counter() < deadline:
                latencies.append(await login())

        await asyncio.gather(*(citizen(login) for login in logins))
    return latencies


async def opened(stack: contextlib.AsyncExitStack, count: int, make: Callable[[], C]) -> list[C]:
    """`count` clients, each connected by a GET /healthz, 10 ms apart: on one shared socket,
    connections that arrived together nearly all landed on one uvicorn worker (it accepts the
    backlog at one wake-up). Each worker has its own socket now; the spacing keeps the rows
    comparable with the earlier ones."""
    clients: list[C] = []
    for _ in range(count):
        client = await stack.enter_async_context(make())
        await client.get("/healthz")
        clients.append(client)
        await asyncio.sleep(0.01)
    return clients


async def in_parallel(
    base_url: str, concurrency: int, items: list[str], work: Callable[[LeanClient, str], Awaitable[object]],
    started: Callable[[], object] = lambda: None,
) -> list[float]:  # fmt: skip
    """`work(client, item)` for every item, on `concurrency` connections opened beforehand
    (`started()` is called then); the seconds each call took."""
    queue = list(reversed(items))
    latencies: list[float] = []

    async def drain(client: LeanClient) -> None:
        while queue:
            item = queue.pop()
            begun = time.perf_counter()
            await work(client, item)
            latencies.append(time.perf_counter() - begun)

    async with contextlib.AsyncExitStack() as stack:
        clients = await opened(stack, concurrency, lambda: LeanClient(base_url))
        started()
        await asyncio.gather(*(drain(client) for client in clients))
    return latencies


def warm_up(base_url: str, client: str = "lean") -> None:
    """Three seconds of logins at 16 concurrent: a fresh server is slower for its first seconds."""
    asyncio.run(run_clients(base_url, 16, 3.0, client))


def serve(
    port: int, config: Path, workers: int = 1, seconds: float = 30.0
) -> subprocess.Popen[bytes]:
    """`portvakt serve` once /healthz answers and, with several workers, every worker is idle."""
    return serve_timed(port, config, workers, seconds)[0]


def serve_timed(
    port: int, config: Path, workers: int = 1, seconds: float = 30.0
) -> tuple[subprocess.Popen[bytes], float, float]:
    """`serve`, and the seconds from launch until /healthz answered and until it was ready
    (every worker idle; with one worker, the same)."""
    started = time.perf_counter()
    process = launch(port, config, workers)
    with quoting_log(config, process):
        answering(process, f"http://127.0.0.1:{port}/healthz", "portvakt serve", seconds)
        answered = time.perf_counter() - started
        if workers > 1:
            settled(process.pid, workers, seconds)
    return process, answered, time.perf_counter() - started if workers > 1 else answered


def launch(port: int, config: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    """`portvakt serve`, just started; its stderr goes to CONFIG.log."""
    script = Path(sys.executable).parent / "portvakt"
    with config.with_suffix(".log").open("wb") as stderr:
        return subprocess.Popen(
            [str(script), "serve", "--port", str(port), "--config", str(config), "--log-level", "warning",
             "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip


@contextmanager
def quoting_log(config: Path, process: subprocess.Popen[bytes]) -> Iterator[None]:
    """A server that did not start is stopped and reported with the end of its stderr."""
    try:
        yield
    except RuntimeError as error:
        stop(process)
        log = config.with_suffix(".log").read_text()[-2000:]
        raise RuntimeError(f"{error}; its stderr:\n{log}") from None


def answering(
    process: subprocess.Popen[bytes], url: str, what: str, seconds: float = 30.0
) -> subprocess.Popen[bytes]:
    """`process` once `url` answers at all (any status); killed if it never does."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and process.poll() is None:
        try:
            httpx2.get(url, timeout=0.2)
            return process
        except httpx2.TransportError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{what} did not start (exit status {process.returncode})")


def stop(process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    """SIGTERM (uvicorn's supervisor stops its workers), then SIGKILL to whatever of the process
    tree is left: a killed parent would leave its workers running."""
    tree = descendants(process.pid) if process.poll() is None else []
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def settled(pid: int, workers: int, seconds: float = 60.0) -> None:
    """Wait until `pid` has `workers` worker processes and none of them is using CPU: /healthz
    answers as soon as one worker is up, and the load's connections must reach all of them."""
    deadline, before = time.perf_counter() + seconds, process_cpu(pid)
    while time.perf_counter() < deadline:
        time.sleep(0.3)
        now = process_cpu(pid)
        busy = any(now[p] - before.get(p, 0.0) > 0.02 for p in now)
        if len(uvicorn_workers(now)) == workers and not busy:
            return
        before = now
    raise RuntimeError(f"the {workers} workers of process {pid} did not settle in {seconds} s")


def uvicorn_workers(pids: Iterable[int]) -> list[int]:
    """The uvicorn worker processes among `pids` (multiprocessing's spawned children; not the
    parent, not multiprocessing's resource tracker)."""
    found = []
    for pid in pids:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except FileNotFoundError:
            continue
    return found


def redis_server(
    directory: str, replica_of: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway redis-server; with `replica_of` (a redis:// url), a replica of that one."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (scripts/ensure-test-tools.sh installs it)")
    port = free_port()
    os.makedirs(directory, exist_ok=True)
    replication = (
        ["--replicaof", "127.0.0.1", replica_of.rsplit(":", 1)[1].split("/")[0]]
        if replica_of
        else []
    )
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", directory, *replication], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.3)
    return process, f"redis://127.0.0.1:{port}/0"


def rs256_signs_per_second(seconds: float = 1.0) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(50):  # warm-up
        key.sign(b"x" * 300, padding.PKCS1v15(), hashes.SHA256())
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        key.sign(b"x" * 300, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / seconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), independent of who else is running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Child processes of `pid`, recursively (uvicorn's workers are children of `portvakt serve`)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(child) for child in task.read_text().split()]
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return [pid for child in children for pid in (child, *descendants(child))]


def process_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of `pid` and of each of its descendants, by process id."""
    usage: dict[int, float] = {}
    for member in (pid, *descendants(pid)):
        try:
            usage[member] = cpu_seconds(member)
        except FileNotFoundError:
            continue  # it exited between the listing and the read
    return usage


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine, all cores (user, nice, system, irq, softirq)."""
    user, nice, system, _idle, _iowait, irq, softirq = Path("/proc/stat").read_text().split()[1:8]
    return sum(int(n) for n in (user, nice, system, irq, softirq)) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of the gateway (per process of its tree), redis-server, this process and
    the whole machine."""

    server: dict[int, float]
    redis: float
    client: float
    machine: float

    @classmethod
    def now(cls, server_pid: int, redis_pid: int | None) -> Cpu:
        redis = cpu_seconds(redis_pid) if redis_pid is not None else 0.0
        return cls(process_cpu(server_pid), redis, time.process_time(), machine_cpu_seconds())

    def __sub__(self, earlier: Cpu) -> Cpu:
        server = {p: cpu - earlier.server.get(p, 0.0) for p, cpu in self.server.items()}
        return Cpu(server, self.redis - earlier.redis, self.client - earlier.client,
                   self.machine - earlier.machine)  # fmt: skip

    @property
    def server_total(self) -> float:
        return sum(self.server.values())

    @property
    def others(self) -> float:
        """What the rest of the machine used meanwhile: anything else disturbs the figures."""
        return self.machine - self.server_total - self.redis - self.client

    def disturbance(self, seconds: float) -> str:
        """A warning line if other processes used more than 5 % of a core for `seconds`."""
        share = self.others / seconds
        if share <= 0.05:
            return ""
        return (
            f"  ! other processes used {share:.0%} of a core meanwhile: these figures are disturbed"
        )

    def worker_split(self) -> str:
        """How the uvicorn workers shared the server's CPU, in %: '-' with one process."""
        workers = sorted((self.server[p] for p in uvicorn_workers(self.server)), reverse=True)
        total = sum(workers)
        if len(workers) < 2 or total <= 0:
            return "-"
        return "/".join(f"{100 * cpu / total:.0f}" for cpu in workers)


def p50_p99_ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


@dataclass(frozen=True)
class Row:
    label: str  # the store, or what else the rows differ in
    workers: int
    concurrency: int
    seconds: float  # wall clock
    latencies: list[float]
    cpu: Cpu

    def per_login_ms(self, cpu_seconds: float) -> float:
        return cpu_seconds * 1000 / max(len(self.latencies), 1)


def header(label: str = "store") -> str:
    return (
        f"{label:<8} {'workers':>7} {'conc':>4} {'logins/s':>10} {'p50 ms':>9} {'p99 ms':>9}"
        f" {'requests/s':>10} {'server CPU ms/login':>19} {'redis CPU ms/login':>18}"
        f" {'client CPU ms/login':>19} {'worker CPU split %':>18}"
    )


def report(row: Row) -> None:
    p50, p99 = p50_p99_ms(row.latencies)
    rate = len(row.latencies) / row.seconds
    print(f"{row.label:<8} {row.workers:>7} {row.concurrency:>4} {rate:>10.1f} {p50:>9.1f} {p99:>9.1f}"
          f" {rate * REQUESTS_PER_LOGIN:>10.0f} {row.per_login_ms(row.cpu.server_total):>19.2f}"
          f" {row.per_login_ms(row.cpu.redis):>18.2f} {row.per_login_ms(row.cpu.client):>19.2f}"
          f" {row.cpu.worker_split():>18}", flush=True)  # fmt: skip
    if warning := row.cpu.disturbance(row.seconds):
        print(warning)


def report_derived(rows: list[Row]) -> None:
    """Capacity derived from CPU per login, not measured: the load generator took its share."""
    print("\nDERIVED from server CPU per login, not measured (as if the gateway had the cores to itself):")  # fmt: skip
    print(f"{'store':<8} {'workers':>7} {'conc':>4} {'logins/s per core':>18} {'logins/s on 2 cores':>19} {'2 cores incl. redis':>19}")  # fmt: skip
    for row in rows:
        server = row.per_login_ms(row.cpu.server_total)
        with_redis = server + row.per_login_ms(row.cpu.redis)
        print(f"{row.label:<8} {row.workers:>7} {row.concurrency:>4} {1000 / server:>18.0f}"
              f" {2000 / server:>19.0f} {2000 / with_redis:>19.0f}")  # fmt: skip


def setups(workers: list[int], replica: bool = False) -> list[tuple[str, int]]:
    """(store, workers) pairs: MemoryStore cannot be shared between worker processes; "replica"
    is Redis with a replica that acknowledges every write (store.replicas_to_acknowledge: 1)."""
    pairs = [("memory", 1)] * (1 in workers) + [("redis", n) for n in workers]
    return pairs + [("replica", n) for n in workers] * replica


@dataclass(frozen=True)
class Gateway:
    process: subprocess.Popen[bytes]
    base_url: str
    answered_seconds: float  # from launch until /healthz answered
    ready_seconds: float  # until every worker was idle


@contextmanager
def gateway(
    workdir: Path, name: str, store_url: str | None, workers: int, clients: str | None = None,
    seconds: float = 30.0, replicas: int = 0,
) -> Iterator[Gateway]:  # fmt: skip
    """A running `portvakt serve` (several workers get a shared keys.dir), stopped at the end."""
    port = free_port()
    keys_dir = workdir / f"{name}-keys" if store_url else None
    config = workdir / f"{name}.yaml"
    config.write_text(config_text(port, store_url, keys_dir, clients, replicas))
    process, answered, ready = serve_timed(port, config, workers, seconds)
    try:
        yield Gateway(process, f"http://127.0.0.1:{port}", answered, ready)
    finally:
        stop(process)


def measure(
    served: Gateway, redis_pid: int | None, setup: tuple[str, int, int], seconds: float,
    client: str = "lean",
) -> Row:  # fmt: skip
    """Logins for `seconds` at `setup`'s concurrency; the wall-clock time (the last logins end
    after `seconds`) and the CPU are counted from when the connections are open."""
    label, workers, concurrency = setup
    pid, marks = served.process.pid, list[tuple[Cpu, float]]()
    latencies = asyncio.run(run_clients(served.base_url, concurrency, seconds, client,
        started=lambda: marks.append((Cpu.now(pid, redis_pid), time.perf_counter()))))  # fmt: skip
    elapsed = time.perf_counter() - marks[0][1]
    return Row(
        label, workers, concurrency, elapsed, latencies, Cpu.now(pid, redis_pid) - marks[0][0]
    )


@dataclass(frozen=True)
class OpenRow:
    workers: int
    clients: int
    run: OpenLoopRun
    server_cpu: float
    worker_split: str  # read while the workers still exist


def measure_open(served: Gateway, redis_pid: int | None, workers: int, clients: int, rate: float,
                 seconds: float) -> OpenRow:  # fmt: skip
    pid, marks = served.process.pid, list[Cpu]()
    run = asyncio.run(open_loop(served.base_url, clients, rate, seconds, one_login_lean, opened,
                                started=lambda: marks.append(Cpu.now(pid, redis_pid))))  # fmt: skip
    cpu = Cpu.now(pid, redis_pid) - marks[0]
    return OpenRow(workers, clients, run, cpu.server_total, cpu.worker_split())


def report_open(row: OpenRow) -> None:
    run = row.run
    p50, p99 = p50_p99_ms(run.latencies)
    per_login = row.server_cpu * 1000 / max(len(run.latencies), 1)
    verdict = "" if run.kept_up else "  ! fell behind: past capacity, latency is queueing"
    print(f"{'redis':<8} {row.workers:>7} {row.clients:>7} {run.offered:>9.0f} {run.achieved:>10.1f}"
          f" {p50:>9.1f} {p99:>9.1f} {per_login:>19.2f} {row.worker_split:>18}{verdict}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--client", choices=["lean", "httpx"], default="lean")
    parser.add_argument("--replica", action="store_true",
                        help="also rows with a Redis replica acknowledging every write")  # fmt: skip
    parser.add_argument("--open-rates", type=float, nargs="+", default=[100, 150, 200, 250, 300],
                        help="logins/s offered in the open-loop rows (Redis, most workers)")  # fmt: skip
    parser.add_argument("--open-clients", type=int, default=64)
    parser.add_argument("--open-seconds", type=float, default=15.0,
                        help="per open-loop row: a p99 needs thousands of logins")  # fmt: skip
    args = parser.parse_args()
    signs = rs256_signs_per_second()
    print(f"raw RS256 signatures/s on one core (same run): {signs:.0f}; client: {args.client}")
    print(header())
    rows: list[Row] = []
    open_rows: list[OpenRow] = []
    with tempfile.TemporaryDirectory() as workdir:
        redis, redis_url = redis_server(workdir)
        replica = (
            redis_server(f"{workdir}/replica", replica_of=redis_url)[0] if args.replica else None
        )
        try:
            for store, workers in setups(args.workers, args.replica):
                url = None if store == "memory" else redis_url
                replicas = 1 if store == "replica" else 0
                with gateway(
                    Path(workdir), f"{store}-{workers}", url, workers, replicas=replicas
                ) as served:
                    redis_pid = redis.pid if url else None
                    warm_up(served.base_url, args.client)
                    for concurrency in args.concurrency:
                        setup = (store, workers, concurrency)
                        rows.append(measure(served, redis_pid, setup, args.seconds, args.client))
                        report(rows[-1])
                    if store == "redis" and workers == max(args.workers):
                        open_rows += [measure_open(served, redis_pid, workers, args.open_clients,
                                                   rate, args.open_seconds) for rate in args.open_rates]  # fmt: skip
        finally:
            for server in (redis, replica):
                if server is not None:
                    server.terminate()
                    server.wait()
    print("the load generator (one Python process), redis-server and the gateway share the 2")
    print("cores, so logins/s is a lower bound; server CPU sums `portvakt serve` and its workers")
    report_derived(rows)
    print(f"\nOPEN LOOP: logins due at a fixed rate on {args.open_clients} connections, each timed from when it was due:")  # fmt: skip
    print(f"{'store':<8} {'workers':>7} {'clients':>7} {'offered/s':>9} {'logins/s':>10} {'p50 ms':>9}"
          f" {'p99 ms':>9} {'server CPU ms/login':>19} {'worker CPU split %':>18}")  # fmt: skip
    for open_row in open_rows:
        report_open(open_row)


if __name__ == "__main__":
    main()
