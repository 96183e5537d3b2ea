"""A small OpenID4VP verifier for the simulator's tests, built with PyJWT (the request object)
and jwcrypto (the encryption key and the JWE), served by uvicorn on loopback: it answers the
request URI (GET or POST, echoing `wallet_nonce`) and the response URI, records what the wallet
posted, and lets a test bend the request object's header, payload, key or content type."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwe, jwk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.doubles.wallet_pki import Issued, access_certificate
from tests.harness import ServedApp, free_port

DELETE = object()  # a payload_changes value: leave the member out
PID_QUERY = {
    "id": "pid",
    "format": "dc+sd-jwt",
    "meta": {"vct_values": ["urn:eudi:pid:1"]},
    "claims": [
        {"path": ["given_name"]},
        {"path": ["family_name"]},
        {"path": ["issuing_country"]},
        {"path": ["personal_administrative_number"]},
    ],
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class RelyingParty:
    def __init__(self, tmp_path: Path, *, same_device: bool = False) -> None:
        _key, _cert, self.access_ca, self.access = access_certificate(tmp_path)
        self.signing_key = self.access.key
        self.x5c: list[str] = [self.access.der_b64]
        der = self.access.certificate.public_bytes(serialization.Encoding.DER)
        self.client_id = "x509_hash:" + b64url(hashlib.sha256(der).digest())
        self.kid = secrets.token_hex(8)
        self.enc_key = jwk.JWK.generate(kty="EC", crv="P-256", kid=self.kid)
        self.nonce = secrets.token_urlsafe(16)
        self.state = secrets.token_urlsafe(16)
        self.dcql: dict[str, Any] = {"credentials": [json.loads(json.dumps(PID_QUERY))]}
        self.same_device = same_device
        self.header_changes: dict[str, Any] = {}
        self.payload_changes: dict[str, Any] = {}
        self.echo_wallet_nonce = True
        self.content_type = "application/oauth-authz-req+jwt"
        self.algorithm = "ES256"
        self.response_status = 200
        self.fetches: list[dict[str, str]] = []
        self.posts: list[dict[str, str]] = []
        routes = [
            Route("/request/{rid}", self._request, methods=["GET", "POST"]),
            Route("/response/{rid}", self._response, methods=["POST"]),
        ]
        self.served = ServedApp(Starlette(routes=routes), free_port())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.served.port}"

    def link(self, method: str = "post", client_id: str | None = None) -> str:
        return (
            f"openid4vp://?client_id={quote(client_id or self.client_id, safe='')}"
            f"&request_uri={quote(self.url + '/request/1', safe='')}"
            f"&request_uri_method={method}"
        )

    def __enter__(self) -> Self:
        self.served.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.served.__exit__(*exc)

    def public_enc_jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = self.enc_key.export_public(as_dict=True)
        return {**public, "use": "enc", "alg": "ECDH-ES"}

    def payload(self, wallet_nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        payload: dict[str, Any] = {
            "client_id": self.client_id,
            "response_type": "vp_token",
            "response_mode": "direct_post.jwt",
            "response_uri": f"{self.url}/response/1",
            "nonce": self.nonce,
            "state": self.state,
            "aud": "https://self-issued.me/v2",
            "iat": now,
            "exp": now + 300,
            "dcql_query": self.dcql,
            "client_metadata": {
                "jwks": {"keys": [self.public_enc_jwk()]},
                "encrypted_response_enc_values_supported": ["A128GCM", "A256GCM"],
                "vp_formats_supported": {
                    "dc+sd-jwt": {"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}
                },
            },
        }
        if wallet_nonce is not None and self.echo_wallet_nonce:
            payload["wallet_nonce"] = wallet_nonce
        for name, value in self.payload_changes.items():
            if value is DELETE:
                payload.pop(name, None)
            else:
                payload[name] = value
        return payload

    def request_object(self, wallet_nonce: str | None) -> str:
        headers = {"typ": "oauth-authz-req+jwt", "x5c": self.x5c, **self.header_changes}
        key: Any = None if self.algorithm == "none" else self.signing_key
        return jwt.encode(
            self.payload(wallet_nonce), key, algorithm=self.algorithm, headers=headers
        )

    async def _request(self, request: Request) -> Response:
        form = dict(await request.form()) if request.method == "POST" else {}
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.fetches.append({"method": request.method, **fields})
        token = self.request_object(fields.get("wallet_nonce"))
        return Response(token, media_type=self.content_type)

    async def _response(self, request: Request) -> Response:
        form = await request.form()
        self.posts.append({k: v for k, v in form.items() if isinstance(v, str)})
        if self.response_status != 200:
            error = {"error": "invalid_request"}
            return JSONResponse(error, status_code=self.response_status)
        if self.same_device:
            return JSONResponse({"redirect_uri": f"{self.url}/done?response_code=abc"})
        return JSONResponse({})

    def decrypted(self, form: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The JWE's protected header and its JSON payload, decrypted with jwcrypto."""
        token = jwe.JWE()
        token.deserialize(form["response"], key=self.enc_key)
        return json.loads(token.objects["protected"]), json.loads(token.payload)


def other_access_certificate(tmp_path: Path) -> tuple[Issued, Issued]:
    """An access CA the wallet does not trust, and a certificate under it."""
    (tmp_path / "other").mkdir()
    _key, _cert, ca, access = access_certificate(tmp_path / "other")
    return ca, access
