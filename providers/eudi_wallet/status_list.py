"""Token Status List (draft-ietf-oauth-status-list-14, the version HAIP 1.0 pins): is a PID
revoked or suspended? The PID names a Status List Token (`status.status_list.uri`) and its index
in it; the token is fetched, verified and cached here, then the index read.

- Fetch (§8.1, §8.2): `GET uri` with `Accept: application/statuslist+jwt`; a 2xx answer of that
  content type. https only, or http to a loopback host with `environment: test`. 3xx is not
  followed: a list is at the URI it names (`sub` == `uri`), and a redirect would let whoever
  answers send us to any host. The body is bounded while it streams; a gzip body (§8.2 SHOULD)
  is inflated with the same bound; the whole fetch has one deadline.
- Verify (§5.1, §8.3), the JWS read and checked as the PID's (`jose.py`): `typ`
  `statuslist+jwt`; ES256/384/512 only (never `none` or a MAC: the key must be the signer's
  certificate); `x5c` validated to the same trust list as the PIDs (HAIP §6.1); `sub` == `uri`;
  `iat` required; `exp` not passed; `ttl` positive; `status_list` with `bits` 1, 2, 4 or 8 and
  `lst` base64url(ZLIB(DEFLATE)), inflated with a bound.
- Cache (§13.7, ARF VCR_15): a verified list serves until the earliest of its `exp`, the time
  it was fetched + `ttl` (§8.3 4.d), and our `max_cache_seconds`; one fetch per URI at a time.
- Read (§4.1, §7.1): bits packed from the least significant bit; an index out of bounds, a
  status that is neither VALID, INVALID nor SUSPENDED, or any failure above: the status cannot
  be known and the PID is refused (§8.3 "SHOULD be rejected").
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from providers.base import NoUpstreamMetrics, UpstreamObserver
from providers.eudi_wallet import jose
from providers.eudi_wallet.config import MAX_STATUS_LIST_BYTES, StatusListSettings
from providers.eudi_wallet.errors import CredentialRevoked, StatusUnknown
from providers.eudi_wallet.pid import StatusReference
from providers.eudi_wallet.trust import TrustList

log = logging.getLogger("portvakt.eudi_wallet.status_list")

MEDIA_TYPE = "application/statuslist+jwt"
STATUS_LIST_TYP = "statuslist+jwt"
STATUS_LIST_OPERATION = "status_list"  # as the UpstreamObserver names the fetch
HTTP_CLIENT_ERROR, HTTP_SERVER_ERROR = 400, 500
REGISTRY = jose.registry(max_payload_bytes=MAX_STATUS_LIST_BYTES)  # the body's own bound first
BITS = frozenset({1, 2, 4, 8})
VALID, INVALID, SUSPENDED = 0, 1, 2
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# An inflated list larger than this is refused: 16 MiB holds 134 million one-bit statuses, more
# than any member state's PIDs, and keeps a decompression bomb from eating memory.
MAX_STATUS_BYTES = 16 * 1024 * 1024
MAX_CACHED_LISTS = 1000
MAX_CACHED_BYTES = 256 * 1024 * 1024  # inflated statuses kept in memory, all lists together
CLOCK_SKEW = 60  # seconds an `iat` or `nbf` may lie ahead of our clock
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class StatusList:
    """A verified Status List: the inflated statuses, `bits` each, and until when it serves."""

    statuses: bytes
    bits: int
    fresh_until: float

    def status_at(self, idx: int) -> int:
        """§4.1: `idx` counts `bits`-wide blocks, packed from each byte's least significant bit;
        StatusUnknown when it is out of bounds (§8.3 step 6)."""
        per_byte = 8 // self.bits
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise StatusUnknown("the status index is not a non-negative integer")
        if idx >= len(self.statuses) * per_byte:
            raise StatusUnknown("the status index is outside the status list")
        shift = (idx % per_byte) * self.bits
        return (self.statuses[idx // per_byte] >> shift) & ((1 << self.bits) - 1)


class StatusLists:
    """The PIDs' status lists: fetched over HTTP, verified against `trust`, cached in memory."""

    def __init__(
        self,
        trust: TrustList,
        settings: StatusListSettings,
        environment: str,
        clock: Callable[[], float] = time.time,
        upstream: UpstreamObserver | None = None,
    ) -> None:
        self._trust = trust
        self._settings = settings
        self._environment = environment
        self._clock = clock
        self._upstream = upstream or NoUpstreamMetrics()
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(settings.timeout_seconds), follow_redirects=False
        )
        self._cache: dict[str, StatusList] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # the lock, its users

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check(self, reference: StatusReference) -> None:
        """Nothing when the referenced PID is VALID; CredentialRevoked when INVALID or
        SUSPENDED; UntrustedIssuer when the list's signer does not chain to the trust list;
        StatusUnknown for everything else."""
        if not isinstance(reference.uri, str):
            raise StatusUnknown("the status list URI is not a string")
        status_list = await self._status_list(reference.uri)
        status = status_list.status_at(reference.idx)
        if status == INVALID:
            raise CredentialRevoked("the status list says revoked")
        if status == SUSPENDED:
            raise CredentialRevoked("the status list says suspended")
        if status != VALID:
            raise StatusUnknown(f"the status list gives the unknown status {status}")

    async def _status_list(self, uri: str) -> StatusList:
        cached = self._fresh(uri)
        if cached is not None:
            return cached
        async with self._fetching(uri):
            cached = self._fresh(uri)  # another check fetched it while this one waited
            if cached is not None:
                return cached
            body = await self._fetch(uri)
            now = self._clock()
            status_list = verified_status_list(body, uri, self._trust, now)
            self._remember(uri, status_list, now)
            return status_list

    @asynccontextmanager
    async def _fetching(self, uri: str) -> AsyncIterator[None]:
        """One fetch of `uri` at a time; the lock lives only while someone holds or awaits it."""
        lock, users = self._locks.get(uri, (asyncio.Lock(), 0))
        self._locks[uri] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[uri]
            if users == 1:
                del self._locks[uri]
            else:
                self._locks[uri] = (lock, users - 1)

    def _fresh(self, uri: str) -> StatusList | None:
        cached = self._cache.get(uri)
        if cached is not None and self._clock() < cached.fresh_until:
            return cached
        return None

    def _remember(self, uri: str, status_list: StatusList, now: float) -> None:
        until = min(status_list.fresh_until, now + self._settings.max_cache_seconds)
        if until <= now:
            return
        self._cache.pop(uri, None)
        self._make_room(len(status_list.statuses), now)
        self._cache[uri] = StatusList(status_list.statuses, status_list.bits, until)

    def _make_room(self, size: int, now: float) -> None:
        """Stale lists go first, then the oldest, until one more list of `size` bytes fits."""
        for uri in [u for u, cached in self._cache.items() if cached.fresh_until <= now]:
            del self._cache[uri]
        cached_bytes = sum(len(cached.statuses) for cached in self._cache.values())
        while self._cache and (
            len(self._cache) >= MAX_CACHED_LISTS or cached_bytes + size > MAX_CACHED_BYTES
        ):
            oldest = next(iter(self._cache))
            cached_bytes -= len(self._cache.pop(oldest).statuses)

    async def _fetch(self, uri: str) -> bytes:
        """The list's body; each fetch timed for the metrics and traces as `status_list`, which
        the provider's breaker does not count (`gateway.login.upstream_health`)."""
        self._require_allowed(uri)
        started, answer = time.perf_counter(), _Answer()
        try:
            async with asyncio.timeout(self._settings.timeout_seconds):
                return await self._get(uri, answer)
        except (TimeoutError, httpx2.HTTPError, httpx2.InvalidURL, ValueError) as error:
            answer.status = None  # not answered in full, whatever its status line said
            log.warning("status list %s could not be fetched: %s", uri, type(error).__name__)
            raise StatusUnknown(f"the status list could not be fetched: {error!r}") from None
        finally:
            elapsed = time.perf_counter() - started
            self._upstream.observe(STATUS_LIST_OPERATION, elapsed, answer.outcome)

    def _require_allowed(self, uri: str) -> None:
        """https; http only to a loopback host with `environment: test` (a local simulator)."""
        try:
            parts = urlsplit(uri)
            host = parts.hostname
        except ValueError:
            raise StatusUnknown("the status list URI is not a URL") from None
        if not host or parts.username is not None or parts.password is not None:
            raise StatusUnknown("the status list URI has no host, or carries credentials")
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and self._environment == "test" and host in LOOPBACK_HOSTS:
            return
        raise StatusUnknown("the status list URI is not https")

    async def _get(self, uri: str, answer: _Answer) -> bytes:
        headers = {"Accept": MEDIA_TYPE, "Accept-Encoding": "gzip"}
        async with self._http.stream("GET", uri, headers=headers) as response:
            answer.status = response.status_code
            if not 200 <= response.status_code < 300:  # §8.2: a 2xx; 3xx is not followed
                raise StatusUnknown(f"the status list answered {response.status_code}")
            content_type = response.headers.get("content-type", "").split(";")[0]
            if content_type.strip().lower() != MEDIA_TYPE:
                raise StatusUnknown("the status list's content type is not statuslist+jwt")
            raw = await self._bounded_body(response)
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            return _inflate(raw, self._settings.max_bytes, wbits=31)
        if encoding != "identity":
            raise StatusUnknown("the status list's content encoding is not gzip")
        return raw

    async def _bounded_body(self, response: httpx2.Response) -> bytes:
        limit = self._settings.max_bytes
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > limit:
                raise StatusUnknown(f"the status list is larger than {limit} bytes")
        return bytes(body)


@dataclass
class _Answer:
    """How a fetch ended, as the provider's UpstreamObserver counts outcomes: `ok` when the
    host answered (a list it sent that we refuse is still an answer), `rejected` for a 4xx,
    `error` for a 5xx or no complete answer."""

    status: int | None = None

    @property
    def outcome(self) -> str:
        if self.status is None or self.status >= HTTP_SERVER_ERROR:
            return "error"
        return "rejected" if self.status >= HTTP_CLIENT_ERROR else "ok"


def verified_status_list(token: bytes, uri: str, trust: TrustList, now: float) -> StatusList:
    """The Status List of a compact JWS Status List Token for `uri`, verified (§5.1, §8.3 3-5);
    StatusUnknown, or UntrustedIssuer for a signer that does not chain to `trust`."""
    try:
        text = token.strip().decode("ascii")
    except UnicodeDecodeError:
        raise StatusUnknown("the status list is not a compact JWS") from None
    unverified = jose.read(text, STATUS_LIST_TYP, StatusUnknown)
    signer = trust.signer(unverified.header.get("x5c"), now)  # UntrustedIssuer propagates
    jose.verify(unverified, signer.public_key, StatusUnknown, REGISTRY)
    payload = unverified.payload
    fresh_until = _claims_valid_until(payload, uri, now)
    status_list = payload.get("status_list")
    if not isinstance(status_list, dict):
        raise StatusUnknown("the status list token has no status_list object")
    bits, statuses = _statuses(status_list)
    return StatusList(statuses, bits, fresh_until)


def _b64url(text: str) -> bytes:
    if not _BASE64URL.match(text):
        raise StatusUnknown("the status list's lst is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise StatusUnknown("the status list's lst is not base64url") from None


def _number(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StatusUnknown(f"the status list token's {name} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise StatusUnknown(f"the status list token's {name} is out of range") from None
    if not math.isfinite(number):  # 1e999 reads as inf
        raise StatusUnknown(f"the status list token's {name} is out of range")
    return number


def _claims_valid_until(payload: Mapping[str, Any], uri: str, now: float) -> float:
    """§5.1 and §8.3 step 4: `sub`, `iat`, `exp`, `nbf` and `ttl`; until when the list may
    serve from the cache (exp, and now + ttl)."""
    if payload.get("sub") != uri:
        raise StatusUnknown("the status list token's sub is not the URI it was fetched from")
    issued_at = _number(payload, "iat")
    if issued_at is None:
        raise StatusUnknown("the status list token has no iat")
    not_before = _number(payload, "nbf")
    if max(issued_at, not_before or 0.0) > now + CLOCK_SKEW:
        raise StatusUnknown("the status list token is not valid yet")
    expires_at = _number(payload, "exp")
    if expires_at is not None and now >= expires_at:
        raise StatusUnknown("the status list token has expired")
    ttl = _number(payload, "ttl")
    if ttl is not None and ttl <= 0:
        raise StatusUnknown("the status list token's ttl is not positive")
    candidates = [c for c in (expires_at, None if ttl is None else now + ttl) if c is not None]
    return min(candidates, default=float("inf"))


def _statuses(status_list: Mapping[str, Any]) -> tuple[int, bytes]:
    """§4.2: `bits` and `lst`, base64url of the ZLIB-wrapped DEFLATE of the status bytes."""
    bits = status_list.get("bits")
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in BITS:
        raise StatusUnknown("the status list's bits is not 1, 2, 4 or 8")
    lst = status_list.get("lst")
    if not isinstance(lst, str):
        raise StatusUnknown("the status list's lst is not a string")
    return int(bits), _inflate(_b64url(lst), MAX_STATUS_BYTES, wbits=15)


def _inflate(data: bytes, limit: int, *, wbits: int) -> bytes:
    """ZLIB (wbits 15) or gzip (31) data inflated to at most `limit` bytes; one complete
    stream, nothing after it."""
    inflater = zlib.decompressobj(wbits=wbits)
    try:
        inflated = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise StatusUnknown("the status list is not valid compressed data") from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise StatusUnknown(f"the status list inflates to more than {limit} bytes")
    if not inflater.eof or inflater.unused_data:
        raise StatusUnknown("the status list's compressed data is truncated or followed by more")
    return inflated
