"""Where every pending login, code, token and replay entry lives, always with a TTL.

`MemoryStore` is the embedded default for one process; `RedisStore` is shared by any number of
instances. Both honour the `providers.base.Store` contract; a Redis fault becomes
`StoreUnavailable`, which the app turns into a 503, never a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from gateway.settings import StoreSettings
from gateway.store.redis_clients import RedisClient, redis_connection
from providers.base import Store


class StoreUnavailable(Exception):
    """The shared store cannot be reached right now; retrying later may work."""


class MemoryStore:
    """A dict with expiry. Atomic because the event loop runs one coroutine step at a time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: dict[str, tuple[float, bytes]] = {}
        self._clock = clock
        self._writes_since_sweep = 0

    def _live(self, key: str) -> bytes | None:
        record = self._records.get(key)
        if record is None:
            return None
        expires_at, value = record
        if expires_at <= self._clock():
            del self._records[key]
            return None
        return value

    def _write(self, key: str, value: bytes, ttl: int) -> None:
        if ttl <= 0:
            raise ValueError("every record needs a positive TTL")
        self._records[key] = (self._clock() + ttl, value)
        self._writes_since_sweep += 1
        if self._writes_since_sweep >= 10_000:
            self._sweep()

    def _sweep(self) -> None:
        now = self._clock()
        self._records = {k: r for k, r in self._records.items() if r[0] > now}
        self._writes_since_sweep = 0

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        self._write(key, value, ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        for key, value, ttl in records:
            self._write(key, value, ttl)

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        if self._live(key) is not None:
            return False
        self._write(key, value, ttl)
        return True

    async def take(self, key: str) -> bytes | None:
        value = self._live(key)
        if value is not None:
            del self._records[key]
        return value

    async def put_many_then_take(
        self, records: Sequence[tuple[str, bytes, int]], key: str
    ) -> bytes | None:
        await self.put_many(records)
        return await self.take(key)

    async def delete(self, key: str) -> None:
        self._records.pop(key, None)

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        return [self._count_one(key, ttl) for key in keys]

    def _count_one(self, key: str, ttl: int) -> int:
        value = self._live(key)
        if value is None:
            self._write(key, b"1", ttl)
            return 1
        count = int(value) + 1
        self._records[key] = (self._records[key][0], str(count).encode())
        return count

    async def ping(self) -> None:
        return None

    def __len__(self) -> int:
        self._sweep()
        return len(self._records)


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
            pipe = self._redis.pipeline(transaction=False)
            for key, value, ttl in records:
                pipe.set(key, value, ex=ttl)
            await self._execute(pipe)

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
            pipe = self._redis.pipeline(transaction=False)
            for record_key, value, ttl in records:
                pipe.set(record_key, value, ex=ttl)
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
        """INCR and EXPIRE NX per key in one pipeline without MULTI (so keys in different
        Cluster slots share the round trip): a key's two commands reach its server in one
        write and run back to back, so the TTL is set unless the server dies in between."""
        async with self._guarded():
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, ttl, nx=True)
            replies = await self._execute(pipe)
        return [int(count) for count in replies[::2]]

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
            pipe = self._redis.pipeline(transaction=False)
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


@asynccontextmanager
async def open_store(settings: StoreSettings | None) -> AsyncIterator[Store]:
    """Create the store on the serving event loop (never at import time) and close it after."""
    if settings is None:
        yield MemoryStore()
        return
    connection = redis_connection(settings)
    replicas = settings.replicas_to_acknowledge
    deadline = settings.timeout_seconds
    wait_ms = int(settings.timeout_seconds * 500)  # WAIT must give up before the socket does
    try:
        await connection.open(deadline)
        yield (
            ReplicatedRedisStore(connection.client, deadline, replicas, wait_ms)
            if replicas
            else RedisStore(connection.client, deadline)
        )
    finally:
        await connection.aclose()


class DeferredStore:
    """Stands in for the store until `lifespan` opens it on the serving event loop."""

    def __init__(self) -> None:
        self._target: Store | None = None

    def attach(self, store: Store | None) -> None:
        self._target = store

    @property
    def target(self) -> Store:
        if self._target is None:
            raise StoreUnavailable("the store is not open")
        return self._target

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        await self.target.put(key, value, ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        await self.target.put_many(records)

    async def get(self, key: str) -> bytes | None:
        return await self.target.get(key)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        return await self.target.add(key, value, ttl)

    async def take(self, key: str) -> bytes | None:
        return await self.target.take(key)

    async def put_many_then_take(
        self, records: Sequence[tuple[str, bytes, int]], key: str
    ) -> bytes | None:
        return await self.target.put_many_then_take(records, key)

    async def delete(self, key: str) -> None:
        await self.target.delete(key)

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        return await self.target.count(keys, ttl)

    async def ping(self) -> None:
        await self.target.ping()
