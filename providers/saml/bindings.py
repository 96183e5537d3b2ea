"""How SAML messages travel (SAML Bindings §3.4 HTTP-Redirect, §3.5 HTTP-POST): our signed
requests and answers out to the IdP's endpoint, and the thread hop every XML security step takes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from lxml import etree
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from providers.base import Pages, ProviderUnavailable
from providers.saml.messages import post_form_value, redirect_url
from providers.saml.metadata import HTTP_POST, HTTP_REDIRECT
from providers.saml.response import StatusError
from providers.saml.xml import KeyPair, XmlRejected

Result = TypeVar("Result")
log = logging.getLogger("portvakt.saml")


@dataclass(frozen=True)
class Endpoint:
    binding: str  # HTTP_REDIRECT or HTTP_POST
    location: str


@dataclass(frozen=True)
class Outgoing:
    """A message of ours on its way to an IdP endpoint."""

    endpoint: Endpoint
    message: etree._Element
    parameter: Literal["SAMLRequest", "SAMLResponse"]
    relay: str | None


class Bindings:
    """One SP's way of sending: its preferred binding and the key that signs what it sends."""

    def __init__(
        self,
        provider: str,
        preferred: Literal["redirect", "post"],
        signing: KeyPair,
        pages: Pages,
    ) -> None:
        self._provider = provider
        self._order = (
            (HTTP_REDIRECT, HTTP_POST) if preferred == "redirect" else (HTTP_POST, HTTP_REDIRECT)
        )
        self._signing = signing
        self._pages = pages

    def endpoint(self, endpoints: Mapping[str, str]) -> Endpoint:
        """The IdP's endpoint (by binding, from its metadata) in our preferred binding."""
        for binding in self._order:
            if binding in endpoints:
                return Endpoint(binding, endpoints[binding])
        raise ProviderUnavailable(self._provider, None, "the IdP has no usable endpoint")

    async def deliver(
        self, request: Request, outgoing: Outgoing, locale: str | None = None
    ) -> Response:
        """A redirect with a detached signature, or an auto-posting form with a signed message."""
        location, relay = outgoing.endpoint.location, outgoing.relay
        # On the loop: one RSA signature of our own small message (as /token signs its ID
        # token), cheaper than the two thread switches a hop to the pool costs.
        if outgoing.endpoint.binding == HTTP_REDIRECT:
            url = redirect_url(location, outgoing.message, outgoing.parameter, relay, self._signing)
            return RedirectResponse(url, status_code=303)
        value = post_form_value(outgoing.message, self._signing)
        context = {
            "action": location,
            "fields": {outgoing.parameter: value, **({"RelayState": relay} if relay else {})},
        }
        return self._pages.render(request, "saml_post.html", context, 200, locale)


# A signed and encrypted Response of one IdP is 6-12 KB as base64 (about 1 ms of xmlsec work,
# DESIGN.md's budget); larger messages, up to what the form reader takes, go to a thread.
INLINE_XML_CHARS = 16 * 1024


def redirect_signed_part(query: str, parameter: str) -> str:
    """SAML Bindings §3.4.4.1: the signature covers the parameters as they were URL-encoded."""
    pieces = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    names = (parameter, "RelayState", "SigAlg")
    return "&".join(f"{name}={pieces[name]}" for name in names if name in pieces)


async def xml_step(work: Callable[..., Result], *args: Any, size: int | None = None) -> Result:
    """One step of XML security, in a thread so a large message does not stall the loop, or on
    the loop when the caller gives the message's `size` and it is at most `INLINE_XML_CHARS`:
    there the hop would cost more than the work. The one place where any exception of the XML
    stack (lxml, xmlsec, zlib, base64, ...) becomes XmlRejected, the provider's refusal; our
    own refusals pass through as they are."""
    try:
        if size is not None and size <= INLINE_XML_CHARS:
            return work(*args)
        return await asyncio.to_thread(work, *args)
    except (XmlRejected, StatusError):
        raise
    except Exception as error:
        log.warning("XML step %s failed: %s", work.__name__, type(error).__name__)
        raise XmlRejected(f"unreadable message ({type(error).__name__})") from error
