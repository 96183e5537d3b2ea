"""A `type: bankid` entry: where BankID's RP API is (or the simulator), the RP certificate and
the pinned CA, what the order requires (PIN, passport check, card reader, certificate policies),
what each risk level BankID reports does, and what the app shows the citizen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from providers.bankid.client import TEST_URL, certificate_not_after
from providers.bankid.device import referring_domain
from providers.bankid.messages import N_
from providers.base import ChecksConfig, ConfigPath, ProviderConfig

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class ClientCertificate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: ConfigPath = Field(description="PKCS#12 (.p12/.pfx) or PEM certificate of this RP")
    key: ConfigPath | None = Field(default=None, description="PEM key, when file is a PEM cert")
    password: str | None = None


def _same_in_every_language(value: Any) -> Any:
    return {"sv": value, "en": value} if isinstance(value, str) else value


# A text shown to the citizen, {sv: …, en: …}; a plain string is used in every language.
LocalizedText = Annotated[dict[str, str], BeforeValidator(_same_in_every_language)]
DEFAULT_VISIBLE_TEXT = N_("Log in to {service}")


RiskAction = Literal["accept", "refuse"]


class RiskPolicy(BaseModel):
    """What a login with each of BankID's risk levels (`completionData.risk`,
    bankid-2026-and-ciba.md §1.3) does. `unknown`: BankID sent none (it could not calculate it),
    never taken for `low`. `high` means BankID found signs of fraud: refused unless configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: RiskAction = "accept"
    moderate: RiskAction = "accept"
    high: RiskAction = "refuse"
    unknown: RiskAction = "accept"

    def refuses(self, level: str) -> bool:
        action: str = getattr(self, level) if level in RISK_LEVELS else self.unknown
        return action == "refuse"


RISK_LEVELS = ("low", "moderate", "high")


class BankIDConfig(ProviderConfig, ChecksConfig):
    type: Literal["bankid"]
    url: str = TEST_URL
    client_cert: ClientCertificate | None = None
    ca: ConfigPath | None = Field(default=None, description="the BankID server root CA to pin")
    display: dict[str, str] = Field(default_factory=lambda: {"sv": "BankID", "en": "BankID"})
    hint: dict[str, str] = Field(
        default_factory=lambda: {
            "sv": "Mobilt BankID eller BankID på kort",
            "en": "Mobile BankID or BankID on card",
        }
    )
    pin_code: bool = False
    mrtd: bool = False
    card_reader: Literal["class1", "class2"] | None = Field(
        default=None, description="BankID on card only with this reader class (default: any)"
    )
    certificate_policies: list[str] | None = None
    user_visible_data: LocalizedText | None = Field(
        default=None, description="default: 'Logga in på {service}' / 'Log in to {service}'"
    )
    user_visible_data_per_client: dict[str, LocalizedText] = Field(default_factory=dict)
    launch_url: str | None = Field(
        default=None, description="only for the simulator: where 'open BankID' leads"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    risk: RiskPolicy = Field(default_factory=RiskPolicy)
    referring_domain: str | None = Field(
        default=None, description="web.referringDomain (default: the issuer's host name)"
    )

    @field_validator("referring_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and referring_domain(value) is None:
            raise ValueError("referring_domain must be a domain name such as kommun.se")
        return referring_domain(value) if value is not None else None

    @model_validator(mode="after")
    def _connection(self) -> BankIDConfig:
        parts = urlsplit(self.url)
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            raise ValueError("url must be https (http only for the local simulator)")
        if parts.scheme == "https" and (self.client_cert is None or self.ca is None):
            raise ValueError(
                "client_cert and ca are required: BankID is reached with mutual TLS and its "
                "server CA pinned"
            )
        if parts.scheme not in ("http", "https"):
            raise ValueError("url must be https://…/rp/v6.0")
        return self

    @property
    def is_simulator(self) -> bool:
        return urlsplit(self.url).scheme == "http" or self.launch_url is not None

    def refused_in_production(self, name: str) -> str | None:
        if not self.is_simulator:
            return None
        return (
            f"provider {name!r} points at the BankID simulator (http url or "
            "launch_url); it refuses to load with environment: production"
        )

    def certificate_expiries(self) -> dict[str, float]:
        cert = self.client_cert
        if cert is None:
            return {}
        return {"client_cert": certificate_not_after(cert.file, cert.password)}


def in_language(texts: Mapping[str, str], locale: str) -> str:
    """A `{sv: …, en: …}` text in `locale`, else in Swedish, else any."""
    return texts.get(locale) or texts.get("sv") or next(iter(texts.values()), "")
