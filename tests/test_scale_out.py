"""Several gateway processes sharing one real Redis: any step of a login on any instance, an
instance killed or stopped mid-login, worker processes, and a bounded load test (slow)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from gateway.cli.main import main
from tests.harness import (
    INFO_SCOPE,
    NUMBER_SCOPE,
    REDIRECT_URI,
    TEST_PERSON,
    Browser,
    LoginResult,
    RedisServer,
    ServedApp,
    code_form,
    free_port,
    token_request,
)
from tests.processes import (
    TCP_ESTABLISHED,
    TCP_LISTEN,
    GatewayProcess,
    RoundRobinBalancer,
    cluster_config,
    tcp_sockets,
)

FAULTS = Path(__file__).parent / "faults"


@dataclass
class Entrance:
    """What the citizen and the e-service talk to: the load balancer's address (the issuer)."""

    url: str


@pytest.fixture
def two_behind_a_balancer(
    tmp_path: Path, own_redis: RedisServer
) -> Iterator[tuple[Entrance, RoundRobinBalancer, list[GatewayProcess]]]:
    port = free_port()
    config = cluster_config(tmp_path, f"http://127.0.0.1:{port}", own_redis.url)
    instances = [GatewayProcess(config).start(), GatewayProcess(config).start()]
    balancer = RoundRobinBalancer([instance.url for instance in instances])
    try:
        with ServedApp(balancer, port):
            yield Entrance(f"http://127.0.0.1:{port}"), balancer, instances
    finally:
        for instance in instances:
            instance.kill()


def finish(entrance: Entrance, citizen: Browser, submitted: httpx2.Response) -> None:
    callback = citizen.follow_to_client(submitted)
    tokens = token_request(
        entrance, code_form(LoginResult(callback, None)), ("basic", "basic-secret")
    )
    assert tokens.status_code == 200, tokens.status_code
    userinfo = httpx2.get(
        f"{entrance.url}/userinfo",
        headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["https://id.oidc.se/claim/personalIdentityNumber"] == TEST_PERSON


def test_each_step_of_a_login_lands_on_the_other_instance(
    two_behind_a_balancer: tuple[Entrance, RoundRobinBalancer, list[GatewayProcess]],
) -> None:
    entrance, balancer, _ = two_behind_a_balancer
    citizen = Browser(entrance)
    page, _ = citizen.sandbox_page()
    submitted = citizen.submit_sandbox(page)
    assert submitted.status_code == 303
    finish(entrance, citizen, submitted)
    citizen.close()
    assert all(count >= 2 for count in balancer.served.values()), balancer.served


def test_an_instance_killed_mid_login_is_finished_by_the_other(
    two_behind_a_balancer: tuple[Entrance, RoundRobinBalancer, list[GatewayProcess]],
) -> None:
    entrance, balancer, instances = two_behind_a_balancer
    citizen = Browser(entrance)
    page, _ = citizen.sandbox_page()
    instances[0].kill()  # SIGKILL: whatever it held in memory is gone
    submitted = citizen.submit_sandbox(page)
    assert submitted.status_code == 303, submitted.status_code
    finish(entrance, citizen, submitted)
    citizen.close()
    assert balancer.served[instances[1].url] >= 4


def test_an_instance_that_dies_finishing_a_login_loses_nothing(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """Killed between the upstream's answer and the code (deterministically, by the fault hook
    in tests/faults): the citizen's retry, on the other instance, completes the login."""
    port = free_port()
    config = cluster_config(tmp_path, f"http://127.0.0.1:{port}", own_redis.url)
    died = tmp_path / "died-before-code"
    hook = {
        "PYTHONPATH": os.pathsep.join([str(FAULTS), *sys.path]),
        "PORTVAKT_TEST_DIE_BEFORE_CODE": str(died),
    }
    instances = [GatewayProcess(config, env=hook).start() for _ in range(2)]
    balancer = RoundRobinBalancer([instance.url for instance in instances])
    try:
        with ServedApp(balancer, port):
            entrance = Entrance(f"http://127.0.0.1:{port}")
            citizen = Browser(entrance)
            page, _ = citizen.sandbox_page()
            submitted = citizen.submit_sandbox(page)
            assert submitted.status_code == 303
            finish_url = submitted.headers["location"]
            with pytest.raises(httpx2.HTTPError):  # the instance died holding the request
                citizen.http.get(finish_url).raise_for_status()
            assert died.exists()
            assert sum(instance.process.poll() is not None for instance in instances) == 1
            retried = citizen.http.get(finish_url)  # the citizen reloads the page
            assert retried.status_code == 303, retried.text
            finish(entrance, citizen, retried)
            citizen.close()
    finally:
        for instance in instances:
            instance.kill()


def test_a_terminated_instance_exits_cleanly_and_its_logins_go_on(
    two_behind_a_balancer: tuple[Entrance, RoundRobinBalancer, list[GatewayProcess]],
) -> None:
    entrance, _, instances = two_behind_a_balancer
    citizen = Browser(entrance)
    page, _ = citizen.sandbox_page()
    assert instances[0].stop() == -signal.SIGTERM
    assert "Application shutdown complete" in instances[0].log_path.read_text()
    submitted = citizen.submit_sandbox(page)
    assert submitted.status_code == 303
    finish(entrance, citizen, submitted)
    citizen.close()


def test_a_login_paused_by_a_frozen_redis_completes_when_it_thaws(
    two_behind_a_balancer: tuple[Entrance, RoundRobinBalancer, list[GatewayProcess]],
    own_redis: RedisServer,
) -> None:
    entrance, _, _ = two_behind_a_balancer
    citizen = Browser(entrance)
    page, _ = citizen.sandbox_page()
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)  # answers nothing, keeps everything
    try:
        frozen = citizen.submit_sandbox(page)
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    assert frozen.status_code == 503 and frozen.headers["retry-after"]
    submitted = citizen.submit_sandbox(page)  # the citizen presses the button again
    assert submitted.status_code == 303, submitted.status_code
    finish(entrance, citizen, submitted)
    citizen.close()


def test_a_login_whose_records_a_redis_restart_lost_gets_a_clear_page(
    two_behind_a_balancer: tuple[Entrance, RoundRobinBalancer, list[GatewayProcess]],
    own_redis: RedisServer,
) -> None:
    entrance, _, _ = two_behind_a_balancer
    citizen = Browser(entrance)
    page, _ = citizen.sandbox_page()
    own_redis.stop()
    own_redis.start()  # no persistence: the pending login is gone
    answer = citizen.submit_sandbox(page)
    citizen.close()
    assert answer.status_code == 400, answer.text
    assert "Börja om" in answer.text or "börja om" in answer.text


# `serve --workers` gives each worker its own SO_REUSEPORT socket on Linux only.
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-worker sockets are Linux's")


def two_workers(directory: Path, redis: RedisServer) -> GatewayProcess:
    """`portvakt serve --workers 2` on a free port, its issuer on that port."""
    port = free_port()
    server = GatewayProcess(
        cluster_config(directory, f"http://127.0.0.1:{port}", redis.url), workers=2
    )
    server.port = port
    return server


def test_worker_processes_share_logins_and_report_metrics_together(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    server = two_workers(tmp_path, own_redis)
    with server:
        entrance = Entrance(server.url)
        for _ in range(6):
            citizen = Browser(entrance)
            page, _ = citizen.sandbox_page()
            finish(entrance, citizen, citizen.submit_sandbox(page))
            citizen.close()
        metrics = httpx2.get(f"{server.url}/metrics").text
        assert re.search(
            r'portvakt_logins_completed_total\{[^}]*provider="sandbox"[^}]*\} 6\.0', metrics
        ), metrics
    log = server.log_path.read_text()
    assert len(set(re.findall(r"Started server process \[(\d+)\]", log))) == 2, log


@linux_only
def test_each_worker_listens_on_its_own_socket_so_a_burst_of_connections_is_spread(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    server = two_workers(tmp_path, own_redis)
    with server:
        assert server.process is not None
        workers = server.listening_workers(2)
        assert len(workers) == 2
        assert [tcp_sockets(pid, server.port, TCP_LISTEN) for pid in workers] == [1, 1]
        # only the workers accept: the supervisor holds no socket the kernel could pick
        assert tcp_sockets(server.process.pid, server.port, TCP_LISTEN) == 0
        held = asyncio.run(connections_held_during_a_burst(server.port, workers, BURST))
    # The kernel hashes each connection to a worker's socket: 64 fair coin flips, so a worker
    # with fewer than 16 would be a 1-in-40,000 event. On one shared socket, whichever worker
    # wakes first takes everything waiting (15 of 16 seen).
    assert sum(held) == BURST and min(held) >= BURST // 4, held


BURST = 64


@linux_only
def test_a_killed_worker_is_replaced_by_one_listening_on_its_own_socket(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    server = two_workers(tmp_path, own_redis)
    with server:
        first, second = server.listening_workers(2)
        os.kill(first, signal.SIGKILL)
        replaced = server.listening_workers(2, until_gone=first)
        assert second in replaced and first not in replaced and len(replaced) == 2
        assert [tcp_sockets(pid, server.port, TCP_LISTEN) for pid in replaced] == [1, 1]
        for _ in range(8):  # fresh connections, so both sockets are asked
            assert httpx2.get(f"{server.url}/healthz", timeout=5).status_code == 200


async def connections_held_during_a_burst(port: int, workers: list[int], burst: int) -> list[int]:
    """Opens `burst` keep-alive connections at once, each answered once, and counts how many each
    worker holds while they are all open."""

    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        return writer

    writers = await asyncio.gather(*(one() for _ in range(burst)))
    try:
        return [tcp_sockets(pid, port, TCP_ESTABLISHED) for pid in workers]
    finally:
        for writer in writers:
            writer.close()


@linux_only
@pytest.mark.parametrize("reuse_port", [False, True])
def test_workers_are_refused_a_port_something_else_listens_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reuse_port: bool
) -> None:
    """Taken without SO_REUSEPORT, the workers could not bind; taken with it (say, another
    `portvakt serve` left running), they would silently share its connections."""
    config = cluster_config(tmp_path, "http://127.0.0.1:8080", "redis://127.0.0.1:1/0")
    with socket.socket() as other:
        if reuse_port:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        argv = ["serve", "--config", str(config), "--workers", "2", "--port", str(port)]
        assert main(argv) == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in capsys.readouterr().err


@linux_only
def test_workers_are_refused_port_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = cluster_config(tmp_path, "http://127.0.0.1:8080", "redis://127.0.0.1:1/0")
    assert main(["serve", "--config", str(config), "--workers", "2", "--port", "0"]) == 2
    assert "each worker would listen on a port of its own" in capsys.readouterr().err


# A bounded load test: many citizens at once through two worker processes on one Redis.

LOAD_CITIZENS = 200
LOAD_SECONDS = 30
FIELD = re.compile(r'name="(login|csrf)" value="([^"]+)"')


async def login_once(http: httpx2.AsyncClient) -> None:
    page = await http.get(
        "/authorize",
        params={
            "client_id": "basic",
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": f"openid {NUMBER_SCOPE} {INFO_SCOPE}",
            "state": "s",
            "nonce": "n",
        },
    )
    assert page.status_code == 200, page.status_code
    fields = dict(FIELD.findall(page.text))
    submitted = await http.post("/providers/sandbox/login", data={**fields, "pnr": TEST_PERSON})
    assert submitted.status_code == 303, submitted.status_code
    finished = await http.get(submitted.headers["location"])
    location = finished.headers.get("location", "")
    assert location.startswith(REDIRECT_URI) and "code=" in location, finished.status_code
    code = location.split("code=", 1)[1].split("&", 1)[0]
    tokens = await http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=("basic", "basic-secret"),
    )
    assert tokens.status_code == 200, tokens.status_code
    userinfo = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert userinfo.status_code == 200, userinfo.status_code


async def citizens_for(url: str, citizens: int, seconds: float) -> tuple[int, list[str]]:
    completed, errors = 0, []
    deadline = asyncio.get_running_loop().time() + seconds
    limits = httpx2.Limits(max_connections=citizens, max_keepalive_connections=citizens)

    async def citizen() -> None:
        nonlocal completed
        async with httpx2.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            while asyncio.get_running_loop().time() < deadline:
                http.cookies.clear()
                try:
                    await login_once(http)
                except (AssertionError, httpx2.HTTPError) as error:
                    errors.append(f"{type(error).__name__}: {error}"[:300])
                else:
                    completed += 1

    await asyncio.gather(*(citizen() for _ in range(citizens)))
    return completed, errors


@pytest.mark.slow
def test_two_hundred_concurrent_citizens_for_thirty_seconds_lose_no_login(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    server = two_workers(tmp_path, own_redis)
    with server:
        completed, errors = asyncio.run(citizens_for(server.url, LOAD_CITIZENS, LOAD_SECONDS))
        metrics = httpx2.get(f"{server.url}/metrics").text
    assert errors == [], errors[:5]
    assert completed > LOAD_CITIZENS
    started = re.search(r"portvakt_logins_started_total\{[^}]*\} ([0-9.]+)", metrics)
    finished = re.search(r"portvakt_logins_completed_total\{[^}]*\} ([0-9.]+)", metrics)
    assert started and finished and float(started.group(1)) == float(finished.group(1)) == completed


def test_several_workers_are_refused_what_they_could_not_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--workers", "2"]) == 2
    assert "the embedded demo keeps logins in one process's memory" in capsys.readouterr().err
    config = cluster_config(tmp_path, "http://127.0.0.1:8080", "redis://127.0.0.1:1/0")
    without_store = config.read_text().replace("store: {url: 'redis://127.0.0.1:1/0'}\n", "")
    config.write_text(without_store)
    assert main(["serve", "--config", str(config), "--workers", "2"]) == 2
    assert "each worker would have its own in-memory store" in capsys.readouterr().err
