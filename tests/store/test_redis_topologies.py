"""The Sentinel and Cluster harness (tests/redis_topologies.py) with redis-py's asyncio clients, the
ones the gateway uses: writes survive a failover, hash tags share a slot, passwords are required."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisClusterException

from tests.redis_topologies import PASSWORD, RedisClusterSet


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSet]:
    with RedisClusterSet(tmp_path_factory.mktemp("cluster")) as topology:
        yield topology


@pytest.mark.slow
async def test_master_for_writes_and_reads_on_the_master_the_sentinels_name(sentinel_set) -> None:
    async with Sentinel(sentinel_set.sentinels, socket_timeout=2) as sentinel:
        assert await sentinel.discover_master("portvakt") == sentinel_set.master_address()
        master = sentinel.master_for("portvakt", password=PASSWORD)
        try:
            await master.set("pv:greeting", "hej")
            assert await master.get("pv:greeting") == b"hej"
        finally:
            await master.aclose()


@pytest.mark.slow
async def test_a_killed_master_is_replaced_and_comes_back_as_a_replica(sentinel_set) -> None:
    async with Sentinel(sentinel_set.sentinels, socket_timeout=2) as sentinel:
        master = sentinel.master_for("portvakt", password=PASSWORD)
        try:
            await master.set("pv:before-kill", "kept")
            assert await master.execute_command("WAIT", 1, 1000) == 1
        finally:
            await master.aclose()
        killed = sentinel_set.master_address()
        promoted = await asyncio.to_thread(sentinel_set.kill_master)
        assert promoted != killed
        master = sentinel.master_for("portvakt", password=PASSWORD)
        try:
            assert await master.get("pv:before-kill") == b"kept"
            await master.set("pv:after-kill", "new")
        finally:
            await master.aclose()
        await asyncio.to_thread(sentinel_set.restart, killed)
        replica = Redis(host=killed[0], port=killed[1], password=PASSWORD)
        try:
            assert (await replica.execute_command("ROLE"))[0] == b"slave"
            assert await replica.get("pv:after-kill") == b"new"
        finally:
            await replica.aclose()


@pytest.mark.slow
async def test_a_failover_keeps_the_data_and_moves_writes_to_the_new_master(sentinel_set) -> None:
    async with Sentinel(sentinel_set.sentinels, socket_timeout=2) as sentinel:
        master = sentinel.master_for("portvakt", password=PASSWORD)
        try:
            await master.set("pv:before-failover", "kept")
            assert await master.execute_command("WAIT", 1, 1000) == 1
        finally:
            await master.aclose()
        former = sentinel_set.master_address()
        promoted = await asyncio.to_thread(sentinel_set.failover)
        assert promoted != former
        assert await sentinel.discover_master("portvakt") == promoted
        master = sentinel.master_for("portvakt", password=PASSWORD)
        try:
            await master.set("pv:after-failover", "new")
            assert await master.get("pv:after-failover") == b"new"
            assert await master.get("pv:before-failover") == b"kept"
        finally:
            await master.aclose()


@pytest.mark.slow
async def test_the_data_nodes_refuse_a_client_without_the_password(sentinel_set) -> None:
    async with Sentinel(sentinel_set.sentinels, socket_timeout=2) as sentinel:
        for password in (None, "wrong"):
            master = sentinel.master_for("portvakt", password=password)
            try:
                with pytest.raises(AuthenticationError):
                    await master.set("pv:intruder", "x")
            finally:
                await master.aclose()


@pytest.mark.slow
async def test_cluster_serves_keys_of_every_node_and_hash_tags_share_a_slot(cluster) -> None:
    client = RedisCluster.from_url(cluster.url)
    try:
        keys = [f"pv:login:{n}" for n in range(12)]
        for key in keys:
            await client.set(key, key)
        assert [await client.get(key) for key in keys] == [key.encode() for key in keys]
        slots = {await client.cluster_keyslot(key) for key in keys}
        assert len(slots) == len(keys)
        owners = {client.get_node_from_key(key).port for key in keys}
        assert owners == {port for _, port in cluster.nodes}
        tagged_x = await client.cluster_keyslot("pv:{abc}:x")
        assert tagged_x == await client.cluster_keyslot("pv:{abc}:y")
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_a_cluster_with_a_password_serves_only_clients_that_give_it(secured_cluster) -> None:
    client = RedisCluster.from_url(secured_cluster.url)
    try:
        await client.set("pv:{abc}:x", "1")
        assert await client.get("pv:{abc}:x") == b"1"
    finally:
        await client.aclose()
    host, port = secured_cluster.nodes[1]
    # AuthenticationError is a ConnectionError to redis-py, which by default retries it 10 times
    node = Redis(host=host, port=port, retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(AuthenticationError):
            await node.ping()
    finally:
        await node.aclose()
    anonymous = RedisCluster(host=host, port=port)
    try:
        with pytest.raises((AuthenticationError, RedisClusterException)):
            await anonymous.initialize()
    finally:
        await anonymous.aclose()
