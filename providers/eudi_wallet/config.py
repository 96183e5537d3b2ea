"""A `type: eudi_wallet` entry: our access certificate (what signs our requests and names us
to the wallet), the trust list of PID providers, what to ask the PID for per scope, and how
long things may take."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from providers.base import ChecksConfig, ConfigPath, ProviderConfig
from providers.eudi_wallet.access import AccessKey
from providers.eudi_wallet.trust import TrustList

# The registry's LoA URI for eIDAS high (sweden-connect-saml.md): a PID is issued at high.
EIDAS_HIGH = "http://id.elegnamnden.se/loa/1.0/eidas-high"
# Every certificate of the bundled simulator (test PID issuer, test access CA) names this
# organisation: a trust list or access certificate carrying it is refused in production.
SIMULATOR_ORGANISATION = "Portvakt EU wallet simulator - TEST"
MAX_STATUS_LIST_BYTES = 50_000_000  # the largest status list body an operator may allow
IDENTIFYING_CLAIMS = ["issuing_country", "personal_administrative_number"]
NAME_CLAIMS = ["given_name", "family_name", "birthdate"]
# PID claims (PID Rulebook §4.1) to ask for, per scope the e-service asked for; the person's
# identifier (`sub`, personnummer, prid) needs the issuing country and the PID's number always.
DEFAULT_CLAIMS_BY_SCOPE: dict[str, list[str]] = {
    "openid": IDENTIFYING_CLAIMS,
    "profile": NAME_CLAIMS,
    "https://id.oidc.se/scope/naturalPersonInfo": NAME_CLAIMS,
    "https://id.oidc.se/scope/naturalPersonNumber": IDENTIFYING_CLAIMS,
    "https://id.swedenconnect.se/scope/eidasNaturalPersonIdentity": IDENTIFYING_CLAIMS,
}


class AccessCertificate(BaseModel):
    """The relying-party access certificate (ARF RPA_02): `key` signs our request objects,
    `cert` is a PEM file with the access certificate first, then its intermediates, never the
    root (HAIP: x5c carries no trust anchor and its first certificate is not self-signed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: ConfigPath
    cert: ConfigPath


class StatusListSettings(BaseModel):
    """Fetching the PIDs' status lists (Token Status List): https only, but for loopback http
    with `environment: test`, so that a local simulator can serve them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    max_cache_seconds: int = Field(default=3600, ge=0, le=86400)
    max_bytes: int = Field(default=1_000_000, ge=1024, le=MAX_STATUS_LIST_BYTES)


class EudiWalletConfig(ProviderConfig, ChecksConfig):
    type: Literal["eudi_wallet"]
    loa: list[str] = Field(default_factory=lambda: [EIDAS_HIGH], min_length=1)
    display: dict[str, str] = Field(
        default_factory=lambda: {"sv": "EU-plånbok", "en": "EU Digital Identity Wallet"}
    )
    hint: dict[str, str] = Field(
        default_factory=lambda: {
            "sv": "Den digitala identitetsplånboken från ditt EU-land",
            "en": "The digital identity wallet from your EU country",
        }
    )
    access_certificate: AccessCertificate
    trusted_issuers: list[ConfigPath] = Field(
        min_length=1, description="PEM bundles of trusted PID providers' certificates or CAs"
    )
    wallet_url: str = Field(
        default="openid4vp://", description="the scheme of the link and QR code (haip-vp://)"
    )
    request_seconds: int = Field(default=300, ge=30, le=1800)
    clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    kb_jwt_max_age_seconds: int = Field(default=300, ge=30, le=3600)
    status_lists: StatusListSettings = Field(default_factory=StatusListSettings)
    claims: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_CLAIMS_BY_SCOPE))
    simulator_url: str | None = Field(
        default=None, description="test only: the wait page also links the bundled simulator"
    )

    @field_validator("wallet_url")
    @classmethod
    def _wallet_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("openid4vp", "haip-vp", "https"):
            raise ValueError("wallet_url must be openid4vp://, haip-vp:// or an https link")
        return value

    @model_validator(mode="after")
    def _files_usable(self) -> EudiWalletConfig:
        """Refuse at load time (check-config too) what would fail at the first login."""
        files = self.access_certificate
        try:
            AccessKey.load(files.key, files.cert)
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"access_certificate: {error}") from None
        try:
            TrustList.from_pem_files(self.trusted_issuers)
        except (OSError, ValueError) as error:
            raise ValueError(f"trusted_issuers: {error}") from None
        return self

    def refused_in_production(self, name: str) -> str | None:
        if self.simulator_url is not None:
            return f"provider {name!r} links the wallet simulator (simulator_url)"
        if any(
            _from_simulator(path) for path in [*self.trusted_issuers, self.access_certificate.cert]
        ):
            return f"provider {name!r} trusts or uses the wallet simulator's test certificates"
        return None

    def certificate_expiries(self) -> dict[str, float]:
        expiries = {
            f"access_certificate.cert[{n}]": c.not_valid_after_utc.timestamp()
            for n, c in enumerate(_certificates(self.access_certificate.cert))
        }
        for index, path in enumerate(self.trusted_issuers):
            for n, certificate in enumerate(_certificates(path)):
                key = f"trusted_issuers[{index}][{n}]"
                expiries[key] = certificate.not_valid_after_utc.timestamp()
        return expiries


def _certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _from_simulator(path: Path) -> bool:
    try:
        certificates = _certificates(path)
    except (OSError, ValueError):
        return False  # the provider's own loading reports the file
    return any(SIMULATOR_ORGANISATION in c.subject.rfc4514_string() for c in certificates)
