"""Redis back after an outage: every request is served again at once, although each process's
pool still holds connections to the server that went away; and while Redis is really down (or
frozen), a store operation gives up within the store timeout, retries included."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from gateway.settings import StoreSettings
from gateway.store import StoreUnavailable, open_store
from providers.base import Store
from tests.harness import (
    INFO_SCOPE,
    NUMBER_SCOPE,
    REDIRECT_URI,
    TEST_PERSON,
    RedisServer,
    ServedApp,
    free_port,
)
from tests.processes import GatewayProcess, RoundRobinBalancer, cluster_config
from tests.redis_topologies import PASSWORD, RedisClusterSet, RedisNode, RedisSentinelSet

BURST = 24  # citizens arriving together, more than one pooled connection per instance
FIELD = re.compile(r'name="(login|csrf)" value="([^"]+)"')


@pytest.fixture
def balanced_instances(tmp_path: Path, own_redis: RedisServer) -> Iterator[str]:
    """Two `portvakt serve` processes on `own_redis` behind a round-robin balancer: its url."""
    port = free_port()
    config = cluster_config(tmp_path, f"http://127.0.0.1:{port}", own_redis.url)
    instances = [GatewayProcess(config).start(), GatewayProcess(config).start()]
    try:
        with ServedApp(RoundRobinBalancer([instance.url for instance in instances]), port):
            yield f"http://127.0.0.1:{port}"
    finally:
        for instance in instances:
            instance.kill()


async def login_statuses(http: httpx2.AsyncClient) -> list[int]:
    """The status of each step of one login, up to the first that did not go as it should."""
    statuses: list[int] = []

    def went(response: httpx2.Response, expected: int) -> bool:
        statuses.append(response.status_code)
        return response.status_code == expected

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
    if not went(page, 200):
        return statuses
    fields = dict(FIELD.findall(page.text))
    submitted = await http.post("/providers/sandbox/login", data={**fields, "pnr": TEST_PERSON})
    if not went(submitted, 303):
        return statuses
    finished = await http.get(submitted.headers["location"])
    location = finished.headers.get("location", "")
    if not went(finished, finished.status_code) or "code=" not in location:
        return statuses
    code = location.split("code=", 1)[1].split("&", 1)[0]
    tokens = await http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=("basic", "basic-secret"),
    )
    if not went(tokens, 200):
        return statuses
    userinfo = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    went(userinfo, 200)
    return statuses


async def burst_of_logins(url: str, citizens: int) -> list[list[int]]:
    async def citizen() -> list[int]:
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            return await login_statuses(http)

    return list(await asyncio.gather(*(citizen() for _ in range(citizens))))


def connected_clients(server: RedisServer) -> int:
    match = re.search(r"connected_clients:(\d+)", server.command("INFO", "clients"))
    assert match is not None
    return int(match.group(1)) - 1  # not counting the connection asking


def test_citizens_arriving_together_right_after_a_redis_restart_get_no_503(
    balanced_instances: str, own_redis: RedisServer
) -> None:
    warm_up = asyncio.run(burst_of_logins(balanced_instances, BURST))
    assert all(statuses[-1] == 200 for statuses in warm_up), warm_up
    pooled = connected_clients(own_redis)
    # each instance sends its commands on one connection at a time (gateway/store/redis_batching)
    assert pooled >= 2, f"the burst should leave a pooled connection per instance, not {pooled}"
    own_redis.stop()
    own_redis.start()  # returns once it answers PING: from here on, no citizen may get a 503
    after = asyncio.run(burst_of_logins(balanced_instances, BURST))
    assert all(len(statuses) == 5 and statuses[-1] == 200 for statuses in after), after


# The store on its own, one test per topology: a burst of every operation it has, each on a
# pooled connection the server no longer knows.

Operation = Callable[[Store, str], Awaitable[Any]]
OPERATIONS: list[Operation] = [
    lambda store, key: store.put(key, b"v", 60),
    lambda store, key: store.put_many([(key, b"v", 60), (f"{key}:2", b"w", 60)]),
    lambda store, key: store.get(key),
    lambda store, key: store.add(key, b"v", 60),
    lambda store, key: store.take(key),
    lambda store, key: store.delete(key),
    lambda store, key: store.count([key, f"{key}:n"], 60),
    lambda store, _key: store.ping(),
]


async def burst_of_operations(store: Store, prefix: str) -> list[Any]:
    """Each operation four times at once, on distinct keys; what each returned or raised."""
    calls = [
        operation(store, f"{prefix}:{round_}:{index}")
        for round_ in range(4)
        for index, operation in enumerate(OPERATIONS)
    ]
    return list(await asyncio.gather(*calls, return_exceptions=True))


def failures(results: list[Any]) -> list[BaseException]:
    return [result for result in results if isinstance(result, BaseException)]


async def test_the_pooled_connection_of_the_store_reconnects_after_a_restart(
    own_redis: RedisServer,
) -> None:
    """One server's commands share one round trip at a time, so the burst's connection."""
    async with open_store(StoreSettings(url=own_redis.url)) as store:
        assert failures(await burst_of_operations(store, "before")) == []
        assert connected_clients(own_redis) >= 1
        own_redis.stop()
        own_redis.start()
        assert failures(await burst_of_operations(store, "after")) == []


# Really down: a quick StoreUnavailable (a 503), retries and reconnects included.

TIMEOUT = 0.5
ALLOWED = TIMEOUT + 0.4  # the budget and a margin for a busy test machine


async def timed_failures(store: Store) -> tuple[list[BaseException], float]:
    started = time.monotonic()
    results = await burst_of_operations(store, "down")
    return failures(results), time.monotonic() - started


async def test_a_stopped_redis_fails_every_operation_within_the_store_timeout(
    own_redis: RedisServer,
) -> None:
    async with open_store(StoreSettings(url=own_redis.url, timeout_seconds=TIMEOUT)) as store:
        await burst_of_operations(store, "before")
        own_redis.stop()
        failed, seconds = await timed_failures(store)
    assert len(failed) == 4 * len(OPERATIONS)
    assert all(isinstance(error, StoreUnavailable) for error in failed), failed
    assert seconds < ALLOWED, seconds


async def test_a_frozen_redis_fails_every_operation_within_the_store_timeout(
    own_redis: RedisServer,
) -> None:
    """SIGSTOP: the kernel still accepts connections, nothing answers, so each attempt (and each
    reconnect) lasts the whole socket timeout; the retries must not multiply it."""
    async with open_store(StoreSettings(url=own_redis.url, timeout_seconds=TIMEOUT)) as store:
        await burst_of_operations(store, "before")
        assert own_redis.process is not None
        own_redis.process.send_signal(signal.SIGSTOP)
        try:
            failed, seconds = await timed_failures(store)
        finally:
            own_redis.process.send_signal(signal.SIGCONT)
        assert len(failed) == 4 * len(OPERATIONS)
        assert all(isinstance(error, StoreUnavailable) for error in failed), failed
        assert seconds < ALLOWED, seconds
        assert failures(await burst_of_operations(store, "thawed")) == []


# Sentinel and Cluster (slow): the servers stay up, but drop every connection of the store's
# client, as a restart does, and a Cluster frozen for a moment gives up within the timeout.


def local_ports_of_this_process() -> set[int]:
    """The local TCP ports (IPv4) of this process's sockets, from /proc."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def drop_store_connections(nodes: list[RedisNode]) -> int:
    """CLIENT KILL every connection this process (the store) holds to the nodes, not those of
    the Sentinels or replicas: how many."""
    ours = local_ports_of_this_process()
    dropped = 0
    for node in nodes:
        for client in re.finditer(r"\bid=(\d+) addr=[^ ]*:(\d+) ", node.command("CLIENT", "LIST")):
            if int(client.group(2)) in ours:
                node.call("CLIENT", "KILL", "ID", client.group(1))
                dropped += 1
    return dropped


def sentinel_settings(topology: RedisSentinelSet, **extra: Any) -> StoreSettings:
    return StoreSettings(
        url=f"redis://:{PASSWORD}@/0",
        sentinel={
            "service_name": topology.service_name,
            "hosts": [f"{host}:{port}" for host, port in topology.sentinels],
        },
        **extra,
    )


@pytest.mark.slow
@pytest.mark.parametrize("acknowledged", [0, 1])
async def test_a_sentinel_master_store_reconnects_every_dropped_connection(
    sentinel_set: RedisSentinelSet, acknowledged: int
) -> None:
    settings = sentinel_settings(sentinel_set, replicas_to_acknowledge=acknowledged)
    async with open_store(settings) as store:
        assert failures(await burst_of_operations(store, f"s{acknowledged}:before")) == []
        # batched on one connection; replicated writes each take their own, with their WAIT
        assert drop_store_connections(sentinel_set.data_nodes) >= (4 if acknowledged else 1)
        assert failures(await burst_of_operations(store, f"s{acknowledged}:after")) == []


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see below
async def test_a_cluster_store_reconnects_every_dropped_connection(
    secured_cluster: RedisClusterSet,
) -> None:
    # redis-py 8.1's RedisCluster leaves the sockets of its slot discovery closing but not
    # closed when the client is closed (as in test_store_topologies).
    async with open_store(StoreSettings(url=secured_cluster.url, cluster=True)) as store:
        assert failures(await burst_of_operations(store, "c:before")) == []
        assert drop_store_connections(secured_cluster.cluster_nodes) >= 4
        assert failures(await burst_of_operations(store, "c:after")) == []


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_new_cluster_store_serves_its_first_burst(secured_cluster: RedisClusterSet) -> None:
    """A gateway starting under load: every operation of the first burst is served (redis-py
    8.1, learning the slots lazily, failed an operation of most new clients' first bursts)."""
    for attempt in range(8):
        async with open_store(StoreSettings(url=secured_cluster.url, cluster=True)) as store:
            assert failures(await burst_of_operations(store, f"c:new:{attempt}")) == []


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_frozen_cluster_fails_every_operation_within_the_store_timeout(
    secured_cluster: RedisClusterSet,
) -> None:
    settings = StoreSettings(url=secured_cluster.url, cluster=True, timeout_seconds=TIMEOUT)
    async with open_store(settings) as store:
        await burst_of_operations(store, "cf:before")
        processes = [node.process for node in secured_cluster.cluster_nodes]
        try:
            for process in processes:
                assert process is not None
                process.send_signal(signal.SIGSTOP)
            failed, seconds = await timed_failures(store)
        finally:
            for process in processes:
                if process is not None:
                    process.send_signal(signal.SIGCONT)
        assert len(failed) == 4 * len(OPERATIONS)
        assert all(isinstance(error, StoreUnavailable) for error in failed), failed
        assert seconds < ALLOWED, seconds
