"""Which IdP of the federation logs the citizen in: when more than one qualifies, the gateway's
IdP page (`/idp`) or a SAML discovery service (`/discovered`, IdP Discovery protocol) decides.
The login waits in a `PendingChoice` meanwhile; choosing takes it, so a choice counts once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.base import (
    AuthenticationFailed,
    LoginStateLost,
    ProviderServices,
    UserCancelled,
)
from providers.forms import login_form
from providers.records import StoreRecord, login_key
from providers.saml.config import IdpAllowList, SamlConfig
from providers.saml.metadata import IdentityProvider, MetadataSource

CHOICE_TTL_SECONDS = 900


@dataclass(frozen=True)
class PendingChoice(StoreRecord):
    """A login waiting for the citizen (or a discovery service) to pick the IdP."""

    login_id: str
    client_id: str
    loa: tuple[str, ...]
    force_authn: bool
    hint: str | None
    locale: str
    user_message: dict[str, Any] | None = None  # UserMessage.to_dict()
    sign: dict[str, Any] | None = None  # SignRequest.to_dict(): a signature approval

    TUPLE_FIELDS = ("loa",)


SendRequest = Callable[[Request, PendingChoice, IdentityProvider], Awaitable[Response]]
"""Sends the AuthnRequest of a login to the IdP chosen for it (`AuthnRequests.send`)."""


@dataclass(frozen=True)
class Approval:
    """What an IdP must offer to approve a signature: pass the SP's `sign_idps`, and when the
    e-service named the person, select by number (the sign message must not be shown to
    anyone else: the IdP refuses another person before it shows it)."""

    approvers: IdpAllowList
    named: bool

    def accepts(self, idp: IdentityProvider) -> bool:
        return self.approvers.accepts(idp) and (not self.named or idp.selects_by_number)


def candidates(
    metadata: MetadataSource, loa: Sequence[str], approval: Approval | None = None
) -> list[IdentityProvider]:
    """Allowed IdPs that can deliver one of the LoAs (when they declare their LoAs); for a
    signature approval, only those that can approve it."""
    return [
        idp
        for idp in metadata.idps.values()
        if (not idp.assurance or idp.assurance & set(loa))
        and (approval is None or approval.accepts(idp))
    ]


class IdpChoice:
    def __init__(
        self,
        config: SamlConfig,
        services: ProviderServices,
        metadata: MetadataSource,
        send: SendRequest,
    ) -> None:
        self._config = config
        self._services = services
        self._metadata = metadata
        self._send = send
        self._base = f"{services.base_url}/providers/{services.name}"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/idp", self._idp_page, methods=["GET", "POST"]),
            Route("/discovered", self._discovered),
        ]

    async def ask(
        self, request: Request, choice: PendingChoice, idps: Sequence[IdentityProvider]
    ) -> Response:
        """Keep the login until an IdP is chosen, and send the citizen to choose it."""
        await self._services.store.put(
            login_key("choice", choice.login_id), choice.dumps(), CHOICE_TTL_SECONDS
        )
        if self._config.discovery_url:
            back = f"{self._base}/discovered?{urlencode({'login': choice.login_id})}"
            query = urlencode(
                {"entityID": self._config.entity_id, "return": back, "returnIDParam": "entityID"}
            )
            return RedirectResponse(f"{self._config.discovery_url}?{query}", status_code=303)
        return self._render_idp_page(request, choice, idps)

    async def _idp_page(self, request: Request) -> Response:
        if request.method == "GET":
            login_id = request.query_params.get("login", "")
            choice = await self._choice(login_id, take=False)
            return self._render_idp_page(request, choice, self._candidates(choice))
        name = self._services.name
        login_id, form = await login_form(request, self._services.forms, name, 6, "IdP choice")
        choice = await self._choice(login_id, take=True)
        if "cancel" in form:
            raise UserCancelled(name, login_id)
        return await self._send_chosen(request, choice, str(form.get("idp", "")))

    async def _discovered(self, request: Request) -> Response:
        """SAML IdP Discovery protocol §2.4.1: the DS returns the chosen entityID to us."""
        choice = await self._choice(request.query_params.get("login", ""), take=True)
        entity_id = request.query_params.get("entityID")
        if not entity_id:
            raise UserCancelled(
                self._services.name, choice.login_id, "the discovery service chose no IdP"
            )
        return await self._send_chosen(request, choice, entity_id)

    async def _send_chosen(
        self, request: Request, choice: PendingChoice, entity_id: str
    ) -> Response:
        allowed = self._candidates(choice)
        idp = next((i for i in allowed if i.entity_id == entity_id), None)
        if idp is None:
            raise AuthenticationFailed(
                self._services.name, choice.login_id, "chosen IdP is not allowed"
            )
        return await self._send(request, choice, idp)

    def _candidates(self, choice: PendingChoice) -> list[IdentityProvider]:
        approval = None
        if choice.sign is not None:
            approval = Approval(self._config.sign_idps, named=choice.hint is not None)
        return candidates(self._metadata, choice.loa, approval)

    async def _choice(self, login_id: str, take: bool) -> PendingChoice:
        store = self._services.store
        key = login_key("choice", login_id)
        raw = await (store.take(key) if take else store.get(key)) if login_id else None
        if raw is None:
            raise LoginStateLost(self._services.name, None, "no IdP choice pending for that login")
        return PendingChoice.loads(raw)

    def _render_idp_page(
        self, request: Request, choice: PendingChoice, idps: Sequence[IdentityProvider]
    ) -> Response:
        action = f"{self._base}/idp"
        context = {
            "provider": {"name": self._services.name, "display": self._config.display},
            "login_id": choice.login_id,
            "client_id": choice.client_id,
            "csrf": self._services.forms.token(request, choice.login_id),
            "action": action,
            "page_url": f"{action}?{urlencode({'login': choice.login_id})}",
            "signs": choice.sign is not None,
            "idps": [
                (idp.entity_id, {**idp.display, "en": idp.name("en"), "sv": idp.name("sv")})
                for idp in sorted(idps, key=lambda i: i.name("sv").lower())
            ],
        }
        return self._services.pages.render(request, "saml_idp.html", context, 200, choice.locale)
