"""The sign message of a signature approval as DSSExt 1.5 §3.1.2's `<csig:SignMessage>`, and the
proof an IdP returns that it showed it (`signMessageDigest`, Attrs §3.2.4).

One message, no language tag (SignMessage has none): the text for the citizen's locale. It goes
as `<csig:Message>` (Base64 of the UTF-8 text), or, when the IdP's metadata publishes an RSA
encryption key, as `<csig:EncryptedMessage>`: the `<csig:Message>` element encrypted to that
key with xmlsec, with the algorithms of the IdP's md:EncryptionMethod we support (else
AES-256-GCM with RSA-OAEP), and `DisplayEntity` naming the IdP that holds the key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import xmlsec
from lxml import etree
from xmlsec import constants

from providers.base import SignRequest
from providers.saml.metadata import IdentityProvider

CSIG = "http://id.elegnamnden.se/csig/1.1/dss-ext/ns"  # DSSExt 1.5 §3.1.2 (schema 1.1.3)
SIGN_MESSAGE_DIGEST = "urn:oid:1.2.752.201.3.14"  # Attrs §3.2.4, signMessageDigest
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# Our MIME types (the e-service's `mime_type`) -> SignMessage's MimeType enumeration.
MIME_TYPES: Mapping[str, str] = {"text/plain": "text", "text/markdown": "text/markdown"}
# Block encryption we can do, in our order of preference (Sweden Connect profile §8).
BLOCK_ALGORITHMS: Mapping[str, tuple[Any, int]] = {  # URI -> (xmlsec transform, key bits)
    "http://www.w3.org/2009/xmlenc11#aes256-gcm": (constants.TransformAes256Gcm, 256),
    "http://www.w3.org/2009/xmlenc11#aes192-gcm": (constants.TransformAes192Gcm, 192),
    "http://www.w3.org/2009/xmlenc11#aes128-gcm": (constants.TransformAes128Gcm, 128),
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc": (constants.TransformAes256Cbc, 256),
    "http://www.w3.org/2001/04/xmlenc#aes192-cbc": (constants.TransformAes192Cbc, 192),
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc": (constants.TransformAes128Cbc, 128),
}
DEFAULT_BLOCK = "http://www.w3.org/2009/xmlenc11#aes256-gcm"


def can_show(sign: SignRequest) -> bool:
    """Whether SignMessage can carry this message: a MIME type it has."""
    return sign.message.mime_type in MIME_TYPES


@dataclass(frozen=True)
class SamlSignMessage:
    """The one text an IdP is to show, its SignMessage MimeType, and the IdP it is for."""

    text: str
    mime_type: str

    @classmethod
    def of(cls, sign: SignRequest, locale: str) -> SamlSignMessage:
        text = sign.message.text_for(locale)
        if text is None or not can_show(sign):  # /authorize and can_sign let neither through
            raise ValueError("no sign message SignMessage can carry")
        return cls(text, MIME_TYPES[sign.message.mime_type])

    @property
    def digest(self) -> str:
        """The `signMessageDigest` an IdP that showed it returns: `alg-URI;Base64(digest)` of
        the UTF-8 bytes of the message (Attrs §3.2.4; SHA-256, as our metadata prefers none)."""
        digest = hashlib.sha256(self.text.encode()).digest()
        return f"{SHA256};{base64.b64encode(digest).decode()}"


def sign_message_element(message: SamlSignMessage, idp: IdentityProvider) -> etree._Element:
    """`<csig:SignMessage MustShow="true">`, encrypted to `idp` when it publishes a key."""
    element = etree.Element(
        f"{{{CSIG}}}SignMessage", MustShow="true", MimeType=message.mime_type, nsmap={"csig": CSIG}
    )
    text = etree.Element(f"{{{CSIG}}}Message", nsmap={"csig": CSIG})
    text.text = base64.b64encode(message.text.encode()).decode()
    if not idp.encryption_certificates:
        element.append(text)
        return element
    element.set("DisplayEntity", idp.entity_id)
    encrypted = etree.SubElement(element, f"{{{CSIG}}}EncryptedMessage")
    encrypted.append(
        _encrypted(etree.tostring(text), idp.encryption_certificates[0], idp.encryption_methods)
    )
    return element


def block_algorithm(idp_methods: Sequence[str]) -> str:
    """The first of ours the IdP lists; AES-256-GCM when it lists none of ours."""
    return next((uri for uri in BLOCK_ALGORITHMS if uri in idp_methods), DEFAULT_BLOCK)


def _encrypted(message: bytes, certificate_b64: str, methods: Sequence[str]) -> etree._Element:
    """`message` (an element serialised on its own, so it declares its namespace and parses
    alone once decrypted) as xenc:EncryptedData of type Element, its session key in an
    EncryptedKey in the data's KeyInfo (SAML core §2.2.4's EncryptedElementType)."""
    transform, bits = BLOCK_ALGORITHMS[block_algorithm(methods)]
    template = xmlsec.template.encrypted_data_create(
        etree.Element("placeholder"), transform, type=constants.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    # RSA-OAEP (MGF1, SHA-1 digest: xmlenc#rsa-oaep-mgf1p), the framework's mandatory transport
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    der = base64.b64decode(certificate_b64)
    manager.add_key(xmlsec.Key.from_memory(der, constants.KeyDataFormatCertDer))
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(constants.KeyDataAes, bits, constants.KeyDataTypeSession)
    encrypted: etree._Element = context.encrypt_binary(template, message)
    return encrypted
