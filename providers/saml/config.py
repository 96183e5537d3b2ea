"""A `type: saml` entry: one SP (entityID, signing and encryption keys), the federation's
metadata and which of its IdPs are allowed, and what the SP publishes of itself.

Loading it already proves the keys and a metadata file usable; `portvakt check-config` adds the
checks of `checks.py` (certificate expiry, the metadata URL), `portvakt saml-metadata` prints
`published_metadata`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.base import (
    ChecksConfig,
    ConfigPath,
    ConfigProblem,
    ProviderConfig,
    PublishesMetadata,
)
from providers.saml import checks
from providers.saml.attributes import IdentityField
from providers.saml.metadata import IdentityProvider, MetadataRejected, read_federation
from providers.saml.sp_metadata import SpDescription, sp_metadata
from providers.saml.xml import KeyPair, VerificationKey

ACS_PATH = "/acs"  # under /providers/NAME: where IdPs post their Responses
SLO_PATH = "/slo"

# EntCat §4.1, SC profile §7: the service type of a Signature Service SP.
SIGSERVICE = "http://id.elegnamnden.se/st/1.0/sigservice"
DEFAULT_ENTITY_CATEGORIES = [
    "http://id.elegnamnden.se/ec/1.0/loa3-pnr",
    "http://id.elegnamnden.se/ec/1.0/eidas-naturalperson",
    "http://id.elegnamnden.se/st/1.0/public-sector-sp",
]


class KeyPairFiles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: ConfigPath = Field(description="PEM private key (RSA, 2048 bits or more)")
    cert: ConfigPath = Field(description="PEM certificate of that key")


class EncryptionKeyFiles(KeyPairFiles):
    previous: list[KeyPairFiles] = Field(
        default_factory=list,
        description="keys still accepted for decryption during a rollover (not published)",
    )


class MetadataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: ConfigPath | None = Field(default=None, description="one IdP's or an aggregate's XML")
    url: str | None = Field(default=None, description="where the (aggregate) metadata is fetched")
    cert: ConfigPath | None = Field(
        default=None, description="PEM certificate that must have signed the metadata"
    )
    cache: ConfigPath | None = Field(
        default=None, description="file keeping the last verified copy of url metadata"
    )
    refresh_seconds: int = Field(default=3600, ge=60)

    @model_validator(mode="after")
    def _one_source(self) -> MetadataConfig:
        if (self.file is None) == (self.url is None):
            raise ValueError("give exactly one of metadata.file and metadata.url")
        if self.url is not None and (self.cert is None or self.cache is None):
            raise ValueError(
                "metadata.url needs metadata.cert (the certificate that signs it) and "
                "metadata.cache (a file for the last verified copy, used while the URL is down)"
            )
        return self


class IdpAllowList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity_ids: list[str] = Field(default_factory=list)
    entity_categories: list[str] = Field(default_factory=list)

    def accepts(self, idp: IdentityProvider) -> bool:
        if self.entity_ids and idp.entity_id not in self.entity_ids:
            return False
        return not self.entity_categories or bool(
            idp.entity_categories & set(self.entity_categories)
        )


class SpMetadataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    display: dict[str, str] = Field(default_factory=lambda: {"sv": "Portvakt", "en": "Portvakt"})
    description: dict[str, str] = Field(default_factory=dict)
    logo_url: str | None = None
    organization_name: dict[str, str] = Field(default_factory=dict)
    organization_url: dict[str, str] = Field(default_factory=dict)
    organization_number: str | None = Field(default=None, pattern=r"^\d{10}$")
    contact_email: str | None = None
    entity_categories: list[str] = Field(default_factory=lambda: list(DEFAULT_ENTITY_CATEGORIES))


class SamlConfig(ProviderConfig, ChecksConfig, PublishesMetadata):
    type: Literal["saml"]
    display: dict[str, str] = Field(
        default_factory=lambda: {"sv": "Svensk e-legitimation", "en": "Swedish e-ID"}
    )
    hint: dict[str, str] = Field(
        default_factory=lambda: {
            "sv": "Freja, BankID eller annan e-legitimation via Sweden Connect",
            "en": "Freja, BankID or another e-ID through Sweden Connect",
        }
    )
    entity_id: str
    signing: KeyPairFiles
    encryption: EncryptionKeyFiles
    metadata: MetadataConfig
    allow: IdpAllowList = Field(default_factory=IdpAllowList)
    discovery_url: str | None = Field(
        default=None, description="SAML IdP discovery service; omitted: the gateway's IdP page"
    )
    binding: Literal["redirect", "post"] = "redirect"
    attributes: dict[IdentityField, str] = Field(
        default_factory=dict, description="attribute Name per identity field, over the defaults"
    )
    clock_skew_seconds: int = Field(default=60, ge=0, le=300)
    require_encrypted_assertions: bool = True
    require_signed_assertions: bool = False
    sp_metadata: SpMetadataSettings = Field(default_factory=SpMetadataSettings)
    signature_service: bool = Field(
        default=False,
        description=(
            "this SP is a Signature Service (registered as one with the federation): it only "
            "approves signatures (signApproval) with SignMessage, and logs no one in"
        ),
    )
    sign_idps: IdpAllowList = Field(
        default_factory=IdpAllowList,
        description="of the allowed IdPs, those offered for approvals; empty: all of them",
    )

    def key_pairs(self) -> list[tuple[str, KeyPairFiles]]:
        """Every SP key pair with its key path in the configuration."""
        pairs = [("signing", self.signing), ("encryption", self.encryption)]
        pairs += [(f"encryption.previous[{i}]", p) for i, p in enumerate(self.encryption.previous)]
        return pairs

    def refused_in_production(self, name: str) -> str | None:
        if self.require_encrypted_assertions:
            return None
        return (
            f"provider {name!r}: require_encrypted_assertions: false is only for test "
            "federations; it refuses to load with environment: production"
        )

    def certificate_expiries(self) -> dict[str, float]:
        return checks.certificate_expiries(self)

    async def upstream_problems(self, http: httpx2.AsyncClient) -> list[ConfigProblem]:
        return await checks.upstream_problems(self, http)

    def published_metadata(self, name: str, base_url: str) -> bytes:
        return published_metadata(name, self, base_url)

    def published_certificates(self) -> list[tuple[str, Path]]:
        return [(label, pair.cert) for label, pair in self.key_pairs()]

    @model_validator(mode="after")
    def _no_sigmessage_loa(self) -> SamlConfig:
        """Registry 1.7 dropped the `*-sigmessage` / `*-sigm` LoA URIs and Regler §3.3 forbids
        them: a signature approval is proven by signMessageDigest, never by the LoA."""
        deprecated = [uri for uri in self.loa if uri.endswith(("-sigmessage", "-sigm"))]
        if deprecated:
            raise ValueError(f"loa: the deprecated sigmessage LoA URIs are not used: {deprecated}")
        return self

    @model_validator(mode="after")
    def _files_usable(self) -> SamlConfig:
        """Refuse at load time (check-config too) what would fail at the first login."""
        for label, pair in self.key_pairs():
            try:
                KeyPair.from_files(pair.key, pair.cert)
            except (OSError, ValueError, TypeError) as error:
                raise ValueError(f"{label}: {error}") from None
        signer = None
        if self.metadata.cert is not None:
            try:
                signer = VerificationKey.from_pem_file(self.metadata.cert)
            except (OSError, ValueError) as error:
                raise ValueError(f"metadata.cert: {error}") from None
        if self.metadata.file is not None:
            try:
                read_federation(self.metadata.file.read_bytes(), signer)
            except (OSError, MetadataRejected) as error:
                raise ValueError(f"metadata.file: {error}") from None
        return self


def published_metadata(name: str, config: SamlConfig, base_url: str) -> bytes:
    """Our signed SP metadata, as /providers/NAME/metadata and `portvakt saml-metadata` give it."""
    base = f"{base_url}/providers/{name}"
    sp = config.sp_metadata
    description = SpDescription(
        entity_id=config.entity_id,
        acs_url=f"{base}{ACS_PATH}",
        slo_url=f"{base}{SLO_PATH}",
        display=sp.display,
        description=sp.description,
        logo_url=sp.logo_url,
        organization_name=sp.organization_name,
        organization_url=sp.organization_url,
        organization_number=sp.organization_number,
        contact_email=sp.contact_email,
        entity_categories=_entity_categories(config),
        want_assertions_signed=config.require_signed_assertions,
    )
    signing = KeyPair.from_files(config.signing.key, config.signing.cert)
    encryption = KeyPair.from_files(config.encryption.key, config.encryption.cert)
    return sp_metadata(description, signing, encryption)


def _entity_categories(config: SamlConfig) -> list[str]:
    """A Signature Service SP declares the sigservice service type (SC profile §7, SHALL)."""
    categories = list(config.sp_metadata.entity_categories)
    if config.signature_service and SIGSERVICE not in categories:
        categories.append(SIGSERVICE)
    return categories
