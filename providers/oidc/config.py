"""A `type: oidc` entry: the upstream OP (by discovery or explicit endpoints), our client there
and how it authenticates, the scopes asked for, and how the upstream's claims and `acr` values
map to an Identity and our LoA URIs."""

from __future__ import annotations

from typing import Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.base import (
    ChecksConfig,
    ConfigPath,
    ConfigProblem,
    ProviderConfig,
    unusable_upstream,
)
from providers.jws import ACCEPTED_JWS_ALGORITHMS

DEFAULT_CLAIMS: dict[str, str] = {
    "personal_identity_number": "https://id.oidc.se/claim/personalIdentityNumber",
    "coordination_number": "https://id.oidc.se/claim/coordinationNumber",
    "given_name": "given_name",
    "family_name": "family_name",
    "name": "name",
    "birthdate": "birthdate",
    "prid": "https://id.swedenconnect.se/claim/prid",
}
ClaimField = Literal[
    "personal_identity_number",
    "coordination_number",
    "given_name",
    "family_name",
    "name",
    "birthdate",
    "prid",
]


class Endpoints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None


class OidcConfig(ProviderConfig, ChecksConfig):
    type: Literal["oidc"]
    display: dict[str, str]
    hint: dict[str, str] = Field(default_factory=dict)
    issuer: str = Field(description="the upstream's issuer; its discovery document is read")
    endpoints: Endpoints | None = Field(
        default=None, description="explicit endpoints instead of discovery"
    )
    client_id: str
    client_secret: str | None = None
    client_auth: Literal["client_secret_basic", "client_secret_post", "private_key_jwt"] = (
        "client_secret_basic"
    )
    private_key: ConfigPath | None = Field(
        default=None, description="PEM key for private_key_jwt; its public JWK is at .../jwks"
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "https://id.oidc.se/scope/naturalPersonNumber"]
    )
    claims: dict[ClaimField, str] = Field(
        default_factory=dict, description="Identity field -> upstream claim, over the defaults"
    )
    acr_map: dict[str, str] = Field(
        default_factory=dict, description="our LoA URI -> the upstream's acr value (both ways)"
    )
    authorize_parameters: dict[str, str] = Field(default_factory=dict)
    userinfo: bool = True
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256"])
    clock_skew_seconds: int = Field(default=60, ge=0, le=300)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    refresh_seconds: int = Field(default=3600, ge=60)

    async def upstream_problems(self, http: httpx2.AsyncClient) -> list[ConfigProblem]:
        """Discovery names this issuer and the JWKS can be fetched (configured endpoints: no
        discovery to check)."""
        if self.endpoints is not None:
            return []
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            discovery = (await http.get(url)).raise_for_status().json()
            if discovery.get("issuer") != self.issuer:
                return [("issuer", "discovery names another issuer")]
            (await http.get(discovery["jwks_uri"])).raise_for_status()
        except (httpx2.HTTPError, ValueError, KeyError) as error:
            return [unusable_upstream(error)]
        return []

    @model_validator(mode="after")
    def _client_auth_has_its_secret(self) -> OidcConfig:
        if self.client_auth == "private_key_jwt" and self.private_key is None:
            raise ValueError("client_auth private_key_jwt needs private_key (a PEM file)")
        if self.client_auth != "private_key_jwt" and not self.client_secret:
            raise ValueError(f"client_auth {self.client_auth} needs client_secret")
        unknown = set(self.algorithms) - set(ACCEPTED_JWS_ALGORITHMS)
        if unknown:
            raise ValueError(
                f"algorithms {sorted(unknown)} are not accepted (never none or HMAC); "
                f"choose from {', '.join(ACCEPTED_JWS_ALGORITHMS)}"
            )
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        return self
