"""The demo e-service's "sign this application": an e-service asking the citizen to sign through
the gateway with the Signature Extension (OIDC Sweden, Signature Extension 1.1).

It is a second client, `demo-rp-signer`, because signing needs what the demo's login client
does not have: a key pair whose public half is registered with the gateway. The sign request
travels inside a request object signed with that key (Signature Extension §3.1.2), and the
client authenticates at /token with the same key (`private_key_jwt`). The key is made when the
process starts and never leaves it: the demo is for one process.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.oidc.claims import NATURAL_PERSON_INFO, NATURAL_PERSON_NUMBER

SIGNER_CLIENT_ID = "demo-rp-signer"
SIGN_SCOPE = "https://id.oidc.se/scope/sign"
SIGN_REQUEST_PARAMETER = "https://id.oidc.se/param/signRequest"
USER_SIGNATURE_CLAIM = "https://id.oidc.se/claim/userSignature"
AUTHN_EVIDENCE_CLAIM = "https://id.oidc.se/claim/authnEvidence"
REQUEST_OBJECT_LIFETIME_SECONDS = 300
SANDBOX_SIGNATURE_FORMAT = "portvakt-sandbox-test-signature/1"
SIGN_SCOPES = f"openid {NATURAL_PERSON_NUMBER} {NATURAL_PERSON_INFO} {SIGN_SCOPE}"
Clock = Callable[[], float]
KEPT_SIGNATURES = 100  # the latest signatures, in memory, for the demo page

# The document the demo citizen signs: what a municipality's e-service would hash or render.
APPLICATION = (
    "Ansökan om bygglov / Application for a building permit\n"
    "Fastighet / Property: Exempelstaden Provgården 1:23\n"
    "Åtgärd / Work: Nybyggnad av carport, 30 m² / New carport, 30 m²\n"
)
SIGN_MESSAGES = {
    "sv": "Jag skriver under ansökan om bygglov för en carport på Provgården 1:23.",
    "en": "I sign the application for a building permit for a carport at Provgården 1:23.",
}


@functools.cache
def signer_key() -> RSAKey:
    """This process's key of the demo signer client: made once, kept in memory only."""
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_urlsafe(8), "use": "sig"})


def signer_jwks() -> dict[str, Any]:
    """The public half, as the demo settings register it for `demo-rp-signer`."""
    return {"keys": [signer_key().as_dict(private=False)]}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sign_request() -> dict[str, Any]:
    """Signature Extension §3.1: the application as `tbs_data`, the sign message per language."""
    return {
        "tbs_data": _b64(APPLICATION),
        "sign_message": {
            **{f"message#{lang}": _b64(text) for lang, text in SIGN_MESSAGES.items()},
            "mime_type": "text/plain",
        },
    }


def request_object(issuer: str, scope: str, now: float) -> str:
    """The signed request object carrying the sign request; `prompt` must hold both `login`
    and `consent` (Signature Extension §5.1)."""
    iat = int(now)
    claims = {
        "iss": SIGNER_CLIENT_ID,
        "aud": issuer,
        "iat": iat,
        "exp": iat + REQUEST_OBJECT_LIFETIME_SECONDS,
        "jti": secrets.token_urlsafe(16),
        "client_id": SIGNER_CLIENT_ID,
        "scope": scope,
        "prompt": "login consent",
        SIGN_REQUEST_PARAMETER: sign_request(),
    }
    key = signer_key()
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


@dataclass(frozen=True)
class SignatureShown:
    """What the demo page shows of a signature it received."""

    claims: str  # the ID token's claims, with the long Base64 values shortened
    kind: str  # "sandbox" (a test signature) or "xml" (BankID's XML-DSig)
    details: str  # the decoded test signature, or the size of the XML signature
    evidence_bytes: int  # size of authnEvidence (BankID's OCSP response), 0 if none


def shown(claims: Mapping[str, Any]) -> SignatureShown:
    signature = str(claims.get(USER_SIGNATURE_CLAIM, ""))
    evidence = str(claims.get(AUTHN_EVIDENCE_CLAIM, ""))
    short = {
        name: (
            f"{value[:40]}… ({len(value)} chars)"
            if isinstance(value, str) and len(value) > 80
            else value
        )
        for name, value in claims.items()
    }
    decoded = _decoded(signature)
    sandbox = _sandbox_signature(decoded)
    if sandbox is not None:
        kind, details = "sandbox", json.dumps(sandbox, indent=2, ensure_ascii=False)
    else:
        kind, details = (
            "xml",
            f"{len(decoded)} bytes, SHA-256 {hashlib.sha256(decoded).hexdigest()}",
        )
    return SignatureShown(
        claims=json.dumps(short, indent=2, ensure_ascii=False),
        kind=kind,
        details=details,
        evidence_bytes=len(_decoded(evidence)),
    )


def _decoded(value: str) -> bytes:
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
    except ValueError:
        return b""


def _sandbox_signature(decoded: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(decoded)
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("format") == SANDBOX_SIGNATURE_FORMAT:
        return document
    return None


class SigningDemo:
    """POST /demo/sign starts a signature; /demo/sign/callback receives it. What was signed is
    kept in memory (a BankID signature is far larger than a session cookie) under a random
    handle in the demo's session."""

    def __init__(self, oauth: OAuth, issuer: str, clock: Clock) -> None:
        oauth.register(
            "portvakt-signer",
            client_id=SIGNER_CLIENT_ID,
            client_secret=signer_key(),
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_auth_methods=[PrivateKeyJWT()],
            client_kwargs={
                "scope": SIGN_SCOPES,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "private_key_jwt",
            },
        )
        self._client: StarletteOAuth2App = oauth.create_client("portvakt-signer")
        self._issuer = issuer
        self._clock = clock
        self._signatures: dict[str, SignatureShown] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/sign", self.sign, methods=["POST"]),
            Route("/sign/callback", self.callback),
        ]

    def latest(self, request: Request) -> SignatureShown | None:
        return self._signatures.get(request.session.get("signature", ""))

    async def sign(self, request: Request) -> Response:
        # authorize_redirect's own `request` argument would clash with the `request` parameter
        # (RFC 9101), so its two steps are taken here.
        callback = f"{self._issuer}/demo/sign/callback"
        made = await self._client.create_authorization_url(
            callback,
            request=request_object(self._issuer, SIGN_SCOPES, self._clock()),
            prompt="login consent",
        )
        await self._client.save_authorize_data(request, redirect_uri=callback, **made)
        return RedirectResponse(made["url"], status_code=302)

    async def callback(self, request: Request) -> Response:
        try:
            token = await self._client.authorize_access_token(request)
        except OAuthError as error:
            request.session["error"] = f"{error.error}: {error.description or ''}"
            return RedirectResponse(f"{self._issuer}/demo/", status_code=303)
        handle = secrets.token_urlsafe(16)
        self._signatures[handle] = shown(dict(token["userinfo"]))
        while len(self._signatures) > KEPT_SIGNATURES:
            del self._signatures[next(iter(self._signatures))]
        request.session["signature"] = handle
        return RedirectResponse(f"{self._issuer}/demo/#signature", status_code=303)
