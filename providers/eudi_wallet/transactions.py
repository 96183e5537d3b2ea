"""A wallet login as the store keeps it, so that any instance can serve any step:

- `login:<login id>`: the citizen's side (`WalletLogin`): which browser, which two requests.
- `request:<request id>`: one request (`WalletRequest`): its nonce, state, ephemeral private
  key and claims. Taken (read and deleted in one step) when its answer arrives: a request is
  answered once, a response replayed finds nothing.
- `fetched:<login id>`: the wallet fetched a request object (the page says so).
- `answer:<login id>`: the outcome (`WalletAnswerRecord`): the identity or why not. Written only
  if absent: of the two requests of a login, the first answer wins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from providers.base import NamespacedStore
from providers.eudi_wallet.request_object import EphemeralKey, RequestParameters

Flow = Literal["same", "cross"]
GRACE_SECONDS = 600  # the login's record outlives its requests, to say they expired


@dataclass(frozen=True)
class WalletLogin:
    login_id: str
    client_id: str
    client_display: Mapping[str, str]
    locale: str
    loa: str
    browser_token: str
    requests: Mapping[str, str]  # flow -> request id
    expires_at: float
    claim_names: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WalletLogin:
        return cls(**{**data, "claim_names": tuple(data.get("claim_names", ()))})


@dataclass(frozen=True)
class WalletRequest:
    request_id: str
    login_id: str
    flow: Flow
    parameters: RequestParameters
    private_jwk: Mapping[str, Any]

    @property
    def key(self) -> EphemeralKey:
        return EphemeralKey(self.private_jwk)


@dataclass(frozen=True)
class WalletAnswerRecord:
    """`outcome` is "ok", "declined", "wallet_error" or a PresentationError's reason."""

    flow: Flow
    outcome: str
    identity: Mapping[str, Any] | None = None
    issuer: str | None = None
    response_code_hash: str | None = None  # same-device: SHA-256 of the response_code
    extra: Mapping[str, Any] = field(default_factory=dict)


def code_hash(response_code: str) -> str:
    return hashlib.sha256(response_code.encode()).hexdigest()


class Transactions:
    def __init__(self, store: NamespacedStore) -> None:
        self._store = store

    async def begin(self, login: WalletLogin, requests: list[WalletRequest], ttl: int) -> None:
        records = [(f"login:{login.login_id}", _dump(login), ttl + GRACE_SECONDS)]
        records += [(f"request:{r.request_id}", _dump(r), ttl) for r in requests]
        await self._store.put_many(records)
        await self._store.delete(f"answer:{login.login_id}")
        await self._store.delete(f"fetched:{login.login_id}")

    async def login(self, login_id: str) -> WalletLogin | None:
        raw = await self._store.get(f"login:{login_id}")
        return None if raw is None else WalletLogin.from_dict(json.loads(raw))

    async def request(self, request_id: str) -> WalletRequest | None:
        raw = await self._store.get(f"request:{request_id}")
        return None if raw is None else _request(json.loads(raw))

    async def take_request(self, request_id: str) -> WalletRequest | None:
        raw = await self._store.take(f"request:{request_id}")
        return None if raw is None else _request(json.loads(raw))

    async def forget_requests(self, login: WalletLogin) -> None:
        for request_id in login.requests.values():
            await self._store.delete(f"request:{request_id}")

    async def note_fetched(self, login_id: str, ttl: int) -> None:
        await self._store.put(f"fetched:{login_id}", b"1", ttl)

    async def was_fetched(self, login_id: str) -> bool:
        return await self._store.get(f"fetched:{login_id}") is not None

    async def answer(self, login_id: str, answer: WalletAnswerRecord, ttl: int) -> bool:
        """Keep the first answer to the login; False when one was kept already."""
        return await self._store.add(f"answer:{login_id}", _dump(answer), ttl)

    async def answer_of(self, login_id: str) -> WalletAnswerRecord | None:
        raw = await self._store.get(f"answer:{login_id}")
        return None if raw is None else WalletAnswerRecord(**json.loads(raw))

    async def take_answer(self, login_id: str) -> WalletAnswerRecord | None:
        raw = await self._store.take(f"answer:{login_id}")
        return None if raw is None else WalletAnswerRecord(**json.loads(raw))

    async def end(self, login: WalletLogin) -> None:
        await self.forget_requests(login)
        for key in ("login", "answer", "fetched"):
            await self._store.delete(f"{key}:{login.login_id}")


def _dump(record: Any) -> bytes:
    return json.dumps(asdict(record), separators=(",", ":")).encode()


def _request(data: dict[str, Any]) -> WalletRequest:
    parameters = RequestParameters(**data.pop("parameters"))
    return WalletRequest(parameters=parameters, **data)
