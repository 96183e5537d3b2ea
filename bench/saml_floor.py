"""The cryptography a federated SAML login cannot do without, timed on this machine in the
benchmark's own run (DESIGN.md, "Performance budget"): with every key parsed once, one RSA-SHA256
signature of the AuthnRequest's HTTP-Redirect query, the RSA-OAEP decryption of the assertion's
key and its AES-GCM content, the IdP's signatures checked on the Response and on the assertion,
and the RS256 signature of the ID token. The Response is one the benchmark's IdP really sent.

Calls xmlsec and cryptography directly, not the gateway's code: this is the floor under any
gateway, ours included. Parsing the XML is left out of it (a copy is made outside the clock).

Steps are timed in this thread's CPU time. `SamlFloor.per_login_ms` times each step in a loop,
its caches warm: the floor of issue 22's target. `SampledFloor` runs this file beside a row
(bench/sampling.py) and times one login's steps at a time, as the gateway meets them."""

from __future__ import annotations

import base64
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path

import xmlsec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.sampling import ID_TOKEN_INPUT, Sampled, sample_until_stdin_closes

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}
# An HTTP-Redirect AuthnRequest query, of its real size.
REDIRECT_QUERY = b"SAMLRequest=" + b"f" * 620 + b"&RelayState=" + b"r" * 43 + b"&SigAlg=rsa-sha256"


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

    def per_login_ms(
        self, saml_response: str, rounds: int = 300, warm_up: bool = True
    ) -> dict[str, float]:
        """Milliseconds of each step, the mean over `rounds` (after a warm-up round)."""
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
            if warm_up:
                step()
            found[name] = sum(step() for _ in range(rounds)) * 1000 / rounds
        return found

    def _sign_bytes(self, data: bytes) -> bytes:
        return self._sign.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def _decrypt_timed(self, response: etree._Element) -> tuple[float, etree._Element]:
        tree = copy.deepcopy(response)
        data = tree.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
        assert data is not None, "the IdP's Response has no encrypted assertion"
        started = time.thread_time()
        assertion = xmlsec.EncryptionContext(self._decrypt).decrypt(data)
        return time.thread_time() - started, assertion

    def _verify_timed(self, element: etree._Element) -> float:
        signature = element.find("ds:Signature", NS)
        if signature is None:  # an IdP may sign only one of the two
            return 0.0
        xmlsec.tree.add_ids(element, ["ID"])
        context = xmlsec.SignatureContext()
        context.key = self._idp
        started = time.thread_time()
        context.verify(signature)
        return time.thread_time() - started


def _timed(call: Callable[[bytes], object], data: bytes) -> float:
    started = time.thread_time()
    call(data)
    return time.thread_time() - started


class SampledFloor(Sampled):
    """The floor's steps sampled while a row runs (bench/sampling.py)."""

    def __init__(self, keys: Path, response_file: Path) -> None:
        super().__init__([sys.executable, __file__, str(keys), str(response_file)])


if __name__ == "__main__":
    floor, response = SamlFloor(Path(sys.argv[1])), Path(sys.argv[2]).read_text()
    sample_until_stdin_closes(lambda: floor.per_login_ms(response, rounds=1, warm_up=False))
