"""Rate limits live in the store: two gateway instances sharing a real Redis count together.
Per address they are generous (hundreds of citizens share one CGNAT address); per browser and
per pending login they are tight."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gateway.ops.rate_limit import WINDOW_SECONDS
from tests.clock import ManualClock
from tests.harness import (
    Browser,
    LiveGateway,
    RedisServer,
    code_form,
    hidden_field,
    running_gateway,
    token_request,
)

LIMITS = {
    "authorize_per_ip_per_minute": 4,
    "token_per_ip_per_minute": 0,
    "token_per_client_per_minute": 3,
    "provider_starts_per_ip_per_minute": 0,
    "provider_starts_per_browser_per_minute": 0,
    "provider_starts_per_login_per_minute": 0,
}


@pytest.fixture
def clock() -> ManualClock:
    """The counts live in one-minute windows: each test starts 15 s into one, which lasts until
    the test advances the clock."""
    now = time.time()
    return ManualClock(now - now % WINDOW_SECONDS + 15)


@pytest.fixture
def two_instances(
    redis_server: RedisServer, clock: ManualClock
) -> Iterator[tuple[LiveGateway, LiveGateway]]:
    redis_server.command("FLUSHALL")
    with (
        running_gateway(redis_server.url, clock, rate_limits=LIMITS) as first,
        running_gateway(redis_server.url, clock, rate_limits=LIMITS) as second,
    ):
        yield first, second


def test_authorize_is_limited_per_ip_across_instances(
    two_instances: tuple[LiveGateway, LiveGateway],
) -> None:
    browsers = [Browser(instance) for instance in two_instances]
    answers = [browsers[i % 2].authorize(**browsers[i % 2].authorize_params()) for i in range(5)]
    assert [a.status_code for a in answers[:4]] == [200, 200, 200, 200]
    limited = answers[4]
    assert limited.status_code == 429 and limited.headers["retry-after"] == "45"
    assert "Vänta en minut" in limited.text
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


def test_a_token_request_over_its_limit_spends_its_code(
    two_instances: tuple[LiveGateway, LiveGateway], clock: ManualClock
) -> None:
    """The limits are counted in the code's own round trip: the request over the limit has
    taken its code, so it stays spent once the window has passed, and its access token is
    withdrawn with it."""
    citizen = Browser(two_instances[0])
    result = citizen.login()
    citizen.close()
    bad_code = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "x"}
    spent = [
        token_request(two_instances[i % 2], bad_code, auth=("basic", "basic-secret"))
        for i in range(3)
    ]
    limited = token_request(two_instances[1], code_form(result), auth=("basic", "basic-secret"))
    clock.advance(WINDOW_SECONDS)
    again = token_request(two_instances[0], code_form(result), auth=("basic", "basic-secret"))
    assert [answer.status_code for answer in spent] == [400, 400, 400]
    assert limited.status_code == 429 and "access_token" not in limited.text
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_provider_starts_are_limited(redis_server: RedisServer, clock: ManualClock) -> None:
    redis_server.command("FLUSHALL")
    limits = {**LIMITS, "authorize_per_ip_per_minute": 0, "provider_starts_per_ip_per_minute": 2}
    with running_gateway(redis_server.url, clock, rate_limits=limits) as gateway:
        citizen = Browser(gateway)
        codes = [citizen.authorize(**citizen.authorize_params()).status_code for _ in range(3)]
        citizen.close()
    assert codes == [200, 200, 429]


def test_the_per_ip_and_per_client_token_limits_hold_each_on_its_own(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    """Both token limits are counted in one round trip; whichever is exceeded answers 429."""
    redis_server.command("FLUSHALL")
    limits = {**LIMITS, "token_per_ip_per_minute": 5, "token_per_client_per_minute": 3}
    bad_code = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "x"}
    post_client = {**bad_code, "client_id": "post", "client_secret": "post-secret"}
    with running_gateway(redis_server.url, clock, rate_limits=limits) as gateway:
        basic = [token_request(gateway, bad_code, auth=("basic", "basic-secret")) for _ in range(4)]
        post = [token_request(gateway, post_client) for _ in range(2)]
    # the fourth from `basic` is over its client limit (the IP has sent 4 of 5); the second
    # from `post` is the sixth from this IP, over the IP limit, though `post` has sent only two
    assert [answer.status_code for answer in basic] == [400, 400, 400, 429]
    assert [answer.status_code for answer in post] == [400, 429]
    assert post[-1].json()["error"] == "temporarily_unavailable"


def test_the_defaults_let_a_shared_address_through_and_stop_one_browser(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    """250 citizens behind one CGNAT address each start a login within the minute; one
    scripted browser that keeps starting logins is stopped after 20."""
    redis_server.command("FLUSHALL")
    with running_gateway(redis_server.url, clock, rate_limits={}) as gateway:
        citizen = Browser(gateway)
        statuses = set()
        for _ in range(250):
            citizen.http.cookies.clear()  # another person, the same address
            statuses.add(citizen.authorize(**citizen.authorize_params()).status_code)
        assert statuses == {200}
        citizen.http.cookies.clear()  # the scripted browser: one cookie, login after login
        flood = [citizen.authorize(**citizen.authorize_params()).status_code for _ in range(21)]
        citizen.close()
    assert flood == [200] * 20 + [429]


def test_provider_starts_are_limited_per_pending_login(
    redis_server: RedisServer, clock: ManualClock
) -> None:
    redis_server.command("FLUSHALL")
    limits = {**LIMITS, "authorize_per_ip_per_minute": 0, "provider_starts_per_login_per_minute": 2}
    providers = {"sandbox": {"type": "sandbox"}, "other": {"type": "sandbox"}}
    with running_gateway(
        redis_server.url, clock, rate_limits=limits, providers=providers
    ) as gateway:
        citizen = Browser(gateway)
        chooser = citizen.authorize(**citizen.authorize_params())
        form = {"csrf": hidden_field(chooser.text, "csrf"), "provider": "other"}
        action = chooser.text.split('<form method="post" action="')[1].split('"')[0]
        picks = [citizen.http.post(action, data=form).status_code for _ in range(3)]
        another = citizen.authorize(**citizen.authorize_params())  # a new login: its own count
        chosen = citizen.http.post(
            another.text.split('<form method="post" action="')[1].split('"')[0],
            data={"csrf": hidden_field(another.text, "csrf"), "provider": "other"},
        )
        citizen.close()
    assert picks == [200, 200, 429] and chosen.status_code == 200


def test_ipv6_addresses_are_counted_per_64(redis_server: RedisServer, clock: ManualClock) -> None:
    """One household or phone gets a whole /64: counting each address apart would let it
    start without limit."""
    redis_server.command("FLUSHALL")
    limits = {**LIMITS, "authorize_per_ip_per_minute": 0, "provider_starts_per_ip_per_minute": 2}
    proxied = {"rate_limits": limits, "trusted_proxies": ["127.0.0.1/32"]}
    with running_gateway(redis_server.url, clock, **proxied) as gateway:
        citizen = Browser(gateway)

        def start_from(address: str) -> int:
            citizen.http.cookies.clear()
            headers = {"X-Forwarded-For": address}
            return citizen.http.get(
                "/authorize", params=citizen.authorize_params(), headers=headers
            ).status_code

        same_64 = [start_from(f"2001:db8:1:2:{n}::1") for n in ("0", "ab", "ffff")]
        next_64 = start_from("2001:db8:1:3::1")
        mapped = [start_from(a) for a in ("192.0.2.7", "::ffff:192.0.2.7", "192.0.2.8")]
        citizen.close()
    assert same_64 == [200, 200, 429] and next_64 == 200
    assert mapped == [200, 200, 200]  # IPv4 (mapped or not) per address: ...7 twice, ...8 once


@pytest.mark.parametrize(
    ("locale", "title", "when"),
    [
        ("sv", "Vänta en minut", "försök sedan igen"),
        ("en", "Please wait a minute", "then try again"),
    ],
)
def test_the_limit_page_is_calm_and_says_when_to_try_again(
    redis_server: RedisServer, clock: ManualClock, locale: str, title: str, when: str
) -> None:
    redis_server.command("FLUSHALL")
    limits = {**LIMITS, "authorize_per_ip_per_minute": 1}
    with running_gateway(redis_server.url, clock, rate_limits=limits) as gateway:
        citizen = Browser(gateway)
        citizen.http.headers["Accept-Language"] = locale
        citizen.authorize(**citizen.authorize_params())
        limited = citizen.authorize(**citizen.authorize_params())
        citizen.close()
    assert limited.status_code == 429 and limited.headers["retry-after"] == "45"
    assert title in limited.text and when in limited.text
    for blame in ("För många", "Too many", "misstänkt", "suspicious"):
        assert blame not in limited.text


def test_a_new_window_counts_afresh(
    two_instances: tuple[LiveGateway, LiveGateway], clock: ManualClock
) -> None:
    citizen = Browser(two_instances[0])
    first = [citizen.authorize(**citizen.authorize_params()).status_code for _ in range(5)]
    clock.advance(44)  # the window's last second: still counted in it
    last_second = citizen.authorize(**citizen.authorize_params())
    clock.advance(1)
    next_window = citizen.authorize(**citizen.authorize_params())
    citizen.close()
    assert first == [200, 200, 200, 200, 429]
    assert (last_second.status_code, last_second.headers["retry-after"]) == (429, "1")
    assert next_window.status_code == 200
