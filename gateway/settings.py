"""The YAML configuration as pydantic models, validated once at start with messages that name
the key, the problem and the fix. Unknown keys are errors. `${NAME}` reads the environment."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from gateway.oidc.claims import IDENTITY_SCOPES, SUPPORTED_SCOPES
from gateway.ui.branding import (
    HEX_COLOUR,
    MAX_LOGO_BYTES,
    MIN_TEXT_CONTRAST,
    contrast_ratio,
    logo_media_type,
)
from providers.base import ConfigPath, ProviderConfig
from providers.registry import PROVIDER_TYPES

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
SWEDEN_CONNECT = "sweden-connect"
# An e-mail address as operators write one; deliverability is not ours to judge.
EMAIL_ADDRESS = re.compile(r"[^@\s<>,;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
# A logo's host goes into a Content-Security-Policy: letters, digits, dots and dashes only.
PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]+")
_ENV_REFERENCE = re.compile(r"\$\{(file:[^}]+|[A-Za-z_][A-Za-z0-9_]*)\}")
AUTHORIZATION_CODE = "authorization_code"
CIBA_GRANT = "urn:openid:params:grant-type:ciba"  # CIBA Core 1.0 §4
GrantType = Literal["authorization_code", "urn:openid:params:grant-type:ciba"]
POLL = "poll"  # the one CIBA token delivery mode supported


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _provider_config(value: Any, info: ValidationInfo) -> ProviderConfig:
    """A `providers:` entry read by the config model of its type's row, at validation time so
    that a type registered after this module was imported is read too."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind is None:
        raise PydanticCustomError(PROVIDER_TYPE_MISSING, "the provider has no type")
    row = PROVIDER_TYPES.get(kind) if isinstance(kind, str) else None
    if row is None:
        raise PydanticCustomError(
            PROVIDER_TYPE_UNKNOWN, "{kind} is not a provider type", {"kind": repr(kind)}
        )
    config: ProviderConfig = row.config.model_validate(value, context=info.context)
    return config


PROVIDER_TYPE_MISSING = "provider_type_missing"
PROVIDER_TYPE_UNKNOWN = "provider_type_unknown"
ProviderSettings = Annotated[ProviderConfig, PlainValidator(_provider_config)]


class SentinelSettings(Model):
    service_name: str = Field(min_length=1, description="the name the sentinels monitor")
    hosts: list[str] = Field(min_length=1, description="host:port of each sentinel")
    password: str | None = Field(default=None, description="the sentinels' own password, if any")

    @field_validator("hosts")
    @classmethod
    def _host_ports(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{host!r} must be host:port, such as 10.0.0.5:26379")
        return hosts

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """`hosts` as (host, port) pairs, as the validator checked them."""
        return [(host.rpartition(":")[0], int(host.rpartition(":")[2])) for host in self.hosts]


class StoreSettings(Model):
    """One Redis server (url), a Sentinel-monitored master (sentinel + url) or a Cluster."""

    url: str = Field(description="redis://[:password@]host:port/db or rediss:// for TLS")
    cluster: bool = Field(default=False, description="url is any node of a Redis Cluster")
    sentinel: SentinelSettings | None = None
    timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    max_connections: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="per process; a burst waits for a free one (one server or a Sentinel master"
        " needs about one: its commands share one round trip at a time)",
    )
    tls_ca: ConfigPath | None = Field(
        default=None, description="rediss:// only: the CA of the Redis certificate (else system)"
    )
    tls_cert: ConfigPath | None = Field(default=None, description="client certificate (mTLS)")
    tls_key: ConfigPath | None = Field(default=None, description="its private key")
    replicas_to_acknowledge: int = Field(
        default=0,
        ge=0,
        le=10,
        description="each write and take waits (Redis WAIT) until this many replicas have it, so "
        "a failover promotes a replica that holds it (Sentinel picks the most up-to-date one; "
        "Redis calls this best effort); 0 = Redis's asynchronous replication",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @model_validator(mode="after")
    def _one_topology(self) -> StoreSettings:
        parts = urlsplit(self.url)
        if self.sentinel is not None:
            if self.cluster:
                raise ValueError("choose sentinel or cluster, not both")
            if parts.hostname or parts.scheme == "unix":
                raise ValueError(
                    "with sentinel, url carries only the master's password, database and TLS "
                    "(redis://:PASSWORD@/0 or rediss://...); the sentinels name the master"
                )
        elif not parts.hostname and parts.scheme != "unix":
            raise ValueError("url needs a host, such as redis://redis.internal:6379/0")
        uses_tls = (self.tls_ca, self.tls_cert, self.tls_key) != (None, None, None)
        if uses_tls and parts.scheme != "rediss":
            raise ValueError("tls_ca, tls_cert and tls_key need a rediss:// url")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.cluster and parts.path not in ("", "/", "/0"):
            raise ValueError("a Redis Cluster has only database 0; remove the /N from url")
        if self.cluster and self.replicas_to_acknowledge:
            raise ValueError(
                "replicas_to_acknowledge is for one server or a Sentinel set; a Cluster's WAIT "
                "would cover only the shard it reaches"
            )
        return self


class KeySettings(Model):
    dir: ConfigPath | None = Field(
        default=None, description="directory of PEM signing keys, shared by every instance"
    )
    reload_seconds: int = Field(
        default=30, ge=1, le=300, description="how often each instance re-reads the directory"
    )
    retired_keep_seconds: int = Field(
        default=86400,
        ge=600,
        description="how long `portvakt keys rotate` keeps a retired key published",
    )


class TracingSettings(Model):
    """OpenTelemetry traces sent over OTLP/HTTP (protobuf) to a collector; off unless enabled."""

    enabled: bool = False
    endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces",
        description="the collector's OTLP/HTTP traces URL (the path included)",
    )
    service_name: str = Field(default="portvakt", min_length=1, max_length=100)
    sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of new traces kept; a caller's choice wins"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="sent with each export, such as an authorization"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://otel-collector:4318/v1/traces")
        return endpoint


class BrandingSettings(Model):
    """The e-service's look on its login pages; colours must keep WCAG 2.1 AA text contrast."""

    logo: ConfigPath | None = Field(default=None, description="PNG, JPEG, WebP or SVG ≤ 256 KiB")
    colour: str | None = Field(default=None, description="#rrggbb behind the e-service's name")
    text_colour: str = "#ffffff"

    @field_validator("colour", "text_colour")
    @classmethod
    def _hex_colour(cls, colour: str | None) -> str | None:
        if colour is not None and not HEX_COLOUR.fullmatch(colour):
            raise ValueError(f"{colour!r} must be a colour written #rrggbb, such as #0b3d6e")
        return colour

    @field_validator("logo")
    @classmethod
    def _usable_logo(cls, logo: Path | None) -> Path | None:
        if logo is None:
            return None
        try:
            data = logo.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read {str(logo)!r}: {error.strerror}") from None
        if len(data) > MAX_LOGO_BYTES:
            raise ValueError(f"{str(logo)!r} is {len(data)} bytes; keep a logo under 256 KiB")
        if logo_media_type(data) is None:
            raise ValueError(f"{str(logo)!r} is not a PNG, JPEG, WebP or SVG (without script)")
        return logo

    @model_validator(mode="after")
    def _readable(self) -> BrandingSettings:
        if self.colour is not None:
            ratio = contrast_ratio(self.colour, self.text_colour)
            if ratio < MIN_TEXT_CONTRAST:
                raise ValueError(
                    f"text_colour {self.text_colour} on colour {self.colour} has contrast "
                    f"{ratio:.1f}:1; WCAG 2.1 AA needs {MIN_TEXT_CONTRAST}:1. Choose a darker "
                    "colour or another text_colour"
                )
        return self


def _email_address(address: str) -> str:
    if not EMAIL_ADDRESS.fullmatch(address):
        raise ValueError(f"{address!r} is not an e-mail address; write it as name@example.se")
    return address


def _code_grant_only() -> list[GrantType]:
    return ["authorization_code"]


class BankIDAppSettings(Model):
    """A native app registered for a client (bankid-2026-and-ciba.md §1.5): BankID is told
    this identifier, never one the request names."""

    app_identifier: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the app's Android package name or iOS bundle id",
    )


class ClientSettings(Model):
    client_id: str = Field(min_length=1)
    client_secret: str | None = None
    client_secret_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the secret's SHA-256 (portvakt hash-secret) instead of the secret itself",
    )
    jwks: dict[str, Any] | None = None
    token_endpoint_auth_method: (
        Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"] | None
    ) = None
    redirect_uris: list[str] = Field(default_factory=list)
    providers: list[str] | None = None
    display: dict[str, str] = Field(default_factory=dict)
    client_uri: str | None = None
    branding: BrandingSettings | None = None
    subject_type: Literal["pairwise", "public"] = "pairwise"
    sector_identifier: str | None = None
    userinfo_signed_response_alg: Literal["RS256"] | None = None
    sso: bool = True
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    backchannel_logout_uri: str | None = None
    # Request objects and PAR (RFC 9101 §10.5, RFC 9126 §6, OIDC Registration §2 names)
    jwks_uri: str | None = Field(
        default=None, description="where the client publishes its public keys (instead of jwks)"
    )
    request_object_signing_alg: Literal["RS256", "PS256", "ES256", "none"] | None = Field(
        default=None, description="the one alg its request objects must use; none: unsigned"
    )
    require_signed_request_object: bool = False
    require_pushed_authorization_requests: bool = False
    profile: Literal["swedish-oidc", "sweden-connect"] = "swedish-oidc"
    contacts: list[Annotated[str, AfterValidator(_email_address)]] = Field(default_factory=list)
    logo_uri: str | None = None
    scopes: list[str] | None = Field(
        default=None,
        description="the scopes it may ask for; omitted: all but the sign and signApproval ones",
    )
    # OpenID Connect CIBA (poll mode): CIBA Core 1.0 §4's registration metadata names
    grant_types: list[GrantType] = Field(default_factory=_code_grant_only, min_length=1)
    backchannel_token_delivery_mode: str | None = Field(
        default=None, description="poll (the only mode supported); required with the CIBA grant"
    )
    backchannel_call_initiator: Literal["user", "RP"] = Field(
        default="user",
        description="ours: who called whom when the request names none (authorization_details)",
    )
    bankid_app: BankIDAppSettings | None = Field(
        default=None, description="ours: its native app, for BankID's `app` device data"
    )

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str] | None) -> list[str] | None:
        if scopes is None:
            return None
        unknown = sorted(set(scopes) - set(SUPPORTED_SCOPES))
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SUPPORTED_SCOPES)}")
        if "openid" not in scopes:
            raise ValueError("scopes must include openid")
        return scopes

    @property
    def allowed_scopes(self) -> frozenset[str]:
        """The scopes it may be granted (Signature Extension §2.4: sign only when listed)."""
        return frozenset(IDENTITY_SCOPES if self.scopes is None else self.scopes)

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _absolute_without_fragment(cls, uris: list[str]) -> list[str]:
        for uri in uris:
            parts = urlsplit(uri)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
                raise ValueError(f"{uri!r} must be an absolute http(s) URI without a fragment")
        return uris

    @field_validator("client_uri", "backchannel_logout_uri")
    @classmethod
    def _absolute_page(cls, uri: str | None) -> str | None:
        if uri is not None:
            parts = urlsplit(uri)
            if parts.scheme not in ("https", "http") or not parts.netloc:
                raise ValueError(f"{uri!r} must be an absolute http(s) URI")
        return uri

    @field_validator("jwks_uri")
    @classmethod
    def _https_key_set(cls, uri: str | None) -> str | None:
        """Keys decide whose requests are believed: fetched over TLS, or from this machine."""
        if uri is not None:
            parts = urlsplit(uri)
            local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
            if not (parts.scheme == "https" or local) or not parts.netloc or parts.fragment:
                raise ValueError(f"{uri!r} must be an absolute https URI (http only on localhost)")
        return uri

    @field_validator("logo_uri")
    @classmethod
    def _logo_address(cls, uri: str | None) -> str | None:
        """The citizen's browser loads it, and its origin is allowed by the chooser's CSP."""
        if uri is None:
            return None
        parts = urlsplit(uri)
        try:
            port_ok = parts.port is not None or ":" not in parts.netloc
        except ValueError:
            port_ok = False
        local = parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
        if (
            (parts.scheme != "https" and not local)
            or not PLAIN_HOST.fullmatch(parts.hostname or "")
            or "@" in parts.netloc
            or not port_ok
        ):
            raise ValueError(
                f"{uri!r} must be an https URL of an image on a plain host name "
                "(http only on localhost), without user name or password"
            )
        return uri

    @field_validator("jwks")
    @classmethod
    def _usable_public_keys(cls, jwks: dict[str, Any] | None) -> dict[str, Any] | None:
        if jwks is None:
            return None
        try:
            keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise ValueError(f"is not a JWK Set with usable keys ({error})") from None
        if any(key.is_private for key in keys):
            raise ValueError("holds a private key; register only the client's public keys")
        return jwks

    @model_validator(mode="after")
    def _auth_method_matches_credentials(self) -> ClientSettings:
        method = self.auth_methods()
        if self.client_secret is not None and self.client_secret_sha256 is not None:
            raise ValueError("give either client_secret or client_secret_sha256, not both")
        if self.has_secret and self.has_keys:
            raise ValueError("give either client_secret or jwks (or jwks_uri), not both")
        if self.jwks is not None and self.jwks_uri is not None:
            raise ValueError("give either jwks or jwks_uri, not both (RFC 7591 §2)")
        if "private_key_jwt" in method and not self.has_keys:
            raise ValueError("private_key_jwt needs the client's public keys in jwks or jwks_uri")
        self._request_object_rules()
        if method & {"client_secret_basic", "client_secret_post"} and not self.has_secret:
            raise ValueError(f"{sorted(method)[0]} needs client_secret")
        if self.subject_type == "pairwise" and self.sector_identifier is None:
            hosts = {urlsplit(uri).hostname for uri in self.redirect_uris}
            if len(hosts) > 1 and not hosts <= LOCAL_HOSTS:
                raise ValueError(
                    "redirect_uris span several hosts: set sector_identifier so that the "
                    "pairwise sub is the same for all of them"
                )
        if self.profile == SWEDEN_CONNECT:
            self._meets_sweden_connect()
        self._grant_rules()
        if self.bankid_app is not None and not self.has_keys:
            # The app's device values come only in a signed request object.
            raise ValueError("bankid_app needs the client's public keys in jwks or jwks_uri")
        return self

    def _grant_rules(self) -> None:
        """A browser grant needs somewhere to send the browser; CIBA (poll mode only) needs a
        client that can prove who it is, since it makes a citizen's phone ring."""
        if AUTHORIZATION_CODE in self.grant_types and not self.redirect_uris:
            raise ValueError("redirect_uris is required for the authorization_code grant")
        if AUTHORIZATION_CODE not in self.grant_types and self.redirect_uris:
            raise ValueError(
                "redirect_uris are only for the authorization_code grant: remove them, or add "
                "authorization_code to grant_types"
            )
        if CIBA_GRANT not in self.grant_types:
            if self.backchannel_token_delivery_mode is not None:
                raise ValueError(
                    f"backchannel_token_delivery_mode is only for clients whose grant_types "
                    f"list {CIBA_GRANT}"
                )
            return
        if self.is_public:
            raise ValueError(
                f"the CIBA grant ({CIBA_GRANT}) is only for confidential clients; register "
                "jwks (private_key_jwt) or a client_secret"
            )
        if self.backchannel_token_delivery_mode != POLL:
            mode = self.backchannel_token_delivery_mode
            given = "is missing" if mode is None else f"is {mode!r}"
            raise ValueError(
                f"backchannel_token_delivery_mode {given}; only poll is supported (ping and "
                "push are not): set backchannel_token_delivery_mode: poll"
            )

    @property
    def uses_ciba(self) -> bool:
        return CIBA_GRANT in self.grant_types

    def _request_object_rules(self) -> None:
        alg = self.request_object_signing_alg
        if alg not in (None, "none") and not self.has_keys:
            raise ValueError(f"request_object_signing_alg {alg} needs jwks or jwks_uri")
        if self.require_signed_request_object and alg == "none":
            raise ValueError(
                "require_signed_request_object contradicts request_object_signing_alg: none"
            )
        if self.require_signed_request_object and not self.has_keys:
            raise ValueError("require_signed_request_object needs jwks or jwks_uri")

    def _meets_sweden_connect(self) -> None:
        """SC.OIDC 1.0 §2.3 (client authentication) and §3.2 (client metadata), each missing
        piece its own line."""
        problems = list(sweden_connect_problems(self))
        if problems:
            raise ValidationError.from_exception_data(
                "ClientSettings",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("sweden_connect", text),
                        loc=(key,),
                        input=getattr(self, key),
                    )
                    for key, text in problems
                ],
            )

    @property
    def logo_origin(self) -> str | None:
        """Where its logo comes from, for the chooser's Content-Security-Policy."""
        if self.logo_uri is None:
            return None
        parts = urlsplit(self.logo_uri)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def has_secret(self) -> bool:
        return bool(self.client_secret) or self.client_secret_sha256 is not None

    @property
    def has_keys(self) -> bool:
        """Public keys registered by value or by reference (RFC 7591 §2)."""
        return self.jwks is not None or self.jwks_uri is not None

    def auth_methods(self) -> frozenset[str]:
        """The token endpoint authentication methods this client may use."""
        if self.token_endpoint_auth_method is not None:
            return frozenset({self.token_endpoint_auth_method})
        if self.has_keys:
            return frozenset({"private_key_jwt"})
        if self.has_secret:
            return frozenset({"client_secret_basic", "client_secret_post"})
        return frozenset({"none"})

    @property
    def is_public(self) -> bool:
        return self.auth_methods() == {"none"}

    @property
    def home_page(self) -> str:
        """Where a citizen goes back to when no login is left to answer: `client_uri`, or the
        site of the first redirect_uri."""
        if self.client_uri:
            return self.client_uri
        if not self.redirect_uris:  # a CIBA-only client: no browser of its ever reaches us
            return "/"
        parts = urlsplit(self.redirect_uris[0])
        return f"{parts.scheme}://{parts.netloc}/"

    @property
    def subject_sector(self) -> str:
        """The sector its `sub` is computed in: its own when pairwise, one shared when public."""
        return self.sector if self.subject_type == "pairwise" else "public"

    @property
    def sector(self) -> str:
        if self.sector_identifier:
            return self.sector_identifier
        if not self.redirect_uris:  # a CIBA-only client: its own sector
            return f"client:{self.client_id}"
        return urlsplit(self.redirect_uris[0]).hostname or ""


def sweden_connect_problems(client: ClientSettings) -> Iterator[tuple[str, str]]:
    """(key, problem; fix) for each thing the sweden-connect profile requires and is missing."""
    profile = "the sweden-connect profile"
    if client.auth_methods() != {"private_key_jwt"}:
        only = f"{profile} allows only private_key_jwt (SC.OIDC §2.3; mTLS is not implemented)"
        if client.has_secret:
            key = "client_secret_sha256" if client.client_secret is None else "client_secret"
            yield key, f"{only}; remove {key} and register the client's public keys in jwks"
        else:
            yield "token_endpoint_auth_method", f"{only}; register the client's public keys in jwks"
    if not client.contacts:
        yield (
            "contacts",
            f"{profile} needs at least one contact e-mail address (SC.OIDC §3.2); "
            "add contacts: [drift@example.se]",
        )
    if not (client.display.get("sv") and client.display.get("en")):
        yield (
            "display",
            f"{profile} needs the e-service's name in Swedish and English (client_name#sv, #en; "
            "SC.OIDC §3.2); add display: {sv: …, en: …}",
        )
    for key, what, fix in (
        ("logo_uri", "logo", "serve the logo over https"),
        ("client_uri", "home page", "serve the page over https"),
    ):
        uri = getattr(client, key)
        if uri is None:
            yield (
                key,
                f"{profile} needs the e-service's {what} (SC.OIDC §3.2); add {key}: https://…",
            )
        elif urlsplit(uri).scheme != "https":
            yield key, f"{profile} needs an https URL (SC.OIDC §3.2); {fix}"


class SessionSettings(Model):
    """The gateway's SSO session: at most `ttl_seconds` long, ended after `idle_seconds` idle."""

    ttl_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 86400)
    idle_seconds: int = Field(default=1800, ge=1, le=86400)


class RateLimitSettings(Model):
    """Requests per minute; 0 switches a limit off. Counted in the store, across instances.

    An address may be shared by hundreds of citizens (a mobile operator's CGNAT, a municipal
    office), so the per-address limits only stop floods; an IPv6 address counts per /64. What
    stops one client hammering the e-ID services is the tight limit per browser and per pending
    login. A script that drops its cookies needs a new login each time, which the per-address
    limits still count.
    """

    authorize_per_ip_per_minute: int = Field(default=1200, ge=0)
    token_per_ip_per_minute: int = Field(default=600, ge=0)
    token_per_client_per_minute: int = Field(default=1200, ge=0)
    provider_starts_per_ip_per_minute: int = Field(default=600, ge=0)
    provider_starts_per_browser_per_minute: int = Field(default=20, ge=0)
    provider_starts_per_login_per_minute: int = Field(default=6, ge=0)
    # CIBA: each request makes a citizen's phone ring; hints are not secrets (CIBA §14)
    ciba_per_client_per_minute: int = Field(default=60, ge=0)
    ciba_per_person_per_minute: int = Field(default=3, ge=0)


class Settings(Model):
    issuer: str
    environment: Literal["test", "production"] = "test"
    store: StoreSettings | None = None
    keys: KeySettings = Field(default_factory=KeySettings)
    secret_key: str | None = Field(default=None, min_length=32)
    subject_salt: str | None = Field(default=None, min_length=16)
    providers: dict[str, ProviderSettings] = Field(min_length=1)
    clients: list[ClientSettings] = Field(min_length=1)
    login_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    access_token_ttl_seconds: int = Field(default=300, ge=60, le=3600)
    id_token_ttl_seconds: int = Field(default=300, ge=30, le=300)
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    session: SessionSettings = Field(default_factory=SessionSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    demo: bool = False

    @field_validator("issuer")
    @classmethod
    def _issuer_is_base_url(cls, issuer: str) -> str:
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("must be an absolute URL such as https://login.kommun.example")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment (OpenID Discovery §3)")
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            raise ValueError("must use https outside localhost")
        return issuer.rstrip("/")

    @field_validator("providers")
    @classmethod
    def _names_fit_in_urls(cls, providers: dict[str, Any]) -> dict[str, Any]:
        for name in providers:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name):
                raise ValueError(f"provider name {name!r} must be lowercase letters, digits or -")
        return providers

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        duplicated = [cid for cid, n in Counter(c.client_id for c in self.clients).items() if n > 1]
        if duplicated:
            raise ValueError(f"client_id {duplicated[0]!r} is registered twice")
        for client in self.clients:
            unknown = set(client.providers or ()) - set(self.providers)
            if unknown:
                raise ValueError(
                    f"client {client.client_id!r} names provider {sorted(unknown)[0]!r}, "
                    f"which is not under providers: (known: {', '.join(self.providers)})"
                )
        if self.demo:
            demo_client = self.client("demo-rp")
            if demo_client is None or demo_client.client_secret is None:
                raise ValueError("demo: true needs a client demo-rp with a client_secret")
        if self.environment == "production":
            self._production_ready()
        return self

    def _production_ready(self) -> None:
        for name, provider in self.providers.items():
            refusal = provider.refused_in_production(name)
            if refusal is not None:
                raise ValueError(refusal)
        for key in ("secret_key", "subject_salt"):
            if getattr(self, key) is None:
                raise ValueError(f"{key} is required with environment: production")
        if self.keys.dir is None:
            raise ValueError("keys.dir is required with environment: production")
        if self.demo:
            raise ValueError("demo: true is for local development; remove it in production")

    def client(self, client_id: str) -> ClientSettings | None:
        return next((c for c in self.clients if c.client_id == client_id), None)

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")


class SettingsError(Exception):
    """The configuration cannot be used. `problems` are one line each: key, problem, fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class UnreadableFile(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_text(path: Path) -> str:
    """A UTF-8 file's text; a folder or a Latin-1 file given by mistake is a reason, not a crash."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise UnreadableFile(error.strerror or str(error)) from error
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        raise UnreadableFile(
            f"it is not UTF-8 text (byte {byte:#04x} at position {error.start}); save it as UTF-8"
        ) from error


def load_settings(path: Path, overrides: dict[str, Any] | None = None) -> Settings:
    try:
        text = read_text(path)
    except UnreadableFile as error:
        raise SettingsError(str(path), [f"cannot read the file: {error.reason}"]) from error
    try:
        # libyaml's safe loader when present: 3-4x faster on a file with thousands of clients.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as error:
        raise SettingsError(str(path), [f"not valid YAML: {error}"]) from error
    if not isinstance(data, dict):
        raise SettingsError(str(path), ["the file must be a YAML mapping of keys to values"])
    data = expand_environment(data, str(path), path.parent)
    return settings_from_data(data, str(path), overrides, config_dir=path.parent)


def settings_from_data(
    data: dict[str, Any],
    source: str = "settings",
    overrides: dict[str, Any] | None = None,
    config_dir: Path | None = None,
) -> Settings:
    """`config_dir` is where relative file paths in the settings start (the YAML's folder)."""
    try:
        context = {"config_dir": config_dir} if config_dir is not None else None
        return Settings.model_validate({**data, **(overrides or {})}, context=context)
    except ValidationError as error:
        raise SettingsError(source, [describe(e) for e in error.errors()]) from None


def expand_environment(data: dict[str, Any], source: str, base: Path | None = None) -> Any:
    """Replace `${NAME}` with the environment variable NAME and `${file:PATH}` with the file's
    content (a mounted secret; relative to the configuration's folder). Every reference that
    cannot be resolved is reported at once, each with its key, so that one run lists them all."""
    problems: list[str] = []
    expanded = _expand(data, [], base, problems)
    if problems:
        raise SettingsError(source, problems)
    return expanded


def _expand(value: Any, path: list[str], base: Path | None, problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, [*path, str(k)], base, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, [*path, str(i)], base, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        resolved = _resolve(match.group(1), base)
        if isinstance(resolved, _Unresolved):
            problems.append(f"{key_path(path)}: {resolved.problem}")
            return match.group(0)
        return resolved

    return _ENV_REFERENCE.sub(lookup, value)


class _Unresolved:
    def __init__(self, problem: str) -> None:
        self.problem = problem


def _resolve(reference: str, base: Path | None) -> str | _Unresolved:
    """The value of `NAME` or `file:PATH`, or why there is none."""
    if reference.startswith("file:"):
        secret_file = Path(reference.removeprefix("file:"))
        if base is not None and not secret_file.is_absolute():
            secret_file = base / secret_file
        try:
            return read_text(secret_file).rstrip("\r\n")
        except UnreadableFile as error:
            return _Unresolved(f"cannot read {secret_file}: {error.reason}")
    if reference not in os.environ:
        return _Unresolved(f"refers to ${{{reference}}}, which is not set; export {reference}")
    return os.environ[reference]


_FIXES = {
    "extra_forbidden": "remove it or check its spelling against config/portvakt.example.yaml",
    "missing": "add it (see config/portvakt.example.yaml)",
}


def _fix(error_type: str) -> str | None:
    """The fix to suggest; the provider types are those registered now."""
    if error_type == PROVIDER_TYPE_UNKNOWN:
        return f"set type to one of: {', '.join(PROVIDER_TYPES)}"
    if error_type == PROVIDER_TYPE_MISSING:
        return f"add type: one of {', '.join(PROVIDER_TYPES)}"
    return _FIXES.get(error_type)


def key_path(parts: list[str]) -> str:
    """`clients[0].redirect_uris`: list indexes in brackets, as an operator reads the YAML."""
    text = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in parts)
    return text.lstrip(".") or "(top level)"


def describe(error: Any) -> str:
    """One line per problem: `key.path: problem; fix`."""
    key = key_path([str(part) for part in error["loc"]])
    message = error["msg"].removeprefix("Value error, ")
    fix = _fix(error["type"])
    return f"{key}: {message}" + (f"; {fix}" if fix else "")
