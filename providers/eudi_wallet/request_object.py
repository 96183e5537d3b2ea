"""The signed request object (JAR, RFC 9101) of one OpenID4VP 1.0 request as HAIP 1.0 profiles
it (§5, §5.1): `typ` `oauth-authz-req+jwt`, ES256 with our access certificate in `x5c`, the
`x509_hash:` client_id, `vp_token` by `direct_post.jwt` to our response URI, a fresh nonce,
a per-request ephemeral ECDH-ES P-256 key to encrypt the answer to, and a DCQL query for the
PID in SD-JWT VC form with only the claims the e-service's scopes need."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, KeyParameters

from providers.eudi_wallet.access import AccessKey
from providers.eudi_wallet.pid import PID_VCT, SD_JWT_VC_FORMAT

REQUEST_TYP = "oauth-authz-req+jwt"
STATIC_DISCOVERY_AUDIENCE = "https://self-issued.me/v2"  # OpenID4VP §5.8
CREDENTIAL_ID = "pid"
ENCRYPTION_ALG = "ECDH-ES"
ENCRYPTION_METHODS = ("A128GCM", "A256GCM")  # HAIP §5: both, listed
ALGORITHMS = ["ES256"]


@dataclass(frozen=True)
class EphemeralKey:
    """The per-request encryption key (HAIP §5): its public JWK goes in the request, its
    private JWK into the request's store record and nowhere else."""

    private_jwk: Mapping[str, Any]

    @classmethod
    def new(cls) -> EphemeralKey:
        kid = secrets.token_urlsafe(12)
        parameters: KeyParameters = {"use": "enc", "alg": ENCRYPTION_ALG, "kid": kid}
        key = ECKey.generate_key("P-256", parameters, private=True)
        return cls(key.as_dict(private=True))

    @property
    def kid(self) -> str:
        return str(self.private_jwk["kid"])

    def public_jwk(self) -> dict[str, Any]:
        return {k: v for k, v in self.private_jwk.items() if k != "d"}

    def key(self) -> ECKey:
        return ECKey.import_key(dict(self.private_jwk))


def dcql_query(claim_names: Iterable[str]) -> dict[str, Any]:
    """OpenID4VP §6: one SD-JWT VC PID with these claims (all of them wanted: no claim_sets)."""
    query = {
        "id": CREDENTIAL_ID,
        "format": SD_JWT_VC_FORMAT,
        "meta": {"vct_values": [PID_VCT]},
        "claims": [{"path": [name]} for name in sorted(set(claim_names))],
    }
    return {"credentials": [query]}


def client_metadata(key: EphemeralKey) -> dict[str, Any]:
    return {
        "jwks": {"keys": [key.public_jwk()]},
        "encrypted_response_enc_values_supported": list(ENCRYPTION_METHODS),
        "vp_formats_supported": {
            SD_JWT_VC_FORMAT: {"sd-jwt_alg_values": ALGORITHMS, "kb-jwt_alg_values": ALGORITHMS}
        },
    }


@dataclass(frozen=True)
class RequestParameters:
    """What one request asks, as its store record keeps it."""

    response_uri: str
    nonce: str
    state: str
    claim_names: Sequence[str]
    expires_at: float


def request_object(
    access: AccessKey,
    wanted: RequestParameters,
    key: EphemeralKey,
    now: float,
    wallet_nonce: str | None = None,
) -> str:
    """The compact JWS the request URI answers with."""
    claims: dict[str, Any] = {
        "client_id": access.client_id,
        "response_type": "vp_token",
        "response_mode": "direct_post.jwt",
        "response_uri": wanted.response_uri,
        "nonce": wanted.nonce,
        "state": wanted.state,
        "aud": STATIC_DISCOVERY_AUDIENCE,
        "iat": int(now),
        "exp": int(wanted.expires_at),
        "dcql_query": dcql_query(wanted.claim_names),
        "client_metadata": client_metadata(key),
    }
    if wallet_nonce is not None:
        claims["wallet_nonce"] = wallet_nonce
    header = {"alg": "ES256", "typ": REQUEST_TYP, "x5c": access.x5c}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, access.key, algorithms=ALGORITHMS)
