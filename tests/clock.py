"""A clock the tests move by hand, for everything the gateway judges by time (create_app's
`clock`): what would otherwise need a wall-clock sleep is one `advance`."""

from __future__ import annotations

import time


class ManualClock:
    """Epoch seconds that stand still until `advance`d; starts at the wall clock's now."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
