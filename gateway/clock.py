"""What the gateway judges time by: epoch seconds from a callable, `time.time` unless a test
hands `create_app` its own. Store TTLs stay wall time; they only clean up."""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
