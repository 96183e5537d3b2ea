"""The cryptography a federated SAML login cannot do without, timed on this machine in the
benchmark's own run (DESIGN.md, "Performance budget"): with every key parsed once, one RSA-SHA256
signature of the AuthnRequest's HTTP-Redirect query, the RSA-OAEP decryption of the assertion's
key and its AES-GCM content, the IdP's signatures checked on the Response and on the assertion,
and the RS256 signature of the ID token. The Response is one the benchmark's IdP really sent.

Calls xmlsec and cryptography directly, not the gateway's code: this is the floor under any
gateway, ours included. Parsing the XML is left out of it (a copy is made outside the clock)."""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable
from pathlib import Path

import xmlsec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}
# An HTTP-Redirect AuthnRequest query and an ID token's signing input, of their real sizes.
REDIRECT_QUERY = b"SAMLRequest=" + b"f" * 620 + b"&RelayState=" + b"r" * 43 + b"&SigAlg=rsa-sha256"
ID_TOKEN_INPUT = b"e" * 40 + b"." + b"p" * 680


def _rsa_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


class SamlFloor:
    """Keys loaded once: the SP's signing and encryption keys, the IdP's certificate."""

    def __init__(self, keys: Path) -> None:
        self._sign = _rsa_key(keys / "sp-sign.key")
        self._decrypt = xmlsec.KeysManager()
        self._decrypt.add_key(xmlsec.Key.from_file(str(keys / "sp-enc.key"), xmlsec.KeyFormat.PEM))
        self._idp = xmlsec.Key.from_file(str(keys / "idp.crt"), xmlsec.KeyFormat.CERT_PEM)

    def per_login_ms(self, saml_response: str, rounds: int = 300) -> dict[str, float]:
        """Milliseconds of each step, the mean over `rounds` after a warm-up."""
        response = etree.fromstring(base64.b64decode(saml_response))
        steps: dict[str, Callable[[], float]] = {
            "sign AuthnRequest": lambda: _timed(self._sign_bytes, REDIRECT_QUERY),
            "decrypt assertion": lambda: self._decrypt_timed(response)[0],
            "verify Response": lambda: self._verify_timed(copy.deepcopy(response)),
            "verify assertion": lambda: self._verify_timed(self._decrypt_timed(response)[1]),
            "sign ID token": lambda: _timed(self._sign_bytes, ID_TOKEN_INPUT),
        }
        found = {}
        for name, step in steps.items():
            step()
            found[name] = sum(step() for _ in range(rounds)) * 1000 / rounds
        return found

    def _sign_bytes(self, data: bytes) -> bytes:
        return self._sign.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def _decrypt_timed(self, response: etree._Element) -> tuple[float, etree._Element]:
        tree = copy.deepcopy(response)
        data = tree.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
        assert data is not None, "the IdP's Response has no encrypted assertion"
        started = time.perf_counter()
        assertion = xmlsec.EncryptionContext(self._decrypt).decrypt(data)
        return time.perf_counter() - started, assertion

    def _verify_timed(self, element: etree._Element) -> float:
        signature = element.find("ds:Signature", NS)
        if signature is None:  # an IdP may sign only one of the two
            return 0.0
        xmlsec.tree.add_ids(element, ["ID"])
        context = xmlsec.SignatureContext()
        context.key = self._idp
        started = time.perf_counter()
        context.verify(signature)
        return time.perf_counter() - started


def _timed(call: Callable[[bytes], object], data: bytes) -> float:
    started = time.perf_counter()
    call(data)
    return time.perf_counter() - started
