"""A request's path as logs, metrics and traces may show it: the route's template, or the path
with a pending login's id cut; never the query string (it can carry a login_hint with an
identity number, a code or a state)."""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's template, under its mounts: /providers/{name}/acs, /login/{login_id}."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return UNMATCHED
    return f"{scope.get('root_path', '')}{template}"


def loggable_path(path: str) -> str:
    """Pending-login ids in paths are bearer values for a few minutes: keep only a prefix."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "login":
        parts[2] = parts[2][:6] + "…"
    return "/".join(parts)
