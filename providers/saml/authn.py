"""The AuthnRequest (Sweden Connect deployment profile §5): built for the login's LoA and
identity-number hint, remembered by its RelayState, and sent signed to the chosen IdP. For a
signature approval (profile §7) it is forced, carries the SignMessage and the e-service as
RequesterID, and its record keeps the digest the IdP's answer must prove.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from providers.base import NamespacedStore, ProviderUnavailable, SignRequest, UserMessage
from providers.records import StoreRecord
from providers.saml.bindings import Bindings, Outgoing, xml_step
from providers.saml.idp_choice import PendingChoice
from providers.saml.messages import Header, SamlUserMessage, authn_request, new_id
from providers.saml.metadata import PNR_ATTRIBUTE, IdentityProvider
from providers.saml.sign_message import SamlSignMessage, sign_message_element
from providers.saml.xml import XmlRejected

REQUEST_TTL_SECONDS = 900


@dataclass(frozen=True)
class PendingRequest(StoreRecord):
    """An AuthnRequest we sent, by its RelayState. The ACS reads it and leaves it to expire: the
    pending login's single use decides whether a login completes, so a Response posted again
    to another instance (this one died before writing the code) can still finish."""

    request_id: str
    login_id: str
    idp: str
    loa: tuple[str, ...]
    force_authn: bool
    requested_at: float
    # A signature approval: the signMessageDigest the IdP must return (records from before
    # signing have none, and were logins).
    sign_message_digest: str | None = None

    TUPLE_FIELDS = ("loa",)


def _user_message_for(choice: PendingChoice, idp: IdentityProvider) -> SamlUserMessage | None:
    """UMsg 1.0 §3.2: the SP checks the IdP's entity category; other IdPs get no message
    (RPar 1.1 §2.1 lets the OP ignore what the e-ID cannot show). Never beside a SignMessage:
    the citizen is to read the sign message, and nothing shown before the authentication
    (UMsg §3.3: no integrity-sensitive content) may compete with it."""
    if choice.user_message is None or choice.sign is not None or not idp.shows_user_messages:
        return None
    return SamlUserMessage.of(UserMessage.from_dict(choice.user_message), choice.locale)


class AuthnRequests:
    """Sends our AuthnRequests and finds them again when the Response comes to the ACS."""

    def __init__(
        self,
        provider: str,
        sp_entity_id: str,
        acs_url: str,
        store: NamespacedStore,
        bindings: Bindings,
    ) -> None:
        self._provider = provider
        self._sp_entity_id = sp_entity_id
        self._acs_url = acs_url
        self._store = store
        self._bindings = bindings

    async def send(
        self, request: Request, choice: PendingChoice, idp: IdentityProvider
    ) -> Response:
        endpoint = self._bindings.endpoint(idp.sso)
        now = time.time()
        request_id, relay = new_id(), secrets.token_urlsafe(24)
        sign = SignRequest.from_dict(choice.sign) if choice.sign is not None else None
        sign_message = SamlSignMessage.of(sign, choice.locale) if sign is not None else None
        message = authn_request(
            Header(request_id, now, endpoint.location, self._sp_entity_id),
            acs_url=self._acs_url,
            loa=choice.loa,
            # SC profile §7: a Signature Service always forces the authentication
            force_authn=choice.force_authn or sign is not None,
            principal=_principal_selection(choice.hint, idp),
            user_message=_user_message_for(choice, idp),
            sign_message=await self._sign_message(sign_message, idp, choice.login_id),
            requester_id=choice.client_id if sign is not None else None,
        )
        pending = PendingRequest(
            request_id,
            choice.login_id,
            idp.entity_id,
            choice.loa,
            choice.force_authn or sign is not None,
            now,
            sign_message.digest if sign_message is not None else None,
        )
        await self._store.put(f"request:{relay}", pending.dumps(), REQUEST_TTL_SECONDS)
        outgoing = Outgoing(endpoint, message, "SAMLRequest", relay)
        return await self._bindings.deliver(request, outgoing, choice.locale)

    async def _sign_message(
        self, message: SamlSignMessage | None, idp: IdentityProvider, login_id: str
    ) -> etree._Element | None:
        if message is None:
            return None
        try:
            return await xml_step(sign_message_element, message, idp)
        except XmlRejected as error:  # the IdP's key from its metadata does not work
            raise ProviderUnavailable(self._provider, login_id, str(error)) from None

    async def outstanding(self, relay: str) -> PendingRequest | None:
        """The request a Response's RelayState answers, if it is ours and not expired."""
        raw = await self._store.get(f"request:{relay}") if relay else None
        return PendingRequest.loads(raw) if raw is not None else None


def _principal_selection(hint: str | None, idp: IdentityProvider) -> dict[str, str]:
    """PrincipalSelection 1.0 §2: sent only to an IdP whose metadata asks for the attribute
    (psc:RequestedPrincipalSelection); another could not read it, or refuse the request."""
    if hint and idp.selects_by_number:
        return {PNR_ATTRIBUTE: hint}
    return {}
