"""The store on Redis, shared by any number of instances: one server, Sentinel or Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from gateway.store.errors import StoreUnavailable
from gateway.store.redis_batching import CommandBatcher
from gateway.store.redis_clients import RedisClient

# A rate-limit window's count: INCR, and its TTL if it has none (EXPIRE NX), as one command on
# one key. Run by the server as a unit, the TTL is never lost between the two; and one command
# instead of two halves what a count costs the client (each reply is parsed in Python). EVAL,
# not EVALSHA: the server caches the script by its hash, and a restarted server needs no reload.
COUNT_SCRIPT = (
    "local n = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX') return n"
)

# A batch (`_Batch`) as one command, for a server that holds every key: per key, ARGV holds its
# operation, a value and a TTL. One reply (an array) instead of one per command: redis-py
# parses each reply in Python, about 10 us apiece, and a login's batches hold up to nine.
# A write "once taken" happens only if the batch's take found its key.
BATCH_SCRIPT = """
local replies, taken = {}, false
for i, key in ipairs(KEYS) do
  local operation, value, ttl = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  if operation == 'set' or (operation == 'set once taken' and taken) then
    redis.call('SET', key, value, 'EX', ttl)
    replies[i] = 1
  elseif operation == 'count' then
    replies[i] = redis.call('INCR', key)
    redis.call('EXPIRE', key, ttl, 'NX')
  elseif operation == 'take' then
    taken = redis.call('GETDEL', key)
    replies[i] = taken
  else
    replies[i] = 0
  end
end
return replies
"""


@dataclass(frozen=True)
class _Batch:
    """One round trip's commands, in this order: a SET EX per record, a count per counted key
    (`COUNT_SCRIPT`, the window's `ttl`), GETDEL of `taken`, then a SET EX per record of
    `once_taken` if the GETDEL found its key (as a script only)."""

    records: Sequence[tuple[str, bytes, int]] = ()
    counted: Sequence[str] = ()
    ttl: int = 0
    taken: str | None = None
    once_taken: Sequence[tuple[str, bytes, int]] = ()

    def as_script(self) -> list[bytes | int | str]:
        """EVAL's arguments: the script, its keys and, per key, its operation, value and TTL."""
        keys: list[str] = []
        arguments: list[bytes | int | str] = []
        for key, value, ttl in self.records:
            keys.append(key)
            arguments += ["set", value, ttl]
        for key in self.counted:
            keys.append(key)
            arguments += ["count", "", self.ttl]
        if self.taken is not None:
            keys.append(self.taken)
            arguments += ["take", "", 0]
        for key, value, ttl in self.once_taken:
            keys.append(key)
            arguments += ["set once taken", value, ttl]
        return [BATCH_SCRIPT, len(keys), *keys, *arguments]

    def as_commands(self, pipe: Any) -> None:
        if self.once_taken:
            raise ValueError("a pipeline cannot make a write depend on its take")
        for key, value, ttl in self.records:
            pipe.set(key, value, ex=ttl)
        for key in self.counted:
            pipe.eval(COUNT_SCRIPT, 1, key, self.ttl)
        if self.taken is not None:
            pipe.getdel(self.taken)


class RedisStore:
    """The same contract on Redis: SET EX, SET NX EX, GETDEL. One command per operation, and at
    most one round trip: on one server or a Sentinel master, the commands that requests send
    while a round trip is out share the next one (`gateway.store.redis_batching`). The same code
    serves one server, a Sentinel master and a Cluster. An operation on several keys is one
    batch (`_Batch`): on one server or a Sentinel master, one script, which the server runs as a
    unit; on a Cluster, a pipeline without MULTI of its commands, each routed by its key, so no
    operation needs its keys to share a slot.

    The client re-sends a command whose connection failed (`gateway.store.redis_clients` says why
    that is safe); `deadline_seconds` bounds each operation as a whole, the wait for a pooled
    connection, retries and reconnects included, so a Redis that is really down (or frozen)
    costs a request one store timeout, not one per attempt."""

    def __init__(self, client: RedisClient, deadline_seconds: float) -> None:
        self._redis = client
        self._deadline = deadline_seconds
        self._cluster = isinstance(client, RedisCluster)
        self._command: Callable[..., Awaitable[Any]] = (
            client.execute_command
            if isinstance(client, RedisCluster)  # not self._cluster: mypy narrows on this
            else CommandBatcher(client).execute
        )

    def _guarded(self) -> AbstractAsyncContextManager[None]:
        return _translated_errors(self._deadline)

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        async with self._guarded():
            await self._command("SET", key, value, "EX", ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        await self._run(_Batch(records))

    async def put_many_then_take(
        self,
        records: Sequence[tuple[str, bytes, int]],
        key: str,
        once_taken: Sequence[tuple[str, bytes, int]] = (),
    ) -> bytes | None:
        """The GETDEL after the writes, and `once_taken` after it if it took the key: one
        script runs them in that order as a unit, so the key is never taken without the
        writes. A Cluster runs each node's share of a pipeline on its own, so there each step
        is a round trip of its own."""
        if self._cluster:
            await self.put_many(records)
            taken = await self.take(key)
            if taken is not None:
                await self.put_many(once_taken)
            return taken
        replies = await self._run(_Batch(records, taken=key, once_taken=once_taken))
        return _as_bytes(replies[len(records)])

    async def get(self, key: str) -> bytes | None:
        async with self._guarded():
            return _as_bytes(await self._command("GET", key))

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        async with self._guarded():
            return bool(await self._command("SET", key, value, "EX", ttl, "NX"))

    async def take(self, key: str) -> bytes | None:
        async with self._guarded():
            return _as_bytes(await self._command("GETDEL", key))

    async def delete(self, key: str) -> None:
        async with self._guarded():
            await self._command("DEL", key)

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        return [int(count) for count in await self._run(_Batch(counted=keys, ttl=ttl))]

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        """The order between the counts and the GETDEL does not matter, so a Cluster sends it
        as one pipeline too."""
        replies = await self._run(_Batch(counted=keys, ttl=ttl, taken=key))
        return [int(count) for count in replies[:-1]], _as_bytes(replies[-1])

    async def put_many_then_count(
        self, records: Sequence[tuple[str, bytes, int]], keys: Sequence[str], ttl: int
    ) -> list[int]:
        """Nothing depends on the order across keys, so a Cluster sends it as one pipeline
        too."""
        replies = await self._run(_Batch(records, keys, ttl))
        return [int(count) for count in replies[len(records) :]]

    async def ping(self) -> None:
        async with self._guarded():
            await self._command("PING")

    async def _run(self, batch: _Batch) -> list[Any]:
        """The batch's replies, one per command, in its order; an empty batch costs nothing."""
        if not (batch.records or batch.counted or batch.taken is not None or batch.once_taken):
            return []
        async with self._guarded():
            if self._cluster:
                pipe = self._redis.pipeline(transaction=False)
                batch.as_commands(pipe)
                return await self._execute(pipe)
            return list(await self._evaluate(batch.as_script()))

    async def _evaluate(self, arguments: list[bytes | int | str]) -> Any:
        """One EVAL, as a command of its own, not a pipeline of one: alone, or in the round
        trip it shares with other requests' commands (`CommandBatcher`)."""
        return await self._command("EVAL", *arguments)

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

    async def _evaluate(self, arguments: list[bytes | int | str]) -> Any:
        """The EVAL and WAIT in one pipeline (the caller holds the deadline)."""
        pipe: Any = self._redis.pipeline(transaction=False)
        pipe.eval(*arguments)
        return (await self._execute(pipe))[0]

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
