"""IdP metadata in: one IdP's EntityDescriptor or a federation's signed aggregate.

An aggregate is used only after its signature verifies with the configured certificate and
while its `validUntil` lies ahead; a refresh that fails either check is logged and the previous
good copy stays in use. The last good copy is also written to a cache file, so a restart works
while the metadata URL is down. Parsing and verifying run in a worker thread: a 2,000-entity
aggregate takes long enough to stall every login if it ran on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx2
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from providers.base import NoUpstreamMetrics, UpstreamObserver
from providers.saml.xml import (
    NS,
    VerificationKey,
    XmlRejected,
    parse_metadata,
    tag,
    verify_enveloped,
)

log = logging.getLogger("portvakt.saml.metadata")

PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
ENTITY_CATEGORY = "http://macedir.org/entity-category"
# UMsg 1.0 §3.2 / Entity Categories §6.3: the IdP shows a UserMessage in an AuthnRequest.
SUPPORTS_USER_MESSAGE = "http://id.swedenconnect.se/general-ec/1.0/supports-user-message"
MIN_ENCRYPTION_KEY_BITS = 2048  # as for our own keys (Sweden Connect profile §8)
PNR_ATTRIBUTE = "urn:oid:1.2.752.29.4.13"  # personalIdentityNumber
ASSURANCE_CERTIFICATION = "urn:oasis:names:tc:SAML:attribute:assurance-certification"
METADATA_SIZE_LIMIT = 64 * 1024 * 1024


class MetadataRejected(Exception):
    """Metadata that must not be used: unsigned, wrongly signed, expired or malformed."""


@dataclass(frozen=True)
class IdentityProvider:
    """What the SP needs from one IdP's metadata entry."""

    entity_id: str
    sso: Mapping[str, str]  # binding -> location
    slo: Mapping[str, str]
    signing_keys: tuple[VerificationKey, ...]
    entity_categories: frozenset[str]
    assurance: frozenset[str]
    display: Mapping[str, str]  # language -> name
    principal_selection: frozenset[str]  # attribute names the IdP accepts in PrincipalSelection
    # Its encryption certificates (Base64 DER; RSA of 2048 bits or more: what RSA-OAEP key
    # transport can use)
    # and the md:EncryptionMethod algorithms it lists, in its order: a SignMessage for it is
    # encrypted to them (DSSExt 1.5 §3.1.2).
    encryption_certificates: tuple[str, ...] = ()
    encryption_methods: tuple[str, ...] = ()

    @property
    def selects_by_number(self) -> bool:
        """PrincSel 1.0 §2: it asks for PrincipalSelection by personal identity number, so it
        can refuse another person before it shows anything (UnknownPrincipal)."""
        return PNR_ATTRIBUTE in self.principal_selection

    @property
    def shows_user_messages(self) -> bool:
        return SUPPORTS_USER_MESSAGE in self.entity_categories

    def name(self, locale: str) -> str:
        return self.display.get(locale) or self.display.get("en") or self.entity_id


@dataclass(frozen=True)
class Federation:
    """The IdPs of one verified metadata document, by entityID."""

    idps: Mapping[str, IdentityProvider]
    valid_until: float | None


def read_federation(
    data: bytes, signer: VerificationKey | None, now: float | None = None
) -> Federation:
    """Parse and check a metadata document. With `signer` the root must carry its signature."""
    now = time.time() if now is None else now
    try:
        root = parse_metadata(data)
        if signer is not None and not verify_enveloped(root, [signer]):
            raise MetadataRejected("the metadata is not signed")
    except XmlRejected as error:
        raise MetadataRejected(str(error)) from None
    if root.tag not in (tag("md", "EntitiesDescriptor"), tag("md", "EntityDescriptor")):
        raise MetadataRejected("the document is neither EntitiesDescriptor nor EntityDescriptor")
    valid_until = _valid_until(root)
    if valid_until is not None and valid_until <= now:
        raise MetadataRejected("the metadata has expired (validUntil is past)")
    idps: dict[str, IdentityProvider] = {}
    for entity in _entities(root, now):
        idp = _identity_provider(entity)
        if idp is not None:
            idps[idp.entity_id] = idp
    return Federation(idps, valid_until)


def _entities(element: etree._Element, now: float) -> Iterable[etree._Element]:
    if element.tag == tag("md", "EntityDescriptor"):
        yield element
        return
    for child in element:
        until = _valid_until(child)
        if until is not None and until <= now:
            continue
        if child.tag in (tag("md", "EntitiesDescriptor"), tag("md", "EntityDescriptor")):
            yield from _entities(child, now)


def _identity_provider(entity: etree._Element) -> IdentityProvider | None:
    entity_id = entity.get("entityID")
    descriptor = next(
        (
            d
            for d in entity.findall("md:IDPSSODescriptor", NS)
            if PROTOCOL in (d.get("protocolSupportEnumeration") or "").split()
        ),
        None,
    )
    if not entity_id or descriptor is None:
        return None
    keys = []
    for key_descriptor in _key_descriptors(descriptor, "signing"):
        for body in key_descriptor.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
            try:
                keys.append(VerificationKey.from_base64_der(body.text or ""))
            except (ValueError, XmlRejected) as error:
                log.warning("skipping an unreadable certificate of %s: %s", entity_id, error)
    if not keys:
        return None
    encryption_certificates, encryption_methods = _encryption(descriptor, entity_id)
    attributes = _entity_attributes(entity)
    extensions = descriptor.find("md:Extensions", NS)
    display: dict[str, str] = {}
    selection: set[str] = set()
    if extensions is not None:
        for name in extensions.findall("mdui:UIInfo/mdui:DisplayName", NS):
            display.setdefault(
                name.get("{http://www.w3.org/XML/1998/namespace}lang", "en"), name.text or ""
            )
        selection = {
            v.get("Name", "")
            for v in extensions.findall("psc:RequestedPrincipalSelection/psc:MatchValue", NS)
        }
    return IdentityProvider(
        entity_id=entity_id,
        sso=_endpoints(descriptor, "SingleSignOnService"),
        slo=_endpoints(descriptor, "SingleLogoutService"),
        signing_keys=tuple(keys),
        entity_categories=frozenset(attributes.get(ENTITY_CATEGORY, ())),
        assurance=frozenset(attributes.get(ASSURANCE_CERTIFICATION, ())),
        display=display,
        principal_selection=frozenset(selection - {""}),
        encryption_certificates=encryption_certificates,
        encryption_methods=encryption_methods,
    )


def _key_descriptors(descriptor: etree._Element, use: str) -> list[etree._Element]:
    """SAML metadata §2.4.1.1: a KeyDescriptor without `use` serves both uses."""
    found = descriptor.findall("md:KeyDescriptor", NS)
    return [key for key in found if key.get("use") in (None, use)]


def _encryption(
    descriptor: etree._Element, entity_id: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The IdP's RSA encryption certificates and the algorithms its KeyDescriptors list."""
    certificates: list[str] = []
    methods: list[str] = []
    for key_descriptor in _key_descriptors(descriptor, "encryption"):
        for body in key_descriptor.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
            try:
                key = VerificationKey.from_base64_der(body.text or "")
            except (ValueError, XmlRejected) as error:
                log.warning("skipping an unreadable certificate of %s: %s", entity_id, error)
                continue
            if isinstance(key.public_key, rsa.RSAPublicKey) and (
                key.public_key.key_size >= MIN_ENCRYPTION_KEY_BITS
            ):
                certificates.append(key.certificate_b64)
            else:
                log.warning("not encrypting to %s's key: not RSA of 2048 bits or more", entity_id)
        for method in key_descriptor.findall("md:EncryptionMethod", NS):
            algorithm = method.get("Algorithm")
            if algorithm and algorithm not in methods:
                methods.append(algorithm)
    return tuple(certificates), tuple(methods)


def _endpoints(descriptor: etree._Element, name: str) -> dict[str, str]:
    endpoints: dict[str, str] = {}
    for service in descriptor.findall(f"md:{name}", NS):
        binding, location = service.get("Binding"), service.get("Location")
        if binding in (HTTP_REDIRECT, HTTP_POST) and location:
            endpoints.setdefault(binding, location)
    return endpoints


def _entity_attributes(entity: etree._Element) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    path = "md:Extensions/mdattr:EntityAttributes/saml:Attribute"
    for attribute in entity.findall(path, NS):
        name = attribute.get("Name", "")
        values.setdefault(name, []).extend(
            (v.text or "").strip() for v in attribute.findall("saml:AttributeValue", NS)
        )
    return values


def _valid_until(element: etree._Element) -> float | None:
    value = element.get("validUntil")
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise MetadataRejected(f"unreadable validUntil {value!r}") from None


class MetadataSource:
    """The current verified IdP metadata of one SAML provider, kept fresh in the background.

    `file` metadata is read at construction; `url` metadata starts from the cache file (if any)
    and is fetched at start-up and every `refresh_seconds`.
    """

    def __init__(  # noqa: PLR0913 -- keyword-only: every caller names each setting
        self,
        provider: str,
        *,
        file: Path | None,
        url: str | None,
        signer: VerificationKey | None,
        cache: Path | None,
        refresh_seconds: int,
        accept: Callable[[IdentityProvider], bool],
        upstream: UpstreamObserver | None = None,
    ) -> None:
        self._upstream = upstream or NoUpstreamMetrics()
        self._provider = provider
        self._url = url
        self._signer = signer
        self._cache = cache
        self._refresh_seconds = refresh_seconds
        self._accept = accept
        self._task: asyncio.Task[None] | None = None
        self._federation: Federation | None = None
        self.loaded_at: float | None = None
        self.problem: str | None = "no metadata loaded yet"
        if file is not None:
            self._install(read_federation(file.read_bytes(), signer), origin=str(file))
        elif cache is not None and cache.exists():
            try:
                self._install(read_federation(cache.read_bytes(), signer), origin=str(cache))
            except MetadataRejected as error:
                log.error("%s: cached metadata %s refused: %s", provider, cache, error)

    @property
    def idps(self) -> Mapping[str, IdentityProvider]:
        federation = self._federation
        if federation is None:
            return {}
        if federation.valid_until is not None and federation.valid_until <= time.time():
            self.problem = "metadata expired and no fresh copy could be loaded"
            return {}
        return federation.idps

    @property
    def valid_until(self) -> float | None:
        """The loaded metadata's validUntil (Unix time), if it has one."""
        return self._federation.valid_until if self._federation is not None else None

    def start(self) -> None:
        if self._url is not None and self._task is None:
            self._task = asyncio.create_task(self._refresh_forever())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def refresh(self) -> bool:
        """Fetch, verify and install the metadata at `url`; False (logged) when it fails."""
        assert self._url is not None
        started = time.perf_counter()
        try:
            async with httpx2.AsyncClient(timeout=30, follow_redirects=True) as http:
                response = await http.get(self._url)
                response.raise_for_status()
                data = response.content
            if len(data) > METADATA_SIZE_LIMIT:
                raise MetadataRejected("the metadata document is too large")
            federation = await asyncio.to_thread(read_federation, data, self._signer)
        except Exception as error:  # whatever the network or the document did, keep what we have
            log.error(
                "%s: metadata from %s refused, keeping the previous copy: %s",
                self._provider,
                self._url,
                error,
            )
            self._upstream.observe("metadata", time.perf_counter() - started, "error")
            return False
        self._upstream.observe("metadata", time.perf_counter() - started, "ok")
        self._install(federation, origin=self._url)
        if self._cache is not None:
            try:
                await asyncio.to_thread(_write_atomically, self._cache, data)
            except OSError as error:
                log.error(
                    "%s: metadata cache %s not written: %s", self._provider, self._cache, error
                )
        return True

    async def _refresh_forever(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._refresh_seconds)

    def _install(self, federation: Federation, origin: str) -> None:
        accepted = {e: idp for e, idp in federation.idps.items() if self._accept(idp)}
        self._federation = Federation(accepted, federation.valid_until)
        self.loaded_at = time.time()
        self.problem = None if accepted else "no IdP in the metadata passes the allow-list"
        log.info(
            "%s: metadata from %s in use, %d of %d IdPs allowed",
            self._provider,
            origin,
            len(accepted),
            len(federation.idps),
        )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
