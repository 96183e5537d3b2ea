"""A client registered with `profile: sweden-connect` for the tests, and its private_key_jwt
client assertions, signed with PyJWT (not the gateway's own JOSE library)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.harness import REDIRECT_URI, LiveGateway

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "sc-client-key"


def public_jwks() -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(CLIENT_KEY.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}


def sweden_connect_client(client_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "profile": "sweden-connect",
        "jwks": public_jwks(),
        "redirect_uris": [REDIRECT_URI],
        "display": {"sv": "Exempeltjänsten", "en": "The Example Service"},
        "contacts": ["drift@tjanst.example"],
        "logo_uri": "https://tjanst.example/logo.svg",
        "client_uri": "https://tjanst.example/",
        **changes,
    }


def client_assertion(gateway: LiveGateway, client_id: str) -> dict[str, str]:
    """The form fields of private_key_jwt (RFC 7523 §2.2) for the token endpoint."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": f"{gateway.url}/token",
              "iat": now, "exp": now + 300, "jti": secrets.token_urlsafe(16)}  # fmt: skip
    assertion = pyjwt.encode(claims, CLIENT_KEY, algorithm="RS256", headers={"kid": KID})
    return {"client_assertion_type": JWT_BEARER, "client_assertion": assertion}
