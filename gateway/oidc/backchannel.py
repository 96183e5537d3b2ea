"""OpenID Connect Back-Channel Logout 1.0: when a session ends, a signed logout token is POSTed
to every other e-service of the session that registered a `backchannel_logout_uri`.

Delivery runs in the background: the citizen's logout never waits for an e-service. Each
delivery is tried a bounded number of times and every failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx2

from gateway.oidc.claims import subject
from gateway.oidc.client_auth import ClientRegistry
from gateway.oidc.keys import SigningKeys
from gateway.oidc.session import SsoSession
from gateway.oidc.token import sign
from gateway.settings import ClientSettings, Settings

log = logging.getLogger("portvakt.logout")
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ATTEMPTS = 3
FIRST_PAUSE_SECONDS = 0.5
LOGOUT_TOKEN_TTL_SECONDS = 120


@dataclass(frozen=True)
class Notified:
    """Whom a session's end reaches: the e-services `told` are being sent a logout token; those
    `not_told` have no back-channel logout URI and may still have the citizen logged in."""

    told: tuple[str, ...]
    not_told: tuple[str, ...]


class BackchannelLogout:
    def __init__(
        self, settings: Settings, keys: SigningKeys, clients: ClientRegistry, subject_salt: str
    ) -> None:
        self._issuer = settings.issuer
        self._keys = keys
        self._clients = clients
        self._salt = subject_salt
        self._http = httpx2.AsyncClient(timeout=5, follow_redirects=False)
        self._deliveries: set[asyncio.Task[None]] = set()

    def logout_token(self, client: ClientSettings, session: SsoSession) -> str:
        """§2.4: iss, aud, iat, exp, jti, sub (the client's own) and sid, the event; no nonce."""
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL_SECONDS,
            "jti": secrets.token_urlsafe(16),
            "sub": subject(self._salt, client.subject_sector, session.person),
            "sid": session.sid,
            "events": {LOGOUT_EVENT: {}},
        }
        return sign(self._keys, claims, typ="logout+jwt")

    def notify(self, session: SsoSession, except_client: str | None) -> Notified:
        """Send every other e-service of the session its logout token, in the background."""
        others = self._registered(c for c in session.clients if c != except_client)
        receivers = [client for client in others if client.backchannel_logout_uri]
        for client in receivers:
            task = asyncio.create_task(self._deliver(client, self.logout_token(client, session)))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return Notified(
            told=tuple(client.client_id for client in receivers),
            not_told=tuple(c.client_id for c in others if not c.backchannel_logout_uri),
        )

    def _registered(self, client_ids: Iterable[str]) -> list[ClientSettings]:
        found = (self._clients.get(client_id) for client_id in client_ids)
        return [client for client in found if client is not None]

    async def _deliver(self, client: ClientSettings, token: str) -> None:
        uri = str(client.backchannel_logout_uri)
        pause = FIRST_PAUSE_SECONDS
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self._http.post(uri, data={"logout_token": token})
                if response.status_code in (200, 204):
                    log.info("back-channel logout delivered to %s", client.client_id)
                    return
                problem = f"HTTP {response.status_code}"
            except httpx2.HTTPError as error:
                problem = type(error).__name__
            log.warning(
                "back-channel logout to %s failed (%s), attempt %d of %d",
                client.client_id,
                problem,
                attempt,
                ATTEMPTS,
            )
            if attempt < ATTEMPTS:
                await asyncio.sleep(pause)
                pause *= 2
        log.error("back-channel logout to %s given up", client.client_id)

    async def aclose(self) -> None:
        if self._deliveries:
            await asyncio.wait(self._deliveries, timeout=5)
        await self._http.aclose()
