"""Reading the simulator's SD-JWT+KB in the tests with PyJWT and `hashlib` alone (RFC 9901
§7.1, §7.3): the issuer signature against the x5c leaf, every disclosure hashed into an `_sd`
array or a `...` element, and the KB-JWT's `aud`, `nonce` and `sd_hash`."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from jwt import PyJWK


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def digest(text: str) -> str:
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Unpacked:
    header: dict[str, Any]
    payload: dict[str, Any]
    claims: dict[str, Any]  # what the disclosures reveal
    disclosures: list[str]
    unreferenced: list[str]  # disclosures no digest points to
    kb_jwt: str
    sd_jwt: str  # `<JWT>~<D1>~...~`, what sd_hash covers

    @property
    def signer(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(base64.b64decode(self.header["x5c"][0]))

    def kb_claims(self, audience: str) -> dict[str, Any]:
        holder = PyJWK(self.payload["cnf"]["jwk"], algorithm="ES256")
        claims: dict[str, Any] = jwt.decode(
            self.kb_jwt, holder, algorithms=["ES256"], audience=audience
        )
        return claims


def _reveal(value: Any, by_digest: dict[str, list[Any]], used: set[str]) -> Any:
    if isinstance(value, dict):
        out = {k: _reveal(v, by_digest, used) for k, v in value.items() if k != "_sd"}
        for d in value.get("_sd", []):
            if d in by_digest:
                used.add(d)
                _salt, name, inner = by_digest[d]
                out[name] = _reveal(inner, by_digest, used)
        return out
    if isinstance(value, list):
        elements = []
        for element in value:
            if isinstance(element, dict) and set(element) == {"..."}:
                if element["..."] in by_digest:
                    used.add(element["..."])
                    elements.append(_reveal(by_digest[element["..."]][1], by_digest, used))
            else:
                elements.append(_reveal(element, by_digest, used))
        return elements
    return value


def unpack(vp: str, *, verify_issuer: bool = True) -> Unpacked:
    issuer_jwt, *disclosures, kb_jwt = vp.split("~")
    header = jwt.get_unverified_header(issuer_jwt)
    key = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0])).public_key()
    options = {"verify_signature": verify_issuer, "verify_exp": False}
    payload = jwt.decode(issuer_jwt, key, algorithms=["ES256"], options=options)
    by_digest = {digest(d): json.loads(b64decode(d)) for d in disclosures}
    used: set[str] = set()
    claims = _reveal({k: v for k, v in payload.items() if k != "_sd_alg"}, by_digest, used)
    unreferenced = [d for d in disclosures if digest(d) not in used]
    sd_jwt = "~".join([issuer_jwt, *disclosures]) + "~"
    return Unpacked(header, payload, claims, disclosures, unreferenced, kb_jwt, sd_jwt)
