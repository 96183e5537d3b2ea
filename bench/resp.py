"""A minimal pipelined RESP2 client, for benchmarks only: what Redis itself costs without
redis-py's client, pool, retries and timeouts around each command.

Not for the product: no timeouts, reconnects, TLS, AUTH, Sentinel or Cluster, and one slow reply
holds up every command queued behind it on its connection. `bench/token_floor.py` uses the
connection; the `RespStore` below is the Store contract on it, for the experiment in
`bench/resp_experiment/`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

Part = bytes | str | int


class RespError(Exception):
    """An error reply (-ERR ...)."""


class RespConnection(asyncio.Protocol):
    """Pipelined RESP2 on one connection: replies come back in the order the commands went out."""

    def __init__(self) -> None:
        self._waiting: collections.deque[tuple[asyncio.Future[list[object]], int]] = (
            collections.deque()
        )
        self._buffer = b""
        self._replies: list[object] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def send(self, *commands: tuple[Part, ...]) -> asyncio.Future[list[object]]:
        assert self._transport is not None
        out = bytearray()
        for command in commands:
            out += b"*%d\r\n" % len(command)
            for part in command:
                data = part if isinstance(part, bytes) else str(part).encode()
                out += b"$%d\r\n%s\r\n" % (len(data), data)
        self._transport.write(bytes(out))
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((future, len(commands)))
        return future

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (reply := self._parse()) is not None:
            self._replies.append(reply[0])
            future, count = self._waiting[0]
            if len(self._replies) == count:
                self._waiting.popleft()
                if not future.cancelled():
                    future.set_result(self._replies)
                self._replies = []

    def _parse(self) -> tuple[object] | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            return None
        kind, line = self._buffer[:1], self._buffer[1:end]
        if kind == b"$":
            length = int(line)
            if length < 0:
                self._buffer = self._buffer[end + 2 :]
                return (None,)
            if len(self._buffer) < end + 4 + length:
                return None
            value = self._buffer[end + 2 : end + 2 + length]
            self._buffer = self._buffer[end + 4 + length :]
            return (value,)
        self._buffer = self._buffer[end + 2 :]
        if kind == b":":
            return (int(line),)
        if kind == b"-":
            return (RespError(line.decode()),)
        return (line,)


async def connect(url: str) -> RespConnection:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    _, connection = await loop.create_connection(RespConnection, host, port)
    return connection


class RespStore:
    """The gateway's Store contract (providers/base.py) with the same commands RedisStore sends."""

    def __init__(self, connections: Sequence[RespConnection]) -> None:
        self._connections = itertools.cycle(connections)

    async def _do(self, *commands: tuple[Part, ...]) -> list[Any]:
        replies = await next(self._connections).send(*commands)
        for reply in replies:
            if isinstance(reply, RespError):
                raise reply
        return replies

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        await self._do(("SET", key, value, "EX", ttl))

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        if records:
            await self._do(*[("SET", key, value, "EX", ttl) for key, value, ttl in records])

    async def get(self, key: str) -> bytes | None:
        return cast(bytes | None, (await self._do(("GET", key)))[0])

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        return (await self._do(("SET", key, value, "EX", ttl, "NX")))[0] is not None

    async def take(self, key: str) -> bytes | None:
        return cast(bytes | None, (await self._do(("GETDEL", key)))[0])

    async def put_many_then_take(
        self, records: Sequence[tuple[str, bytes, int]], key: str
    ) -> bytes | None:
        writes = [("SET", record, value, "EX", ttl) for record, value, ttl in records]
        return cast(bytes | None, (await self._do(*writes, ("GETDEL", key)))[-1])

    async def delete(self, key: str) -> None:
        await self._do(("DEL", key))

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        commands = [c for key in keys for c in (("INCR", key), ("EXPIRE", key, ttl, "NX"))]
        return (await self._do(*commands))[0::2]

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        commands = [c for k in keys for c in (("INCR", k), ("EXPIRE", k, ttl, "NX"))]
        replies = await self._do(*commands, ("GETDEL", key))
        return replies[:-1:2], cast(bytes | None, replies[-1])

    async def put_many_then_count(
        self, records: Sequence[tuple[str, bytes, int]], keys: Sequence[str], ttl: int
    ) -> list[int]:
        writes = [("SET", key, value, "EX", record_ttl) for key, value, record_ttl in records]
        commands = [c for k in keys for c in (("INCR", k), ("EXPIRE", k, ttl, "NX"))]
        return (await self._do(*writes, *commands))[len(writes) :: 2]

    async def ping(self) -> None:
        await self._do(("PING",))


@contextlib.asynccontextmanager
async def open_resp_store(settings: Any) -> AsyncIterator[Any]:
    """Stands in for gateway.store.open_store: MemoryStore without a store, else a RespStore on
    two pipelined connections to the configured one-server url."""
    if settings is None:
        from gateway.store import MemoryStore

        yield MemoryStore()
        return
    connections = [await connect(settings.url) for _ in range(2)]
    try:
        yield RespStore(connections)
    finally:
        for connection in connections:
            connection.close()
