from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import RedisServer
from tests.properties.site import Site, whole_site


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Site]:
    with whole_site(tmp_path_factory.mktemp("properties"), redis_server.url) as served:
        yield served
