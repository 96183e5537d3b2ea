"""/healthz (liveness: the process answers) and /readyz (readiness for a load balancer: the
store answers, signing keys are loaded, and some provider can log citizens in). Provider health
has one owner, `Providers.problem`, which the chooser and /metrics ask too."""

from __future__ import annotations

from prometheus_client import Gauge
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.login.registry import Providers
from gateway.oidc.keys import SigningKeys
from gateway.store import StoreUnavailable
from providers.base import Store

HEALTHZ_PATH = "/healthz"
READYZ_PATH = "/readyz"
NO_STORE = {"Cache-Control": "no-store"}


async def healthz(_request: Request) -> Response:
    """Liveness: the process answers. Readiness is /readyz."""
    return JSONResponse({"status": "ok"})


class Readiness:
    def __init__(
        self, store: Store, keys: SigningKeys, providers: Providers, store_up: Gauge
    ) -> None:
        self._store = store
        self._store_up = store_up
        self._keys = keys
        self._providers = providers

    async def __call__(self, _request: Request) -> Response:
        problems = await self._own_problems()
        degraded = self._provider_problems()
        # One provider down leaves this instance as able as its peers to serve the others: still
        # ready, reported as degraded. Only when no provider can log anyone in is it not ready.
        if len(degraded) == len(self._providers):
            problems.update(degraded)
        status = 503 if problems else 200
        word = "not ready" if problems else ("degraded" if degraded else "ready")
        body = {"status": word, "problems": problems | degraded}
        return JSONResponse(body, status_code=status, headers=NO_STORE)

    async def _own_problems(self) -> dict[str, str]:
        problems = {}
        try:
            await self._store.ping()
        except StoreUnavailable as error:
            problems["store"] = str(error) or "unreachable"
        self._store_up.set(0 if "store" in problems else 1)
        if not self._keys.jwks()["keys"]:
            problems["keys"] = "no signing key loaded"
        return problems

    def _provider_problems(self) -> dict[str, str]:
        problems = {}
        for name in self._providers:
            problem = self._providers.problem(name)
            if problem:
                problems[f"provider {name}"] = problem
        return problems
