"""A provider type that exists only in the tests, plugged in by one row: carrier pigeons.

It shows what a newcomer writes to add a type (a config model, a Provider class, one
`ProviderType` row) and lets tests see that the gateway picks it up without naming it. Its
upstream is a loft that never answers: every start reports a failed call (so its breaker opens)
and fails with `temporarily_unavailable`; `grounded` makes it report its own problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

import httpx2
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from providers.base import (
    ChecksConfig,
    ConfigProblem,
    Identity,
    LoginContext,
    ProviderConfig,
    ProviderServices,
    ProviderUnavailable,
    ReportsHealth,
)
from providers.registry import ProviderType, register, unregister

PIGEON_TYPE = "carrier-pigeon"


class PigeonConfig(ProviderConfig, ChecksConfig):
    type: Literal["carrier-pigeon"]
    display: dict[str, str] = Field(default_factory=lambda: {"sv": "Brevduva", "en": "Pigeon"})
    hint: dict[str, str] = Field(
        default_factory=lambda: {"sv": "Svar inom en vecka", "en": "Answers within a week"}
    )
    grounded: str | None = Field(default=None, description="its own report of why it is down")
    loft: str = Field(default="open", description="closed: check-config reports the loft")
    certificate_expires_at: float | None = None

    def refused_in_production(self, name: str) -> str | None:
        return f"provider {name!r} is a carrier pigeon; it refuses to load in production"

    def certificate_expiries(self) -> dict[str, float]:
        expiry = self.certificate_expires_at
        return {} if expiry is None else {"ring.cert": expiry}

    async def upstream_problems(self, http: httpx2.AsyncClient) -> list[ConfigProblem]:
        return [("loft", "the loft is closed")] if self.loft == "closed" else []


class PigeonProvider(ReportsHealth):
    finish_path = "/landed"
    finish_methods: Sequence[str] = ("GET",)

    def __init__(self, config: PigeonConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._config = config
        self._services = services

    @property
    def problem(self) -> str | None:
        return self._config.grounded

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self, request: Request, login: LoginContext) -> Response:
        self._services.upstream.observe("fly", 0.01, "error")
        raise ProviderUnavailable(self.name, login.login_id, "the pigeon did not come back")

    async def finish(self, request: Request) -> tuple[str, Identity]:
        raise ProviderUnavailable(self.name, None, "no pigeon has landed")


PIGEON = ProviderType(PIGEON_TYPE, PigeonConfig, PigeonProvider)


@contextmanager
def pigeons_registered() -> Iterator[ProviderType[PigeonConfig]]:
    """The row for the length of one test, so other tests see the built-in types only."""
    register(PIGEON)
    try:
        yield PIGEON
    finally:
        unregister(PIGEON_TYPE)
