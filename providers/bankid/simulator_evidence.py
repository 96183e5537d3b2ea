"""What the BankID simulator returns as `completionData.signature` and `.ocspResponse`: a real
enveloping XML-DSig in BankID's shape and a real OCSP response bound to it by its nonce
(shared/reference/bankid-2026-and-ciba.md §2.1, §2.3), made with the simulator's own test PKI
(simulator_pki.py). An e-service verifies them as it would BankID's (signature_check.py), with
the simulator's root in place of BankID's Member Banks root.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from lxml import etree

from providers.bankid.simulator_pki import TEST_POLICY_OID, Issued, Person, SimulatorPki

DSIG = "http://www.w3.org/2000/09/xmldsig#"
BANKID_TYPES = "http://www.bankid.com/signature/v1.0.0/types"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SIGNED_DATA_ID = "bidSignedData"
KEY_INFO_ID = "bidKeyInfo"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
# srvInfo: the RP as BankID names it, from the RP certificate (digest §2.1); all simulated.
RP_DN = (
    "cn=Portvakt simulated RP - TEST,name=Portvakt (BankID simulator),"
    "serialNumber=0000000000,o=Portvakt BankID simulator - TEST,c=SE"
)
RP_DISPLAY_NAME = "Portvakt (BankID simulator) - TEST"
CLIENT_VERSION = "Personal=0.0.0&BankID_exe=0.0.0&platform=portvakt-simulator&os_version=TEST&"
NONCE_RANDOM_BYTES = 12  # after the 20 bytes of SHA-1: 32 in all, as BankID's


@dataclass(frozen=True)
class SignedOrder:
    """What the simulated app signs: the person, the texts exactly as the RP sent them (Base64),
    and whether the order came to /sign (funcId Signing) or /auth (Identification)."""

    person: Person
    visible_data: str | None
    non_visible_data: str | None
    sign: bool
    uhi: str


def _default_namespace(uri: str) -> Any:
    # BankID's XML has no prefixes; lxml-stubs type nsmap keys as str only, lxml takes None.
    return {None: uri}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _element(parent: Any, tag: str, text: str | None = None, **attributes: str) -> Any:
    child = etree.SubElement(parent, tag, attributes)
    child.text = text
    return child


def _signed_data(order: SignedOrder) -> Any:
    data = etree.Element(
        f"{{{BANKID_TYPES}}}bankIdSignedData", nsmap=_default_namespace(BANKID_TYPES)
    )
    data.set("Id", SIGNED_DATA_ID)
    ns = f"{{{BANKID_TYPES}}}"
    if order.visible_data is not None:
        _element(
            data, ns + "usrVisibleData", order.visible_data, charset="UTF-8", visible="wysiwys"
        )
    if order.non_visible_data is not None:
        _element(data, ns + "usrNonVisibleData", order.non_visible_data)
    server = _element(data, ns + "srvInfo")
    _element(server, ns + "name", _b64(RP_DN))
    _element(server, ns + "nonce", base64.b64encode(secrets.token_bytes(20)).decode("ascii"))
    _element(server, ns + "displayName", _b64(RP_DISPLAY_NAME))
    client = _element(data, ns + "clientInfo")
    _element(client, ns + "funcId", "Signing" if order.sign else "Identification")
    _element(client, ns + "version", _b64(f"{CLIENT_VERSION}uhi={order.uhi}&"))
    app = _element(_element(client, ns + "env"), ns + "ai")
    _element(app, ns + "type", _b64("SIMULATOR"))
    _element(app, ns + "deviceInfo", _b64("Portvakt BankID simulator - TEST"))
    _element(app, ns + "uhi", order.uhi)
    condition = _element(_element(app, ns + "requirement"), ns + "condition")
    _element(condition, ns + "type", "CertificatePolicies")
    _element(condition, ns + "value", TEST_POLICY_OID)
    _element(app, ns + "uauth", "pw")
    return data


def _reference(signed_info: Any, uri: str, **attributes: str) -> None:
    reference = _element(signed_info, f"{{{DSIG}}}Reference", **attributes, URI=uri)
    transforms = _element(reference, f"{{{DSIG}}}Transforms")
    _element(transforms, f"{{{DSIG}}}Transform", Algorithm=C14N)
    _element(reference, f"{{{DSIG}}}DigestMethod", Algorithm=SHA256)
    _element(reference, f"{{{DSIG}}}DigestValue")


def _template(order: SignedOrder, chain: list[x509.Certificate]) -> Any:
    signature = etree.Element(f"{{{DSIG}}}Signature", nsmap=_default_namespace(DSIG))
    signed_info = _element(signature, f"{{{DSIG}}}SignedInfo")
    _element(signed_info, f"{{{DSIG}}}CanonicalizationMethod", Algorithm=C14N)
    _element(signed_info, f"{{{DSIG}}}SignatureMethod", Algorithm=RSA_SHA256)
    _reference(signed_info, "#" + SIGNED_DATA_ID, Type=BANKID_TYPES)
    _reference(signed_info, "#" + KEY_INFO_ID)
    _element(signature, f"{{{DSIG}}}SignatureValue")
    key_info = _element(signature, f"{{{DSIG}}}KeyInfo", Id=KEY_INFO_ID)
    x509_data = _element(key_info, f"{{{DSIG}}}X509Data")
    for certificate in chain:
        der = certificate.public_bytes(serialization.Encoding.DER)
        _element(x509_data, f"{{{DSIG}}}X509Certificate", base64.b64encode(der).decode("ascii"))
    _element(signature, f"{{{DSIG}}}Object").append(_signed_data(order))
    return signature


def signed_xml(order: SignedOrder, user: Issued, chain: list[x509.Certificate]) -> bytes:
    """The enveloping XML-DSig over bankIdSignedData and KeyInfo, signed with the user's key.
    The key given to xmlsec carries no certificate, so xmlsec leaves the KeyInfo we wrote (and
    signed) as it is."""
    signature = _template(order, chain)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(user.key_pem(), xmlsec.constants.KeyDataFormatPem)
    context.register_id(signature.find(f".//{{{BANKID_TYPES}}}bankIdSignedData"), "Id")
    context.register_id(signature.find(f"{{{DSIG}}}KeyInfo"), "Id")
    context.sign(signature)
    return XML_DECLARATION + etree.tostring(signature, encoding="UTF-8", xml_declaration=False)


def _der_element(der: bytes, offset: int) -> tuple[int, int]:
    """(where the value starts, where the element ends) of the DER element at `offset`."""
    length, start = der[offset + 1], offset + 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[start : start + count], "big"), start + count
    return start, start + length


def _with_produced_at(tbs: bytes, produced_at: datetime.datetime) -> bytes:
    """ResponseData (RFC 6960 §4.2.1) with producedAt set: cryptography always stamps the
    machine's time, the simulator stamps its own clock. GeneralizedTime has a fixed length."""
    offset, _ = _der_element(tbs, 0)
    if tbs[offset] == 0xA0:  # an explicit version
        offset = _der_element(tbs, offset)[1]
    offset = _der_element(tbs, offset)[1]  # responderID
    start, end = _der_element(tbs, offset)
    stamp = produced_at.astimezone(datetime.UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii")
    if tbs[offset] != 0x18 or end - start != len(stamp):
        raise ValueError("unexpected OCSP ResponseData layout")
    return tbs[:start] + stamp + tbs[end:]


def ocsp_response(
    signature_b64: str, user: Issued, pki: SimulatorPki, now: datetime.datetime
) -> bytes:
    """A good status for the user's certificate, signed by the responder, its nonce binding it to
    the signature as BankID's: SHA-1 of the Base64 signature as sent, then random bytes."""
    nonce = hashlib.sha1(signature_b64.encode("utf-8"), usedforsecurity=False).digest()
    nonce += secrets.token_bytes(NONCE_RANDOM_BYTES)
    responder = pki.responder
    built = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=user.certificate,
            issuer=pki.customer_ca.certificate,
            algorithm=hashes.SHA1(),  # noqa: S303 CertID: an identifier, SHA-1 per RFC 5019
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=None,
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
        .certificates([responder.certificate])
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .sign(responder.key, hashes.SHA256())
    )
    der = built.public_bytes(serialization.Encoding.DER)
    tbs = _with_produced_at(built.tbs_response_bytes, now)
    signature = responder.key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    for old, new in ((built.tbs_response_bytes, tbs), (built.signature, signature)):
        if der.count(old) != 1 or len(old) != len(new):
            raise ValueError("cannot restamp the OCSP response")
        der = der.replace(old, new)
    return der


@dataclass
class SimulatorEvidence:
    """The simulator's signing side: its PKI, made on first use (key generation costs some
    tens of milliseconds, and most simulator instances in the tests never sign)."""

    clock: Callable[[], float] = time.time
    _pki: SimulatorPki | None = field(default=None, init=False)

    @property
    def pki(self) -> SimulatorPki:
        if self._pki is None:
            self._pki = SimulatorPki(self.clock)
        return self._pki

    def root_pem(self) -> bytes:
        return self.pki.root_pem()

    def completion(self, order: SignedOrder) -> tuple[str, str]:
        """(`signature`, `ocspResponse`) for collect's completionData, both Base64."""
        user = self.pki.user(order.person)
        xml = signed_xml(order, user, self.pki.key_info_chain(user.certificate))
        signature = base64.b64encode(xml).decode("ascii")
        response = ocsp_response(signature, user, self.pki, self.pki.now())
        return signature, base64.b64encode(response).decode("ascii")
