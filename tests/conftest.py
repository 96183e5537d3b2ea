from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.oidc_op import UpstreamOP
from tests.harness import Browser, LiveGateway, RedisServer, ServedApp, free_port, running_gateway
from tests.redis_topologies import PASSWORD, RedisClusterSet, RedisSentinelSet


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamOP]:
    """An upstream OpenID Provider (tests/doubles/oidc_op.py) on its own loopback port."""
    port = free_port()
    op = UpstreamOP(f"http://127.0.0.1:{port}")
    with ServedApp(op.app, port):
        yield op


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session; a missing binary fails loudly, never skips."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for one test alone, which it may stop, freeze and restart."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelSet]:
    """1 master, 1 replica, 3 sentinels, with PASSWORD: one set per test module."""
    with RedisSentinelSet(tmp_path_factory.mktemp("sentinel"), password=PASSWORD) as topology:
        yield topology


@pytest.fixture(scope="module")
def secured_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSet]:
    """A 3-master Cluster with PASSWORD: one per test module."""
    with RedisClusterSet(tmp_path_factory.mktemp("cluster-pw"), password=PASSWORD) as topology:
        yield topology


@pytest.fixture(scope="module", params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Runs a test once against MemoryStore and once against a real Redis."""
    if request.param == "memory":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    server.command("FLUSHALL")
    return server.url


GatewayFactory = Callable[..., AbstractContextManager[LiveGateway]]


@pytest.fixture(scope="module")
def gateway(store_url: str | None) -> Iterator[LiveGateway]:
    with running_gateway(store_url) as live:
        yield live


@pytest.fixture
def make_gateway(store_url: str | None) -> GatewayFactory:
    """Each test sets up the smallest configuration it needs."""

    def factory(**overrides: Any) -> AbstractContextManager[LiveGateway]:
        return running_gateway(store_url, **overrides)

    return factory


@pytest.fixture
def browser(gateway: LiveGateway) -> Iterator[Browser]:
    citizen = Browser(gateway)
    yield citizen
    citizen.close()


@pytest.fixture
def tmp_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "portvakt.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
