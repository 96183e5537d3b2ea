"""The login's own URLs: /login/<id> (the chooser), its resume and cancel, and one mount per
provider under /providers/<name>/. Every one of them runs through the flow, which answers a
provider error raised there (DESIGN.md: the finish path is straight; error handlers only
render)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.login.flow import LoginFlow
from providers.base import Provider

LOGIN_PATH = "/login/{login_id}"


class LoginPages:
    """The chooser (GET shows it, POST picks an e-ID), the way back after a cross-site answer,
    and cancelling."""

    def __init__(self, flow: LoginFlow) -> None:
        self._flow = flow

    async def chooser(self, request: Request) -> Response:
        login_id = request.path_params["login_id"]
        if request.method == "POST":
            return await self._flow.choose(request, login_id)
        return await self._flow.show(request, login_id)

    async def resume(self, request: Request) -> Response:
        return await self._flow.resume(request, request.path_params["login_id"])

    async def cancel(self, request: Request) -> Response:
        return await self._flow.cancel(request, request.path_params["login_id"])


def login_routes(flow: LoginFlow, providers: Iterable[Provider]) -> list[BaseRoute]:
    pages = LoginPages(flow)
    return [
        Route(LOGIN_PATH, pages.chooser, methods=["GET", "POST"]),
        Route(f"{LOGIN_PATH}/resume", pages.resume),
        Route(f"{LOGIN_PATH}/cancel", pages.cancel),
        *(provider_mount(provider, flow) for provider in providers),
    ]


def provider_mount(provider: Provider, flow: LoginFlow) -> Mount:
    """A provider's own pages plus its finish endpoint, under /providers/<name>/."""

    async def finish(request: Request) -> Response:
        return await flow.finish(request, provider)

    routes = [_answered_by(flow, route) for route in provider.routes()]
    finish_route = Route(provider.finish_path, finish, methods=list(provider.finish_methods))
    return Mount(f"/providers/{provider.name}", routes=[*routes, finish_route])


def _answered_by(flow: LoginFlow, route: BaseRoute) -> Route:
    if not isinstance(route, Route):  # a Mount or WebSocket route would bypass the flow
        raise TypeError(f"a provider route must be a starlette Route, not {route!r}")
    endpoint = flow.provider_endpoint(route.endpoint)
    return Route(route.path, endpoint, methods=route.methods, name=route.name)
