"""The embedded store: one process, no Redis (the default when `store:` is not configured)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


class MemoryStore:
    """A dict with expiry. Atomic because the event loop runs one coroutine step at a time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: dict[str, tuple[float, bytes]] = {}
        self._clock = clock
        self._writes_since_sweep = 0

    def _live(self, key: str) -> bytes | None:
        record = self._records.get(key)
        if record is None:
            return None
        expires_at, value = record
        if expires_at <= self._clock():
            del self._records[key]
            return None
        return value

    def _write(self, key: str, value: bytes, ttl: int) -> None:
        if ttl <= 0:
            raise ValueError("every record needs a positive TTL")
        self._records[key] = (self._clock() + ttl, value)
        self._writes_since_sweep += 1
        if self._writes_since_sweep >= 10_000:
            self._sweep()

    def _sweep(self) -> None:
        now = self._clock()
        self._records = {k: r for k, r in self._records.items() if r[0] > now}
        self._writes_since_sweep = 0

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        self._write(key, value, ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        for key, value, ttl in records:
            self._write(key, value, ttl)

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        if self._live(key) is not None:
            return False
        self._write(key, value, ttl)
        return True

    async def take(self, key: str) -> bytes | None:
        value = self._live(key)
        if value is not None:
            del self._records[key]
        return value

    async def put_many_then_take(
        self,
        records: Sequence[tuple[str, bytes, int]],
        key: str,
        once_taken: Sequence[tuple[str, bytes, int]] = (),
    ) -> bytes | None:
        await self.put_many(records)
        taken = await self.take(key)
        if taken is not None:
            await self.put_many(once_taken)
        return taken

    async def delete(self, key: str) -> None:
        self._records.pop(key, None)

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        return [self._count_one(key, ttl) for key in keys]

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        return await self.count(keys, ttl), await self.take(key)

    async def put_many_then_count(
        self, records: Sequence[tuple[str, bytes, int]], keys: Sequence[str], ttl: int
    ) -> list[int]:
        await self.put_many(records)
        return await self.count(keys, ttl)

    def _count_one(self, key: str, ttl: int) -> int:
        value = self._live(key)
        if value is None:
            self._write(key, b"1", ttl)
            return 1
        count = int(value) + 1
        self._records[key] = (self._records[key][0], str(count).encode())
        return count

    async def ping(self) -> None:
        return None

    def __len__(self) -> int:
        self._sweep()
        return len(self._records)
