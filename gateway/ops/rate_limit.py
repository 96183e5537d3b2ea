"""Rate limits held in the store, so they hold across every instance: a fixed one-minute
window per (limit, key), counted with INCR (+ EXPIRE NX); a request under several limits counts
them all in one round trip.

Addresses are counted generously (see `RateLimitSettings`), IPv6 per /64 (what one household
or phone is given), IPv4 per address; browsers and pending logins tightly."""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network, ip_address

from starlette.requests import Request

from gateway.clock import Clock
from gateway.ops.client_ip import client_ip
from gateway.settings import Settings
from providers.base import Store, StoreWrite

WINDOW_SECONDS = 60


class RateLimited(Exception):
    def __init__(self, bucket: str, retry_after: int) -> None:
        super().__init__(f"rate limit {bucket} exceeded")
        self.bucket = bucket
        self.retry_after = retry_after


@dataclass(frozen=True)
class Counting:
    """One request's limits, ready to be counted in the store: `keys` with `WINDOW_SECONDS`
    as their TTL, then `check` of the counts the store returned."""

    keys: tuple[str, ...]
    limits: tuple[tuple[str, int], ...]  # (bucket, limit) per key
    now: int
    ttl: int = WINDOW_SECONDS

    def check(self, counts: Sequence[int]) -> None:
        """The first limit exceeded is raised."""
        for (bucket, limit), count in zip(self.limits, counts, strict=True):
            if count > limit:
                raise RateLimited(bucket, WINDOW_SECONDS - self.now % WINDOW_SECONDS)


class RateLimiter:
    def __init__(self, settings: Settings, store: Store, clock: Clock = time.time) -> None:
        self._clock = clock
        self._limits = settings.rate_limits
        self._proxies = settings.trusted_proxies
        self._store = store

    async def authorize(self, request: Request) -> None:
        limit = self._limits.authorize_per_ip_per_minute
        await self._count(("authorize-ip", self._address(request), limit))

    def token(self, request: Request, client_id: str) -> Counting:
        """/token's limits, left to the caller to count: with the code's redemption, they share
        its round trip (`AuthorizationCodes.redeem`)."""
        return self._counting(
            ("token-ip", self._address(request), self._limits.token_per_ip_per_minute),
            ("token-client", client_id, self._limits.token_per_client_per_minute),
        )

    async def count(self, counting: Counting, writes: Sequence[StoreWrite] = ()) -> None:
        """Count, and check; `writes` go first in the same round trip, whatever the counts."""
        if writes:
            counts = await self._store.put_many_then_count(writes, counting.keys, counting.ttl)
            counting.check(counts)
        elif counting.keys:
            counting.check(await self._store.count(counting.keys, counting.ttl))

    async def pushed_request(self, request: Request, client_id: str) -> None:
        """/par (RFC 9126) is a back-channel call like /token: the token endpoint's limits,
        counted apart."""
        await self._count(
            ("par-ip", self._address(request), self._limits.token_per_ip_per_minute),
            ("par-client", client_id, self._limits.token_per_client_per_minute),
        )

    async def provider_start(
        self, request: Request, login_id: str, browser: str, writes: Sequence[StoreWrite] = ()
    ) -> None:
        """Each upstream start (a BankID order, a SAML request) costs: limited per address,
        per browser and per pending login. `writes` (the pending login, when the start follows
        its creation) share the round trip."""
        limits = self._limits
        counting = self._counting(
            ("start-ip", self._address(request), limits.provider_starts_per_ip_per_minute),
            ("start-browser", browser, limits.provider_starts_per_browser_per_minute),
            ("start-login", login_id, limits.provider_starts_per_login_per_minute),
        )
        await self.count(counting, writes)

    async def backchannel(self, client_id: str, person: str | None) -> None:
        """CIBA: each request makes a phone ring. Limited per client, and per hinted person
        when the hint is one (counted under a digest: no identity number in a store key)."""
        limits = [("ciba-client", client_id, self._limits.ciba_per_client_per_minute)]
        if person is not None:
            digest = hashlib.sha256(person.encode()).hexdigest()
            limits.append(("ciba-person", digest, self._limits.ciba_per_person_per_minute))
        await self._count(*limits)

    def _address(self, request: Request) -> str:
        return counted_address(client_ip(request, self._proxies))

    async def _count(self, *limits: tuple[str, str, int]) -> None:
        await self.count(self._counting(*limits))

    def _counting(self, *limits: tuple[str, str, int]) -> Counting:
        """(bucket, key, limit) each; a limit of 0 is off, and not counted."""
        active = [(bucket, key, limit) for bucket, key, limit in limits if limit > 0]
        now = int(self._clock())
        window = now // WINDOW_SECONDS
        return Counting(
            keys=tuple(f"rl:{bucket}:{key}:{window}" for bucket, key, _ in active),
            limits=tuple((bucket, limit) for bucket, _, limit in active),
            now=now,
        )


@functools.lru_cache(maxsize=4096)
def counted_address(address: str) -> str:
    """The key an address is counted under: an IPv6 address's /64, an IPv4 address (also one
    written IPv4-mapped) itself. Remembered for the last few thousand addresses: a login counts
    its address three or four times, and an IPv6 /64 costs 14 us to work out."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(IPv6Network((parsed, 64), strict=False))
    return str(parsed)
