"""Whether each provider's upstream answers, judged from the calls the providers make anyway.

After `FAILURES_TO_OPEN` failed calls in a row (errors and timeouts alike) a provider is shown as
unavailable on the chooser and new logins through it fail at once with `temporarily_unavailable`
instead of each citizen waiting out a timeout. After `COOL_DOWN_SECONDS` the next login may try
again; one success closes the breaker. Per instance: each learns from its own calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from providers.base import UpstreamObserver

FAILURES_TO_OPEN = 3
COOL_DOWN_SECONDS = 30.0
# Background refreshes report their own `problem` (and keep a last good copy); only calls made
# for a citizen's login count here.
BACKGROUND_OPERATIONS = frozenset({"metadata", "discovery", "jwks"})
# Calls a login makes to hosts that are not the provider's upstream, timed like the others but
# not its health: the EU wallet's fetch of a PID provider's status list, whose host being down
# refuses that country's PIDs (their status is unknown), not every wallet login.
OTHER_HOSTS_OPERATIONS = frozenset({"status_list"})
UNCOUNTED_OPERATIONS = BACKGROUND_OPERATIONS | OTHER_HOSTS_OPERATIONS


class UpstreamHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0

    def record(self, outcome: str) -> None:
        """`ok` and `rejected` (the upstream answered, with a 4xx) prove it alive; `error` is
        a timeout, an unreachable upstream or a 5xx."""
        if outcome != "error":
            self._failures, self._open_until = 0, 0.0
            return
        self._failures += 1
        if self._failures >= FAILURES_TO_OPEN:
            self._open_until = self._clock() + COOL_DOWN_SECONDS

    @property
    def problem(self) -> str | None:
        if self._clock() < self._open_until:
            return f"the last {self._failures} calls to the upstream failed"
        return None


class WatchedUpstream:
    """The provider's upstream observer: metrics as before, and the health record besides."""

    def __init__(self, metrics: UpstreamObserver, health: UpstreamHealth) -> None:
        self._metrics = metrics
        self._health = health

    def observe(self, operation: str, seconds: float, outcome: str) -> None:
        self._metrics.observe(operation, seconds, outcome)
        if operation not in UNCOUNTED_OPERATIONS:
            self._health.record(outcome)
