"""Token Status Lists for the tests, written from draft-ietf-oauth-status-list-14 with PyJWT
and zlib (none of the gateway's code): tokens signed by a test PID provider, and a loopback
server that answers per path and counts the requests."""

from __future__ import annotations

import base64
import itertools
import time
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.doubles.wallet_pki import Issued, PidProvider
from tests.harness import ServedApp, free_port

MEDIA_TYPE = "application/statuslist+jwt"
_paths = itertools.count()


class StatusServer:
    """Answers per path, set by the test; counts the requests each path got."""

    def __init__(self) -> None:
        self.answers: dict[str, Callable[[], Response]] = {}
        self.requests: Counter[str] = Counter()
        self.accepts: list[str] = []
        app = Starlette(routes=[Route("/{path:path}", self._answer)])
        self.served = ServedApp(app, free_port())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.served.port}/{path}"

    def new_url(self) -> str:
        return self.url(f"lists/{next(_paths)}")

    def serve(self, url: str, answer: Callable[[], Response]) -> None:
        self.answers[url.removeprefix(self.url(""))] = answer

    def serve_token(self, url: str, token: bytes, **response: Any) -> None:
        self.serve(url, lambda: Response(token, media_type=MEDIA_TYPE, **response))

    def count(self, url: str) -> int:
        return self.requests[url.removeprefix(self.url(""))]

    async def _answer(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.requests[path] += 1
        self.accepts.append(request.headers.get("accept", ""))
        answer = self.answers.get(path)
        return answer() if answer else Response("not found", status_code=404)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pack(statuses: list[int], bits: int) -> bytes:
    """TSL §4.1, written out for the tests: `bits` per status from each byte's low end."""
    per_byte = 8 // bits
    packed = bytearray((len(statuses) + per_byte - 1) // per_byte)
    for index, status in enumerate(statuses):
        packed[index // per_byte] |= status << ((index % per_byte) * bits)
    return bytes(packed)


def status_token(
    signer: Issued,
    uri: str,
    *,
    statuses: list[int] | None = None,
    bits: int = 1,
    lst: str | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> bytes:
    """A Status List Token (TSL §5.1) signed ES256 by `signer` with PyJWT; a claim given as
    None is left out."""
    issued_at = int(time.time())
    if lst is None:
        lst = b64url(zlib.compress(pack(statuses or [0] * 16, bits), 9))
    payload = {
        "sub": uri,
        "iat": issued_at,
        "exp": issued_at + 86400,
        "ttl": 300,
        "status_list": {"bits": bits, "lst": lst},
        **claims,
    }
    headers = {"typ": "statuslist+jwt", "x5c": [signer.der_b64], **(header or {})}
    payload = {name: value for name, value in payload.items() if value is not None}
    return jwt.encode(payload, signer.key, algorithm="ES256", headers=headers).encode()


def serve_list(server: StatusServer, provider: PidProvider, **token: Any) -> str:
    url = server.new_url()
    server.serve_token(url, status_token(provider.signer, url, **token))
    return url
