"""A SAML 2.0 IdP for the tests, in the manner of a Sweden Connect IdP.

It reads the gateway's real SP metadata (keys, ACS), verifies the gateway's AuthnRequests with
python3-saml's own signature code (so our signing is checked by an independent implementation),
and answers with Responses it signs with python3-saml (`OneLogin_Saml2_Utils.add_sign`) and whose
assertion it encrypts with xmlsec to the SP's encryption certificate. Its metadata is served
alone or inside a federation aggregate signed by a federation key.

`Twist` bends one answer for the negative tests: unsigned, the wrong audience, an expired
assertion, a comment in a value, a wrapped assertion, an error status, ...

Like a Sweden Connect IdP it handles the SignMessage extension (DSSExt 1.5 §3.1.2): it reads
`<csig:Message>` or decrypts `<csig:EncryptedMessage>` with its own encryption key (published in
its metadata when `encryption_keys` is set), refuses with UnknownPrincipal a person other than
the PrincipalSelection names, fails a MustShow message it cannot show, and returns
`signMessageDigest` for what it showed; `Twist` can make it omit or bend the digest or ignore
MustShow.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import hashlib
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from xmlsec import constants

NS = {
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "mdattr": "urn:oasis:names:tc:SAML:metadata:attribute",
    "mdui": "urn:oasis:names:tc:SAML:metadata:ui",
    "psc": "http://id.swedenconnect.se/authn/1.0/principal-selection/ns",
    "csig": "http://id.elegnamnden.se/csig/1.1/dss-ext/ns",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "umsg": "http://id.swedenconnect.se/authn/1.0/user-message/ns",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
EIDAS_SUB = "http://id.elegnamnden.se/loa/1.0/eidas-nf-sub"
PNR = "urn:oid:1.2.752.29.4.13"
GIVEN_NAME = "urn:oid:2.5.4.42"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
SUPPORTS_USER_MESSAGE = "http://id.swedenconnect.se/general-ec/1.0/supports-user-message"
SIGSERVICE = "http://id.elegnamnden.se/st/1.0/sigservice"
CSIG = "http://id.elegnamnden.se/csig/1.1/dss-ext/ns"
SIGN_MESSAGE_DIGEST = "urn:oid:1.2.752.201.3.14"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
UNKNOWN_PRINCIPAL = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
REQUEST_UNSUPPORTED = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

PERSON = {
    PNR: "196408233234",
    GIVEN_NAME: "Ingrid",
    "urn:oid:2.5.4.4": "Testsson",
    "urn:oid:2.16.840.1.113730.3.1.241": "Ingrid Testsson",
    "urn:oid:1.3.6.1.5.5.7.9.1": "1964-08-23",
}
EIDAS_PERSON = {
    "urn:oid:1.2.752.201.3.4": "NO:05068907693",
    "urn:oid:1.2.752.201.3.5": "A",
    "urn:oid:1.2.752.201.3.7": "NO/SE/05068907693",
    "urn:oid:1.3.6.1.5.5.7.9.1": "1989-06-05",
    "urn:oid:2.5.4.42": "Ola",
    "urn:oid:2.5.4.4": "Nordmann",
    "urn:oid:2.5.4.6": "NO",
    "urn:oid:1.2.752.201.3.2": "_foreign-assertion-1",
}


@dataclass(frozen=True)
class KeyPairPaths:
    key: Path
    cert: Path

    @property
    def key_pem(self) -> str:
        return self.key.read_text()

    @property
    def cert_pem(self) -> str:
        return self.cert.read_text()


def make_key_pair(directory: Path, name: str) -> KeyPairPaths:
    """An RSA-2048 key and a self-signed certificate, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = KeyPairPaths(directory / f"{name}.key", directory / f"{name}.crt")
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths


def cert_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def instant(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(element: etree._Element, keys: KeyPairPaths) -> etree._Element:
    """python3-saml's enveloped signature (after the Issuer), RSA-SHA256 / SHA-256."""
    signed = OneLogin_Saml2_Utils.add_sign(
        element, keys.key_pem, keys.cert_pem, sign_algorithm=RSA_SHA256, digest_algorithm=SHA256
    )
    return etree.fromstring(signed)


def encrypt(assertion: etree._Element, sp_encryption_cert_pem: str) -> etree._Element:
    """<saml:EncryptedAssertion>: AES-256-GCM content, RSA-OAEP (MGF1, SHA-1) key transport."""
    wrapper = etree.Element(f"{{{NS['saml']}}}EncryptedAssertion", nsmap={"saml": NS["saml"]})
    wrapper.append(assertion)
    template = xmlsec.template.encrypted_data_create(
        wrapper, constants.TransformAes256Gcm, type=constants.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    context = xmlsec.EncryptionContext(_keys_manager(sp_encryption_cert_pem))
    context.key = xmlsec.Key.generate(constants.KeyDataAes, 256, constants.KeyDataTypeSession)
    context.encrypt_xml(template, assertion)
    return wrapper


@functools.lru_cache(maxsize=16)
def _keys_manager(certificate_pem: str) -> xmlsec.KeysManager:
    """Built once per certificate: creating an xmlsec KeysManager costs ~11 ms here."""
    manager = xmlsec.KeysManager()
    manager.add_key(
        xmlsec.Key.from_memory(certificate_pem.encode(), constants.KeyDataFormatCertPem)
    )
    return manager


@dataclass(frozen=True)
class Twist:
    """How one answer departs from a correct one."""

    sign_response: bool = True
    sign_assertion: bool = False
    encrypt: bool = True
    status: tuple[str, str | None] | None = None  # (code, subcode)
    loa: str | None = None
    audience: str | None = None
    destination: str | None = None
    recipient: str | None = None
    in_response_to: str | None = None
    issuer: str | None = None
    valid_seconds: int = 300
    age_seconds: int = 0
    authn_age_seconds: int = 0
    comment_in: str | None = None  # attribute Name whose value gets a comment in its middle
    attributes: dict[str, str] | None = None
    more_attributes: tuple[tuple[str, str], ...] = ()  # added after the person's, signed with them
    authenticating_authorities: tuple[str, ...] = ()  # a proxy IdP names who authenticated
    after: Callable[[etree._Element], etree._Element] | None = None  # edits the signed Response
    omit_sign_message_digest: bool = False  # shows the sign message, returns no proof
    sign_message_digest: str | None = None  # returns this instead of the right digest
    ignore_must_show: bool = False  # cannot show it, answers with an assertion all the same
    ignore_principal_selection: bool = False  # shows the sign message to whoever logs in


@dataclass
class SpView:
    """What the IdP knows of the SP: read from the SP's published metadata."""

    entity_id: str
    acs_url: str
    slo_url: str
    signing_cert_pem: str
    encryption_cert_pem: str

    @classmethod
    def from_metadata(cls, xml: bytes) -> SpView:
        root = etree.fromstring(xml)
        descriptor = root.find("md:SPSSODescriptor", NS)
        assert descriptor is not None

        def cert(use: str) -> str:
            body = descriptor.findtext(
                f"md:KeyDescriptor[@use='{use}']/ds:KeyInfo/ds:X509Data/ds:X509Certificate",
                namespaces=NS,
            )
            assert body
            return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"

        acs = descriptor.find(f"md:AssertionConsumerService[@Binding='{POST}']", NS)
        slo = descriptor.find(f"md:SingleLogoutService[@Binding='{REDIRECT}']", NS)
        assert acs is not None and slo is not None
        return cls(
            root.get("entityID", ""),
            acs.get("Location", ""),
            slo.get("Location", ""),
            cert("signing"),
            cert("encryption"),
        )


@dataclass
class ReceivedRequest:
    id: str
    binding: str
    relay_state: str | None
    force_authn: bool
    loa: list[str]
    comparison: str | None
    principal: dict[str, str]
    xml: bytes
    # UMsg 1.0's extension as received: (mimeType, [(xml:lang, decoded text), ...]), or None
    user_message: tuple[str | None, list[tuple[str | None, str]]] | None = None
    sign_message: ReceivedSignMessage | None = None
    requester_id: str | None = None  # Scoping/RequesterID


@dataclass(frozen=True)
class ReceivedSignMessage:
    """DSSExt's SignMessage as the IdP read it; `text` decrypted when it came encrypted."""

    must_show: bool
    mime_type: str | None
    display_entity: str | None
    encrypted: bool
    text: str
    # the EncryptedData's algorithms: (block encryption, key transport), or None
    algorithms: tuple[str, str] | None = None

    @property
    def digest(self) -> str:
        """signMessageDigest: SHA-256 over the UTF-8 bytes of the message (Attrs §3.2.4)."""
        digest = hashlib.sha256(self.text.encode()).digest()
        return f"{SHA256};{base64.b64encode(digest).decode()}"


@dataclass
class FakeIdP:
    """One IdP; serve `app` on `base_url`. Tests set `person`, `twist`, and read `requests`."""

    entity_id: str
    base_url: str
    keys: KeyPairPaths
    display: dict[str, str] = field(default_factory=lambda: {"sv": "Test-IdP", "en": "Test IdP"})
    assurance: tuple[str, ...] = (LOA3, LOA2)
    categories: tuple[str, ...] = ("http://id.elegnamnden.se/ec/1.0/loa3-pnr",)
    principal_selection: tuple[str, ...] = (PNR,)  # psc:RequestedPrincipalSelection names
    encryption_keys: KeyPairPaths | None = None  # published for SignMessage encryption
    encryption_methods: tuple[str, ...] = ()  # md:EncryptionMethod of that key
    shows_sign_messages: tuple[str, ...] = ("text", "text/markdown")  # MimeTypes it can show
    sp: SpView | None = None
    person: dict[str, str] = field(default_factory=lambda: dict(PERSON))
    twist: Twist = field(default_factory=Twist)
    requests: list[ReceivedRequest] = field(default_factory=list)
    logout_requests: list[bytes] = field(default_factory=list)
    last_response: str | None = None
    signer: Callable[[etree._Element], etree._Element] | None = None  # default: python3-saml
    session_index: str = field(default_factory=lambda: f"_s{secrets.token_hex(8)}")
    name_id: str = field(default_factory=lambda: f"_n{secrets.token_hex(8)}")

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/sso", self._sso, methods=["GET", "POST"]),
                Route("/slo", self._slo, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        self.person = dict(PERSON)
        self.twist = Twist()
        self.requests.clear()
        self.logout_requests.clear()

    # -- metadata -------------------------------------------------------------------------------

    def entity_descriptor(self) -> etree._Element:
        md = NS["md"]
        entity = etree.Element(
            f"{{{md}}}EntityDescriptor",
            nsmap={k: NS[k] for k in ("md", "ds", "saml", "mdattr", "mdui", "psc")},
            entityID=self.entity_id,
        )
        attributes = etree.SubElement(
            etree.SubElement(entity, f"{{{md}}}Extensions"), f"{{{NS['mdattr']}}}EntityAttributes"
        )
        for name, values in (
            ("http://macedir.org/entity-category", self.categories),
            ("urn:oasis:names:tc:SAML:attribute:assurance-certification", self.assurance),
        ):
            attribute = etree.SubElement(attributes, f"{{{NS['saml']}}}Attribute", Name=name)
            for value in values:
                etree.SubElement(attribute, f"{{{NS['saml']}}}AttributeValue").text = value
        descriptor = etree.SubElement(
            entity,
            f"{{{md}}}IDPSSODescriptor",
            protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
            WantAuthnRequestsSigned="true",
        )
        extensions = etree.SubElement(descriptor, f"{{{md}}}Extensions")
        ui = etree.SubElement(extensions, f"{{{NS['mdui']}}}UIInfo")
        for language, name in self.display.items():
            etree.SubElement(
                ui,
                f"{{{NS['mdui']}}}DisplayName",
                {"{http://www.w3.org/XML/1998/namespace}lang": language},
            ).text = name
        if self.principal_selection:
            selection = etree.SubElement(extensions, f"{{{NS['psc']}}}RequestedPrincipalSelection")
            for name in self.principal_selection:
                etree.SubElement(selection, f"{{{NS['psc']}}}MatchValue", Name=name)
        self._key_descriptor(descriptor, "signing", self.keys, ())
        if self.encryption_keys is not None:
            self._key_descriptor(
                descriptor, "encryption", self.encryption_keys, self.encryption_methods
            )
        etree.SubElement(
            descriptor,
            f"{{{md}}}SingleLogoutService",
            Binding=REDIRECT,
            Location=f"{self.base_url}/slo",
        )
        for binding in (REDIRECT, POST):
            etree.SubElement(
                descriptor,
                f"{{{md}}}SingleSignOnService",
                Binding=binding,
                Location=f"{self.base_url}/sso",
            )
        return entity

    @staticmethod
    def _key_descriptor(
        descriptor: etree._Element, use: str, keys: KeyPairPaths, methods: tuple[str, ...]
    ) -> None:
        md = NS["md"]
        key = etree.SubElement(descriptor, f"{{{md}}}KeyDescriptor", use=use)
        data = etree.SubElement(
            etree.SubElement(key, f"{{{NS['ds']}}}KeyInfo"), f"{{{NS['ds']}}}X509Data"
        )
        etree.SubElement(data, f"{{{NS['ds']}}}X509Certificate").text = cert_body(keys.cert_pem)
        for method in methods:
            etree.SubElement(key, f"{{{md}}}EncryptionMethod", Algorithm=method)

    def metadata(self) -> bytes:
        return etree.tostring(self.entity_descriptor())

    # -- single sign-on -------------------------------------------------------------------------

    async def _sso(self, request: Request) -> Response:
        assert self.sp is not None, "the IdP has not read the SP's metadata"
        if request.method == "GET":
            xml = self._verified_redirect(request)
            if xml is None:
                return Response("bad AuthnRequest signature", status_code=400)
            relay = request.query_params.get("RelayState")
            binding = REDIRECT
        else:
            form = await request.form()
            xml = base64.b64decode(str(form["SAMLRequest"]))
            if not OneLogin_Saml2_Utils.validate_sign(
                xml, self.sp.signing_cert_pem, xpath="/samlp:AuthnRequest/ds:Signature"
            ):
                return Response("bad AuthnRequest signature", status_code=400)
            relay = str(form["RelayState"]) if "RelayState" in form else None
            binding = POST
        received = self._read_request(xml, binding, relay)
        self.requests.append(received)
        response = self.response_to(received)
        self.last_response = response
        return self.post_form(
            self.sp.acs_url, {"SAMLResponse": response, "RelayState": relay or ""}
        )

    def _verified_redirect(self, request: Request) -> bytes | None:
        """The SP's HTTP-Redirect SAMLRequest, checked with python3-saml's own verifier."""
        assert self.sp is not None
        params = request.query_params
        query = request.scope["query_string"].decode()
        names = ("SAMLRequest", "RelayState", "SigAlg")
        signed = "&".join(p for p in query.split("&") if p.split("=")[0] in names)
        if not OneLogin_Saml2_Utils.validate_binary_sign(
            signed,
            base64.b64decode(params["Signature"]),
            self.sp.signing_cert_pem,
            params["SigAlg"],
        ):
            return None
        return zlib.decompress(base64.b64decode(params["SAMLRequest"]), -15)

    def _read_request(self, xml: bytes, binding: str, relay: str | None) -> ReceivedRequest:
        root = etree.fromstring(xml)
        context = root.find("samlp:RequestedAuthnContext", NS)
        return ReceivedRequest(
            id=root.get("ID", ""),
            binding=binding,
            relay_state=relay,
            force_authn=root.get("ForceAuthn") == "true",
            loa=[
                e.text or ""
                for e in root.findall("samlp:RequestedAuthnContext/saml:AuthnContextClassRef", NS)
            ],
            comparison=context.get("Comparison") if context is not None else None,
            principal={
                e.get("Name", ""): e.text or ""
                for e in root.findall("samlp:Extensions/psc:PrincipalSelection/psc:MatchValue", NS)
            },
            xml=xml,
            user_message=_user_message(root),
            sign_message=self._sign_message(root),
            requester_id=root.findtext("samlp:Scoping/samlp:RequesterID", namespaces=NS),
        )

    def _sign_message(self, request: etree._Element) -> ReceivedSignMessage | None:
        """DSSExt §3.1.2: every compliant IdP parses it; an encrypted one with its own key."""
        found = request.findall("samlp:Extensions/csig:SignMessage", NS)
        if not found:
            return None
        assert len(found) == 1, "more than one SignMessage"
        element = found[0]
        plain = element.find("csig:Message", NS)
        algorithms = None
        if plain is None:
            data = element.find("csig:EncryptedMessage/xenc:EncryptedData", NS)
            assert data is not None, "SignMessage with neither Message nor EncryptedMessage"
            algorithms = (
                data.find("xenc:EncryptionMethod", NS).get("Algorithm", ""),  # type: ignore[union-attr]
                data.find(".//xenc:EncryptedKey/xenc:EncryptionMethod", NS).get("Algorithm", ""),  # type: ignore[union-attr]
            )
            plain = self._decrypt(data)
        text = base64.b64decode(plain.text or "", validate=True).decode()
        return ReceivedSignMessage(
            must_show=element.get("MustShow") in ("true", "1"),
            mime_type=element.get("MimeType"),
            display_entity=element.get("DisplayEntity"),
            encrypted=algorithms is not None,
            text=text,
            algorithms=algorithms,
        )

    def _decrypt(self, data: etree._Element) -> etree._Element:
        assert self.encryption_keys is not None, "encrypted to an IdP that published no key"
        manager = xmlsec.KeysManager()
        manager.add_key(
            xmlsec.Key.from_memory(
                self.encryption_keys.key_pem.encode(), constants.KeyDataFormatPem
            )
        )
        decrypted = xmlsec.EncryptionContext(manager).decrypt(copy.deepcopy(data))
        assert decrypted.tag == f"{{{CSIG}}}Message", decrypted.tag
        return decrypted

    @staticmethod
    def post_form(action: str, fields: dict[str, str]) -> HTMLResponse:
        inputs = "".join(
            f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in fields.items()
        )
        button = '<button type="submit">Skicka till tjänsten</button>'
        return HTMLResponse(
            f'<form method="post" action="{escape(action)}">{inputs}{button}</form>'
        )

    def response_to(self, request: ReceivedRequest, twist: Twist | None = None) -> str:
        """A base64 SAMLResponse answering `request`, bent by `twist` (default: self.twist)."""
        assert self.sp is not None
        twist = twist or self.twist
        now = time.time() - twist.age_seconds
        in_response_to = twist.in_response_to or request.id
        destination = twist.destination or self.sp.acs_url
        saml, samlp = NS["saml"], NS["samlp"]
        response = etree.Element(
            f"{{{samlp}}}Response",
            nsmap={"samlp": samlp, "saml": saml},
            ID=f"_r{secrets.token_hex(16)}",
            Version="2.0",
            IssueInstant=instant(now),
            Destination=destination,
            InResponseTo=in_response_to,
        )
        etree.SubElement(response, f"{{{saml}}}Issuer").text = twist.issuer or self.entity_id
        status = etree.SubElement(response, f"{{{samlp}}}Status")
        refusal = twist.status or self._sign_message_refusal(request, twist)
        code, subcode = refusal or (SUCCESS, None)
        top = etree.SubElement(status, f"{{{samlp}}}StatusCode", Value=code)
        if subcode:
            etree.SubElement(top, f"{{{samlp}}}StatusCode", Value=subcode)
        if refusal is None:
            proof = self._sign_message_proof(request, twist)
            assertion = self.assertion(
                request,
                replace(twist, more_attributes=(*twist.more_attributes, *proof)),
                now,
                in_response_to,
            )
            if twist.sign_assertion:
                assertion = self._sign(assertion)
            if twist.comment_in:
                self._inject_comment(assertion, twist.comment_in)
            response.append(
                encrypt(assertion, self.sp.encryption_cert_pem) if twist.encrypt else assertion
            )
        if twist.sign_response:
            response = self._sign(response)
        if twist.after is not None:
            response = twist.after(response)
        return base64.b64encode(etree.tostring(response)).decode()

    def _sign(self, element: etree._Element) -> etree._Element:
        return self.signer(element) if self.signer else sign(element, self.keys)

    def _sign_message_refusal(
        self, request: ReceivedRequest, twist: Twist
    ) -> tuple[str, str] | None:
        """DSSExt §3.1.2: another person than PrincipalSelection names sees nothing
        (UnknownPrincipal); a MustShow message it cannot show fails the request."""
        message = request.sign_message
        if message is None:
            return None
        named = request.principal.get(PNR)
        mismatch = named is not None and named != self.person.get(PNR)
        if mismatch and not twist.ignore_principal_selection:
            return RESPONDER, UNKNOWN_PRINCIPAL
        if message.must_show and not self._can_show(message) and not twist.ignore_must_show:
            return REQUESTER, REQUEST_UNSUPPORTED
        return None

    def _can_show(self, message: ReceivedSignMessage) -> bool:
        return (message.mime_type or "text") in self.shows_sign_messages

    def _sign_message_proof(
        self, request: ReceivedRequest, twist: Twist
    ) -> tuple[tuple[str, str], ...]:
        """The signMessageDigest attribute for a message it showed (or as `twist` bends it)."""
        message = request.sign_message
        if message is None or not self._can_show(message) or twist.omit_sign_message_digest:
            return ()
        return ((SIGN_MESSAGE_DIGEST, twist.sign_message_digest or message.digest),)

    def assertion(
        self, request: ReceivedRequest, twist: Twist, now: float, in_response_to: str
    ) -> etree._Element:
        assert self.sp is not None
        saml = NS["saml"]
        assertion = etree.Element(
            f"{{{saml}}}Assertion",
            nsmap={"saml": saml, "xs": NS["xs"], "xsi": NS["xsi"]},
            ID=f"_a{secrets.token_hex(16)}",
            Version="2.0",
            IssueInstant=instant(now),
        )
        etree.SubElement(assertion, f"{{{saml}}}Issuer").text = twist.issuer or self.entity_id
        subject = etree.SubElement(assertion, f"{{{saml}}}Subject")
        name_id = etree.SubElement(
            subject,
            f"{{{saml}}}NameID",
            Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        )
        name_id.text = self.name_id
        confirmation = etree.SubElement(
            subject,
            f"{{{saml}}}SubjectConfirmation",
            Method="urn:oasis:names:tc:SAML:2.0:cm:bearer",
        )
        etree.SubElement(
            confirmation,
            f"{{{saml}}}SubjectConfirmationData",
            InResponseTo=in_response_to,
            NotOnOrAfter=instant(now + twist.valid_seconds),
            Recipient=twist.recipient or self.sp.acs_url,
        )
        conditions = etree.SubElement(
            assertion,
            f"{{{saml}}}Conditions",
            NotBefore=instant(now - 5),
            NotOnOrAfter=instant(now + twist.valid_seconds),
        )
        restriction = etree.SubElement(conditions, f"{{{saml}}}AudienceRestriction")
        etree.SubElement(restriction, f"{{{saml}}}Audience").text = (
            twist.audience or self.sp.entity_id
        )
        statement = etree.SubElement(
            assertion,
            f"{{{saml}}}AuthnStatement",
            AuthnInstant=instant(now - twist.authn_age_seconds),
            SessionIndex=self.session_index,
        )
        context = etree.SubElement(statement, f"{{{saml}}}AuthnContext")
        loa = twist.loa or (request.loa[0] if request.loa else LOA3)
        etree.SubElement(context, f"{{{saml}}}AuthnContextClassRef").text = loa
        for authority in twist.authenticating_authorities:
            etree.SubElement(context, f"{{{saml}}}AuthenticatingAuthority").text = authority
        attributes = etree.SubElement(assertion, f"{{{saml}}}AttributeStatement")
        for name, value in [*(twist.attributes or self.person).items(), *twist.more_attributes]:
            attribute = etree.SubElement(
                attributes,
                f"{{{saml}}}Attribute",
                Name=name,
                NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
            )
            element = etree.SubElement(attribute, f"{{{saml}}}AttributeValue")
            element.set(f"{{{NS['xsi']}}}type", "xs:string")
            element.text = value
        return assertion

    @staticmethod
    def _inject_comment(assertion: etree._Element, name: str) -> None:
        value = assertion.find(f".//saml:Attribute[@Name='{name}']/saml:AttributeValue", NS)
        assert value is not None and value.text
        head, tail = value.text[:4], value.text[4:]
        value.text = head
        comment = etree.Comment("x")
        comment.tail = tail
        value.append(comment)

    # -- single logout --------------------------------------------------------------------------

    async def _slo(self, request: Request) -> Response:
        """SP-initiated logout: verify the LogoutRequest, answer Success to the SP's SLO."""
        assert self.sp is not None
        params = request.query_params
        xml = self._verified_redirect(request)
        if xml is None:
            return Response("bad LogoutRequest signature", status_code=400)
        self.logout_requests.append(xml)
        request_id = etree.fromstring(xml).get("ID", "")
        answer = self.logout_message("LogoutResponse", InResponseTo=request_id)
        return RedirectResponse(
            self.redirect(self.sp.slo_url, answer, "SAMLResponse", params.get("RelayState")), 303
        )

    def logout_message(self, kind: str, **attributes: str) -> etree._Element:
        assert self.sp is not None
        samlp, saml = NS["samlp"], NS["saml"]
        message = etree.Element(
            f"{{{samlp}}}{kind}",
            nsmap={"samlp": samlp, "saml": saml},
            ID=f"_l{secrets.token_hex(16)}",
            Version="2.0",
            IssueInstant=instant(time.time()),
            Destination=self.sp.slo_url,
            **attributes,
        )
        etree.SubElement(message, f"{{{saml}}}Issuer").text = self.entity_id
        if kind == "LogoutResponse":
            status = etree.SubElement(message, f"{{{samlp}}}Status")
            etree.SubElement(status, f"{{{samlp}}}StatusCode", Value=SUCCESS)
        else:
            name_id = etree.SubElement(message, f"{{{saml}}}NameID")
            name_id.text = self.name_id
            etree.SubElement(message, f"{{{samlp}}}SessionIndex").text = self.session_index
        return message

    def redirect(
        self, location: str, message: etree._Element, parameter: str, relay: str | None
    ) -> str:
        """HTTP-Redirect binding, signed with python3-saml's sign_binary."""
        compressor = zlib.compressobj(wbits=-15)
        deflated = compressor.compress(etree.tostring(message)) + compressor.flush()
        fields = [(parameter, base64.b64encode(deflated).decode())]
        if relay:
            fields.append(("RelayState", relay))
        fields.append(("SigAlg", RSA_SHA256))
        query = urlencode(fields)
        signature = OneLogin_Saml2_Utils.sign_binary(
            query, self.keys.key_pem, algorithm=constants.TransformRsaSha256
        )
        return (
            f"{location}?{query}&{urlencode({'Signature': base64.b64encode(signature).decode()})}"
        )

    def idp_initiated_logout_url(self) -> str:
        assert self.sp is not None
        return self.redirect(
            self.sp.slo_url, self.logout_message("LogoutRequest"), "SAMLRequest", None
        )


def aggregate(
    entities: list[etree._Element],
    signer: KeyPairPaths | None,
    valid_for: dt.timedelta = dt.timedelta(days=7),
    filler: int = 0,
) -> bytes:
    """A federation metadata aggregate, signed by `signer`; `filler` adds SP entities."""
    root = etree.Element(
        f"{{{NS['md']}}}EntitiesDescriptor",
        nsmap={"md": NS["md"], "ds": NS["ds"]},
        ID=f"_m{secrets.token_hex(8)}",
        Name="urn:test:federation",
        validUntil=(dt.datetime.now(dt.UTC) + valid_for).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    for entity in entities:
        root.append(entity)
    for number in range(filler):
        sp = etree.SubElement(
            root, f"{{{NS['md']}}}EntityDescriptor", entityID=f"https://sp{number}.example.se"
        )
        etree.SubElement(
            sp,
            f"{{{NS['md']}}}SPSSODescriptor",
            protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
        )
    if signer is not None:
        root = sign(root, signer)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _user_message(
    request: etree._Element,
) -> tuple[str | None, list[tuple[str | None, str]]] | None:
    """The UserMessage extension of an AuthnRequest, its messages decoded as an IdP would."""
    found = request.findall("samlp:Extensions/umsg:UserMessage", NS)
    if not found:
        return None
    assert len(found) == 1, "more than one UserMessage"
    messages = [
        (message.get(XML_LANG), base64.b64decode(message.text or "", validate=True).decode())
        for message in found[0].findall("umsg:Message", NS)
    ]
    return found[0].get("mimeType"), messages


def reissued(idp: FakeIdP, **changes: Any) -> FakeIdP:
    return replace(idp, **changes)
