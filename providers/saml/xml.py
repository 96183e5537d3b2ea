"""XML security for the SAML provider: hardened parsing, signatures and decryption with keys
parsed once.

DESIGN.md's budget: xmlsec costs well under a millisecond per operation when `xmlsec.Key`
objects are reused, and twenty times that when a key is parsed per call (python3-saml's
`decrypt_element`). So keys are loaded at start-up into `KeyPair`/`DecryptionKeys`, and every
check here is strict about *which* element a signature covers: the reference must point at the
very element that is then read, by an ID that occurs once (signature wrapping).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree
from onelogin.saml2.xmlparser import fromstring
from xmlsec import constants

NS = {
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "mdattr": "urn:oasis:names:tc:SAML:metadata:attribute",
    "mdui": "urn:oasis:names:tc:SAML:metadata:ui",
    "psc": "http://id.swedenconnect.se/authn/1.0/principal-selection/ns",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
# Sweden Connect profile §8: the mandatory and optional algorithms; SHA-1 and PKCS#1 v1.5 key
# transport are refused.
SIGNATURE_ALGORITHMS: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    RSA_SHA256: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": hashes.SHA512,
}
BLOCK_ENCRYPTION = frozenset(
    f"{prefix}{name}"
    for prefix, names in (
        ("http://www.w3.org/2001/04/xmlenc#", ("aes128-cbc", "aes192-cbc", "aes256-cbc")),
        ("http://www.w3.org/2009/xmlenc11#", ("aes128-gcm", "aes192-gcm", "aes256-gcm")),
    )
    for name in names
)
KEY_TRANSPORT = frozenset({"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"})
_REFERENCE_TRANSFORMS = (
    constants.TransformEnveloped,
    constants.TransformExclC14N,
    constants.TransformInclC14N,
    constants.TransformSha256,
    constants.TransformSha384,
    constants.TransformSha512,
)
_SIGNATURE_TRANSFORMS = (
    constants.TransformExclC14N,
    constants.TransformInclC14N,
    constants.TransformRsaSha256,
    constants.TransformRsaSha384,
    constants.TransformRsaSha512,
    constants.TransformEcdsaSha256,
    constants.TransformEcdsaSha384,
    constants.TransformEcdsaSha512,
)
MESSAGE_SIZE_LIMIT = 256 * 1024
# Compiled once: each costs 4-5 µs less a call than the same expression as a string.
# (An XPath object evaluates under its own lock, so threads may share it.)
COMMENTS_OR_PIS = etree.XPath("//comment() | //processing-instruction()")
ELEMENTS_WITH_ID = etree.XPath("count(//*[@ID=$id])")


class XmlRejected(Exception):
    """The document is malformed, unsafe or its signature/encryption does not hold."""


def _parser(keep_comments: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        remove_comments=not keep_comments,
        remove_pis=not keep_comments,
    )


def parse_message(data: bytes) -> etree._Element:
    """A protocol message: no DTD, no entities, no network, and no comments or processing
    instructions anywhere (a comment splits a text node, which is how a signed value is read
    truncated; no IdP needs one)."""
    if len(data) > MESSAGE_SIZE_LIMIT:
        raise XmlRejected("message too large")
    root = _parse(data, _parser(keep_comments=True))
    if COMMENTS_OR_PIS(root):
        raise XmlRejected("comments and processing instructions are not accepted")
    return root


def parse_metadata(data: bytes) -> etree._Element:
    """Metadata may carry comments; it is only read through its verified root element."""
    return _parse(data, _parser(keep_comments=False))


def _parse(data: bytes, parser: etree.XMLParser) -> etree._Element:
    try:
        root: etree._Element = fromstring(data, parser=parser, forbid_dtd=True)
    except Exception as error:  # lxml, DTDForbidden, EntitiesForbidden
        raise XmlRejected(f"not acceptable XML: {type(error).__name__}") from None
    return root


def pem_certificate_body(pem: bytes) -> str:
    """The base64 body of a PEM certificate, for <ds:X509Certificate>."""
    cert = x509.load_pem_x509_certificate(pem)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@dataclass(frozen=True)
class VerificationKey:
    """A peer's signing certificate from metadata: a key container (expiry is not checked,
    Sweden Connect profile §2) kept as both an xmlsec key and a cryptography public key."""

    xmlsec_key: xmlsec.Key
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    certificate_b64: str

    @classmethod
    def from_base64_der(cls, body: str) -> VerificationKey:
        der = base64.b64decode("".join(body.split()))
        cert = x509.load_der_x509_certificate(der)
        public_key = cert.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise XmlRejected("certificate key is neither RSA nor EC")
        key = xmlsec.Key.from_memory(der, constants.KeyDataFormatCertDer)
        return cls(key, public_key, base64.b64encode(der).decode())

    @classmethod
    def from_pem_file(cls, path: Path) -> VerificationKey:
        return cls.from_base64_der(pem_certificate_body(path.read_bytes()))


class KeyPair:
    """Our key pair for one purpose: signs XML (enveloped) and redirect-binding query strings."""

    def __init__(self, key_pem: bytes, cert_pem: bytes) -> None:
        private = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("the SAML keys must be RSA (2048 bits or more)")
        if private.key_size < 2048:
            raise ValueError("the SAML keys must be RSA of at least 2048 bits")
        self._private = private
        self._xmlsec_key = xmlsec.Key.from_memory(key_pem, constants.KeyDataFormatPem)
        self.certificate_b64 = pem_certificate_body(cert_pem)
        self.certificate = x509.load_pem_x509_certificate(cert_pem)
        public = self.certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey) or (
            public.public_numbers() != private.public_key().public_numbers()
        ):
            raise ValueError("the certificate does not belong to the key")

    @classmethod
    def from_files(cls, key: Path, cert: Path) -> KeyPair:
        return cls(key.read_bytes(), cert.read_bytes())

    def sign_element(self, element: etree._Element, after: etree._Element | None) -> None:
        """Enveloped RSA-SHA256 signature over `element` (by its ID), placed after `after`."""
        signature = xmlsec.template.create(
            element, constants.TransformExclC14N, constants.TransformRsaSha256, ns="ds"
        )
        reference = xmlsec.template.add_reference(
            signature, constants.TransformSha256, uri=f"#{element.get('ID')}"
        )
        xmlsec.template.add_transform(reference, constants.TransformEnveloped)
        xmlsec.template.add_transform(reference, constants.TransformExclC14N)
        key_info = xmlsec.template.ensure_key_info(signature)
        xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(key_info))
        if after is None:
            element.insert(0, signature)
        else:
            after.addnext(signature)
        context = xmlsec.SignatureContext()
        context.register_id(element, "ID")
        context.key = self._xmlsec_key
        context.sign(signature)
        certificate = signature.find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
        if certificate is not None:
            certificate.text = self.certificate_b64

    def sign_bytes(self, data: bytes) -> bytes:
        return self._private.sign(data, padding.PKCS1v15(), hashes.SHA256())


class DecryptionKeys:
    """Our encryption private keys, the current one first; during a rollover the previous key
    still decrypts what IdPs encrypted to the old certificate (Sweden Connect profile §2)."""

    def __init__(self, keys_pem: Sequence[bytes]) -> None:
        self._managers: list[xmlsec.KeysManager] = []
        for pem in keys_pem:
            manager = xmlsec.KeysManager()
            manager.add_key(xmlsec.Key.from_memory(pem, constants.KeyDataFormatPem))
            self._managers.append(manager)

    def decrypt_assertion(self, encrypted_assertion: etree._Element) -> etree._Element:
        data = encrypted_assertion.find("xenc:EncryptedData", NS)
        if data is None:
            raise XmlRejected("EncryptedAssertion without EncryptedData")
        _require_algorithm(data, "xenc:EncryptionMethod", BLOCK_ENCRYPTION)
        encrypted_keys = encrypted_assertion.findall(".//xenc:EncryptedKey", NS)
        if not encrypted_keys:
            raise XmlRejected("no EncryptedKey for the assertion")
        for encrypted_key in encrypted_keys:
            _require_algorithm(encrypted_key, "xenc:EncryptionMethod", KEY_TRANSPORT)
        serialized = etree.tostring(encrypted_assertion)
        for manager in self._managers:
            # each attempt works on its own copy: a failed decryption may leave the tree changed
            copy = etree.fromstring(serialized, _parser(keep_comments=True))
            copy_data = copy.find("xenc:EncryptedData", NS)
            assert copy_data is not None  # found in the original above
            try:
                decrypted = xmlsec.EncryptionContext(manager).decrypt(copy_data)
            except xmlsec.Error:
                continue
            if not isinstance(decrypted, etree._Element) or decrypted.tag != tag(
                "saml", "Assertion"
            ):
                raise XmlRejected("the encrypted content is not one Assertion")
            if COMMENTS_OR_PIS(decrypted):
                raise XmlRejected("comments are not accepted in the assertion")
            return decrypted
        raise XmlRejected("the assertion could not be decrypted with our keys")


def verify_enveloped(element: etree._Element, keys: Sequence[VerificationKey]) -> bool:
    """True when `element` carries a valid signature covering exactly itself.

    False when it carries no signature; `XmlRejected` when a signature is present but wrong.
    The ds:Signature must be a direct child, have one Reference whose URI is this element's own
    ID, and that ID must occur once in the document.
    """
    signatures = element.findall("ds:Signature", NS)
    if not signatures:
        return False
    if len(signatures) > 1:
        raise XmlRejected("more than one signature on one element")
    signature = signatures[0]
    element_id = element.get("ID")
    references = signature.findall("ds:SignedInfo/ds:Reference", NS)
    if not element_id or len(references) != 1 or references[0].get("URI") != f"#{element_id}":
        raise XmlRejected("the signature does not reference the element that carries it")
    same_id = ELEMENTS_WITH_ID(element.getroottree().getroot(), id=element_id)
    if same_id != 1:
        raise XmlRejected("the signed ID occurs more than once")
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
    if method is None or method.get("Algorithm") not in SIGNATURE_ALGORITHMS:
        raise XmlRejected("signature algorithm not accepted")
    for key in keys:
        context = xmlsec.SignatureContext()
        for transform in _REFERENCE_TRANSFORMS:
            context.enable_reference_transform(transform)
        for transform in _SIGNATURE_TRANSFORMS:
            context.enable_signature_transform(transform)
        context.register_id(element, "ID")
        context.key = key.xmlsec_key
        try:
            context.verify(signature)
        except xmlsec.Error:
            continue
        return True
    raise XmlRejected("signature does not verify with the peer's keys")


def verify_detached(
    signed: bytes, signature: bytes, algorithm: str, keys: Sequence[VerificationKey]
) -> bool:
    """HTTP-Redirect binding (SAML Bindings §3.4.4.1): the signature over the query string."""
    hash_class = SIGNATURE_ALGORITHMS.get(algorithm)
    if hash_class is None:
        raise XmlRejected("signature algorithm not accepted")
    for key in keys:
        try:
            if isinstance(key.public_key, rsa.RSAPublicKey):
                key.public_key.verify(signature, signed, padding.PKCS1v15(), hash_class())
            else:
                key.public_key.verify(signature, signed, ec.ECDSA(hash_class()))
        except InvalidSignature:
            continue
        return True
    return False


def _require_algorithm(element: etree._Element, path: str, allowed: frozenset[str]) -> None:
    method = element.find(path, NS)
    if method is None or method.get("Algorithm") not in allowed:
        raise XmlRejected("encryption algorithm not accepted")


def tag(prefix: str, name: str) -> str:
    """Clark notation of a SAML element name: tag('saml', 'Assertion')."""
    return f"{{{NS[prefix]}}}{name}"
