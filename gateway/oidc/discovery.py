"""OpenID Provider metadata (OpenID Connect Discovery 1.0 §3, Swedish profile §5.2) and JWKS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.oidc import sweden_connect
from gateway.oidc.claims import (
    IDENTITY_SCOPES,
    SIGN_APPROVAL_SCOPE,
    SIGN_CLAIMS,
    SIGN_SCOPE,
    SUPPORTED_CLAIMS,
)
from gateway.oidc.client_jwt import SIGNING_ALGORITHMS
from gateway.oidc.keys import JWKS_MAX_AGE_SECONDS, SIGNING_ALGORITHM, SigningKeys
from gateway.oidc.sign_request import sample_requests
from gateway.oidc.user_message import MIME_TYPES
from gateway.settings import CIBA_GRANT, ClientSettings
from gateway.ui.pages import LOCALES
from providers.base import AuthenticatesByPhone, Provider, Signs
from providers.jws import ACCEPTED_JWS_ALGORITHMS

AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"  # noqa: S105 - a path, not a password
USERINFO_PATH = "/userinfo"
JWKS_PATH = "/jwks"
PAR_PATH = "/par"
BC_AUTHORIZE_PATH = "/bc-authorize"  # CIBA Core 1.0 §7
DISCOVERY_PATH = "/.well-known/openid-configuration"
METADATA_MAX_AGE_SECONDS = 300


class Discovery:
    """The two documents an e-service fetches before anything else: the metadata (built once,
    it changes only with the configuration) and the JWKS (read per request: keys rotate)."""

    def __init__(
        self,
        issuer: str,
        providers: Iterable[Provider],
        keys: SigningKeys,
        clients: Iterable[ClientSettings] = (),
    ) -> None:
        self._metadata = provider_metadata(issuer, providers, clients)
        self._keys = keys

    async def configuration(self, _request: Request) -> Response:
        cache = {"Cache-Control": f"public, max-age={METADATA_MAX_AGE_SECONDS}"}
        return JSONResponse(self._metadata, headers=cache)

    async def jwks(self, _request: Request) -> Response:
        cache = {"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"}
        return JSONResponse(self._keys.jwks(), headers=cache)


def sign_scopes(providers: Iterable[Provider]) -> list[str]:
    """Signature Extension §5.3: the sign scopes some configured provider can do."""
    signing = [provider for provider in providers if isinstance(provider, Signs)]
    signature, approval = sample_requests()
    return [
        scope
        for scope, sample in ((SIGN_SCOPE, signature), (SIGN_APPROVAL_SCOPE, approval))
        if any(provider.can_sign(sample) for provider in signing)
    ]


def provider_metadata(
    issuer: str, providers: Iterable[Provider], clients: Iterable[ClientSettings] = ()
) -> dict[str, Any]:
    providers = list(providers)
    delivered = {uri for provider in providers for uri in provider.loa}
    acr_values = sorted(delivered | sweden_connect.offered_acr_values(clients, delivered))
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}{AUTHORIZE_PATH}",
        "token_endpoint": f"{issuer}{TOKEN_PATH}",
        "userinfo_endpoint": f"{issuer}{USERINFO_PATH}",
        "end_session_endpoint": f"{issuer}/logout",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "scopes_supported": [*IDENTITY_SCOPES, *sign_scopes(providers)],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": [SIGNING_ALGORITHM],
        "userinfo_signing_alg_values_supported": [SIGNING_ALGORITHM],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": list(ACCEPTED_JWS_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": acr_values,
        "claims_supported": [*SUPPORTED_CLAIMS, *SIGN_CLAIMS],
        "claims_parameter_supported": True,
        # RFC 9101 and RFC 9126: signed request objects by value, request_uri only from /par;
        # encrypted request objects are not supported, so no request_object_encryption_* keys.
        "request_parameter_supported": True,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": False,
        "request_object_signing_alg_values_supported": [*SIGNING_ALGORITHMS, "none"],
        "pushed_authorization_request_endpoint": f"{issuer}{PAR_PATH}",
        "require_pushed_authorization_requests": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": list(LOCALES),
        "claim_types_supported": ["normal"],
        "authorization_response_iss_parameter_supported": True,
        "https://id.oidc.se/disco/authnProviderSupported": True,
        "https://id.oidc.se/disco/userMessageSupported": True,
        # ... and for sign messages (Signature Extension §5.3)
        "https://id.oidc.se/disco/userMessageSupportedMimeTypes": list(MIME_TYPES),
        # RPar 1.1 §3.3: accepted, and passed on to an upstream OP that declares it takes them.
        "https://id.oidc.se/disco/originalClientIdSupported": True,
        "https://id.oidc.se/disco/originalClientTokenSupported": True,
        **backchannel_metadata(issuer, providers),
    }


def backchannel_metadata(issuer: str, providers: Iterable[Provider]) -> dict[str, Any]:
    """CIBA Core 1.0 §4, when some provider can identify a person by phone: poll mode only,
    no user_code, no signed requests (so no backchannel_authentication_request_signing_alg_*)."""
    if not any(isinstance(provider, AuthenticatesByPhone) for provider in providers):
        return {}
    return {
        "backchannel_authentication_endpoint": f"{issuer}{BC_AUTHORIZE_PATH}",
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": False,
        "grant_types_supported": ["authorization_code", CIBA_GRANT],
        "authorization_details_types_supported": ["phoneAuth"],  # RFC 9396 §10
    }
