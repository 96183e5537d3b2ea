"""The store on Redis, shared by any number of instances: one server, Sentinel or Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from gateway.store.errors import StoreUnavailable
from gateway.store.redis_clients import RedisClient

# A rate-limit window's count: INCR, and its TTL if it has none (EXPIRE NX), as one command on
# one key. Run by the server as a unit, the TTL is never lost between the two; and one command
# instead of two halves what a count costs the client (each reply is parsed in Python). EVAL,
# not EVALSHA: the server caches the script by its hash, and a restarted server needs no reload.
COUNT_SCRIPT = (
    "local n = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX') return n"
)


class RedisStore:
    """The same contract on Redis: SET EX, SET NX EX, GETDEL. One round trip per operation.
    The same code serves one server, a Sentinel master and a Cluster: every operation is on
    one key, or a pipeline without MULTI, so none needs keys to share a Cluster slot.

    The client re-sends a command whose connection failed (`gateway.store.redis_clients` says why
    that is safe); `deadline_seconds` bounds each operation as a whole, the wait for a pooled
    connection, retries and reconnects included, so a Redis that is really down (or frozen)
    costs a request one store timeout, not one per attempt."""

    def __init__(self, client: RedisClient, deadline_seconds: float) -> None:
        self._redis = client
        self._deadline = deadline_seconds

    def _guarded(self) -> AbstractAsyncContextManager[None]:
        return _translated_errors(self._deadline)

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        async with self._guarded():
            await self._redis.set(key, value, ex=ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        """A pipeline without MULTI: on a Cluster, redis-py sends each node its share."""
        async with self._guarded():
            await self._execute(self._pipeline(records))

    async def put_many_then_take(
        self, records: Sequence[tuple[str, bytes, int]], key: str
    ) -> bytes | None:
        """One pipeline without MULTI, the GETDEL last: Redis runs a connection's commands in
        the order sent, so an interrupted pipeline never took `key` without the writes. A Cluster
        runs each node's share on its own, so there it is two round trips."""
        if isinstance(self._redis, RedisCluster):
            await self.put_many(records)
            return await self.take(key)
        async with self._guarded():
            pipe = self._pipeline(records)
            pipe.getdel(key)
            replies = await self._execute(pipe)
        return _as_bytes(replies[-1])

    async def get(self, key: str) -> bytes | None:
        async with self._guarded():
            return _as_bytes(await self._redis.get(key))

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        async with self._guarded():
            return bool(await self._redis.set(key, value, ex=ttl, nx=True))

    async def take(self, key: str) -> bytes | None:
        async with self._guarded():
            return _as_bytes(await self._redis.getdel(key))

    async def delete(self, key: str) -> None:
        async with self._guarded():
            await self._redis.delete(key)

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        """`COUNT_SCRIPT` per key in one pipeline without MULTI (so keys in different Cluster
        slots share the round trip)."""
        async with self._guarded():
            replies = await self._execute(self._pipeline(counted=keys, ttl=ttl))
        return [int(count) for count in replies]

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        """`count`'s pipeline with the GETDEL last: the order between them does not matter,
        so a Cluster sends it as one pipeline too."""
        async with self._guarded():
            pipe = self._pipeline(counted=keys, ttl=ttl)
            pipe.getdel(key)
            replies = await self._execute(pipe)
        return [int(count) for count in replies[:-1]], _as_bytes(replies[-1])

    async def put_many_then_count(
        self, records: Sequence[tuple[str, bytes, int]], keys: Sequence[str], ttl: int
    ) -> list[int]:
        """The SETs, then `count`'s commands, in one pipeline: nothing depends on their order
        across keys, so a Cluster sends it as one pipeline too."""
        async with self._guarded():
            replies = await self._execute(self._pipeline(records, keys, ttl))
        return [int(count) for count in replies[len(records) :]]

    def _pipeline(
        self,
        records: Sequence[tuple[str, bytes, int]] = (),
        counted: Sequence[str] = (),
        ttl: int = 0,
    ) -> Any:
        """A pipeline without MULTI holding a SET EX per record, then `COUNT_SCRIPT` per counted
        key; the caller may queue more before executing it."""
        pipe = self._redis.pipeline(transaction=False)
        for key, value, record_ttl in records:
            pipe.set(key, value, ex=record_ttl)
        for key in counted:
            pipe.eval(COUNT_SCRIPT, 1, key, ttl)
        return pipe

    async def ping(self) -> None:
        async with self._guarded():
            await self._redis.ping()

    async def _execute(self, pipe: Any) -> list[Any]:
        return list(await pipe.execute())


class ReplicatedRedisStore(RedisStore):
    """RedisStore whose writes and takes each end with WAIT in the same round trip: they
    return once `replicas` replicas have them, so a Sentinel failover, which promotes the most
    up-to-date replica it can, keeps a used code used, a replay-cache entry and a login (Redis
    documents WAIT as best effort, not strong consistency: with several replicas, one that
    missed a write can still be promoted). Fewer acknowledgements within `timeout_ms` is
    StoreUnavailable: the request fails closed (503), though the master may already hold the
    write. Reads are as in RedisStore."""

    def __init__(
        self, client: RedisClient, deadline_seconds: float, replicas: int, timeout_ms: int
    ) -> None:
        super().__init__(client, deadline_seconds)
        self._replicas = replicas
        self._timeout_ms = timeout_ms

    async def _execute(self, pipe: Any) -> list[Any]:
        pipe.execute_command("WAIT", self._replicas, self._timeout_ms)
        replies = list(await pipe.execute())
        acknowledged = int(replies.pop())
        if acknowledged < self._replicas:
            raise StoreUnavailable(f"{acknowledged} of {self._replicas} replicas acknowledged")
        return replies

    async def _one(self, queue: Callable[[Any], object]) -> Any:
        """One command, queued by `queue` on a pipeline, and WAIT: its reply."""
        async with self._guarded():
            pipe = self._pipeline()
            queue(pipe)
            return (await self._execute(pipe))[0]

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        await self._one(lambda pipe: pipe.set(key, value, ex=ttl))

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(await self._one(lambda pipe: pipe.set(key, value, ex=ttl, nx=True)))

    async def take(self, key: str) -> bytes | None:
        return _as_bytes(await self._one(lambda pipe: pipe.getdel(key)))

    async def delete(self, key: str) -> None:
        await self._one(lambda pipe: pipe.delete(key))


def _as_bytes(value: bytes | str | None) -> bytes | None:
    """The client is created without decode_responses, so Redis answers bytes."""
    return value.encode() if isinstance(value, str) else value


@asynccontextmanager
async def _translated_errors(deadline_seconds: float) -> AsyncIterator[None]:
    """Failing to reach Redis within the deadline is StoreUnavailable, however it shows
    (RedisClusterException, "no node is reachable", is not a RedisError)."""
    try:
        async with asyncio.timeout(deadline_seconds):
            yield
    except (TimeoutError, RedisError, RedisClusterException, OSError) as error:
        raise StoreUnavailable(type(error).__name__) from error
