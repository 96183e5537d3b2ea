"""Redis down at request time: a clear 503 (page or JSON), never a 500; back when Redis is."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tests.harness import (
    Browser,
    LiveGateway,
    RedisServer,
    code_form,
    running_gateway,
    token_request,
)


@pytest.fixture
def gateway_on_own_redis(own_redis: RedisServer) -> Iterator[LiveGateway]:
    with running_gateway(own_redis.url) as live:
        yield live


def test_authorize_answers_503_page_when_redis_is_down(own_redis, gateway_on_own_redis) -> None:
    citizen = Browser(gateway_on_own_redis)
    own_redis.stop()
    response = citizen.authorize(**citizen.authorize_params())
    citizen.close()
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["retry-after"]
    assert "tillfälligt otillgänglig" in response.text


def test_token_answers_503_json_when_redis_is_down(own_redis, gateway_on_own_redis) -> None:
    citizen = Browser(gateway_on_own_redis)
    result = citizen.login("basic")
    citizen.close()
    own_redis.stop()
    response = token_request(
        gateway_on_own_redis, code_form(result), auth=("basic", "basic-secret")
    )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_userinfo_answers_503_json_when_redis_is_down(own_redis, gateway_on_own_redis) -> None:
    own_redis.stop()
    with httpx2.Client(base_url=gateway_on_own_redis.url) as http:
        response = http.get("/userinfo", headers={"Authorization": "Bearer whatever"})
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_service_resumes_when_redis_returns(own_redis, gateway_on_own_redis) -> None:
    citizen = Browser(gateway_on_own_redis)
    own_redis.stop()
    assert citizen.authorize(**citizen.authorize_params()).status_code == 503
    own_redis.start()
    result = citizen.login("basic")
    citizen.close()
    assert (
        token_request(
            gateway_on_own_redis, code_form(result), auth=("basic", "basic-secret")
        ).status_code
        == 200
    )


def test_a_login_started_before_the_outage_fails_cleanly_during_it(
    own_redis, gateway_on_own_redis
) -> None:
    citizen = Browser(gateway_on_own_redis)
    page, _ = citizen.sandbox_page()
    own_redis.stop()
    response = citizen.submit_sandbox(page)
    citizen.close()
    assert response.status_code == 503


def test_readiness_follows_redis(own_redis, gateway_on_own_redis) -> None:
    url = f"{gateway_on_own_redis.url}/readyz"
    ready = httpx2.get(url)
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "problems": {}}
    own_redis.stop()
    down = httpx2.get(url)
    assert down.status_code == 503 and "store" in down.json()["problems"]
    assert httpx2.get(f"{gateway_on_own_redis.url}/healthz").status_code == 200  # still alive
    own_redis.start()
    assert httpx2.get(url).status_code == 200
