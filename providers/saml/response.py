"""Validate a SAML Response at the ACS (Sweden Connect deployment profile §6).

Every check is here, in the order the profile lists them, and any failure rejects the response:
signatures by the IdP's metadata keys over the very elements that are read, one encrypted
assertion, issuer, audience, recipient/destination, time windows with a configurable skew,
InResponseTo bound to our request, and an AuthnContextClassRef that was asked for. What comes
out is an `Assertion` of plain values; the XML goes no further than this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from providers.saml.metadata import IdentityProvider
from providers.saml.xml import NS, DecryptionKeys, XmlRejected, tag, verify_enveloped

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
RESPONSE_MAX_AGE_SECONDS = 300
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
ASSERTIONS = etree.XPath("count(//saml:Assertion | //saml:EncryptedAssertion)", namespaces=NS)


class ResponseRejected(XmlRejected):
    """The response fails a check; the message is for the log, never for the citizen."""


class AssuranceNotRequested(ResponseRejected):
    """The IdP asserted an AuthnContextClassRef we did not ask for."""


class StatusError(Exception):
    """The IdP answered with an error status instead of an assertion."""

    def __init__(self, code: str, subcode: str | None, message: str | None) -> None:
        super().__init__(f"{code} {subcode or ''} {message or ''}".strip())
        self.code = code
        self.subcode = subcode
        self.message = message


@dataclass(frozen=True)
class Expectation:
    """What the response must match: our request and our own endpoints and policy."""

    request_id: str
    idp: IdentityProvider
    acs_url: str
    sp_entity_id: str
    acceptable_loa: frozenset[str]
    requested_at: float
    force_authn: bool
    require_encryption: bool
    require_signed_assertion: bool
    clock_skew: int


@dataclass(frozen=True)
class Assertion:
    id: str
    issuer: str
    name_id: str
    name_id_format: str | None
    session_index: str | None
    authn_context: str
    authn_instant: float
    valid_until: float
    attributes: Mapping[str, tuple[str, ...]]
    # SAML Core §2.7.2.2: the authorities the issuer relied on (a proxy IdP names the real one).
    authenticating_authorities: tuple[str, ...] = ()


def validate_response(
    root: etree._Element, expected: Expectation, decryption: DecryptionKeys, now: float
) -> Assertion:
    response_signed = _check_response(root, expected, now)
    _check_status(root)
    assertion = _the_assertion(root, expected, decryption)
    assertion_signed = verify_enveloped(assertion, expected.idp.signing_keys)
    if not (response_signed or assertion_signed):
        raise ResponseRejected("neither the Response nor the Assertion is signed")
    if expected.require_signed_assertion and not assertion_signed:
        raise ResponseRejected("the Assertion is not signed")
    return _read_assertion(assertion, expected, now)


def _check_response(root: etree._Element, expected: Expectation, now: float) -> bool:
    """The Response element answers our request, from our IdP, to us, now; True if signed."""
    skew = expected.clock_skew
    if root.tag != tag("samlp", "Response") or root.get("Version") != "2.0" or not root.get("ID"):
        raise ResponseRejected("not a SAML 2.0 Response")
    if root.get("InResponseTo") != expected.request_id:
        raise ResponseRejected("InResponseTo does not name our request")
    issuer = root.findtext("saml:Issuer", namespaces=NS)
    if issuer is not None and issuer.strip() != expected.idp.entity_id:
        raise ResponseRejected("Response Issuer is not the IdP we sent the request to")
    response_signed = verify_enveloped(root, expected.idp.signing_keys)
    destination = root.get("Destination")
    if destination != expected.acs_url and (destination is not None or response_signed):
        raise ResponseRejected("Destination is not this ACS")
    issued = _instant(root.get("IssueInstant"))
    if not now - RESPONSE_MAX_AGE_SECONDS - skew <= issued <= now + skew:
        raise ResponseRejected("Response IssueInstant is outside the accepted window")
    return response_signed


def _the_assertion(
    root: etree._Element, expected: Expectation, decryption: DecryptionKeys
) -> etree._Element:
    """The one assertion of the Response, decrypted; plain only where encryption is not required."""
    if ASSERTIONS(root) != 1:
        raise ResponseRejected("the Response must carry exactly one assertion")
    encrypted = root.find("saml:EncryptedAssertion", NS)
    if encrypted is not None:
        return decryption.decrypt_assertion(encrypted)
    if expected.require_encryption:
        raise ResponseRejected("the assertion is not encrypted")
    return _child(root, "saml", "Assertion")


def _check_status(root: etree._Element) -> None:
    status = _child(root, "samlp", "Status")
    code = status.find("samlp:StatusCode", NS)
    if code is None:
        raise ResponseRejected("Status without StatusCode")
    if code.get("Value") == SUCCESS:
        return
    sub = code.find("samlp:StatusCode", NS)
    raise StatusError(
        code.get("Value", ""),
        sub.get("Value") if sub is not None else None,
        status.findtext("samlp:StatusMessage", namespaces=NS),
    )


def _read_assertion(assertion: etree._Element, expected: Expectation, now: float) -> Assertion:
    if assertion.get("Version") != "2.0" or not assertion.get("ID"):
        raise ResponseRejected("not a SAML 2.0 Assertion")
    if (assertion.findtext("saml:Issuer", namespaces=NS) or "").strip() != expected.idp.entity_id:
        raise ResponseRejected("Assertion Issuer is not the IdP we sent the request to")

    subject = _child(assertion, "saml", "Subject")
    name_id = _child(subject, "saml", "NameID")
    if not (name_id.text or "").strip():
        raise ResponseRejected("empty NameID")
    confirmed_until = _bearer_confirmation(subject, expected, now)
    valid_until = _check_conditions(_child(assertion, "saml", "Conditions"), expected, now)
    statement, authn_instant, loa = _authn_statement(assertion, expected, now)
    return Assertion(
        id=assertion.get("ID", ""),
        issuer=expected.idp.entity_id,
        name_id=(name_id.text or "").strip(),
        name_id_format=name_id.get("Format"),
        session_index=statement.get("SessionIndex"),
        authn_context=loa,
        authn_instant=authn_instant,
        valid_until=min(valid_until, confirmed_until),
        attributes=_attributes(assertion),
        authenticating_authorities=_authenticating_authorities(statement),
    )


def _check_conditions(conditions: etree._Element, expected: Expectation, now: float) -> float:
    """Valid now and meant for us; the time it stops being valid."""
    skew = expected.clock_skew
    not_before = conditions.get("NotBefore")
    if not_before is not None and _instant(not_before) > now + skew:
        raise ResponseRejected("Conditions NotBefore is in the future")
    valid_until = _instant(conditions.get("NotOnOrAfter"))
    if valid_until <= now - skew:
        raise ResponseRejected("Conditions NotOnOrAfter has passed")
    restrictions = conditions.findall("saml:AudienceRestriction", NS)
    if not restrictions or any(
        expected.sp_entity_id
        not in {(a.text or "").strip() for a in r.findall("saml:Audience", NS)}
        for r in restrictions
    ):
        raise ResponseRejected("we are not the Audience")
    return valid_until


def _authn_statement(
    assertion: etree._Element, expected: Expectation, now: float
) -> tuple[etree._Element, float, str]:
    """The one AuthnStatement, fresh enough, at a requested LoA: (it, AuthnInstant, the LoA)."""
    skew = expected.clock_skew
    statements = assertion.findall("saml:AuthnStatement", NS)
    if len(statements) != 1:
        raise ResponseRejected("the Assertion must have exactly one AuthnStatement")
    statement = statements[0]
    authn_instant = _instant(statement.get("AuthnInstant"))
    if expected.force_authn and authn_instant < expected.requested_at - skew:
        raise ResponseRejected("ForceAuthn was asked but the authentication is older")
    session_end = statement.get("SessionNotOnOrAfter")
    if session_end is not None and _instant(session_end) <= now - skew:
        raise ResponseRejected("SessionNotOnOrAfter has passed")
    context = statement.find("saml:AuthnContext", NS)
    loa = (
        (context.findtext("saml:AuthnContextClassRef", namespaces=NS) or "").strip()
        if (context is not None)
        else ""
    )
    if loa not in expected.acceptable_loa:
        raise AssuranceNotRequested(f"AuthnContextClassRef {loa!r} was not requested")
    return statement, authn_instant, loa


def _authenticating_authorities(statement: etree._Element) -> tuple[str, ...]:
    found = statement.findall("saml:AuthnContext/saml:AuthenticatingAuthority", NS)
    return tuple(text for element in found if (text := (element.text or "").strip()))


def _attributes(assertion: etree._Element) -> dict[str, tuple[str, ...]]:
    """Attribute Name -> its values, from at most one AttributeStatement, each Name once."""
    attribute_statements = assertion.findall("saml:AttributeStatement", NS)
    if len(attribute_statements) > 1:
        raise ResponseRejected("more than one AttributeStatement")
    attributes: dict[str, tuple[str, ...]] = {}
    for statement_element in attribute_statements:
        if statement_element.find("saml:EncryptedAttribute", NS) is not None:
            raise ResponseRejected("EncryptedAttribute is not accepted")
        for attribute in statement_element.findall("saml:Attribute", NS):
            name = attribute.get("Name", "").strip()
            if name in attributes:  # which one names the person? Neither is believed.
                raise ResponseRejected(f"attribute {name!r} appears more than once")
            attributes[name] = tuple(
                (value.text or "").strip()
                for value in attribute.findall("saml:AttributeValue", NS)
                if value.get(XSI_NIL) not in ("true", "1")
            )
    return attributes


def _bearer_confirmation(subject: etree._Element, expected: Expectation, now: float) -> float:
    """SAML Profiles §4.1.4.3: one bearer SubjectConfirmation for our request, at our ACS."""
    for confirmation in subject.findall("saml:SubjectConfirmation", NS):
        data = confirmation.find("saml:SubjectConfirmationData", NS)
        if confirmation.get("Method") != BEARER or data is None:
            continue
        if data.get("InResponseTo") != expected.request_id:
            continue
        if data.get("Recipient") != expected.acs_url:
            continue
        not_on_or_after = data.get("NotOnOrAfter")
        if not_on_or_after is None or _instant(not_on_or_after) <= now - expected.clock_skew:
            continue
        not_before = data.get("NotBefore")
        if not_before is not None:
            continue  # Profiles §4.1.4.2: a bearer confirmation has no NotBefore
        return _instant(not_on_or_after)
    raise ResponseRejected("no valid bearer SubjectConfirmation for our request at this ACS")


def _child(parent: etree._Element, prefix: str, name: str) -> etree._Element:
    found = parent.findall(f"{prefix}:{name}", NS)
    if len(found) != 1:
        raise ResponseRejected(f"expected exactly one {name}")
    element: etree._Element = found[0]
    return element


def _instant(value: str | None) -> float:
    if not value:
        raise ResponseRejected("a required time is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ResponseRejected(f"unreadable time {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
