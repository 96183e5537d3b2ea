"""`store.replicas_to_acknowledge`: every write and take waits (Redis WAIT) until a replica has
it, so a failover promotes a replica that has it. A real master and replica on loopback; the
replica is frozen with SIGSTOP to show what happens when it cannot acknowledge."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import StoreSettings
from gateway.store import StoreUnavailable, open_store
from tests.harness import Browser, running_gateway
from tests.redis_topologies import RedisNode, wait_for


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisNode, RedisNode]]:
    directory = tmp_path_factory.mktemp("replication")
    master = RedisNode(directory / "master")
    master.start()
    replica = RedisNode(directory / "replica", replicaof=master.address)
    replica.start()
    try:
        wait_for(lambda: _link_problem(replica), 10, "the replica did not sync")
        yield master, replica
    finally:
        replica.stop()
        master.stop()


def _link_problem(replica: RedisNode) -> str | None:
    status = replica.info("replication").get("master_link_status")
    return None if status == "up" else f"link {status}"


@contextmanager
def frozen(node: RedisNode) -> Iterator[None]:
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(node.process.pid, signal.SIGCONT)


def acknowledged(master: RedisNode, replicas: int = 1) -> StoreSettings:
    return StoreSettings(url=master.url, replicas_to_acknowledge=replicas, timeout_seconds=1)


async def test_each_write_and_take_is_on_the_replica_when_it_returns(pair) -> None:
    master, replica = pair
    async with open_store(acknowledged(master)) as store:
        await store.put("ack:put", b"a", 60)
        assert replica.call("GET", "ack:put") == "a"
        assert await store.take("ack:put") == b"a"
        assert replica.call("EXISTS", "ack:put") == 0
        assert await store.add("ack:add", b"x", 60) is True
        assert await store.add("ack:add", b"y", 60) is False
        assert replica.call("GET", "ack:add") == "x"
        await store.put_many([("ack:m1", b"1", 60), ("ack:m2", b"2", 60)])
        assert [replica.call("GET", key) for key in ("ack:m1", "ack:m2")] == ["1", "2"]
        assert await store.count(["ack:n", "ack:n2"], 60) == [1, 1]
        assert replica.call("GET", "ack:n") == "1"
        assert await store.count_then_take(["ack:n"], 60, "ack:m2") == ([2], b"2")
        assert (replica.call("GET", "ack:n"), replica.call("EXISTS", "ack:m2")) == ("2", 0)
        await store.put("ack:m2", b"2", 60)
        assert await store.put_many_then_count([("ack:w", b"w", 60)], ["ack:n"], 60) == [3]
        assert (replica.call("GET", "ack:w"), replica.call("GET", "ack:n")) == ("w", "3")
        await store.delete("ack:m1")
        assert replica.call("EXISTS", "ack:m1") == 0
        assert await store.get("ack:m2") == b"2"


async def test_fewer_replicas_than_required_fail_closed(pair) -> None:
    master, _ = pair
    async with open_store(acknowledged(master, replicas=2)) as store:
        with pytest.raises(StoreUnavailable, match="1 of 2 replicas"):
            await store.put("ack:two", b"x", 60)
        with pytest.raises(StoreUnavailable, match="1 of 2 replicas"):
            await store.take("ack:two")


async def test_a_frozen_replica_makes_writes_fail_then_they_succeed_again(pair) -> None:
    master, replica = pair
    async with open_store(acknowledged(master)) as store:
        with frozen(replica):
            with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
                await store.put("ack:frozen", b"x", 60)
            # documented: the master may hold a write whose acknowledgement failed
            assert await store.get("ack:frozen") == b"x"
        wait_for(lambda: _link_problem(replica), 10, "the replica did not come back")
        await store.put("ack:thawed", b"y", 60)
        assert replica.call("GET", "ack:thawed") == "y"


def test_a_whole_login_with_acknowledged_writes_and_a_503_without_them(pair) -> None:
    master, replica = pair
    store = {"url": master.url, "replicas_to_acknowledge": 1, "timeout_seconds": 1}
    with running_gateway(None, store=store) as live:
        citizen = Browser(live)
        assert "code" in citizen.login("basic").callback
        with frozen(replica):
            response = citizen.authorize(**citizen.authorize_params())
        citizen.close()
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_a_cluster_cannot_require_acknowledgements(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="replicas_to_acknowledge is for one server"):
        StoreSettings(url="redis://node-1:7000", cluster=True, replicas_to_acknowledge=1)
