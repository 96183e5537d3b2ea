"""Each e-service's public keys (RFC 7591 §2): `jwks` by value, parsed once, or `jwks_uri` by
reference, fetched with a bounded size and timeout, kept for CACHE_SECONDS and fetched again
when a token names a key id not seen yet (the client rotated its keys).

An attacker can send any `kid`, so a miss costs at most one fetch per client and
REFETCH_INTERVAL_SECONDS, and requests that miss at the same time share that one fetch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx2
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.clock import Clock
from gateway.settings import ClientSettings
from providers.parsing import MalformedInput, bounded_json

log = logging.getLogger("portvakt.client_keys")
MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
CACHE_SECONDS = 300
REFETCH_INTERVAL_SECONDS = 10


class ClientKeysUnavailable(Exception):
    """The client has no usable public keys now: none registered, or its jwks_uri failed."""


@dataclass(frozen=True)
class FetchedKeys:
    keys: KeySet
    fetched_at: float

    def knows(self, kid: str | None) -> bool:
        return kid is None or kid in {key.kid for key in self.keys.keys}


def public_key_set(data: Any) -> KeySet:
    """A JWK Set of public keys only, with at least one key joserfc can use."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ClientKeysUnavailable("not a JWK Set")
    if not data["keys"]:
        raise ClientKeysUnavailable("the JWK Set holds no keys")
    try:
        keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ClientKeysUnavailable(f"not a JWK Set with usable keys ({error})") from None
    if any(key.is_private for key in keys):
        raise ClientKeysUnavailable("the JWK Set holds a private key")
    return keys


async def fetch_key_set(http: httpx2.AsyncClient, uri: str) -> KeySet:
    """GET `uri`, reading at most MAX_JWKS_BYTES; any failure is ClientKeysUnavailable."""
    try:
        async with http.stream("GET", uri, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise ClientKeysUnavailable(f"{uri} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ClientKeysUnavailable(f"{uri} sent more than {MAX_JWKS_BYTES} bytes")
    except ClientKeysUnavailable:
        raise
    except Exception as error:  # httpx's, ssl's or the OS's: the key set is unavailable
        raise ClientKeysUnavailable(f"{uri}: {type(error).__name__}") from None
    try:
        return public_key_set(bounded_json(bytes(body)))
    except MalformedInput as problem:
        raise ClientKeysUnavailable(f"{uri}: {problem}") from None


class ClientKeys:
    """The keys to verify a client's signed JWT with (client assertions, request objects)."""

    def __init__(self, clients: Iterable[ClientSettings], clock: Clock = time.time) -> None:
        self._clock = clock
        self._static = {
            client.client_id: public_key_set(client.jwks)
            for client in clients
            if client.jwks is not None
        }
        self._fetched: dict[str, FetchedKeys] = {}
        self._attempted: dict[str, float] = {}
        self._fetching: dict[str, asyncio.Task[FetchedKeys]] = {}
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(FETCH_TIMEOUT_SECONDS), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def for_token(self, client: ClientSettings, kid: str | None) -> KeySet:
        """The client's keys, fetched again first when stale or when `kid` is unknown."""
        if client.client_id in self._static:
            return self._static[client.client_id]
        if client.jwks_uri is None:
            raise ClientKeysUnavailable("the client has registered no public keys")
        known = self._fetched.get(client.client_id)
        if known is None or not known.knows(kid) or self._stale(known):
            if self._may_fetch(client.client_id):
                known = await self._fetch_once(client.client_id, client.jwks_uri, known)
            elif known is None:
                raise ClientKeysUnavailable("the client's jwks_uri failed a moment ago")
        return known.keys

    def _stale(self, known: FetchedKeys) -> bool:
        return self._clock() - known.fetched_at > CACHE_SECONDS

    def _may_fetch(self, client_id: str) -> bool:
        last = self._attempted.get(client_id)
        return (
            client_id in self._fetching
            or last is None
            or (self._clock() - last >= REFETCH_INTERVAL_SECONDS)
        )

    async def _fetch_once(self, client_id: str, uri: str, known: FetchedKeys | None) -> FetchedKeys:
        task = self._fetching.get(client_id)
        if task is None:
            self._attempted[client_id] = self._clock()
            task = asyncio.ensure_future(self._fetch(client_id, uri))
            self._fetching[client_id] = task
            task.add_done_callback(lambda _done: self._fetching.pop(client_id, None))
        try:
            return await asyncio.shield(task)
        except ClientKeysUnavailable as error:
            if known is None:
                raise
            log.warning(
                "client %s: jwks_uri refetch failed, keeping its keys: %s", client_id, error
            )
            return known

    async def _fetch(self, client_id: str, uri: str) -> FetchedKeys:
        fetched = FetchedKeys(await fetch_key_set(self._http, uri), self._clock())
        self._fetched[client_id] = fetched
        return fetched
