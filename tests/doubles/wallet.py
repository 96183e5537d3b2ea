"""A citizen's EU wallet for the tests, with PyJWT and jwcrypto (none of the gateway's JOSE
code): it takes the `openid4vp://` link the wallet page shows, fetches the request object by
POST with a `wallet_nonce`, checks its signature by the `x5c` leaf and the `x509_hash:`
client_id, presents a PID made by tests/doubles/sd_jwt_vc.py with only the claims the DCQL
query asks for, encrypts the answer with ECDH-ES to the request's key, and posts it. Every
step can be bent by a test: `answer()` takes the presentation and payload it posts."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
from cryptography import x509
from jwcrypto import jwe, jwk

from tests.doubles.sd_jwt_vc import Pid, b64url


@dataclass(frozen=True)
class WalletRequest:
    """A request object as the wallet fetched and checked it."""

    client_id: str
    claims: dict[str, Any]

    @property
    def nonce(self) -> str:
        return str(self.claims["nonce"])

    @property
    def state(self) -> str:
        return str(self.claims["state"])

    @property
    def response_uri(self) -> str:
        return str(self.claims["response_uri"])

    @property
    def asked_claims(self) -> set[str]:
        query = self.claims["dcql_query"]["credentials"][0]
        return {claim["path"][0] for claim in query["claims"]}

    def encryption_key(self) -> jwk.JWK:
        (key,) = self.claims["client_metadata"]["jwks"]["keys"]
        return jwk.JWK(**key)


def link_parameters(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}


class TestWallet:
    __test__ = False  # not a pytest class

    def __init__(self, http: httpx2.Client | None = None) -> None:
        self.http = http or httpx2.Client(timeout=10, follow_redirects=False)

    def fetch(self, link: str, method: str = "POST") -> WalletRequest:
        """The request object the link names, checked as a HAIP wallet checks it."""
        parameters = link_parameters(link)
        wallet_nonce = secrets.token_urlsafe(16)
        if method == "POST":
            answer = self.http.post(
                parameters["request_uri"],
                data={"wallet_nonce": wallet_nonce},
                headers={"Accept": "application/oauth-authz-req+jwt"},
            )
        else:
            answer = self.http.get(parameters["request_uri"])
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/oauth-authz-req+jwt"
        header = jwt.get_unverified_header(answer.text)
        assert header["typ"] == "oauth-authz-req+jwt"
        leaf_der = base64.b64decode(header["x5c"][0])
        leaf = x509.load_der_x509_certificate(leaf_der)
        claims = jwt.decode(
            answer.text,
            leaf.public_key(),
            algorithms=["ES256"],
            audience="https://self-issued.me/v2",
        )
        client_id = "x509_hash:" + b64url(hashlib.sha256(leaf_der).digest())
        assert claims["client_id"] == parameters["client_id"] == client_id
        if method == "POST":
            assert claims["wallet_nonce"] == wallet_nonce
        return WalletRequest(client_id, claims)

    def present(self, request: WalletRequest, pid: Pid, **bend: Any) -> httpx2.Response:
        """The PID with only the asked claims disclosed, key-bound to this request."""
        disclosures = [d for d in pid.disclosures if _discloses(d, request.asked_claims)]
        presentation = pid.present(request.nonce, request.client_id, disclosures=disclosures)
        return self.answer(request, presentation, **bend)

    def answer(
        self,
        request: WalletRequest,
        presentation: str,
        payload: Callable[[dict[str, Any]], dict[str, Any]] = lambda p: p,
        enc: str = "A256GCM",
        key: jwk.JWK | None = None,
    ) -> httpx2.Response:
        content = payload({"vp_token": {"pid": [presentation]}, "state": request.state})
        return self.post_encrypted(request, content, enc, key)

    def post_encrypted(
        self,
        request: WalletRequest,
        content: dict[str, Any] | bytes,
        enc: str = "A256GCM",
        key: jwk.JWK | None = None,
    ) -> httpx2.Response:
        """`content` as JSON, or as the bytes a test wrote itself."""
        recipient = key or request.encryption_key()
        header = {"alg": "ECDH-ES", "enc": enc, "kid": recipient.get("kid")}
        plaintext = content if isinstance(content, bytes) else json.dumps(content).encode()
        token = jwe.JWE(plaintext, protected=json.dumps(header))
        token.add_recipient(recipient)
        return self.http.post(request.response_uri, data={"response": token.serialize(True)})

    def decline(self, request: WalletRequest) -> httpx2.Response:
        form = {"error": "access_denied", "state": request.state}
        return self.http.post(request.response_uri, data=form)


def _discloses(disclosure: str, asked: set[str]) -> bool:
    """A top-level claim's disclosure is kept when asked for; nested ones (place of birth's
    members, nationalities' elements) follow their parent, so they are kept only if asked."""
    decoded = json.loads(base64.urlsafe_b64decode(disclosure + "=="))
    if len(decoded) == 3 and decoded[1] in asked:
        return True
    return len(decoded) == 3 and decoded[1] not in _TOP_LEVEL and bool(asked & _NESTED_PARENTS)


_TOP_LEVEL = {
    "given_name", "family_name", "birthdate", "place_of_birth", "nationalities",
    "personal_administrative_number", "issuing_country", "issuing_authority",
}  # fmt: skip
_NESTED_PARENTS = {"place_of_birth"}
