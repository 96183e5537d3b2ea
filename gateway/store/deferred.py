"""The store the app is wired with before `lifespan` opens the real one on the serving loop."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.store.errors import StoreUnavailable
from providers.base import Store


class DeferredStore:
    """Stands in for the store until `lifespan` opens it on the serving event loop."""

    def __init__(self) -> None:
        self._target: Store | None = None

    def attach(self, store: Store | None) -> None:
        self._target = store

    @property
    def target(self) -> Store:
        if self._target is None:
            raise StoreUnavailable("the store is not open")
        return self._target

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        await self.target.put(key, value, ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        await self.target.put_many(records)

    async def get(self, key: str) -> bytes | None:
        return await self.target.get(key)

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        return await self.target.add(key, value, ttl)

    async def take(self, key: str) -> bytes | None:
        return await self.target.take(key)

    async def put_many_then_take(
        self,
        records: Sequence[tuple[str, bytes, int]],
        key: str,
        once_taken: Sequence[tuple[str, bytes, int]] = (),
    ) -> bytes | None:
        return await self.target.put_many_then_take(records, key, once_taken)

    async def delete(self, key: str) -> None:
        await self.target.delete(key)

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        return await self.target.count(keys, ttl)

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        return await self.target.count_then_take(keys, ttl, key)

    async def put_many_then_count(
        self, records: Sequence[tuple[str, bytes, int]], keys: Sequence[str], ttl: int
    ) -> list[int]:
        return await self.target.put_many_then_count(records, keys, ttl)

    async def ping(self) -> None:
        await self.target.ping()
