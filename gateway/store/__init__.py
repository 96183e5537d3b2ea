"""Where every pending login, code, token and replay entry lives, always with a TTL.

`MemoryStore` is the embedded default for one process; `RedisStore` is shared by any number of
instances. Both honour the `providers.base.Store` contract; a Redis fault becomes
`StoreUnavailable`, which the app turns into a 503, never a 500.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.settings import StoreSettings
from gateway.store.deferred import DeferredStore
from gateway.store.errors import StoreUnavailable
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore, ReplicatedRedisStore
from gateway.store.redis_clients import redis_connection
from providers.base import Store

__all__ = [
    "DeferredStore",
    "MemoryStore",
    "RedisStore",
    "ReplicatedRedisStore",
    "StoreUnavailable",
    "open_store",
]


@asynccontextmanager
async def open_store(settings: StoreSettings | None) -> AsyncIterator[Store]:
    """Create the store on the serving event loop (never at import time) and close it after."""
    if settings is None:
        yield MemoryStore()
        return
    connection = redis_connection(settings)
    replicas = settings.replicas_to_acknowledge
    deadline = settings.timeout_seconds
    wait_ms = int(settings.timeout_seconds * 500)  # WAIT gives up before the store deadline
    try:
        await connection.open(deadline)
        yield (
            ReplicatedRedisStore(connection.client, deadline, replicas, wait_ms)
            if replicas
            else RedisStore(connection.client, deadline)
        )
    finally:
        await connection.aclose()
