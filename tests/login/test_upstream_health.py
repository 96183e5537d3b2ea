"""The per-provider breaker: opens after repeated failures, lets a login try after the cool-down,
closes on a success, and ignores background refreshes (they report their own problem) and calls
to hosts other than the upstream (a PID provider's status list)."""

from __future__ import annotations

from gateway.login.upstream_health import (
    COOL_DOWN_SECONDS,
    FAILURES_TO_OPEN,
    UpstreamHealth,
    WatchedUpstream,
)
from providers.base import NoUpstreamMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_failures_in_a_row_and_reopens_after_a_failed_retry() -> None:
    clock = Clock()
    health = UpstreamHealth(clock)
    for _ in range(FAILURES_TO_OPEN - 1):
        health.record("error")
    assert health.problem is None
    health.record("error")
    assert health.problem == f"the last {FAILURES_TO_OPEN} calls to the upstream failed"
    clock.now += COOL_DOWN_SECONDS
    assert health.problem is None  # one login may try again
    health.record("error")
    assert health.problem is not None


def test_a_success_closes_it() -> None:
    clock = Clock()
    health = UpstreamHealth(clock)
    for _ in range(FAILURES_TO_OPEN):
        health.record("error")
    clock.now += COOL_DOWN_SECONDS
    health.record("ok")
    health.record("error")
    assert health.problem is None


def test_an_upstream_that_answers_with_client_errors_is_alive() -> None:
    health = UpstreamHealth(Clock())
    for _ in range(FAILURES_TO_OPEN * 2):
        health.record("rejected")
    assert health.problem is None


def test_background_refreshes_do_not_count() -> None:
    health = UpstreamHealth(Clock())
    watched = WatchedUpstream(NoUpstreamMetrics(), health)
    for operation in ("metadata", "discovery", "jwks") * FAILURES_TO_OPEN:
        watched.observe(operation, 1.0, "error")
    assert health.problem is None
    for _ in range(FAILURES_TO_OPEN):
        watched.observe("/rp/v6.0/auth", 10.0, "error")
    assert health.problem is not None


def test_status_list_fetches_do_not_count() -> None:
    """A PID provider's status host down refuses that country's PIDs, not every wallet login."""
    health = UpstreamHealth(Clock())
    watched = WatchedUpstream(NoUpstreamMetrics(), health)
    for _ in range(FAILURES_TO_OPEN * 2):
        watched.observe("status_list", 5.0, "error")
    assert health.problem is None
