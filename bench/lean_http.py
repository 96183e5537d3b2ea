"""A minimal asyncio HTTP/1.1 keep-alive client for the benchmarks, and nothing else.

httpx2 spends more CPU per request than the gateway does, and the load generator shares the
machine's cores with the server, so with httpx2 the benchmarks mostly measured the client. This
one writes each request as bytes on one keep-alive connection per simulated citizen and reads
`status line + headers + Content-Length body`, which is what uvicorn (httptools) sends.

It is deliberately narrow: plain http only, one origin per client, no redirects followed (the
caller reads `Response.location`), no compression, no chunked bodies (refused loudly, never
mis-parsed), cookies kept as name=value only (no path, domain or expiry besides Max-Age=0).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

MAX_HEAD_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class LeanHttpError(Exception):
    """The server said something this client does not understand, or the connection broke."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header's values joined with ", "
    set_cookies: tuple[str, ...]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        try:
            return self.headers["location"]
        except KeyError:
            raise LeanHttpError(f"HTTP {self.status} without a Location header") from None

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise LeanHttpError(f"HTTP {self.status}: {self.body[:300]!r}")


class LeanClient:
    """One keep-alive connection to `http://host:port`, opened on first use and reopened if the
    server closed it; a cookie jar of name=value pairs from `Set-Cookie`."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"lean_http speaks plain http to one host, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.origin = f"http://{parts.netloc}"
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the peer went first; nothing left to do
                await writer.wait_closed()

    async def get(
        self, target: str, params: Mapping[str, str] | None = None, bearer: str | None = None
    ) -> Response:
        path = self._path(target)
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        return await self.request("GET", path, headers=_bearer(bearer))

    async def post(
        self,
        target: str,
        form: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        bearer: str | None = None,
    ) -> Response:
        headers = {"Content-Type": FORM_TYPE, **_bearer(bearer)}
        if auth is not None:
            pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        body = urlencode(form).encode()
        return await self.request("POST", self._path(target), headers=headers, body=body)

    async def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Response:
        reader, writer = await self._connection()
        writer.write(self._head(method, path, headers or {}, body) + body)
        try:
            async with asyncio.timeout(self.timeout):
                response = await _read_response(reader)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            await self.close()
            raise LeanHttpError(f"{method} {path}: connection lost ({error!r})") from error
        except BaseException:
            await self.close()  # a half-read response would desynchronise the connection
            raise
        self._remember(response.set_cookies)
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    def _path(self, target: str) -> str:
        """`target` as a request path: a path, or an absolute URL on this client's origin."""
        if target.startswith("/"):
            return target
        if not target.startswith(self.origin + "/"):
            raise LeanHttpError(f"{target!r} is not on {self.origin}; this client has one origin")
        return target[len(self.origin) :]

    def _head(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if method != "GET" or body:
            lines.append(f"Content-Length: {len(body)}")
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _remember(self, set_cookies: tuple[str, ...]) -> None:
        for line in set_cookies:
            pair, _, attributes = line.partition(";")
            name, equals, value = pair.strip().partition("=")
            if not equals:
                raise LeanHttpError(f"Set-Cookie without name=value: {line!r}")
            if "max-age=0" in attributes.replace(" ", "").lower().split(";"):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._reader.at_eof():
            await self.close()  # the server closed an idle keep-alive connection
        if self._reader is None or self._writer is None:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, limit=MAX_HEAD_BYTES
                )
        return self._reader, self._writer


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


async def _read_response(reader: asyncio.StreamReader) -> Response:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as error:
        raise LeanHttpError(f"response head longer than {MAX_HEAD_BYTES} bytes") from error
    status, headers, set_cookies = _parse_head(head)
    if "transfer-encoding" in headers:
        raise LeanHttpError(
            f"HTTP {status} with Transfer-Encoding: {headers['transfer-encoding']}; this client"
            " reads Content-Length bodies only"
        )
    if status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, set_cookies, b"")
    if "content-length" not in headers:
        raise LeanHttpError(f"HTTP {status} without Content-Length: cannot find the body's end")
    try:
        length = int(headers["content-length"])
    except ValueError:
        raise LeanHttpError(f"bad Content-Length {headers['content-length']!r}") from None
    body = await reader.readexactly(length) if length else b""
    return Response(status, headers, set_cookies, body)


def _parse_head(head: bytes) -> tuple[int, dict[str, str], tuple[str, ...]]:
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise LeanHttpError(f"not an HTTP/1.x status line: {status_line!r}")
    headers: dict[str, str] = {}
    set_cookies: list[str] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise LeanHttpError(f"malformed header line: {line!r}")
        name, value = name.strip().lower(), value.strip()
        if name == "set-cookie":
            set_cookies.append(value)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(rest[:3]), headers, tuple(set_cookies)
