"""The commands that concurrent requests send to one Redis server in the same turn of the event
loop, sent as one pipeline without MULTI: one round trip, one connection from the pool and one
wake-up for all of them, instead of one each. A busy gateway's requests reach the store together
(each turn of the loop runs every request that has input); alone, a command goes as before, one
turn of the loop later.

The first command of a turn leads: it yields the loop once, so the turn's other commands can
join, then sends them all and hands each its reply. Each command is still run on its own by the
server (the store's atomic steps are one command each); a reply that is an error goes to its
command only; a lost connection fails every command of the pipeline, and redis-py's retry
re-sends them all, which `gateway.store.redis_clients` explains is safe for each.

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
        self._joining: list[tuple[Command, asyncio.Future[Any]]] | None = None

    async def execute(self, *command: Any) -> Any:
        """The command's reply (with redis-py's response callback applied), or its error."""
        if self._joining is not None:
            reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._joining.append((command, reply))
            return await reply
        joining = self._joining = []
        try:
            await asyncio.sleep(0)  # the turn's other commands join here
        except BaseException as error:
            self._joining = None
            _fail(joining, error)
            raise
        self._joining = None
        if not joining:
            return await self._client.execute_command(*command)  # type: ignore[no-untyped-call]
        try:
            replies = await self._pipelined([command, *(queued for queued, _ in joining)])
        except BaseException as error:
            _fail(joining, error)
            raise
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
    """The batch never got its replies: every command of it fails as if its own connection had
    (a cancelled leader, its deadline passed, cancels none of the others)."""
    lost = (
        error if isinstance(error, Exception) else RedisConnectionError("the batch was cancelled")
    )
    for _, reply in joining:
        if not reply.done():
            reply.set_exception(lost)
