"""One round trip to Redis at a time per process: the commands that requests send while one is
out wait for it and go together as the next, one pipeline without MULTI. One connection from the
pool, one write, one wake-up and one timeout for all of them, instead of one each: on a busy
gateway a round trip's fixed cost in redis-py and the event loop was a fifth of a token's CPU.
With nothing out, a command goes at once, as without batching. A command waits at most for the
round trip before its own; its request's store deadline still bounds it.

Each command is still run on its own by the server (the store's atomic steps are one command
each); a reply that is an error goes to its command only; a lost connection fails every command
of the pipeline, and redis-py's retry re-sends them all, which `gateway.store.redis_clients`
explains is safe for each. A command whose request gave up (its deadline) is answered to no one;
if it led the next batch, the commands that joined it fail at once: they came after it, and
Redis is then slower than the store's deadline. A waiting command never cancels the round trip
that is out.

Not for a Cluster, whose client splits a pipeline by node, nor for replicated writes, each of
which waits for its own WAIT."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis_asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

Command = tuple[Any, ...]


class CommandBatcher:
    def __init__(self, client: redis_asyncio.Redis) -> None:
        self._client = client
        self._out: asyncio.Future[None] | None = None  # done when the last round trip is back
        self._next: list[tuple[Command, asyncio.Future[Any]]] | None = None

    async def execute(self, *command: Any) -> Any:
        """The command's reply (with redis-py's response callback applied), or its error."""
        if self._next is not None:
            reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._next.append((command, reply))
            return await reply
        if self._out is None:
            return await self._round_trip(command, [])
        return await self._lead(command, self._out)

    async def _lead(self, command: Command, out: asyncio.Future[None]) -> Any:
        """Gather the next batch while the last round trip is out, then send it."""
        joining = self._next = []
        try:
            await asyncio.shield(out)  # giving up must not cancel the round trip's own signal
        except BaseException as error:
            self._next = None
            _fail(joining, error)
            raise
        self._next = None
        return await self._round_trip(command, joining)

    async def _round_trip(
        self, command: Command, joining: list[tuple[Command, asyncio.Future[Any]]]
    ) -> Any:
        out = self._out = asyncio.get_running_loop().create_future()
        try:
            if not joining:
                return await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
            replies = await self._pipelined([command, *(queued for queued, _ in joining)])
        except BaseException as error:
            _fail(joining, error)
            raise
        finally:
            if self._out is out:
                self._out = None
            if not out.done():
                out.set_result(None)
        for (_, reply), answer in zip(joining, replies[1:], strict=True):
            _resolve(reply, answer)
        if isinstance(replies[0], Exception):
            raise replies[0]
        return replies[0]

    async def _pipelined(self, commands: list[Command]) -> list[Any]:
        pipe: Any = self._client.pipeline(transaction=False)  # redis-py leaves it untyped
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


def _resolve(reply: asyncio.Future[Any], answer: Any) -> None:
    if reply.done():  # its request gave up (its deadline) while the batch was out
        return
    if isinstance(answer, Exception):
        reply.set_exception(answer)
    else:
        reply.set_result(answer)


def _fail(joining: list[tuple[Command, asyncio.Future[Any]]], error: BaseException) -> None:
    """The batch never got its replies: each command of it fails as if its own connection had.
    A leader cancelled (its deadline passed) fails them with a connection error; it does not
    cancel them."""
    lost = (
        error if isinstance(error, Exception) else RedisConnectionError("the batch was cancelled")
    )
    for _, reply in joining:
        if not reply.done():
            reply.set_exception(lost)
