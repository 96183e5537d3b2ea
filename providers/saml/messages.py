"""The SAML messages we send, and the two bindings that carry them (SAML Bindings §3.4, §3.5).

AuthnRequest per Sweden Connect profile §5: Destination, our HTTP-POST ACS, ForceAuthn set
explicitly, RequestedAuthnContext with Comparison="exact" listing every acceptable LoA, and the
PrincipalSelection extension when the e-service named the person, and the UserMessage extension
(UMsg 1.0) when it sent a message for an IdP that shows one; for a signature approval the
SignMessage extension (`sign_message.py`) and Scoping/RequesterID instead. LogoutRequest/
LogoutResponse for single logout. Element order follows the schema: Issuer, Signature,
Extensions, Subject, NameIDPolicy, RequestedAuthnContext, Scoping.
"""

from __future__ import annotations

import base64
import secrets
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from lxml import etree

from providers.base import UserMessage
from providers.saml.xml import NS, RSA_SHA256, KeyPair, tag

PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT_SIZE_LIMIT = 64 * 1024
UMSG = "http://id.swedenconnect.se/authn/1.0/user-message/ns"  # UMsg 1.0 §2
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def new_id() -> str:
    """xs:ID must not start with a digit."""
    return f"_{secrets.token_hex(16)}"


def instant(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _element(name: str, parent: etree._Element | None = None, **attributes: str) -> etree._Element:
    prefix, local = name.split(":")
    nsmap = {p: NS[p] for p in ("samlp", "saml")} if parent is None else None
    if parent is None:
        return etree.Element(tag(prefix, local), attributes, nsmap=nsmap)
    return etree.SubElement(parent, tag(prefix, local), attributes)


@dataclass(frozen=True)
class Header:
    """What every protocol message of ours carries (SAML core §3.2.1): its ID, when it was
    issued, the endpoint it is for, and our entityID as its Issuer."""

    id: str
    issued_at: float
    destination: str
    issuer: str


def _message(name: str, header: Header, **attributes: str) -> etree._Element:
    common = {
        "ID": header.id,
        "Version": "2.0",
        "IssueInstant": instant(header.issued_at),
        "Destination": header.destination,
    }
    message = _element(name, None, **common, **attributes)
    _element("saml:Issuer", message).text = header.issuer
    return message


def authn_request(  # noqa: PLR0913 -- keyword-only: every caller names each part
    header: Header,
    *,
    acs_url: str,
    loa: Sequence[str],
    force_authn: bool,
    principal: Mapping[str, str],
    user_message: SamlUserMessage | None = None,
    sign_message: etree._Element | None = None,
    requester_id: str | None = None,
) -> etree._Element:
    """`sign_message` (a `<csig:SignMessage>`) goes into the Extensions; `requester_id` into
    `<samlp:Scoping><samlp:RequesterID>` (Sweden Connect profile §7: the e-service behind us)."""
    request = _message(
        "samlp:AuthnRequest",
        header,
        AssertionConsumerServiceURL=acs_url,
        ProtocolBinding=HTTP_POST,
        ForceAuthn="true" if force_authn else "false",
        IsPassive="false",
    )
    if principal or user_message or sign_message is not None:
        extensions = _element("samlp:Extensions", request)
        if principal:
            _principal_selection(extensions, principal)
        if user_message:
            _user_message(extensions, user_message)
        if sign_message is not None:
            extensions.append(sign_message)
    _element("samlp:NameIDPolicy", request, Format=PERSISTENT, AllowCreate="true")
    if loa:
        context = _element("samlp:RequestedAuthnContext", request, Comparison="exact")
        for uri in loa:
            _element("saml:AuthnContextClassRef", context).text = uri
    if requester_id:
        _element("samlp:RequesterID", _element("samlp:Scoping", request)).text = requester_id
    return request


def _principal_selection(extensions: etree._Element, principal: Mapping[str, str]) -> None:
    selection = etree.SubElement(
        extensions, tag("psc", "PrincipalSelection"), nsmap={"psc": NS["psc"]}
    )
    for name, value in principal.items():
        etree.SubElement(selection, tag("psc", "MatchValue"), Name=name).text = value


def _user_message(extensions: etree._Element, message: SamlUserMessage) -> None:
    """`<umsg:UserMessage mimeType>` with one Base64 `<umsg:Message xml:lang>` per language."""
    element = etree.SubElement(
        extensions, f"{{{UMSG}}}UserMessage", mimeType=message.mime_type, nsmap={"umsg": UMSG}
    )
    for language, text in message.texts:
        encoded = base64.b64encode(text.encode()).decode()
        etree.SubElement(element, f"{{{UMSG}}}Message", {XML_LANG: language}).text = encoded


@dataclass(frozen=True)
class SamlUserMessage:
    """UMsg 1.0's UserMessage: one MIME type, and (xml:lang, text) in the order sent."""

    mime_type: str
    texts: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, message: UserMessage, locale: str) -> SamlUserMessage:
        """SAML requires xml:lang: the untagged OIDC message gets the login's locale, unless a
        text is tagged with it (which RPar §2.1 prefers). The text for the login's locale comes
        first, since an IdP matching no language shows the first (UMsg §3.1): the citizen then
        reads what OIDC's rules would choose."""
        tagged = {tag: text for tag, text in message.texts.items() if tag}
        if "" in message.texts and message.tag_for(locale) is None:
            tagged[locale] = message.texts[""]
        first = message.tag_for(locale) or (locale if locale in tagged else None)
        ordered = sorted(tagged.items(), key=lambda item: item[0] != first)  # stable sort
        return cls(message.mime_type, tuple(ordered))


def logout_request(
    header: Header, *, name_id: str, name_id_format: str | None, session_index: str | None
) -> etree._Element:
    request = _message("samlp:LogoutRequest", header)
    name = _element("saml:NameID", request)
    if name_id_format:
        name.set("Format", name_id_format)
    name.text = name_id
    if session_index:
        _element("samlp:SessionIndex", request).text = session_index
    return request


def logout_response(
    header: Header, *, in_response_to: str, status: str = SUCCESS
) -> etree._Element:
    response = _message("samlp:LogoutResponse", header, InResponseTo=in_response_to)
    _element("samlp:StatusCode", _element("samlp:Status", response), Value=status)
    return response


def redirect_url(
    location: str,
    message: etree._Element,
    parameter: str,
    relay_state: str | None,
    key: KeyPair,
) -> str:
    """HTTP-Redirect binding: DEFLATE + base64 of the unsigned XML, signed query string."""
    compressor = zlib.compressobj(wbits=-15)
    deflated = compressor.compress(etree.tostring(message)) + compressor.flush()
    others = [("RelayState", relay_state)] if relay_state is not None else []
    others.append(("SigAlg", RSA_SHA256))
    query = f"{parameter}={query_base64(deflated)}&{urlencode(others)}"
    signature = query_base64(key.sign_bytes(query.encode()))
    separator = "&" if "?" in location else "?"
    return f"{location}{separator}{query}&Signature={signature}"


def query_base64(data: bytes) -> str:
    """Base64 of `data` as `urlencode` writes it in a query: of its alphabet only + / = are
    escaped. Without urlencode's Python loop over every character of a kilobyte-long message."""
    encoded = base64.b64encode(data).decode()
    return encoded.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def post_form_value(message: etree._Element, key: KeyPair) -> str:
    """HTTP-POST binding: the enveloped-signed XML, base64."""
    key.sign_element(message, after=message.find("saml:Issuer", NS))
    return base64.b64encode(etree.tostring(message)).decode()


def inflate(encoded: str) -> bytes:
    """The XML of an HTTP-Redirect message; bounded so a deflate bomb cannot exhaust memory."""
    decompressor = zlib.decompressobj(wbits=-15)
    data = decompressor.decompress(base64.b64decode(encoded, validate=True), REDIRECT_SIZE_LIMIT)
    if decompressor.unconsumed_tail:
        raise ValueError("message too large")
    return data
