"""An e-service's key set published at its `jwks_uri` (RFC 7591 §2): served by uvicorn on a
loopback port, with keys a test may rotate and a count of the fetches it answered."""

from __future__ import annotations

from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.harness import ServedApp, free_port


class PublishedKeys:
    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys: list[dict[str, Any]] = list(keys)
        self.fetches = 0
        self.status = 200
        self.served = ServedApp(Starlette(routes=[Route("/jwks", self._answer)]), free_port())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.served.port}/jwks"

    def __enter__(self) -> Self:
        self.served.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.served.__exit__(*exc)

    async def _answer(self, _request: Request) -> Response:
        self.fetches += 1
        return JSONResponse({"keys": self.keys}, status_code=self.status)
