"""Token Status List (draft-ietf-oauth-status-list-14): status list tokens made with PyJWT, zlib
and the test PID provider's certificates, served by uvicorn on loopback, checked by
`StatusLists`: the spec's vectors, every refusal, and the cache."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import RedirectResponse, Response, StreamingResponse

from providers.eudi_wallet import status_list
from providers.eudi_wallet.config import StatusListSettings
from providers.eudi_wallet.errors import (
    CredentialRevoked,
    PresentationError,
    StatusUnknown,
    UntrustedIssuer,
)
from providers.eudi_wallet.pid import StatusReference
from providers.eudi_wallet.status_list import (
    MAX_STATUS_BYTES,
    StatusList,
    StatusLists,
    verified_status_list,
)
from providers.eudi_wallet.trust import TrustList
from tests.doubles.status_lists import (
    MEDIA_TYPE,
    StatusServer,
    b64url,
    pack,
    serve_list,
    status_token,
)
from tests.doubles.wallet_pki import PidProvider, issue


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server() -> Iterator[StatusServer]:
    status_server = StatusServer()
    with status_server.served:
        yield status_server


@pytest.fixture(scope="module")
def provider() -> PidProvider:
    return PidProvider.make("SE")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def lists(provider: PidProvider, clock: Clock) -> AsyncIterator[StatusLists]:
    status_lists = StatusLists(
        TrustList([provider.ca.certificate]), StatusListSettings(), "test", clock
    )
    yield status_lists
    await status_lists.aclose()


# -- the spec's vectors and the status values (TSL §4.1, §7.1) ---------------------------------


@pytest.mark.parametrize(
    ("lst", "bits", "statuses"),
    [
        ("eNrbuRgAAhcBXQ", 1, [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]),
        ("eNo76fITAAPfAgc", 2, [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]),
    ],
)
async def test_the_specs_vectors_decode_to_their_statuses(
    server: StatusServer,
    provider: PidProvider,
    lists: StatusLists,
    lst: str,
    bits: int,
    statuses: list[int],
) -> None:
    """TSL §4.1's two examples: every index reads as the listed status, and one past is out."""
    url = serve_list(server, provider, lst=lst, bits=bits)
    outcomes = {0: None, 1: "revoked", 2: "suspended", 3: "unknown status"}
    for idx, status in enumerate(statuses):
        try:
            await lists.check(StatusReference(url, idx))
            seen = None
        except (CredentialRevoked, StatusUnknown) as refusal:
            seen = next(o for o in outcomes.values() if o and o in refusal.detail)
            assert isinstance(refusal, CredentialRevoked) == (status in (1, 2))
        assert seen == outcomes[status], idx
    with pytest.raises(StatusUnknown, match="outside"):
        await lists.check(StatusReference(url, len(statuses)))
    assert server.count(url) == 1


async def test_a_valid_pid_passes(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = serve_list(server, provider, statuses=[1] * 8 + [0] + [1] * 7)
    await lists.check(StatusReference(url, 8))
    assert server.accepts[-1] == MEDIA_TYPE


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
async def test_a_revoked_pid_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, bits: int
) -> None:
    url = serve_list(server, provider, statuses=[0] * 20 + [1] + [0] * 5, bits=bits)
    with pytest.raises(CredentialRevoked, match="revoked"):
        await lists.check(StatusReference(url, 20))
    await lists.check(StatusReference(url, 19))


async def test_a_suspended_pid_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = serve_list(server, provider, statuses=[0, 0, 0, 2], bits=2)
    with pytest.raises(CredentialRevoked, match="suspended"):
        await lists.check(StatusReference(url, 3))


@pytest.mark.parametrize("status", [3, 0x0C, 0x80])
async def test_an_application_specific_status_is_unknown(
    server: StatusServer, provider: PidProvider, lists: StatusLists, status: int
) -> None:
    url = serve_list(server, provider, statuses=[status], bits=8)
    with pytest.raises(StatusUnknown):
        await lists.check(StatusReference(url, 0))


@pytest.mark.parametrize("idx", [16, 10**9, -1])
async def test_an_index_outside_the_list_is_unknown(
    server: StatusServer, provider: PidProvider, lists: StatusLists, idx: int
) -> None:
    """TSL §8.3 step 6: out of bounds, no statement can be made."""
    url = serve_list(server, provider, statuses=[0] * 16)
    with pytest.raises(StatusUnknown):
        await lists.check(StatusReference(url, idx))


async def test_a_gzip_encoded_answer_is_read(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    """TSL §8.2: the answer SHOULD be gzip Content-Encoding."""
    url = server.new_url()
    token = gzip.compress(status_token(provider.signer, url, statuses=[0, 1]))
    server.serve_token(url, token, headers={"Content-Encoding": "gzip"})
    with pytest.raises(CredentialRevoked):
        await lists.check(StatusReference(url, 1))


# -- the token (TSL §5.1, §8.3; HAIP §6.1) ----------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "jwt", "statuslist+cwt", None])
async def test_a_token_of_another_type_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, typ: str | None
) -> None:
    url = serve_list(server, provider, header={"typ": typ})
    with pytest.raises(StatusUnknown, match="typ"):
        await lists.check(StatusReference(url, 0))


@pytest.mark.parametrize("typ", ["statuslist+jwt", "application/statuslist+jwt", "StatusList+JWT"])
async def test_the_tokens_typ_is_compared_as_a_media_type(
    server: StatusServer, provider: PidProvider, lists: StatusLists, typ: str
) -> None:
    """RFC 7515 §4.1.9: `application/` is implied, and media types have no case."""
    url = serve_list(server, provider, header={"typ": typ})

    await lists.check(StatusReference(url, 0))


async def test_a_token_with_critical_header_parameters_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = serve_list(server, provider, header={"crit": ["x"], "x": 1})
    with pytest.raises(StatusUnknown, match="critical"):
        await lists.check(StatusReference(url, 0))


def unsigned_token(provider: PidProvider, url: str, algorithm: str, key: Any) -> bytes:
    payload = {
        "sub": url,
        "iat": int(time.time()),
        "status_list": {"bits": 1, "lst": b64url(zlib.compress(b"\0"))},
    }
    headers = {"typ": "statuslist+jwt", "x5c": provider.x5c}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers).encode()


@pytest.mark.parametrize(("algorithm", "key"), [("none", None), ("HS256", b"k" * 32)])
async def test_an_unsigned_or_maced_token_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, algorithm: str, key: Any
) -> None:
    """`alg: none` and a MAC (whose key would be the signer's public certificate) never do."""
    url = server.new_url()
    server.serve_token(url, unsigned_token(provider, url, algorithm, key))
    with pytest.raises(StatusUnknown, match="alg"):
        await lists.check(StatusReference(url, 0))


async def test_a_token_whose_alg_does_not_fit_the_key_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    """An ES384 header on a P-256 signer: the curve must be the alg's (RFC 7518 §3.4)."""
    url = server.new_url()
    _header, payload, signature = status_token(provider.signer, url).split(b".")
    header = {"alg": "ES384", "typ": "statuslist+jwt", "x5c": provider.x5c}
    es384 = b64url(json.dumps(header).encode()).encode()
    server.serve_token(url, b".".join([es384, payload, signature]))
    with pytest.raises(StatusUnknown, match="does not fit"):
        await lists.check(StatusReference(url, 0))


async def test_a_tampered_token_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = server.new_url()
    header, _payload, signature = status_token(provider.signer, url, statuses=[1]).split(b".")
    revoked_to_valid = status_token(provider.signer, url, statuses=[0]).split(b".")[1]
    server.serve_token(url, b".".join([header, revoked_to_valid, signature]))
    with pytest.raises(StatusUnknown, match="signature"):
        await lists.check(StatusReference(url, 0))


async def test_a_signer_not_on_the_trust_list_is_untrusted(
    server: StatusServer, lists: StatusLists
) -> None:
    url = serve_list(server, PidProvider.make("SE"))
    with pytest.raises(UntrustedIssuer):
        await lists.check(StatusReference(url, 0))


async def test_a_self_signed_signer_is_untrusted(server: StatusServer, lists: StatusLists) -> None:
    self_signed = issue("Self-made status list signer")
    url = server.new_url()
    server.serve_token(url, status_token(self_signed, url))
    with pytest.raises(UntrustedIssuer):
        await lists.check(StatusReference(url, 0))


async def test_a_token_without_x5c_is_untrusted(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = serve_list(server, provider, header={"x5c": None, "kid": "12"})
    with pytest.raises(UntrustedIssuer):
        await lists.check(StatusReference(url, 0))


async def test_a_token_for_another_uri_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    """TSL §8.3 4.a: `sub` must be the URI the PID names (a list copied from elsewhere)."""
    url = serve_list(server, provider, sub=server.url("lists/another"))
    with pytest.raises(StatusUnknown, match="sub"):
        await lists.check(StatusReference(url, 0))


async def test_an_expired_token_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, clock: Clock
) -> None:
    url = serve_list(server, provider, exp=int(clock.now) - 1)
    with pytest.raises(StatusUnknown, match="expired"):
        await lists.check(StatusReference(url, 0))


async def test_a_token_without_iat_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = serve_list(server, provider, iat=None)
    with pytest.raises(StatusUnknown, match="iat"):
        await lists.check(StatusReference(url, 0))


async def test_a_token_issued_in_the_future_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, clock: Clock
) -> None:
    url = serve_list(server, provider, iat=int(clock.now) + 3600)
    with pytest.raises(StatusUnknown, match="not valid yet"):
        await lists.check(StatusReference(url, 0))


@pytest.mark.parametrize(
    ("claim", "value"), [("ttl", 0), ("ttl", -5), ("ttl", "300"), ("exp", True)]
)
async def test_a_token_with_a_bad_time_claim_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, claim: str, value: Any
) -> None:
    url = serve_list(server, provider, **{claim: value})
    with pytest.raises(StatusUnknown, match=claim):
        await lists.check(StatusReference(url, 0))


async def test_a_token_with_nan_for_exp_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    """Python's json reads `NaN`, which compares false with every time: never a valid exp."""
    url = serve_list(server, provider, exp=float("nan"))  # PyJWT writes it as NaN
    with pytest.raises(StatusUnknown, match="JSON"):
        await lists.check(StatusReference(url, 0))


@pytest.mark.parametrize("bits", [0, 3, 16, True, "1", None])
async def test_a_list_with_bad_bits_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, bits: Any
) -> None:
    url = serve_list(server, provider, lst=b64url(zlib.compress(b"\0")), bits=bits)
    with pytest.raises(StatusUnknown, match="bits"):
        await lists.check(StatusReference(url, 0))


@pytest.mark.parametrize(
    "lst",
    [
        b64url(b"\0\0\0\0"),  # not compressed
        b64url(zlib.compress(b"\0\0")[2:-4]),  # raw DEFLATE, no ZLIB wrapper
        b64url(zlib.compress(b"\0" * 64)[:-3]),  # truncated
        b64url(zlib.compress(b"\0") + b"more"),  # something after the stream
        "eNrbuRgAAhcBXQ==!",  # not base64url
    ],
)
async def test_a_list_that_is_not_zlib_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, lst: str
) -> None:
    url = serve_list(server, provider, lst=lst)
    with pytest.raises(StatusUnknown):
        await lists.check(StatusReference(url, 0))


def bomb(inflated_size: int) -> str:
    """ZLIB data of `inflated_size` zero bytes, compressed about a thousand to one."""
    compressor = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(inflated_size // len(chunk))]
    return b64url(b"".join([*parts, compressor.flush()]))


async def test_a_decompression_bomb_is_refused_without_eating_memory(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    """256 MiB of statuses in a quarter-megabyte token: refused once 16 MiB are inflated."""
    url = serve_list(server, provider, lst=bomb(256 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(StatusUnknown, match="inflates"):
            await lists.check(StatusReference(url, 0))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_STATUS_BYTES


# -- the fetch (TSL §8.1, §8.2) ----------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_oversized_body_is_refused(
    server: StatusServer, provider: PidProvider, clock: Clock, streamed: bool
) -> None:
    """Past `max_bytes` the answer is not read further, with or without a Content-Length."""
    url = server.new_url()
    token = status_token(provider.signer, url, padding="x" * 4000)
    if streamed:
        server.serve(url, lambda: StreamingResponse(iter([token]), media_type=MEDIA_TYPE))
    else:
        server.serve_token(url, token)
    settings = StatusListSettings(max_bytes=1024)
    status_lists = StatusLists(TrustList([provider.ca.certificate]), settings, "test", clock)
    try:
        with pytest.raises(StatusUnknown, match="larger"):
            await status_lists.check(StatusReference(url, 0))
    finally:
        await status_lists.aclose()


async def test_an_oversized_gzip_body_is_refused(
    server: StatusServer, provider: PidProvider, clock: Clock
) -> None:
    url = server.new_url()
    token = gzip.compress(status_token(provider.signer, url, padding="x" * 100_000))
    server.serve_token(url, token, headers={"Content-Encoding": "gzip"})
    settings = StatusListSettings(max_bytes=10_000)
    status_lists = StatusLists(TrustList([provider.ca.certificate]), settings, "test", clock)
    try:
        with pytest.raises(StatusUnknown, match="inflates"):
            await status_lists.check(StatusReference(url, 0))
    finally:
        await status_lists.aclose()


@pytest.mark.parametrize(
    "media_type", ["application/jwt", "application/statuslist+cwt", "text/plain"]
)
async def test_an_answer_of_another_content_type_is_refused(
    server: StatusServer, provider: PidProvider, lists: StatusLists, media_type: str
) -> None:
    url = server.new_url()
    token = status_token(provider.signer, url)
    server.serve(url, lambda: Response(token, media_type=media_type))
    with pytest.raises(StatusUnknown, match="content type"):
        await lists.check(StatusReference(url, 0))


@pytest.mark.parametrize("status_code", [404, 500, 503])
async def test_an_error_answer_is_unknown(
    server: StatusServer, provider: PidProvider, lists: StatusLists, status_code: int
) -> None:
    url = server.new_url()
    token = status_token(provider.signer, url)
    server.serve_token(url, token, status_code=status_code)
    with pytest.raises(StatusUnknown, match=str(status_code)):
        await lists.check(StatusReference(url, 0))


async def test_a_redirect_is_not_followed(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = server.new_url()
    elsewhere = serve_list(server, provider)
    server.serve(url, lambda: RedirectResponse(elsewhere, status_code=302))
    with pytest.raises(StatusUnknown, match="302"):
        await lists.check(StatusReference(url, 0))
    assert server.count(elsewhere) == 0


async def test_http_is_refused_in_production(
    server: StatusServer, provider: PidProvider, clock: Clock
) -> None:
    url = serve_list(server, provider)
    trust = TrustList([provider.ca.certificate])
    status_lists = StatusLists(trust, StatusListSettings(), "production", clock)
    try:
        with pytest.raises(StatusUnknown, match="https"):
            await status_lists.check(StatusReference(url, 0))
    finally:
        await status_lists.aclose()
    assert server.count(url) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.1/lists/1",
        "http://status.example/lists/1",
        "http://127.0.0.1.example/lists/1",
        "ftp://127.0.0.1/lists/1",
        "https://user:secret@status.example/lists/1",
        "file:///etc/passwd",
        "not a url",
    ],
)
async def test_only_loopback_http_is_allowed_in_test(lists: StatusLists, url: str) -> None:
    with pytest.raises(StatusUnknown):
        await lists.check(StatusReference(url, 0))


async def test_a_server_that_never_answers_times_out(provider: PidProvider, clock: Clock) -> None:
    """A listening socket that never accepts: the whole fetch is bounded by timeout_seconds."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/lists/1"
        settings = StatusListSettings(timeout_seconds=0.3)
        status_lists = StatusLists(TrustList([provider.ca.certificate]), settings, "test", clock)
        started = time.monotonic()
        try:
            with pytest.raises(StatusUnknown, match="fetched"):
                await status_lists.check(StatusReference(url, 0))
        finally:
            await status_lists.aclose()
    assert time.monotonic() - started < 5


# -- each fetch timed for the metrics and traces, outside the provider's breaker ------------


class Observed:
    """A provider's UpstreamObserver, as the gateway hands it over (ProviderServices.upstream)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, str]] = []

    def observe(self, operation: str, seconds: float, outcome: str) -> None:
        self.calls.append((operation, seconds, outcome))


def observed_lists(
    provider: PidProvider, clock: Clock, **settings: Any
) -> tuple[StatusLists, Observed]:
    observed = Observed()
    status_lists = StatusLists(
        TrustList([provider.ca.certificate]), StatusListSettings(**settings), "test", clock,
        observed,
    )  # fmt: skip
    return status_lists, observed


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ("list", "ok"),
        ("wrong content type", "ok"),  # the host answered: what it sent is another matter
        (302, "ok"),
        (404, "rejected"),
        (503, "error"),
    ],
)
async def test_each_fetch_is_timed_with_how_it_ended(
    server: StatusServer, provider: PidProvider, clock: Clock, answer: str | int, outcome: str
) -> None:
    url = server.new_url()
    token = status_token(provider.signer, url)
    if answer == "list":
        server.serve_token(url, token)
    elif answer == "wrong content type":
        server.serve(url, lambda: Response(token, media_type="text/plain"))
    else:
        server.serve_token(url, token, status_code=answer)
    status_lists, observed = observed_lists(provider, clock)
    try:
        with contextlib.suppress(StatusUnknown):
            await status_lists.check(StatusReference(url, 0))
        if answer == "list":  # a second check is served from the cache: no fetch, no timing
            await status_lists.check(StatusReference(url, 0))
    finally:
        await status_lists.aclose()
    assert [(operation, seen) for operation, _, seen in observed.calls] == [
        ("status_list", outcome)
    ]
    assert observed.calls[0][1] > 0


async def test_a_host_that_does_not_answer_is_timed_as_an_error(
    provider: PidProvider, clock: Clock
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/lists/1"
        status_lists, observed = observed_lists(provider, clock, timeout_seconds=0.3)
        try:
            with pytest.raises(StatusUnknown):
                await status_lists.check(StatusReference(url, 0))
        finally:
            await status_lists.aclose()
    assert [(operation, seen) for operation, _, seen in observed.calls] == [
        ("status_list", "error")
    ]
    assert observed.calls[0][1] >= 0.3


async def test_a_uri_refused_before_any_fetch_is_not_timed(
    provider: PidProvider, clock: Clock
) -> None:
    status_lists, observed = observed_lists(provider, clock)
    try:
        with pytest.raises(StatusUnknown):
            await status_lists.check(StatusReference("http://status.example/lists/1", 0))
    finally:
        await status_lists.aclose()
    assert observed.calls == []


# -- the cache (TSL §8.3 4.d, §13.7; ARF VCR_15) ----------------------------------------------


async def test_a_list_is_fetched_once_within_its_ttl_and_again_after(
    server: StatusServer, provider: PidProvider, lists: StatusLists, clock: Clock
) -> None:
    url = serve_list(server, provider, ttl=300)
    await lists.check(StatusReference(url, 0))
    clock.now += 299
    await lists.check(StatusReference(url, 1))
    assert server.count(url) == 1
    clock.now += 2
    await lists.check(StatusReference(url, 0))
    assert server.count(url) == 2


async def test_a_revocation_is_seen_once_the_cached_list_is_stale(
    server: StatusServer, provider: PidProvider, lists: StatusLists, clock: Clock
) -> None:
    url = server.new_url()
    server.serve_token(url, status_token(provider.signer, url, statuses=[0], ttl=60))
    await lists.check(StatusReference(url, 0))
    server.serve_token(url, status_token(provider.signer, url, statuses=[1], ttl=60))
    await lists.check(StatusReference(url, 0))  # still the cached list
    clock.now += 61
    with pytest.raises(CredentialRevoked):
        await lists.check(StatusReference(url, 0))


async def test_a_cached_list_is_not_used_past_its_exp(
    server: StatusServer, provider: PidProvider, lists: StatusLists, clock: Clock
) -> None:
    url = serve_list(server, provider, exp=int(clock.now) + 30, ttl=3600)
    await lists.check(StatusReference(url, 0))
    clock.now += 31
    with pytest.raises(StatusUnknown, match="expired"):  # fetched again: the same, now expired
        await lists.check(StatusReference(url, 0))
    assert server.count(url) == 2


async def test_max_cache_seconds_bounds_a_long_ttl(
    server: StatusServer, provider: PidProvider, clock: Clock
) -> None:
    url = serve_list(server, provider, ttl=86400, exp=None)
    settings = StatusListSettings(max_cache_seconds=120)
    status_lists = StatusLists(TrustList([provider.ca.certificate]), settings, "test", clock)
    try:
        await status_lists.check(StatusReference(url, 0))
        clock.now += 119
        await status_lists.check(StatusReference(url, 0))
        assert server.count(url) == 1
        clock.now += 2
        await status_lists.check(StatusReference(url, 0))
    finally:
        await status_lists.aclose()
    assert server.count(url) == 2


async def test_concurrent_checks_of_one_list_fetch_it_once(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = serve_list(server, provider)
    await asyncio.gather(*(lists.check(StatusReference(url, idx)) for idx in range(10)))
    assert server.count(url) == 1


async def test_a_failed_fetch_is_not_cached(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    url = server.new_url()
    with pytest.raises(StatusUnknown):
        await lists.check(StatusReference(url, 0))
    server.serve_token(url, status_token(provider.signer, url))
    await lists.check(StatusReference(url, 0))
    assert server.count(url) == 2


async def test_the_oldest_list_makes_room_when_the_cache_is_full(
    server: StatusServer,
    provider: PidProvider,
    lists: StatusLists,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status_list, "MAX_CACHED_LISTS", 2)
    first, second, third = (serve_list(server, provider) for _ in range(3))
    for url in (first, second, third):
        await lists.check(StatusReference(url, 0))
    await lists.check(StatusReference(third, 0))
    await lists.check(StatusReference(first, 0))
    assert [server.count(url) for url in (first, second, third)] == [2, 1, 1]


async def test_cached_statuses_are_bounded_in_bytes(
    server: StatusServer,
    provider: PidProvider,
    lists: StatusLists,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status_list, "MAX_CACHED_BYTES", 1500)
    big, small = serve_list(server, provider, statuses=[0] * 8000), serve_list(server, provider)
    await lists.check(StatusReference(big, 0))  # 1000 bytes
    await lists.check(StatusReference(small, 0))  # 2 bytes: both fit
    other_big = serve_list(server, provider, statuses=[0] * 8000)
    await lists.check(StatusReference(other_big, 0))  # the first big list makes room
    for url in (small, other_big, big):
        await lists.check(StatusReference(url, 0))
    assert [server.count(url) for url in (small, other_big, big)] == [1, 1, 2]


async def test_no_fetch_lock_outlives_its_checks(
    server: StatusServer, provider: PidProvider, lists: StatusLists
) -> None:
    """A lock per URI ever seen would grow without end: it goes when no check needs it."""
    good, missing = serve_list(server, provider), server.new_url()
    checks = [lists.check(StatusReference(url, 0)) for url in [good, missing] * 5]
    await asyncio.gather(*checks, return_exceptions=True)
    assert lists._locks == {}


# -- properties ---------------------------------------------------------------------------------


@given(
    data=st.data(),
    bits=st.sampled_from([1, 2, 4, 8]),
)
def test_every_index_reads_the_status_packed_there(data: st.DataObject, bits: int) -> None:
    statuses = data.draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=200))
    status_list = StatusList(pack(statuses, bits), bits, fresh_until=0)
    assert [status_list.status_at(idx) for idx in range(len(statuses))] == statuses


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def segment(value: Any) -> bytes:
    return b64url(json.dumps(value).encode()).encode()


@given(
    header=st.fixed_dictionaries(
        {},
        optional={
            "typ": st.sampled_from(["statuslist+jwt", "JWT"]) | json_values,
            "alg": st.sampled_from(["ES256", "ES512", "none", "HS256"]) | json_values,
            "x5c": st.just(PidProvider.make().x5c) | json_values,
            "crit": json_values,
        },
    ),
    payload=st.dictionaries(
        st.sampled_from(["sub", "iat", "exp", "ttl", "status_list"]), json_values
    ),
    signature=st.binary(max_size=140),
    garbage=st.binary(max_size=64),
)
def test_any_token_is_refused_with_a_presentation_error(
    provider: PidProvider, header: Any, payload: Any, signature: bytes, garbage: bytes
) -> None:
    """Whatever a status server answers, the check refuses with a PresentationError (never
    another exception, which would be a 500)."""
    trust = TrustList([provider.ca.certificate])
    for token in (
        b".".join([segment(header), segment(payload), b64url(signature).encode()]),
        garbage,
    ):
        with pytest.raises(PresentationError):
            verified_status_list(token, "https://status.example/1", trust, time.time())


uris = st.sampled_from(["https://status.example/1"] * 3 + ["https://status.example/2"])
status_lists = st.fixed_dictionaries(
    {
        "bits": st.sampled_from([1, 2, 4, 8]),
        "lst": st.binary(min_size=1, max_size=64).map(lambda raw: b64url(zlib.compress(raw))),
    }
) | st.dictionaries(st.sampled_from(["bits", "lst"]), json_values)


@given(
    payload=st.fixed_dictionaries(
        {"sub": uris, "iat": st.integers(0, 2 * 10**9), "status_list": status_lists},
        optional={
            "exp": st.integers(0, 4 * 10**9) | json_values,
            "ttl": st.integers(-10, 10**6) | json_values,
            "nbf": st.integers(0, 4 * 10**9) | json_values,
        },
    )
    | st.dictionaries(st.sampled_from(["sub", "iat", "exp", "ttl", "status_list"]), json_values),
    idx=st.integers(0, 150),
)
def test_any_signed_token_gives_a_status_list_or_a_presentation_error(
    provider: PidProvider, payload: dict[str, Any], idx: int
) -> None:
    """A token the trusted signer made, with any claims: a list whose statuses can be read,
    or a PresentationError."""
    trust = TrustList([provider.ca.certificate])
    headers = {"typ": "statuslist+jwt", "x5c": provider.x5c}
    token = jwt.encode(payload, provider.signer.key, algorithm="ES256", headers=headers).encode()
    try:
        status_list = verified_status_list(token, "https://status.example/1", trust, time.time())
        status = status_list.status_at(idx)
    except PresentationError:
        return
    assert payload["sub"] == "https://status.example/1"
    assert 0 <= status < (1 << status_list.bits)


def test_a_token_nested_past_the_parsers_depth_is_unknown_not_a_crash(
    provider: PidProvider,
) -> None:
    """Python's json recurses: a header of 100 000 nested arrays raised RecursionError, which
    no caller catches (a 500 at the wallet's response URI)."""
    deep = b64url(b"[" * 100_000 + b"]" * 100_000).encode()
    trust = TrustList([provider.ca.certificate])

    with pytest.raises(StatusUnknown, match="JSON"):
        verified_status_list(deep + b".e30.AA", "https://x/1", trust, time.time())
