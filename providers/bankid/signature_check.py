"""Offline verification of a BankID signature and its OCSP response, the procedure of
shared/reference/bankid-2026-and-ciba.md §2.4 (steps 1-8), for anyone holding the
`userSignature`/`authnEvidence` pair: an e-service, an archive, our tests. It needs no network:
the trust anchor is the pinned Member Banks root (BankID's, or the simulator's for tests).

    facts = verify_bankid_signature(signature_b64, ocsp_b64, root_pem, expected_non_visible=tbs)
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

DSIG = "http://www.w3.org/2000/09/xmldsig#"
BANKID_TYPES = "http://www.bankid.com/signature/v1.0.0/types"
C14N_METHODS = frozenset(
    {
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    }
)
# BankID signs with rsa-sha256 and sha256 digests; nothing weaker is accepted.
SIGNATURE_METHODS = frozenset(
    f"http://www.w3.org/2001/04/xmldsig-more#{name}"
    for name in ("rsa-sha256", "rsa-sha384", "rsa-sha512")
)
DIGEST_METHODS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
OCSP_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
REFERENCES = ("#bidSignedData", "#bidKeyInfo")
MAX_CHAIN = 4  # user, customer CA, bank CA: BankID's chains are three long below the root
NONCE_PREFIX_BYTES = 20


class SignatureNotVerified(ValueError):
    """The evidence does not prove what it claims; the message says which step failed."""


# What cryptography, lxml and xmlsec raise on a certificate, key, algorithm or structure they
# cannot read: flipped bytes in evidence must be refused, never crash the caller.
UNREADABLE = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion, xmlsec.Error)


@dataclass(frozen=True)
class SignatureFacts:
    """What a verified signature says (step 8), texts as Base64 exactly as signed."""

    personal_number: str
    given_name: str
    surname: str
    func_id: str
    visible_data: str | None
    non_visible_data: str | None
    relying_party: str  # srvInfo/name decoded: the DN of the RP that ordered the signature
    signed_at: datetime.datetime  # the OCSP response's producedAt: the signature has no time
    certificate: x509.Certificate


def verify_bankid_signature(
    signature_b64: str,
    ocsp_b64: str,
    root_pem: bytes,
    expected_visible: str | None = None,
    expected_non_visible: str | None = None,
    at: datetime.datetime | None = None,
) -> SignatureFacts:
    """Raise SignatureNotVerified unless every step holds. Certificates are judged at `at`,
    by default at the OCSP response's producedAt (archived evidence outlives the one-year user
    certificate); the expected texts, when given, must equal the signed ones verbatim."""
    try:
        facts = _verified(signature_b64, ocsp_b64, root_pem, at)
    except SignatureNotVerified:
        raise
    except UNREADABLE as error:  # a field the libraries cannot read proves nothing
        raise SignatureNotVerified(f"the evidence is malformed: {type(error).__name__}") from error
    _expect("usrVisibleData", expected_visible, facts.visible_data)
    _expect("usrNonVisibleData", expected_non_visible, facts.non_visible_data)
    return facts


def certificate_policies(signature_b64: str) -> frozenset[str]:
    """The policy OIDs of the certificate a BankID signature was made with (KeyInfo's first),
    read with step 1's hardening. Not a verification: for a completion that came straight
    from BankID over mutual TLS, which BankID the citizen used (bankid-rp-v6.md §2.2)."""
    try:
        user = _key_info_certificates(_parsed(_decoded(signature_b64, "signature")))[0]
        policies = user.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return frozenset()
    except UNREADABLE as error:
        raise SignatureNotVerified(
            f"the certificate is malformed: {type(error).__name__}"
        ) from error
    return frozenset(policy.policy_identifier.dotted_string for policy in policies)


def _verified(
    signature_b64: str, ocsp_b64: str, root_pem: bytes, at: datetime.datetime | None
) -> SignatureFacts:
    root = _root(root_pem)
    signature = _parsed(_decoded(signature_b64, "signature"))  # step 1
    chain = _key_info_certificates(signature)
    _check_xml_signature(signature, chain[0])  # step 2
    response = _ocsp(_decoded(ocsp_b64, "ocspResponse"))  # step 4
    when = at or response.produced_at_utc
    issuer = _check_chain(chain, root, when)  # step 3
    _check_responder(response, issuer, when)  # steps 4-5
    _check_status(response, chain[0], issuer)  # step 6
    _check_nonce(response, signature_b64)  # step 7
    return _facts(signature, chain[0], response.produced_at_utc)  # step 8


def _decoded(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise SignatureNotVerified(f"{what} is not Base64") from error


def _root(root_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(root_pem)
    except ValueError as error:
        raise SignatureNotVerified("the pinned root is not a PEM certificate") from error


def _parsed(xml: bytes) -> Any:
    """Step 1: no entities, no DTD, no network; one Signature, one bankIdSignedData, and each
    referenced Id exactly once, so the payload read is the one the signature covers."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        document: Any = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as error:
        raise SignatureNotVerified("the signature is not well-formed XML") from error
    if document.getroottree().docinfo.doctype:
        raise SignatureNotVerified("the signature carries a DTD")
    if document.tag != f"{{{DSIG}}}Signature":
        raise SignatureNotVerified("the signature's root is not an XML-DSig Signature")
    for tag in (f"{{{DSIG}}}Signature", f"{{{BANKID_TYPES}}}bankIdSignedData"):
        if sum(1 for _ in document.iter(tag)) != 1:
            raise SignatureNotVerified(f"the signature must hold exactly one {tag}")
    for reference in REFERENCES:
        if len(document.xpath("//*[@Id=$id]", id=reference[1:])) != 1:
            raise SignatureNotVerified(f"the Id {reference[1:]} must occur exactly once")
    _check_signed_info(document)
    return document


def _check_signed_info(document: Any) -> None:
    signed_info = document.find(f"{{{DSIG}}}SignedInfo")
    references = [] if signed_info is None else signed_info.findall(f"{{{DSIG}}}Reference")
    if tuple(sorted(r.get("URI") for r in references)) != tuple(sorted(REFERENCES)):
        raise SignatureNotVerified("the signature must cover bidSignedData and bidKeyInfo")
    data = document.find(f"{{{DSIG}}}Object/{{{BANKID_TYPES}}}bankIdSignedData")
    key_info = document.find(f"{{{DSIG}}}KeyInfo")
    if data is None or data.get("Id") != "bidSignedData" or key_info is None:
        raise SignatureNotVerified("bankIdSignedData or KeyInfo is not where BankID puts it")
    for transform in signed_info.iter(f"{{{DSIG}}}Transform"):
        if transform.get("Algorithm") not in C14N_METHODS:
            raise SignatureNotVerified("the signature uses a transform other than c14n")
    _check_algorithms(signed_info)


def _check_algorithms(signed_info: Any) -> None:
    methods = [(f"{{{DSIG}}}CanonicalizationMethod", C14N_METHODS)]
    methods += [(f"{{{DSIG}}}SignatureMethod", SIGNATURE_METHODS)]
    for tag, allowed in methods:
        found = signed_info.findall(tag)
        if len(found) != 1 or found[0].get("Algorithm") not in allowed:
            raise SignatureNotVerified(f"the signature's {tag} is missing or not allowed")
    for digest in signed_info.iter(f"{{{DSIG}}}DigestMethod"):
        if digest.get("Algorithm") not in DIGEST_METHODS:
            raise SignatureNotVerified("the signature uses a digest weaker than SHA-256")


def _key_info_certificates(signature: Any) -> list[x509.Certificate]:
    values = signature.findall(f"{{{DSIG}}}KeyInfo/{{{DSIG}}}X509Data/{{{DSIG}}}X509Certificate")
    if not 0 < len(values) <= MAX_CHAIN:
        raise SignatureNotVerified("KeyInfo must carry the user's certificate chain")
    try:
        return [x509.load_der_x509_certificate(_decoded(v.text or "", "a cert")) for v in values]
    except ValueError as error:
        raise SignatureNotVerified("KeyInfo holds something that is no certificate") from error


def _check_xml_signature(signature: Any, user: x509.Certificate) -> None:
    """Step 2: both References and the SignatureValue, with the first certificate's key only
    (a key given to xmlsec stops it from looking for one anywhere else)."""
    context = xmlsec.SignatureContext()
    pem = user.public_bytes(serialization.Encoding.PEM)
    context.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatCertPem)
    context.register_id(
        signature.find(f"{{{DSIG}}}Object/{{{BANKID_TYPES}}}bankIdSignedData"), "Id"
    )
    context.register_id(signature.find(f"{{{DSIG}}}KeyInfo"), "Id")
    try:
        context.verify(signature)
    except xmlsec.Error as error:
        raise SignatureNotVerified("the XML signature does not verify") from error


def _valid_at(certificate: x509.Certificate, when: datetime.datetime) -> bool:
    return certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _check_chain(
    chain: list[x509.Certificate], root: x509.Certificate, when: datetime.datetime
) -> x509.Certificate:
    """Step 3: user -> CAs from KeyInfo, in order, -> the pinned root, each valid at `when`.
    A root inside the data is never an anchor. Returns the user certificate's issuer."""
    path = [*chain, root]
    for certificate, issuer in itertools.pairwise(path):
        if not _issued_by(certificate, issuer) or not _is_ca(issuer):
            raise SignatureNotVerified("the certificate chain does not lead to the pinned root")
    if not all(_valid_at(certificate, when) for certificate in path):
        raise SignatureNotVerified(f"a certificate in the chain is not valid at {when}")
    if _is_ca(chain[0]) or len(chain) < 2:  # the user's certificate and at least its issuer
        raise SignatureNotVerified("KeyInfo must hold the user's certificate and its CAs")
    return chain[1]


def _ocsp(der: bytes) -> ocsp.OCSPResponse:
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as error:
        raise SignatureNotVerified("ocspResponse is not an OCSP response") from error
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise SignatureNotVerified("the OCSP response is not 'successful'")
    return response


def _check_responder(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, when: datetime.datetime
) -> None:
    """Steps 4-5: signed by the embedded responder, which the user's CA issued for OCSP."""
    if len(response.certificates) != 1:
        raise SignatureNotVerified("the OCSP response must carry its responder certificate")
    responder = response.certificates[0]
    key = responder.public_key()
    algorithm = response.signature_hash_algorithm
    if not isinstance(key, rsa.RSAPublicKey) or not isinstance(algorithm, OCSP_HASHES):
        raise SignatureNotVerified("the OCSP response is not signed with RSA and SHA-2")
    try:
        key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm)
    except InvalidSignature as error:
        raise SignatureNotVerified("the OCSP response's signature does not verify") from error
    if not _issued_by(responder, issuer) or not _valid_at(responder, when):
        raise SignatureNotVerified("the OCSP responder is not the user's CA's, or not valid")
    try:
        usages = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
        raise SignatureNotVerified("the OCSP responder certificate is not for OCSP signing")


def _check_status(
    response: ocsp.OCSPResponse, user: x509.Certificate, issuer: x509.Certificate
) -> None:
    """Step 6: one answer, about this very certificate, and it is good."""
    answers = list(response.responses)
    if len(answers) != 1:
        raise SignatureNotVerified("the OCSP response must answer for one certificate")
    answer = answers[0]
    hashed = hashlib.new(answer.hash_algorithm.name, issuer.subject.public_bytes()).digest()
    if answer.serial_number != user.serial_number or answer.issuer_name_hash != hashed:
        raise SignatureNotVerified("the OCSP response is about another certificate")
    if answer.certificate_status != ocsp.OCSPCertStatus.GOOD:
        raise SignatureNotVerified("the OCSP status of the certificate is not good")


def _check_nonce(response: ocsp.OCSPResponse, signature_b64: str) -> None:
    """Step 7: BankID binds the response to the signature: SHA-1 of the Base64 text as sent."""
    try:
        nonce = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound as error:
        raise SignatureNotVerified("the OCSP response has no nonce") from error
    expected = hashlib.sha1(signature_b64.encode("utf-8"), usedforsecurity=False).digest()
    if nonce[:NONCE_PREFIX_BYTES] != expected:
        raise SignatureNotVerified("the OCSP response belongs to another signature")


def _facts(signature: Any, user: x509.Certificate, signed_at: datetime.datetime) -> SignatureFacts:
    data = signature.find(f"{{{DSIG}}}Object/{{{BANKID_TYPES}}}bankIdSignedData")

    def text(path: str) -> str | None:
        found = data.find("/".join(f"{{{BANKID_TYPES}}}{step}" for step in path.split("/")))
        return None if found is None else str(found.text or "")

    def subject(oid: x509.ObjectIdentifier) -> str:
        values = user.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    name = text("srvInfo/name") or ""
    return SignatureFacts(
        personal_number=subject(NameOID.SERIAL_NUMBER),
        given_name=subject(NameOID.GIVEN_NAME),
        surname=subject(NameOID.SURNAME),
        func_id=text("clientInfo/funcId") or "",
        visible_data=text("usrVisibleData"),
        non_visible_data=text("usrNonVisibleData"),
        relying_party=_decoded(name, "srvInfo/name").decode("utf-8", "replace"),
        signed_at=signed_at,
        certificate=user,
    )


def _expect(element: str, expected: str | None, signed: str | None) -> None:
    if expected is not None and expected != signed:
        raise SignatureNotVerified(f"{element} is not what was sent to be signed")
