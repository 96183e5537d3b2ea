"""The cryptography a federated SAML login cannot do without, timed on this machine in the
benchmark's own run (DESIGN.md, "Performance budget"): with every key parsed once, one RSA-SHA256
signature of the AuthnRequest's HTTP-Redirect query, the RSA-OAEP decryption of the assertion's
key and its AES-GCM content, the IdP's signatures checked on the Response and on the assertion,
and the RS256 signature of the ID token. The Response is one the benchmark's IdP really sent.

Calls xmlsec and cryptography directly, not the gateway's code: this is the floor under any
gateway, ours included. Parsing the XML is left out of it (a copy is made outside the clock).

Steps are timed in this thread's CPU time. `SamlFloor.per_login_ms` times each step in a loop,
its caches warm: the floor of issue 22's target. `SampledFloor` runs this file in a process of
its own beside a benchmark's row and times one login's steps every 0.1 s until the row ends, as
the gateway meets them: once a login, between other work, on a machine as busy and at the same
minutes as the row (this machine's speed drifts by up to 2x from one second to the next)."""

from __future__ import annotations

import base64
import copy
import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

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
SAMPLE_INTERVAL_SECONDS = 0.1


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


class SampledFloor:
    """The floor sampled while a row runs: started before the row, `result()` after it."""

    def __init__(self, keys: Path, response_file: Path) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(keys), str(response_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError("bench/saml_floor.py did not start sampling")

    def result(self) -> tuple[dict[str, float], int]:
        """The mean milliseconds of each step over the row, and how many logins' steps."""
        out, _ = self._process.communicate(input="")  # its stdin closed: the row has ended
        found = json.loads(out)
        return found["steps"], found["samples"]


def sample_until_stdin_closes(keys: Path, response_file: Path) -> None:
    floor, response = SamlFloor(keys), response_file.read_text()
    print("ready", flush=True)
    samples: list[dict[str, float]] = []
    while not _closed(sys.stdin, SAMPLE_INTERVAL_SECONDS):
        samples.append(floor.per_login_ms(response, rounds=1, warm_up=False))
    means = (
        {name: sum(s[name] for s in samples) / len(samples) for name in samples[0]}
        if samples
        else {}
    )
    print(json.dumps({"steps": means, "samples": len(samples)}), flush=True)


def _closed(stream: TextIO, seconds: float) -> bool:
    """Waits up to `seconds` for `stream` to be closed (its writer sends nothing else)."""
    readable, _, _ = select.select([stream], [], [], seconds)
    return bool(readable) and stream.read() == ""


if __name__ == "__main__":
    sample_until_stdin_closes(Path(sys.argv[1]), Path(sys.argv[2]))
