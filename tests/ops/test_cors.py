"""CORS: browser apps (the public clients) may call /token and /userinfo from their own origin,
and no other site may read the answers. `OriginCors` answers every request as Starlette's
CORSMiddleware does; it only skips that middleware's work for requests without an Origin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.ops.cors import OriginCors
from tests.harness import LiveGateway, ServedApp, free_port, token_request

ALLOWED = "https://app.example"
CORS_OPTIONS = {
    "allow_origins": [ALLOWED],
    "allow_methods": ["GET", "POST"],
    "allow_headers": ["Authorization", "Content-Type"],
}
VARY_SETS = {"none": [], "one": ["Cookie"], "two": ["Cookie", "Accept-Language"]}


async def answer(request: Request) -> Response:
    """A response carrying the Vary headers the query names, as a route of ours may."""
    response = Response("ok")
    for value in VARY_SETS[request.query_params.get("vary", "none")]:
        response.raw_headers.append((b"vary", value.encode()))
    response.raw_headers.append((b"x-after", b"1"))
    return response


def served(middleware: type[CORSMiddleware]) -> ServedApp:
    app = Starlette(
        routes=[Route("/", answer)], middleware=[Middleware(middleware, **CORS_OPTIONS)]
    )
    return ServedApp(app, free_port())


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        starlettes = stack.enter_context(served(CORSMiddleware))
        ours = stack.enter_context(served(OriginCors))
        yield f"http://127.0.0.1:{starlettes.port}", f"http://127.0.0.1:{ours.port}"


def headers_of(response: httpx2.Response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.multi_items() if name != "date"]


@pytest.mark.parametrize("vary", list(VARY_SETS))
@pytest.mark.parametrize(
    ("method", "request_headers"),
    [
        pytest.param("GET", {}, id="no-origin"),
        pytest.param("POST", {}, id="no-origin-post"),
        pytest.param("GET", {"Origin": ALLOWED}, id="allowed-origin"),
        pytest.param("GET", {"Origin": "https://evil.example"}, id="other-origin"),
        pytest.param(
            "OPTIONS",
            {"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
            id="preflight",
        ),
        pytest.param(
            "OPTIONS",
            {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            id="preflight-other-origin",
        ),
    ],
)
def test_answers_as_starlettes_middleware(
    apps: tuple[str, str], vary: str, method: str, request_headers: dict[str, str]
) -> None:
    starlettes, ours = (
        httpx2.request(method, f"{base}/?vary={vary}", headers=request_headers) for base in apps
    )
    assert (ours.status_code, headers_of(ours)) == (starlettes.status_code, headers_of(starlettes))


def test_a_request_without_origin_is_answered_vary_origin(apps: tuple[str, str]) -> None:
    response = httpx2.get(f"{apps[1]}/?vary=two")
    assert response.headers.get_list("vary") == ["Cookie, Accept-Language, Origin"]
    assert "access-control-allow-origin" not in response.headers


def test_a_public_clients_origin_may_read_the_token_answer(gateway: LiveGateway) -> None:
    """The `spa` client of the test settings is public; its redirect URI's origin is allowed."""
    origin = "http://127.0.0.1:9000"
    preflight = httpx2.options(
        f"{gateway.url}/token",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    refused = token_request(gateway, {"grant_type": "authorization_code", "code": "x"})
    assert refused.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in refused.headers
