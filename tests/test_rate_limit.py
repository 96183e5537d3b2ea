"""Rate limits live in the store: two gateway instances sharing a real Redis count together."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gateway.rate_limit import WINDOW_SECONDS
from tests.harness import Browser, LiveGateway, RedisServer, running_gateway, token_request

LIMITS = {
    "authorize_per_ip_per_minute": 4,
    "token_per_ip_per_minute": 0,
    "token_per_client_per_minute": 3,
    "provider_starts_per_ip_per_minute": 0,
}


@pytest.fixture(autouse=True)
def whole_window() -> None:
    """The counts live in one-minute windows: never start a test in a window's last seconds."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 5:
        time.sleep(left + 0.1)


@pytest.fixture
def two_instances(redis_server: RedisServer) -> Iterator[tuple[LiveGateway, LiveGateway]]:
    redis_server.command("FLUSHALL")
    with (
        running_gateway(redis_server.url, rate_limits=LIMITS) as first,
        running_gateway(redis_server.url, rate_limits=LIMITS) as second,
    ):
        yield first, second


def test_authorize_is_limited_per_ip_across_instances(
    two_instances: tuple[LiveGateway, LiveGateway],
) -> None:
    browsers = [Browser(instance) for instance in two_instances]
    answers = [browsers[i % 2].authorize(**browsers[i % 2].authorize_params()) for i in range(5)]
    assert [a.status_code for a in answers[:4]] == [200, 200, 200, 200]
    limited = answers[4]
    assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 60
    assert "För många försök just nu" in limited.text
    for browser in browsers:
        browser.close()


def test_token_is_limited_per_client_across_instances(
    two_instances: tuple[LiveGateway, LiveGateway],
) -> None:
    statuses = []
    for i in range(4):
        answer = token_request(
            two_instances[i % 2],
            {"grant_type": "authorization_code", "code": "x", "redirect_uri": "x"},
            auth=("basic", "basic-secret"),
        )
        statuses.append(answer.status_code)
    assert statuses == [400, 400, 400, 429]  # invalid_grant three times, then the limit
    assert answer.json()["error"] == "temporarily_unavailable"
    assert answer.headers["retry-after"]


def test_provider_starts_are_limited(redis_server: RedisServer) -> None:
    redis_server.command("FLUSHALL")
    limits = {**LIMITS, "authorize_per_ip_per_minute": 0, "provider_starts_per_ip_per_minute": 2}
    with running_gateway(redis_server.url, rate_limits=limits) as gateway:
        citizen = Browser(gateway)
        codes = [citizen.authorize(**citizen.authorize_params()).status_code for _ in range(3)]
        citizen.close()
    assert codes == [200, 200, 429]


def test_the_per_ip_and_per_client_token_limits_hold_each_on_its_own(
    redis_server: RedisServer,
) -> None:
    """Both token limits are counted in one round trip; whichever is exceeded answers 429."""
    redis_server.command("FLUSHALL")
    limits = {**LIMITS, "token_per_ip_per_minute": 5, "token_per_client_per_minute": 3}
    bad_code = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "x"}
    post_client = {**bad_code, "client_id": "post", "client_secret": "post-secret"}
    with running_gateway(redis_server.url, rate_limits=limits) as gateway:
        basic = [token_request(gateway, bad_code, auth=("basic", "basic-secret")) for _ in range(4)]
        post = [token_request(gateway, post_client) for _ in range(2)]
    # the fourth from `basic` is over its client limit (the IP has sent 4 of 5); the second
    # from `post` is the sixth from this IP, over the IP limit, though `post` has sent only two
    assert [answer.status_code for answer in basic] == [400, 400, 400, 429]
    assert [answer.status_code for answer in post] == [400, 429]
    assert post[-1].json()["error"] == "temporarily_unavailable"
