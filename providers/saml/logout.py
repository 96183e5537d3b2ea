"""Single logout (SAML Profiles §4.4) both ways, at `/slo` in either binding: ours sends a
LogoutRequest when the gateway session ends and follows the IdP's LogoutResponse back; the
IdP's LogoutRequest ends the gateway sessions of that IdP session and is answered Success.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from lxml import etree
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.base import AuthenticationFailed, Identity, LoginStateLost, ProviderServices
from providers.forms import read_form
from providers.records import StoreRecord
from providers.saml.bindings import Bindings, Outgoing, redirect_signed_part, xml_step
from providers.saml.config import SLO_PATH
from providers.saml.messages import (
    Header,
    inflate,
    logout_request,
    logout_response,
    new_id,
)
from providers.saml.metadata import IdentityProvider, MetadataSource
from providers.saml.xml import (
    NS,
    XmlRejected,
    parse_message,
    tag,
    verify_detached,
    verify_enveloped,
)

log = logging.getLogger("portvakt.saml")

LOGOUT_TTL_SECONDS = 300

IncomingMessage = tuple[etree._Element, str | None, IdentityProvider]  # message, RelayState, IdP


@dataclass(frozen=True)
class UpstreamSession(StoreRecord):
    """What single logout needs of the IdP session (kept in Identity.upstream_session)."""

    idp: str
    name_id: str
    name_id_format: str | None
    session_index: str | None


def upstream_session_key(idp: str, name_id: str, session_index: str | None) -> str:
    """A key under which the gateway indexes its session for one IdP session (or, without a
    SessionIndex, for the person at that IdP)."""
    text = f"{idp}\n{name_id}\n{session_index or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


class SingleLogout:
    def __init__(
        self,
        sp_entity_id: str,
        services: ProviderServices,
        metadata: MetadataSource,
        bindings: Bindings,
    ) -> None:
        self._sp_entity_id = sp_entity_id
        self._name = services.name
        self._services = services
        self._metadata = metadata
        self._bindings = bindings
        self.slo_url = f"{services.base_url}/providers/{services.name}{SLO_PATH}"

    def routes(self) -> list[BaseRoute]:
        return [Route(SLO_PATH, self._single_logout, methods=["GET", "POST"])]

    async def logout(
        self, request: Request, identity: Identity, continue_url: str
    ) -> Response | None:
        """SP-initiated SLO: the browser goes to the IdP, which comes back to /slo."""
        if not identity.upstream_session:
            return None
        session = UpstreamSession.loads(identity.upstream_session.encode())
        idp = self._metadata.idps.get(session.idp)
        if idp is None or not idp.slo:
            return None
        endpoint = self._bindings.endpoint(idp.slo)
        request_id, relay = new_id(), secrets.token_urlsafe(24)
        message = logout_request(
            Header(request_id, time.time(), endpoint.location, self._sp_entity_id),
            name_id=session.name_id,
            name_id_format=session.name_id_format,
            session_index=session.session_index,
        )
        record = json.dumps({"request_id": request_id, "idp": idp.entity_id, "next": continue_url})
        await self._services.store.put(f"logout:{relay}", record.encode(), LOGOUT_TTL_SECONDS)
        return await self._bindings.deliver(
            request, Outgoing(endpoint, message, "SAMLRequest", relay)
        )

    def session_keys(self, identity: Identity) -> list[str]:
        """Index keys of a gateway session, so an IdP's LogoutRequest can find it."""
        if not identity.upstream_session:
            return []
        session = UpstreamSession.loads(identity.upstream_session.encode())
        keys = [upstream_session_key(session.idp, session.name_id, None)]
        if session.session_index:
            keys.append(upstream_session_key(session.idp, session.name_id, session.session_index))
        return keys

    async def _single_logout(self, request: Request) -> Response:
        if request.method == "GET":
            message, relay, idp = await self._from_redirect(request)
        else:
            message, relay, idp = await self._from_post(request)
        if message.tag == tag("samlp", "LogoutResponse"):
            return await self._logout_answered(message, relay, idp)
        if message.tag == tag("samlp", "LogoutRequest"):
            return await self._logout_requested(request, message, relay, idp)
        raise AuthenticationFailed(self._name, None, "SLO: neither LogoutRequest nor Response")

    async def _from_redirect(self, request: Request) -> IncomingMessage:
        """HTTP-Redirect: deflated XML; the signature is over the query string (detached)."""
        params = request.query_params
        parameter = "SAMLRequest" if "SAMLRequest" in params else "SAMLResponse"
        try:
            data = await xml_step(inflate, params.get(parameter, ""))
            message = await xml_step(parse_message, data)
        except (ValueError, binascii.Error, XmlRejected) as error:
            raise AuthenticationFailed(self._name, None, f"SLO: unreadable: {error}") from None
        idp = self._issuer_of(message)
        signed = redirect_signed_part(request.scope.get("query_string", b"").decode(), parameter)
        signature = params.get("Signature")
        try:
            valid = bool(signature) and await xml_step(
                verify_detached,
                signed.encode(),
                base64.b64decode(signature or ""),
                params.get("SigAlg", ""),
                idp.signing_keys,
            )
        except (XmlRejected, ValueError):  # binascii.Error, or base64 of non-ASCII text
            valid = False
        if not valid:
            raise AuthenticationFailed(self._name, None, "SLO: signature does not verify")
        return message, params.get("RelayState"), idp

    async def _from_post(self, request: Request) -> IncomingMessage:
        """HTTP-POST: base64 XML with an enveloped signature."""
        form = await read_form(request, 4)
        parameter = "SAMLRequest" if "SAMLRequest" in form else "SAMLResponse"
        try:
            data = base64.b64decode(str(form.get(parameter, "")), validate=True)
            message = await xml_step(parse_message, data)
            idp = self._issuer_of(message)
            if not await xml_step(verify_enveloped, message, idp.signing_keys):
                raise XmlRejected("unsigned")
        except (ValueError, XmlRejected) as error:  # ValueError: binascii's, or not ASCII
            raise AuthenticationFailed(self._name, None, f"SLO: rejected: {error}") from None
        relay = form.get("RelayState")
        return message, str(relay) if relay is not None else None, idp

    def _issuer_of(self, message: etree._Element) -> IdentityProvider:
        issuer = (message.findtext("saml:Issuer", namespaces=NS) or "").strip()
        idp = self._metadata.idps.get(issuer)
        if idp is None:
            raise AuthenticationFailed(self._name, None, "SLO: message from an unknown IdP")
        if message.get("Destination") not in (None, self.slo_url):
            raise AuthenticationFailed(self._name, None, "SLO: Destination is not our SLO")
        return idp

    async def _logout_answered(
        self, message: etree._Element, relay: str | None, idp: IdentityProvider
    ) -> Response:
        raw = await self._services.store.take(f"logout:{relay}") if relay else None
        if raw is None:
            raise LoginStateLost(self._name, None, "SLO: LogoutResponse to no request of ours")
        record: dict[str, Any] = json.loads(raw)
        if message.get("InResponseTo") != record["request_id"] or idp.entity_id != record["idp"]:
            raise LoginStateLost(self._name, None, "SLO: LogoutResponse to another request")
        return RedirectResponse(record["next"], status_code=303)

    async def _logout_requested(
        self, request: Request, message: etree._Element, relay: str | None, idp: IdentityProvider
    ) -> Response:
        """IdP-initiated: end the gateway sessions of that IdP session, then answer Success."""
        name_id = (message.findtext("saml:NameID", namespaces=NS) or "").strip()
        indexes = [(s.text or "").strip() for s in message.findall("samlp:SessionIndex", NS)]
        ended = 0
        if name_id:
            for index in indexes or [""]:
                key = upstream_session_key(idp.entity_id, name_id, index or None)
                ended += await self._services.end_upstream_session(self._name, key)
        log.info("%s: IdP %s logged out %d gateway session(s)", self._name, idp.entity_id, ended)
        endpoint = self._bindings.endpoint(idp.slo)
        header = Header(new_id(), time.time(), endpoint.location, self._sp_entity_id)
        answer = logout_response(header, in_response_to=message.get("ID", ""))
        outgoing = Outgoing(endpoint, answer, "SAMLResponse", relay)
        return await self._bindings.deliver(request, outgoing)
