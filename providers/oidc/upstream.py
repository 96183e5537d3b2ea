"""The upstream OP over HTTP: its discovery document and keys (fetched at start-up, refreshed in
the background, fetched again for a key id not seen yet), the token endpoint with our client
authentication, and userinfo. Every call is timed for the metrics and any failure of the
HTTP/TLS stack becomes one exception, `UpstreamCallFailed`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from providers.base import AuthenticationFailed, ProviderServices, ProviderUnavailable
from providers.oidc.config import OidcConfig
from providers.oidc.id_token import unverified_header

log = logging.getLogger("portvakt.oidc_upstream")


class UpstreamCallFailed(Exception):
    """A call to the upstream ended in an exception of the HTTP/TLS stack, whichever it was."""


class Upstream:
    def __init__(self, config: OidcConfig, services: ProviderServices, callback_url: str) -> None:
        self._name = services.name
        self._config = config
        self._services = services
        self.callback_url = callback_url
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(config.timeout_seconds), follow_redirects=False
        )
        self._client_key = _client_key(config.private_key) if config.private_key else None
        self.metadata: dict[str, Any] = config.endpoints.model_dump() if config.endpoints else {}
        self._jwks: KeySet | None = None
        self._refetched_for: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.problem: str | None = "the upstream's discovery and keys are not loaded yet"
        self.loaded_at: float | None = None

    async def astart(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._http.aclose()

    async def refresh(self) -> bool:
        """Discovery (unless endpoints are configured) and JWKS; False (logged) when down."""
        try:
            if self._config.endpoints is None:
                metadata = await self._get_json(
                    f"{self._config.issuer.rstrip('/')}/.well-known/openid-configuration"
                )
                if metadata.get("issuer") != self._config.issuer:
                    raise ValueError("discovery names another issuer")
                self.metadata = metadata
            await self._fetch_jwks()
        except Exception as error:  # whatever the upstream sent, the refresher must live on
            self.problem = f"upstream unreachable or invalid: {type(error).__name__}"
            log.error(
                "%s: discovery/JWKS from %s failed: %s", self._name, self._config.issuer, error
            )
            return False
        self.problem = None
        self.loaded_at = time.time()
        return True

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.refresh_seconds if not self.problem else 30)
            await self.refresh()

    async def _fetch_jwks(self) -> None:
        jwks = await self._get_json(self.metadata["jwks_uri"])
        self._jwks = KeySet.import_key_set(jwks)  # type: ignore[arg-type]

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._timed("metadata", self._http.get(url))
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamCallFailed(f"{url} answered {response.status_code}, not a JSON object")
        return body

    async def redeem(self, code: str, code_verifier: str, login_id: str) -> dict[str, Any]:
        """The token endpoint's answer to our code (with PKCE's verifier and our client auth)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.callback_url,
            "code_verifier": code_verifier,
        }
        config = self._config
        headers: dict[str, str] = {}
        if config.client_auth == "client_secret_basic":
            pair = (
                f"{quote(config.client_id, safe='')}:{quote(config.client_secret or '', safe='')}"
            )
            headers["Authorization"] = f"Basic {base64.b64encode(pair.encode()).decode()}"
        elif config.client_auth == "client_secret_post":
            form.update(client_id=config.client_id, client_secret=config.client_secret or "")
        else:
            form.update(
                client_id=config.client_id,
                client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                client_assertion=self._client_assertion(),
            )
        response = await self._timed(
            "token", self._http.post(self.metadata["token_endpoint"], data=form, headers=headers)
        )
        if response.status_code >= 500:
            raise ProviderUnavailable(
                self._name, login_id, f"token endpoint answered {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            refusal = body.get("error") if isinstance(body, dict) else None
            raise AuthenticationFailed(
                self._name,
                login_id,
                f"token request refused: {refusal or response.status_code}",
            )
        return body

    async def keys_for(self, token: str) -> KeySet:
        """The upstream's keys; fetched again once for each kid we have not seen (rotation)."""
        if self._jwks is None:
            await self._fetch_jwks()
        assert self._jwks is not None
        kid = unverified_header(token).get("kid")
        known = {key.kid for key in self._jwks.keys}
        if isinstance(kid, str) and kid not in known and kid not in self._refetched_for:
            if len(self._refetched_for) > 100:
                self._refetched_for.clear()
            self._refetched_for.add(kid)
            try:
                await self._fetch_jwks()
            except (UpstreamCallFailed, ValueError, JoseError) as error:
                log.warning("%s: JWKS refetch for kid %s failed: %s", self._name, kid, error)
        return self._jwks

    async def userinfo(self, access_token: str, login_id: str) -> dict[str, Any]:
        response = await self._timed(
            "userinfo",
            self._http.get(
                self.metadata["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {access_token}"},
            ),
        )
        if response.status_code >= 500:
            raise ProviderUnavailable(self._name, login_id, f"userinfo {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            raise AuthenticationFailed(self._name, login_id, f"userinfo {response.status_code}")
        return body

    async def _timed(self, operation: str, call: Awaitable[httpx2.Response]) -> httpx2.Response:
        """The one place where a call to the upstream is made: timed for the metrics, and any
        exception of the HTTP/TLS stack (httpx's, ssl's, the OS's) becomes UpstreamCallFailed."""
        started, outcome = time.perf_counter(), "error"
        try:
            response = await call
        except httpx2.TimeoutException:
            raise UpstreamCallFailed(f"{operation}: timed out") from None
        except Exception as error:
            raise UpstreamCallFailed(f"{operation}: {type(error).__name__}") from error
        else:
            status = response.status_code
            outcome = "ok" if status < 400 else ("rejected" if status < 500 else "error")
            return response
        finally:
            self._services.upstream.observe(operation, time.perf_counter() - started, outcome)

    def _client_assertion(self) -> str:
        assert self._client_key is not None
        now = int(time.time())
        claims = {
            "iss": self._config.client_id,
            "sub": self._config.client_id,
            "aud": self.metadata["token_endpoint"],
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        }
        alg = "RS256" if self._client_key.key_type == "RSA" else "ES256"
        header = {"alg": alg, "kid": self._client_key.thumbprint()}
        return jwt.encode(header, claims, self._client_key)

    def our_jwks(self) -> dict[str, Any]:
        """Our public key for private_key_jwt, to register at the upstream."""
        if self._client_key is None:
            return {"keys": []}
        public = self._client_key.as_dict(private=False)
        public.update(kid=self._client_key.thumbprint(), use="sig")
        return {"keys": [public]}


def _client_key(path: Path) -> RSAKey | ECKey:
    data = path.read_bytes()
    try:
        return RSAKey.import_key(data)
    except (ValueError, JoseError):
        return ECKey.import_key(data)
