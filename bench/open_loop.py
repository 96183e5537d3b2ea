"""Logins at a fixed arrival rate on a fixed number of connections (open loop).

A closed loop (every client starts its next login when the last one ends) always saturates the
server, so its latency is queueing by Little's law: 64 clients at 350 logins/s wait 64 / 350 =
183 ms on average whatever the server does. Here login i is due at start + i / rate whether or
not earlier logins have finished; the first of the `clients` connections that is free takes it,
and its latency counts from when it was due, so time spent waiting for a free connection is
counted too (no coordinated omission). With the rate below capacity this measures what a
citizen waits; pushed past capacity, latency grows without bound and the row says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.lean_http import LeanClient


@dataclass(frozen=True)
class OpenLoopRun:
    offered: float  # logins/s asked for
    seconds: float  # from the first due time to the last login's end
    latencies: list[float]  # each login's seconds from when it was due to its end

    @property
    def achieved(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def kept_up(self) -> bool:
        """Whether the server served the offered rate (within 5 %) rather than queueing it."""
        return self.achieved >= 0.95 * self.offered


async def open_loop(
    base_url: str, clients: int, rate: float, seconds: float,
    login: Callable[[LeanClient], Awaitable[object]],
    opened: Callable[[contextlib.AsyncExitStack, int, Callable[[], LeanClient]], Awaitable[list[LeanClient]]],
    started: Callable[[], object] = lambda: None,
) -> OpenLoopRun:  # fmt: skip
    due_count = int(rate * seconds)
    next_index = itertools.count()
    latencies: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        connections = await opened(stack, clients, lambda: LeanClient(base_url))
        started()
        begin = time.perf_counter() + 0.05

        async def citizen(http: LeanClient) -> None:
            while (index := next(next_index)) < due_count:
                due = begin + index / rate
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                await login(http)
                latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(citizen(http) for http in connections))
    return OpenLoopRun(rate, time.perf_counter() - begin, latencies)
