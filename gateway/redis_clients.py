"""The redis-py client for the configured topology: one server, a Sentinel-monitored master, or a
Cluster. Each is built on the serving event loop and bounded, so a burst of logins waits for a
connection (up to the store timeout) instead of failing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from gateway.settings import SentinelSettings, StoreSettings

RedisClient = redis_asyncio.Redis | RedisCluster


@dataclass
class RedisConnection:
    """The client the store talks through, and what else must be closed with it."""

    client: RedisClient
    sentinels: Sentinel | None = None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.sentinels is not None:
            await self.sentinels.aclose()


def redis_connection(settings: StoreSettings) -> RedisConnection:
    timeouts: dict[str, Any] = {
        "socket_timeout": settings.timeout_seconds,
        "socket_connect_timeout": settings.timeout_seconds,
    }
    if settings.cluster:
        # Learns every node (and moved slots) from the one in the url.
        cluster = RedisCluster.from_url(
            settings.url,
            max_connections=settings.max_connections,
            **timeouts,
            **_tls_files(settings),
        )
        return RedisConnection(cluster)
    if settings.sentinel is not None:
        return _sentinel_master(settings, settings.sentinel, timeouts)
    pool = redis_asyncio.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.timeout_seconds,
        health_check_interval=30,
        retry_on_timeout=False,
        **timeouts,
        **_tls_files(settings),
    )
    return RedisConnection(redis_asyncio.Redis.from_pool(pool))


def _sentinel_master(
    settings: StoreSettings, sentinel: SentinelSettings, timeouts: dict[str, Any]
) -> RedisConnection:
    """A client that asks the sentinels where the master is, and asks again after a failover
    (redis-py's SentinelConnectionPool re-resolves when a connection to the old master fails)."""
    parts = urlsplit(settings.url)
    master_options: dict[str, Any] = {
        "db": int(parts.path.strip("/") or 0),
        "password": unquote(parts.password) if parts.password else None,
        "username": unquote(parts.username) if parts.username else None,
        "ssl": parts.scheme == "rediss",
        "max_connections": settings.max_connections,
        **timeouts,
        **_tls_files(settings),  # StoreSettings allows these only with rediss://
    }
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        sentinel.addresses,
        sentinel_kwargs={"password": sentinel.password, **timeouts},
        **timeouts,
    )
    master: redis_asyncio.Redis = sentinels.master_for(sentinel.service_name, **master_options)
    return RedisConnection(master, sentinels)


def _tls_files(settings: StoreSettings) -> dict[str, str]:
    files = {
        "ssl_ca_certs": settings.tls_ca,
        "ssl_certfile": settings.tls_cert,
        "ssl_keyfile": settings.tls_key,
    }
    return {option: str(path) for option, path in files.items() if path is not None}
