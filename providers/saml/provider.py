"""SAML 2.0 upstream: the IdPs of a Sweden Connect federation (or one IdP) behind the OP.

One `providers:` entry of `type: saml` is one SP (entityID, signing and encryption keys) and the
IdPs its metadata allows. `start()` picks the IdP (only one qualifies, the gateway's IdP page, or a
discovery service) and sends a signed AuthnRequest for the login's LoA; the IdP posts its
Response to `/acs`, which is `finish()`: `saml_response` validates it, the assertion ID goes into
the replay cache, and the attributes become an `Identity` whose `acr` is the asserted
AuthnContextClassRef. Single logout: `logout()` sends a LogoutRequest when the gateway session
ends, `/slo` answers the IdP's LogoutResponse and its LogoutRequests.

XML security (parsing, signatures, decryption) runs in worker threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import httpx2
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.base import (
    AuthenticationFailed,
    ChecksConfig,
    ConfigPath,
    ConfigProblem,
    Evidence,
    FormRejected,
    HasLifecycle,
    Identity,
    LoginContext,
    LoginStateLost,
    PassiveLoginImpossible,
    ProviderConfig,
    ProviderError,
    ProviderServices,
    ProviderUnavailable,
    PublishesMetadata,
    ReportsHealth,
    UnmetAssurance,
    UpstreamLogout,
    UserCancelled,
)
from providers.records import StoreRecord, login_key
from providers.saml import checks
from providers.saml.attributes import IdentityField, UnacceptableAttribute, read_person
from providers.saml.messages import (
    authn_request,
    inflate,
    logout_request,
    logout_response,
    new_id,
    post_form_value,
    redirect_url,
)
from providers.saml.metadata import (
    HTTP_POST,
    HTTP_REDIRECT,
    IdentityProvider,
    MetadataRejected,
    MetadataSource,
    read_federation,
)
from providers.saml.response import (
    AssuranceNotRequested,
    Expectation,
    StatusError,
    validate_response,
)
from providers.saml.sp_metadata import SpDescription, sp_metadata
from providers.saml.xml import (
    NS,
    DecryptionKeys,
    KeyPair,
    VerificationKey,
    XmlRejected,
    parse_message,
    tag,
    verify_detached,
    verify_enveloped,
)

Result = TypeVar("Result")
log = logging.getLogger("portvakt.saml")

REQUEST_TTL_SECONDS = 900
PNR_ATTRIBUTE = "urn:oid:1.2.752.29.4.13"
LOGOUT_TTL_SECONDS = 300

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


@dataclass(frozen=True)
class PendingChoice(StoreRecord):
    """A login waiting for the citizen (or a discovery service) to pick the IdP."""

    login_id: str
    client_id: str
    loa: tuple[str, ...]
    force_authn: bool
    hint: str | None
    locale: str

    TUPLE_FIELDS = ("loa",)


@dataclass(frozen=True)
class PendingRequest(StoreRecord):
    """An AuthnRequest we sent, by its RelayState. The ACS reads it and leaves it to expire: the
    pending login's single use decides whether a login completes, so a Response posted again
    to another instance (this one died before writing the code) can still finish."""

    request_id: str
    login_id: str
    idp: str
    loa: tuple[str, ...]
    force_authn: bool
    requested_at: float

    TUPLE_FIELDS = ("loa",)


@dataclass(frozen=True)
class UpstreamSession(StoreRecord):
    """What single logout needs of the IdP session (kept in Identity.upstream_session)."""

    idp: str
    name_id: str
    name_id_format: str | None
    session_index: str | None


class NoIdentityProviderAvailable(ProviderError):
    reason = "no_idp"
    oauth_error = "temporarily_unavailable"


class PrincipalMismatch(ProviderError):
    reason = "unknown_principal"


class SamlProvider(HasLifecycle, UpstreamLogout, ReportsHealth):
    finish_path = "/acs"
    finish_methods: Sequence[str] = ("POST",)

    def __init__(self, config: SamlConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._config = config
        self._services = services
        self._base = f"{services.base_url}/providers/{self.name}"
        self.acs_url = f"{self._base}{self.finish_path}"
        self.slo_url = f"{self._base}/slo"
        self._signing = KeyPair.from_files(config.signing.key, config.signing.cert)
        self._encryption = KeyPair.from_files(config.encryption.key, config.encryption.cert)
        self._decryption = DecryptionKeys(
            [
                config.encryption.key.read_bytes(),
                *(old.key.read_bytes() for old in config.encryption.previous),
            ]
        )
        signer = config.metadata.cert
        self.metadata = MetadataSource(
            self.name,
            file=config.metadata.file,
            url=config.metadata.url,
            signer=VerificationKey.from_pem_file(signer) if signer else None,
            cache=config.metadata.cache,
            refresh_seconds=config.metadata.refresh_seconds,
            accept=config.allow.accepts,
            upstream=services.upstream,
        )
        self.sp_metadata = published_metadata(self.name, config, services.base_url)

    # -- the gateway's hooks ------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/metadata", self._metadata_endpoint),
            Route("/idp", self._idp_page, methods=["GET", "POST"]),
            Route("/discovered", self._discovered),
            Route("/slo", self._single_logout, methods=["GET", "POST"]),
        ]

    async def astart(self) -> None:
        self.metadata.start()

    async def aclose(self) -> None:
        await self.metadata.aclose()

    @property
    def metadata_loaded_at(self) -> float | None:
        return self.metadata.loaded_at

    def certificates(self) -> dict[str, float]:
        """Expiry of our SAML certificates (Unix time), for /metrics."""
        return {
            "signing": self._signing.certificate.not_valid_after_utc.timestamp(),
            "encryption": self._encryption.certificate.not_valid_after_utc.timestamp(),
        }

    @property
    def problem(self) -> str | None:
        """Why this provider cannot log anyone in right now (for /readyz), or None."""
        return self.metadata.problem if not self.metadata.idps else None

    # -- login ----------------------------------------------------------------------------------

    async def start(self, request: Request, login: LoginContext) -> Response:
        if login.requested_loa:
            loa = tuple(uri for uri in login.requested_loa if uri in self.loa)
            if not loa:
                raise UnmetAssurance(self.name, login.login_id, "no requested LoA is configured")
        else:
            loa = tuple(self._config.loa)
        choice = PendingChoice(
            login_id=login.login_id,
            client_id=login.client_id,
            loa=loa,
            force_authn=login.force_authn,
            hint=login.identity_hint,
            locale=login.locale,
        )
        candidates = self._candidates(loa)
        if not candidates:
            raise NoIdentityProviderAvailable(self.name, login.login_id, "no IdP offers the LoA")
        if len(candidates) == 1:
            return await self._send_request(request, choice, candidates[0])
        await self._services.store.put(
            login_key("choice", login.login_id), choice.dumps(), REQUEST_TTL_SECONDS
        )
        if self._config.discovery_url:
            back = f"{self._base}/discovered?{urlencode({'login': login.login_id})}"
            query = urlencode(
                {"entityID": self._config.entity_id, "return": back, "returnIDParam": "entityID"}
            )
            return RedirectResponse(f"{self._config.discovery_url}?{query}", status_code=303)
        return self._render_idp_page(request, choice, candidates)

    async def finish(self, request: Request) -> tuple[str, Identity]:
        form = await request.form(max_files=0, max_fields=4)
        relay = str(form.get("RelayState", ""))
        raw = await self._services.store.get(f"request:{relay}") if relay else None
        if raw is None:
            raise LoginStateLost(self.name, None, "ACS: RelayState of no outstanding request")
        pending = PendingRequest.loads(raw)
        idp = self.metadata.idps.get(pending.idp)
        if idp is None:
            raise AuthenticationFailed(self.name, pending.login_id, "IdP left the metadata")
        expected = Expectation(
            request_id=pending.request_id,
            idp=idp,
            acs_url=self.acs_url,
            sp_entity_id=self._config.entity_id,
            acceptable_loa=frozenset(pending.loa),
            requested_at=pending.requested_at,
            force_authn=pending.force_authn,
            require_encryption=self._config.require_encrypted_assertions,
            require_signed_assertion=self._config.require_signed_assertions,
            clock_skew=self._config.clock_skew_seconds,
        )
        try:
            assertion = await _xml_step(
                _validate, str(form.get("SAMLResponse", "")), expected, self._decryption
            )
        except StatusError as status:
            log.info("%s: IdP %s answered %s", self.name, idp.entity_id, status)
            raise _status_failure(self.name, pending.login_id, status) from None
        except AssuranceNotRequested as error:
            raise UnmetAssurance(self.name, pending.login_id, str(error)) from None
        except XmlRejected as error:
            log.warning("%s: Response from %s rejected: %s", self.name, idp.entity_id, error)
            raise AuthenticationFailed(self.name, pending.login_id, str(error)) from None
        now = time.time()
        replay_key = hashlib.sha256(f"{assertion.issuer}\n{assertion.id}".encode()).hexdigest()
        ttl = max(1, int(assertion.valid_until - now) + self._config.clock_skew_seconds)
        if not await self._first_use(f"assertion:{replay_key}", pending.login_id, ttl):
            log.warning("%s: replayed assertion %s from %s", self.name, assertion.id, idp.entity_id)
            raise AuthenticationFailed(self.name, pending.login_id, "replayed assertion")
        try:
            person = read_person(assertion.attributes, self._config.attributes)
        except UnacceptableAttribute as error:
            raise AuthenticationFailed(self.name, pending.login_id, str(error)) from None
        if not any(
            person.get(k) for k in ("personal_identity_number", "coordination_number", "prid")
        ):
            raise AuthenticationFailed(
                self.name, pending.login_id, "neither a personal identity number nor a prid"
            )
        session = UpstreamSession(
            assertion.issuer, assertion.name_id, assertion.name_id_format, assertion.session_index
        )
        mapped = person.pop("mapped_identity_number", None)
        evidence = Evidence(
            idp.entity_id, assertion.id, mapped_identity_number=str(mapped) if mapped else None
        )
        identity = Identity(
            provider=self.name,
            subject=assertion.name_id,
            loa=assertion.authn_context,
            auth_time=int(assertion.authn_instant),
            upstream_session=session.dumps().decode(),
            evidence=evidence,
            **person,  # type: ignore[arg-type]
        )
        return pending.login_id, identity

    async def _first_use(self, key: str, login_id: str, ttl: int) -> bool:
        """The replay cache: an assertion serves one login. The same login may present it again
        (a retry after an instance died mid-finish); that login is still used only once."""
        store = self._services.store
        return await store.add(key, login_id.encode(), ttl) or (
            await store.get(key) == login_id.encode()
        )

    def _candidates(self, loa: Sequence[str]) -> list[IdentityProvider]:
        """Allowed IdPs that can deliver one of the LoAs (when they declare their LoAs)."""
        return [
            idp
            for idp in self.metadata.idps.values()
            if not idp.assurance or idp.assurance & set(loa)
        ]

    async def _send_request(
        self, request: Request, choice: PendingChoice, idp: IdentityProvider
    ) -> Response:
        binding, location = self._endpoint(idp.sso)
        now = time.time()
        request_id, relay = new_id(), secrets.token_urlsafe(24)
        message = authn_request(
            request_id=request_id,
            issued_at=now,
            destination=location,
            acs_url=self.acs_url,
            sp_entity_id=self._config.entity_id,
            loa=choice.loa,
            force_authn=choice.force_authn,
            principal={PNR_ATTRIBUTE: choice.hint} if choice.hint else {},
        )
        pending = PendingRequest(
            request_id, choice.login_id, idp.entity_id, choice.loa, choice.force_authn, now
        )
        await self._services.store.put(f"request:{relay}", pending.dumps(), REQUEST_TTL_SECONDS)
        return await self._deliver(
            request, binding, location, message, "SAMLRequest", relay, choice.locale
        )

    async def _deliver(
        self,
        request: Request,
        binding: str,
        location: str,
        message: etree._Element,
        parameter: str,
        relay: str | None,
        locale: str | None = None,
    ) -> Response:
        if binding == HTTP_REDIRECT:
            url = await asyncio.to_thread(
                redirect_url, location, message, parameter, relay, self._signing
            )
            return RedirectResponse(url, status_code=303)
        value = await asyncio.to_thread(post_form_value, message, self._signing)
        context = {
            "action": location,
            "fields": {parameter: value, **({"RelayState": relay} if relay else {})},
        }
        return self._services.pages.render(request, "saml_post.html", context, 200, locale)

    def _endpoint(self, endpoints: Mapping[str, str]) -> tuple[str, str]:
        order = (
            (HTTP_REDIRECT, HTTP_POST)
            if self._config.binding == "redirect"
            else (
                HTTP_POST,
                HTTP_REDIRECT,
            )
        )
        for binding in order:
            if binding in endpoints:
                return binding, endpoints[binding]
        raise ProviderUnavailable(self.name, None, "the IdP has no usable endpoint")

    # -- choosing the IdP -----------------------------------------------------------------------

    async def _idp_page(self, request: Request) -> Response:
        if request.method == "GET":
            login_id = request.query_params.get("login", "")
            choice = await self._choice(login_id, take=False)
            return self._render_idp_page(request, choice, self._candidates(choice.loa))
        form = await request.form(max_files=0, max_fields=6)
        login_id = str(form.get("login", ""))
        if not self._services.forms.verify(request, login_id, str(form.get("csrf", ""))):
            raise FormRejected(self.name, login_id, "IdP choice failed its CSRF check")
        choice = await self._choice(login_id, take=True)
        if "cancel" in form:
            raise UserCancelled(self.name, login_id)
        return await self._send_chosen(request, choice, str(form.get("idp", "")))

    async def _discovered(self, request: Request) -> Response:
        """SAML IdP Discovery protocol §2.4.1: the DS returns the chosen entityID to us."""
        choice = await self._choice(request.query_params.get("login", ""), take=True)
        entity_id = request.query_params.get("entityID")
        if not entity_id:
            raise UserCancelled(self.name, choice.login_id, "the discovery service chose no IdP")
        return await self._send_chosen(request, choice, entity_id)

    async def _send_chosen(
        self, request: Request, choice: PendingChoice, entity_id: str
    ) -> Response:
        idp = next((i for i in self._candidates(choice.loa) if i.entity_id == entity_id), None)
        if idp is None:
            raise AuthenticationFailed(self.name, choice.login_id, "chosen IdP is not allowed")
        return await self._send_request(request, choice, idp)

    async def _choice(self, login_id: str, take: bool) -> PendingChoice:
        store = self._services.store
        key = login_key("choice", login_id)
        raw = await (store.take(key) if take else store.get(key)) if login_id else None
        if raw is None:
            raise LoginStateLost(self.name, None, "no IdP choice pending for that login")
        return PendingChoice.loads(raw)

    def _render_idp_page(
        self, request: Request, choice: PendingChoice, idps: Sequence[IdentityProvider]
    ) -> Response:
        action = f"{self._base}/idp"
        context = {
            "provider": self,
            "login_id": choice.login_id,
            "client_id": choice.client_id,
            "csrf": self._services.forms.token(request, choice.login_id),
            "action": action,
            "page_url": f"{action}?{urlencode({'login': choice.login_id})}",
            "idps": [
                (idp.entity_id, {**idp.display, "en": idp.name("en"), "sv": idp.name("sv")})
                for idp in sorted(idps, key=lambda i: i.name("sv").lower())
            ],
        }
        return self._services.pages.render(request, "saml_idp.html", context, 200, choice.locale)

    # -- single logout --------------------------------------------------------------------------

    async def logout(
        self, request: Request, identity: Identity, continue_url: str
    ) -> Response | None:
        """SP-initiated SLO: the browser goes to the IdP, which comes back to /slo."""
        if not identity.upstream_session:
            return None
        session = UpstreamSession.loads(identity.upstream_session.encode())
        idp = self.metadata.idps.get(session.idp)
        if idp is None or not idp.slo:
            return None
        binding, location = self._endpoint(idp.slo)
        request_id, relay = new_id(), secrets.token_urlsafe(24)
        message = logout_request(
            request_id=request_id,
            issued_at=time.time(),
            destination=location,
            sp_entity_id=self._config.entity_id,
            name_id=session.name_id,
            name_id_format=session.name_id_format,
            session_index=session.session_index,
        )
        record = json.dumps({"request_id": request_id, "idp": idp.entity_id, "next": continue_url})
        await self._services.store.put(f"logout:{relay}", record.encode(), LOGOUT_TTL_SECONDS)
        return await self._deliver(request, binding, location, message, "SAMLRequest", relay)

    async def _single_logout(self, request: Request) -> Response:
        message, relay, idp = await self._incoming_logout_message(request)
        if message.tag == tag("samlp", "LogoutResponse"):
            return await self._logout_answered(message, relay, idp)
        if message.tag == tag("samlp", "LogoutRequest"):
            return await self._logout_requested(request, message, relay, idp)
        raise AuthenticationFailed(self.name, None, "SLO: neither LogoutRequest nor Response")

    async def _incoming_logout_message(
        self, request: Request
    ) -> tuple[etree._Element, str | None, IdentityProvider]:
        """Parse and verify a LogoutRequest/LogoutResponse in either binding."""
        if request.method == "GET":
            params = request.query_params
            parameter = "SAMLRequest" if "SAMLRequest" in params else "SAMLResponse"
            try:
                data = await _xml_step(inflate, params.get(parameter, ""))
                message = await _xml_step(parse_message, data)
            except (ValueError, binascii.Error, XmlRejected) as error:
                raise AuthenticationFailed(self.name, None, f"SLO: unreadable: {error}") from None
            idp = self._issuer_of(message)
            signed = _redirect_signed_part(
                request.scope.get("query_string", b"").decode(), parameter
            )
            signature = params.get("Signature")
            try:
                valid = bool(signature) and await _xml_step(
                    verify_detached,
                    signed.encode(),
                    base64.b64decode(signature or ""),
                    params.get("SigAlg", ""),
                    idp.signing_keys,
                )
            except (XmlRejected, ValueError):  # binascii.Error, or base64 of non-ASCII text
                valid = False
            if not valid:
                raise AuthenticationFailed(self.name, None, "SLO: signature does not verify")
            return message, params.get("RelayState"), idp
        form = await request.form(max_files=0, max_fields=4)
        parameter = "SAMLRequest" if "SAMLRequest" in form else "SAMLResponse"
        try:
            data = base64.b64decode(str(form.get(parameter, "")), validate=True)
            message = await _xml_step(parse_message, data)
            idp = self._issuer_of(message)
            if not await _xml_step(verify_enveloped, message, idp.signing_keys):
                raise XmlRejected("unsigned")
        except (ValueError, XmlRejected) as error:  # ValueError: binascii's, or not ASCII
            raise AuthenticationFailed(self.name, None, f"SLO: rejected: {error}") from None
        relay = form.get("RelayState")
        return message, str(relay) if relay is not None else None, idp

    def _issuer_of(self, message: etree._Element) -> IdentityProvider:
        issuer = (message.findtext("saml:Issuer", namespaces=NS) or "").strip()
        idp = self.metadata.idps.get(issuer)
        if idp is None:
            raise AuthenticationFailed(self.name, None, "SLO: message from an unknown IdP")
        if message.get("Destination") not in (None, self.slo_url):
            raise AuthenticationFailed(self.name, None, "SLO: Destination is not our SLO")
        return idp

    async def _logout_answered(
        self, message: etree._Element, relay: str | None, idp: IdentityProvider
    ) -> Response:
        raw = await self._services.store.take(f"logout:{relay}") if relay else None
        if raw is None:
            raise LoginStateLost(self.name, None, "SLO: LogoutResponse to no request of ours")
        record: dict[str, Any] = json.loads(raw)
        if message.get("InResponseTo") != record["request_id"] or idp.entity_id != record["idp"]:
            raise LoginStateLost(self.name, None, "SLO: LogoutResponse to another request")
        return RedirectResponse(record["next"], status_code=303)

    async def _logout_requested(
        self, request: Request, message: etree._Element, relay: str | None, idp: IdentityProvider
    ) -> Response:
        """IdP-initiated: end the gateway sessions of that IdP session, then answer Success."""
        name_id = (message.findtext("saml:NameID", namespaces=NS) or "").strip()
        indexes = [(s.text or "").strip() for s in message.findall("samlp:SessionIndex", NS)]
        ended = 0
        if name_id:
            for index in indexes or [""]:
                key = upstream_session_key(idp.entity_id, name_id, index or None)
                ended += await self._services.end_upstream_session(self.name, key)
        log.info("%s: IdP %s logged out %d gateway session(s)", self.name, idp.entity_id, ended)
        binding, location = self._endpoint(idp.slo)
        answer = logout_response(
            response_id=new_id(),
            issued_at=time.time(),
            destination=location,
            in_response_to=message.get("ID", ""),
            sp_entity_id=self._config.entity_id,
        )
        return await self._deliver(request, binding, location, answer, "SAMLResponse", relay)

    def session_keys(self, identity: Identity) -> list[str]:
        """Index keys of a gateway session, so an IdP's LogoutRequest can find it."""
        if not identity.upstream_session:
            return []
        session = UpstreamSession.loads(identity.upstream_session.encode())
        keys = [upstream_session_key(session.idp, session.name_id, None)]
        if session.session_index:
            keys.append(upstream_session_key(session.idp, session.name_id, session.session_index))
        return keys

    # -- metadata out ---------------------------------------------------------------------------

    async def _metadata_endpoint(self, request: Request) -> Response:
        return Response(
            self.sp_metadata,
            media_type="application/samlmetadata+xml",
            headers={"Cache-Control": "public, max-age=3600"},
        )


def published_metadata(name: str, config: SamlConfig, base_url: str) -> bytes:
    """Our signed SP metadata, as /providers/NAME/metadata and `portvakt saml-metadata` give it."""
    base = f"{base_url}/providers/{name}"
    sp = config.sp_metadata
    description = SpDescription(
        entity_id=config.entity_id,
        acs_url=f"{base}{SamlProvider.finish_path}",
        slo_url=f"{base}/slo",
        display=sp.display,
        description=sp.description,
        logo_url=sp.logo_url,
        organization_name=sp.organization_name,
        organization_url=sp.organization_url,
        organization_number=sp.organization_number,
        contact_email=sp.contact_email,
        entity_categories=sp.entity_categories,
        want_assertions_signed=config.require_signed_assertions,
    )
    signing = KeyPair.from_files(config.signing.key, config.signing.cert)
    encryption = KeyPair.from_files(config.encryption.key, config.encryption.cert)
    return sp_metadata(description, signing, encryption)


def upstream_session_key(idp: str, name_id: str, session_index: str | None) -> str:
    """A key under which the gateway indexes its session for one IdP session (or, without a
    SessionIndex, for the person at that IdP)."""
    text = f"{idp}\n{name_id}\n{session_index or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


async def _xml_step(work: Callable[..., Result], *args: Any) -> Result:
    """One step of XML security, in a thread so a slow one does not stall the loop. The one
    place where any exception of the XML stack (lxml, xmlsec, zlib, base64, ...) becomes
    XmlRejected, the provider's refusal; our own refusals pass through as they are."""
    try:
        return await asyncio.to_thread(work, *args)
    except (XmlRejected, StatusError):
        raise
    except Exception as error:
        log.warning("XML step %s failed: %s", work.__name__, type(error).__name__)
        raise XmlRejected(f"unreadable message ({type(error).__name__})") from error


def _validate(encoded: str, expected: Expectation, decryption: DecryptionKeys) -> Any:
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise XmlRejected("SAMLResponse is not base64") from None
    return validate_response(parse_message(data), expected, decryption, time.time())


def _status_failure(provider: str, login_id: str, status: StatusError) -> ProviderError:
    """Sweden Connect profile §6.4 status codes -> the citizen's message and the OIDC error."""
    detail = str(status)
    match status.subcode:
        case "http://id.elegnamnden.se/status/1.0/cancel":
            return UserCancelled(provider, login_id, detail)
        case "urn:oasis:names:tc:SAML:2.0:status:NoPassive":
            return PassiveLoginImpossible(provider, login_id, detail)
        case "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext":
            return UnmetAssurance(provider, login_id, detail)
        case (
            "urn:oasis:names:tc:SAML:2.0:status:NoAvailableIDP"
            | "urn:oasis:names:tc:SAML:2.0:status:NoSupportedIDP"
        ):
            return NoIdentityProviderAvailable(provider, login_id, detail)
        case "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal":
            return PrincipalMismatch(provider, login_id, detail)
    return AuthenticationFailed(provider, login_id, detail)


def _redirect_signed_part(query: str, parameter: str) -> str:
    """SAML Bindings §3.4.4.1: the signature covers the parameters as they were URL-encoded."""
    pieces = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    names = (parameter, "RelayState", "SigAlg")
    return "&".join(f"{name}={pieces[name]}" for name in names if name in pieces)
