"""The Store contract (providers/base.py) on MemoryStore and on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.settings import StoreSettings
from gateway.store import MemoryStore, StoreUnavailable, open_store
from tests.harness import RedisServer, free_port


@pytest.fixture
async def store(store_url: str | None) -> AsyncIterator:
    async with open_store(StoreSettings(url=store_url) if store_url else None) as opened:
        yield opened


async def test_put_then_get(store) -> None:
    await store.put("k:1", b"value", 60)
    assert await store.get("k:1") == b"value"


async def test_put_many_writes_every_record_with_its_ttl(store) -> None:
    await store.put_many([])
    await store.put_many([("many:1", b"one", 60), ("many:2", b"two", 60)])
    assert [await store.get("many:1"), await store.get("many:2")] == [b"one", b"two"]


async def test_take_returns_once(store) -> None:
    await store.put("k:2", b"code", 60)
    assert await store.take("k:2") == b"code"
    assert await store.take("k:2") is None
    assert await store.get("k:2") is None


async def test_put_many_then_take_writes_first_then_takes(store) -> None:
    await store.put("pending:1", b"login", 60)
    taken = await store.put_many_then_take([("code:1", b"code", 60)], "pending:1")
    assert taken == b"login"
    assert [await store.get("code:1"), await store.get("pending:1")] == [b"code", None]
    again = await store.put_many_then_take([("code:2", b"code", 60)], "pending:1")
    assert again is None and await store.get("code:2") == b"code"  # the caller withdraws it


async def test_concurrent_takes_have_exactly_one_winner(store) -> None:
    await store.put("k:3", b"code", 60)
    results = await asyncio.gather(*(store.take("k:3") for _ in range(20)))
    assert results.count(b"code") == 1
    assert results.count(None) == 19


async def test_add_writes_only_when_absent(store) -> None:
    assert await store.add("k:4", b"first", 60) is True
    assert await store.add("k:4", b"second", 60) is False
    assert await store.get("k:4") == b"first"


async def test_count_counts_up(store) -> None:
    assert [(await store.count(["k:5"], 60))[0] for _ in range(3)] == [1, 2, 3]


async def test_count_counts_several_keys_at_once(store) -> None:
    assert await store.count(["k:6", "k:7"], 60) == [1, 1]
    assert await store.count([], 60) == []
    assert await store.count(["k:7", "k:6", "k:8"], 60) == [2, 2, 1]


async def test_count_then_take_counts_and_takes_in_one_call(store) -> None:
    await store.put("k:9", b"code", 60)
    assert await store.count_then_take(["k:10", "k:11"], 60, "k:9") == ([1, 1], b"code")
    assert await store.count_then_take(["k:11"], 60, "k:9") == ([2], None)
    assert await store.count_then_take([], 60, "k:9") == ([], None)


async def test_put_many_then_count_writes_and_counts_in_one_call(store) -> None:
    writes = [("k:12", b"login", 60), ("k:13", b"other", 60)]
    assert await store.put_many_then_count(writes, ["k:14", "k:15"], 60) == [1, 1]
    assert await store.put_many_then_count([("k:12", b"again", 60)], ["k:14"], 60) == [2]
    assert [await store.get("k:12"), await store.get("k:13")] == [b"again", b"other"]
    assert await store.put_many_then_count([("k:16", b"x", 60)], [], 60) == []
    assert await store.get("k:16") == b"x"


async def test_batched_writes_keep_any_bytes(store) -> None:
    binary = bytes(range(256))
    await store.put("k:17", b"\x00taken\xff", 60)
    assert await store.put_many_then_take([("k:18", binary, 60)], "k:17") == b"\x00taken\xff"
    assert await store.put_many_then_count([("k:19", binary[::-1], 60)], ["k:20"], 60) == [1]
    assert [await store.get("k:18"), await store.get("k:19")] == [binary, binary[::-1]]


async def test_what_is_written_once_taken_is_written_by_the_taker_only(store) -> None:
    await store.put("pending:2", b"login", 60)
    won = await store.put_many_then_take(
        [("code:2", b"c2", 60)], "pending:2", [("session:2", b"s2", 60), ("index:2", b"i", 60)]
    )
    assert won == b"login"
    assert [await store.get(k) for k in ("code:2", "session:2", "index:2")] == [b"c2", b"s2", b"i"]
    lost = await store.put_many_then_take(
        [("code:3", b"c3", 60)], "pending:2", [("session:3", b"s3", 60)]
    )
    assert lost is None
    assert [await store.get("code:3"), await store.get("session:3")] == [b"c3", None]


async def test_delete_removes(store) -> None:
    await store.put("k:6", b"x", 60)
    await store.delete("k:6")
    assert await store.get("k:6") is None


async def test_ping_answers(store) -> None:
    await store.ping()


async def test_memory_records_expire_after_their_ttl() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.put("a", b"1", 60)
    await store.add("b", b"1", 60)
    now[0] += 59
    assert await store.get("a") == b"1"
    now[0] += 1
    assert await store.get("a") is None
    assert await store.take("a") is None
    assert await store.add("b", b"2", 60) is True


async def test_memory_store_refuses_a_record_without_ttl() -> None:
    with pytest.raises(ValueError, match="TTL"):
        await MemoryStore().put("a", b"1", 0)


async def test_redis_records_carry_their_ttl(redis_server: RedisServer) -> None:
    async with open_store(StoreSettings(url=redis_server.url)) as store:
        await store.put("ttl:1", b"x", 60)
        await store.count(["ttl:2"], 30)
        await store.count(["ttl:2"], 30)
    assert 55 <= int(redis_server.command("TTL", "ttl:1").lstrip(":")) <= 60
    assert 25 <= int(redis_server.command("TTL", "ttl:2").lstrip(":")) <= 30


async def test_a_count_gives_its_window_a_ttl_once(redis_server: RedisServer) -> None:
    """EXPIRE NX in the same script as the INCR: a window left without a TTL gets one, and a
    later count never pushes the window's end further."""
    redis_server.command("INCR", "ttl:3")
    async with open_store(StoreSettings(url=redis_server.url)) as store:
        assert await store.count(["ttl:3"], 30) == [2]
        redis_server.command("EXPIRE", "ttl:3", "5")
        assert await store.count(["ttl:3"], 30) == [3]
    assert 1 <= int(redis_server.command("TTL", "ttl:3").lstrip(":")) <= 5


async def test_unreachable_redis_raises_store_unavailable() -> None:
    unreachable = StoreSettings(url=f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.5)
    async with open_store(unreachable) as store:
        with pytest.raises(StoreUnavailable):
            await store.put("k", b"v", 10)
        with pytest.raises(StoreUnavailable):
            await store.take("k")
