"""Commands sent while a round trip is out go to Redis together as the next one, one pipeline
(gateway/store/redis_batching), each with its own reply or error, on a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.settings import StoreSettings
from gateway.store import open_store
from gateway.store.redis_batching import CommandBatcher
from providers.base import Store
from tests.harness import RedisServer


def replies_written(server: RedisServer) -> int:
    """How many times redis-server has written to its clients: one per round trip."""
    return int(server.command("INFO", "stats").split("total_writes_processed:")[1].split()[0])


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis_asyncio.Redis]:
    opened = redis_asyncio.Redis.from_url(redis_server.url)
    yield opened
    await opened.aclose()


async def started_together(
    batcher: CommandBatcher, *commands: tuple[Any, ...]
) -> list[asyncio.Future[Any]]:
    """Each command its own request, all sent in one turn of the event loop: the first goes out
    at once, the second leads the next round trip, the others join it."""
    requests = [asyncio.ensure_future(batcher.execute(*command)) for command in commands]
    await asyncio.sleep(0)
    return requests


async def test_commands_sent_while_one_is_out_are_the_next_round_trip(
    redis_server: RedisServer, client: redis_asyncio.Redis
) -> None:
    batcher = CommandBatcher(client)
    await batcher.execute("PING")  # connected, so the count below is only the commands'
    before = replies_written(redis_server)
    replies = await asyncio.gather(
        *(batcher.execute("SET", f"batch:{n}", f"v{n}", "EX", 60) for n in range(10)),
        *(batcher.execute("GET", f"batch:{n}") for n in range(10)),
    )
    assert replies == [True] * 10 + [f"v{n}".encode() for n in range(10)]
    # the first SET at once, the other 19 together once it is back, and INFO's own reply
    assert replies_written(redis_server) - before == 3


async def test_a_command_alone_goes_at_once(
    redis_server: RedisServer, client: redis_asyncio.Redis
) -> None:
    batcher = CommandBatcher(client)
    assert await batcher.execute("SET", "alone", "v", "EX", 60, "NX") is True
    assert await batcher.execute("SET", "alone", "w", "EX", 60, "NX") is None
    assert await batcher.execute("GETDEL", "alone") == b"v"


async def test_an_error_reply_fails_its_own_command_only(client: redis_asyncio.Redis) -> None:
    await client.hset("a-hash", "field", "value")
    batcher = CommandBatcher(client)
    out, first, wrong, last = await asyncio.gather(
        batcher.execute("PING"),
        batcher.execute("SET", "before-error", "v", "EX", 60),
        batcher.execute("GETDEL", "a-hash"),  # WRONGTYPE
        batcher.execute("GET", "before-error"),
        return_exceptions=True,
    )
    assert out is True and first is True and last == b"v"
    assert isinstance(wrong, ResponseError)


async def test_the_leading_command_s_error_is_its_own(client: redis_asyncio.Redis) -> None:
    await client.hset("another-hash", "field", "value")
    batcher = CommandBatcher(client)
    out, wrong, fine = await asyncio.gather(
        batcher.execute("PING"),
        batcher.execute("GETDEL", "another-hash"),
        batcher.execute("PING"),
        return_exceptions=True,
    )
    assert out is True and fine is True
    assert isinstance(wrong, ResponseError)


async def test_a_leader_that_gives_up_fails_the_joined_commands_at_once(
    client: redis_asyncio.Redis,
) -> None:
    """Its deadline passed while it waited: the others fail now, they do not hang; the round
    trip that was out is not disturbed."""
    batcher = CommandBatcher(client)
    out, leader, joined = await started_together(
        batcher, ("SET", "out", "v", "EX", 60), ("GET", "a"), ("GET", "b")
    )
    leader.cancel()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(joined, 1)
    assert leader.cancelled()
    assert await out is True
    assert await batcher.execute("GET", "out") == b"v"  # and the batcher goes on


async def test_a_joined_command_that_gave_up_leaves_the_batch_whole(
    client: redis_asyncio.Redis,
) -> None:
    batcher = CommandBatcher(client)
    out, leader, gave_up = await started_together(
        batcher, ("PING",), ("SET", "kept", "v", "EX", 60), ("GET", "kept")
    )
    gave_up.cancel()
    assert await out is True
    assert await leader is True
    assert gave_up.cancelled()


async def test_a_round_trip_that_gives_up_lets_the_next_one_go(
    client: redis_asyncio.Redis,
) -> None:
    batcher = CommandBatcher(client)
    out, waiting = await started_together(batcher, ("PING",), ("SET", "next", "v", "EX", 60))
    out.cancel()
    assert await asyncio.wait_for(waiting, 1) is True


async def test_the_store_batches_concurrent_operations(redis_server: RedisServer) -> None:
    """A burst of logins' store operations, each with its own result, in few round trips."""
    async with open_store(StoreSettings(url=redis_server.url)) as store:
        await store.ping()
        before = replies_written(redis_server)
        results = await asyncio.gather(*(a_login_s_operations(store, n) for n in range(8)))
        trips = replies_written(redis_server) - before
    assert results == [(b"pending", [1, 1], b"code") for _ in range(8)]
    assert trips <= 12  # 24 round trips unbatched, and INFO


async def a_login_s_operations(
    store: Store, n: int
) -> tuple[bytes | None, list[int], bytes | None]:
    pending = f"trip:pending:{n}"
    counts = await store.put_many_then_count(
        [(pending, b"pending", 60)], [f"trip:a:{n}", f"trip:b:{n}"], 60
    )
    taken = await store.put_many_then_take([(f"trip:code:{n}", b"code", 60)], pending)
    code = await store.take(f"trip:code:{n}")
    return taken, counts, code
