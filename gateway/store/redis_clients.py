"""The redis-py client for the configured topology: one server, a Sentinel-monitored master, or a
Cluster. Each is built on the serving event loop and bounded, so a burst of logins waits for a
connection (up to the store timeout) instead of failing.

Each retries a command that fails with a connection error or a timeout, on a fresh connection
and after a short backoff: after Redis restarts (or a proxy drops idle connections), every
pooled connection is dead, and without a retry each would cost one request a 503 long after
Redis answers again. Re-sending is safe for every command the store sends because each either
does the same again (SET EX, GET, DEL, WAIT) or, if the first attempt ran and only its reply was
lost, fails closed: a re-sent GETDEL finds the code already taken (the citizen starts again), a
re-sent SET NX reports the key as taken (a replay refused), a re-sent INCR counts one request
twice (a limit reached a little early). A pipeline (a Cluster's batch, or the commands that
several requests send together) is re-sent whole, each command under the same reasoning. The
store bounds each operation as a whole by the store timeout (`gateway.store`), so retries never
keep a request waiting when Redis is really down."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from gateway.settings import SentinelSettings, StoreSettings

RedisClient = redis_asyncio.Redis | RedisCluster

# A dead pooled connection needs one retry; the others, after up to 20, 40 and 80 ms, ride out a
# server that is still starting or a Sentinel that is still naming the new master.
COMMAND_RETRIES = 3
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.1
# An idle connection is PINGed before use, so one a firewall dropped silently is found then.
HEALTH_CHECK_SECONDS = 30


def _command_retry() -> Retry:
    """Retry on redis-py's ConnectionError and TimeoutError (its defaults), with backoff."""
    backoff = ExponentialWithJitterBackoff(cap=BACKOFF_CAP_SECONDS, base=BACKOFF_BASE_SECONDS)
    return Retry(backoff, COMMAND_RETRIES)


def _sentinel_retry() -> Retry:
    """One immediate reconnect of a dead connection to a Sentinel, then the next Sentinel is
    asked (redis-py's default, 10 retries backing off up to 1 s, would stall on one that is
    down)."""
    return Retry(NoBackoff(), 1)


@dataclass
class RedisConnection:
    """The client the store talks through, and what else must be closed with it."""

    client: RedisClient
    sentinels: Sentinel | None = None

    async def open(self, deadline_seconds: float) -> None:
        """A Cluster client learns the slots now, before the first burst: redis-py 8.1, learning
        them while several commands wait, hands one of those a connection that is being
        replaced (an AttributeError instead of a reply). If no node answers yet, the client
        learns them at its first command, as before."""
        if isinstance(self.client, RedisCluster):
            with contextlib.suppress(TimeoutError, RedisError, RedisClusterException, OSError):
                async with asyncio.timeout(deadline_seconds):
                    await self.client.initialize()

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.sentinels is not None:
            await self.sentinels.aclose()


def redis_connection(settings: StoreSettings) -> RedisConnection:
    """The store's own connections to one server or a Sentinel master have no socket timeout:
    the store's deadline already bounds each operation as a whole, and redis-py 8.1 spends a
    task on every send and a timeout context on every reply when one is set, which was a tenth
    of a round trip's cost. A Cluster's client keeps it: it learns the slots again after a
    timeout. Connecting, and asking the sentinels, keep theirs."""
    connect: dict[str, Any] = {"socket_connect_timeout": settings.timeout_seconds}
    timeouts: dict[str, Any] = {**connect, "socket_timeout": settings.timeout_seconds}
    if settings.cluster:
        # Learns every node (and moved slots) from the one in the url. The cluster client does
        # the retrying itself (it learns the slots again in between), its node connections not.
        cluster = RedisCluster.from_url(
            settings.url,
            max_connections=settings.max_connections,
            retry=_command_retry(),
            health_check_interval=HEALTH_CHECK_SECONDS,
            **timeouts,
            **_tls_files(settings),
        )
        return RedisConnection(cluster)
    if settings.sentinel is not None:
        return _sentinel_master(settings, settings.sentinel, connect, timeouts)
    pool = redis_asyncio.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.timeout_seconds,
        retry=_command_retry(),
        health_check_interval=HEALTH_CHECK_SECONDS,
        **connect,
        **_tls_files(settings),
    )
    return RedisConnection(redis_asyncio.Redis.from_pool(pool))


def _sentinel_master(
    settings: StoreSettings,
    sentinel: SentinelSettings,
    connect: dict[str, Any],
    timeouts: dict[str, Any],
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
        "retry": _command_retry(),  # a reconnect asks the sentinels where the master is
        "health_check_interval": HEALTH_CHECK_SECONDS,
        **connect,
        **_tls_files(settings),  # StoreSettings allows these only with rediss://
    }
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        sentinel.addresses,
        sentinel_kwargs={"password": sentinel.password, "retry": _sentinel_retry(), **timeouts},
        **connect,
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
