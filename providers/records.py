"""Store records as compact JSON: frozen dataclasses that serialise themselves. Here, beside
the provider contract, so that the gateway and the providers share one."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Self


def login_key(kind: str, login_id: str) -> str:
    """The store key of one login's record of `kind`. The login id is a Redis Cluster hash tag,
    so every record of one login lives in one slot (one node, and multi-key operations work)."""
    return f"{kind}:{{{login_id}}}"


class StoreRecord:
    """Mixin for frozen dataclasses whose fields are JSON values; tuples round-trip as tuples.

    `vars()` rather than `dataclasses.asdict`: the fields are already plain values, and the deep
    copy asdict makes cost 6 % of a login's CPU in bench/login.py's profile.
    """

    TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def dumps(self) -> bytes:
        return json.dumps(vars(self), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> Self:
        data: dict[str, Any] = json.loads(raw)
        for name in cls.TUPLE_FIELDS:
            data[name] = tuple(data[name])
        return cls(**data)
