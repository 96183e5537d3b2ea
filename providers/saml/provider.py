"""SAML 2.0 upstream: the IdPs of a Sweden Connect federation (or one IdP) behind the OP.

One `providers:` entry of `type: saml` (`config.py`) is one SP (entityID, signing and encryption
keys) and the IdPs its metadata allows. `start()` picks the IdP (only one qualifies, else
`idp_choice`: the gateway's IdP page or a discovery service) and `authn` sends a signed
AuthnRequest for the login's LoA; the IdP posts its Response to `/acs`, which is `finish()`:
`response` validates it, the assertion ID goes into the replay cache, and the attributes become
an `Identity` whose `acr` is the asserted AuthnContextClassRef. Single logout is `logout.py`.

XML security (parsing, signatures, decryption) runs in worker threads, off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from providers.base import (
    AuthenticationFailed,
    Evidence,
    HasLifecycle,
    Identity,
    LoginContext,
    LoginStateLost,
    PassiveLoginImpossible,
    ProviderError,
    ProviderServices,
    ReportsHealth,
    SelectableUpstream,
    SignatureNotMade,
    SignRequest,
    Signs,
    UnmetAssurance,
    UpstreamLogout,
    UserCancelled,
)
from providers.forms import read_form
from providers.saml.attributes import UnacceptableAttribute, read_person
from providers.saml.authn import AuthnRequests, PendingRequest
from providers.saml.bindings import Bindings, xml_step
from providers.saml.config import ACS_PATH, SamlConfig, published_metadata
from providers.saml.idp_choice import Approval, IdpChoice, PendingChoice, candidates
from providers.saml.logout import SingleLogout, UpstreamSession
from providers.saml.metadata import MetadataSource
from providers.saml.response import (
    Assertion,
    AssuranceNotRequested,
    Expectation,
    StatusError,
    validate_response,
)
from providers.saml.sign_message import SIGN_MESSAGE_DIGEST, can_show
from providers.saml.xml import DecryptionKeys, KeyPair, VerificationKey, XmlRejected, parse_message

log = logging.getLogger("portvakt.saml")

IDENTIFYING_FIELDS = ("personal_identity_number", "coordination_number", "prid")


class NoIdentityProviderAvailable(ProviderError):
    reason = "no_idp"
    oauth_error = "temporarily_unavailable"


class PrincipalMismatch(ProviderError):
    reason = "unknown_principal"


class NotForLogins(ProviderError):
    """A Signature Service SP was asked to log someone in: its IdPs would show a signature."""

    reason = "failed"


class SamlProvider(HasLifecycle, UpstreamLogout, ReportsHealth, SelectableUpstream, Signs):
    finish_path = ACS_PATH
    finish_methods: Sequence[str] = ("POST",)

    def __init__(self, config: SamlConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._config = config
        self._services = services
        self.acs_url = f"{services.base_url}/providers/{self.name}{ACS_PATH}"
        self._signing = KeyPair.from_files(config.signing.key, config.signing.cert)
        self._encryption = KeyPair.from_files(config.encryption.key, config.encryption.cert)
        self._decryption = DecryptionKeys(
            [
                config.encryption.key.read_bytes(),
                *(old.key.read_bytes() for old in config.encryption.previous),
            ]
        )
        self.metadata = _metadata_source(config, services)
        self.sp_metadata = published_metadata(self.name, config, services.base_url)
        bindings = Bindings(self.name, config.binding, self._signing, services.pages)
        self._requests = AuthnRequests(
            self.name, config.entity_id, self.acs_url, services.store, bindings
        )
        self._choice = IdpChoice(config, services, self.metadata, self._requests.send)
        self._logout = SingleLogout(config.entity_id, services, self.metadata, bindings)

    # -- the gateway's hooks ------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/metadata", self._metadata_endpoint),
            *self._choice.routes(),
            *self._logout.routes(),
        ]

    async def astart(self) -> None:
        self.metadata.start()

    async def aclose(self) -> None:
        await self.metadata.aclose()

    @property
    def metadata_loaded_at(self) -> float | None:
        return self.metadata.loaded_at

    @property
    def metadata_valid_until(self) -> float | None:
        return self.metadata.valid_until

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

    def answers_to(self, authn_provider: str) -> bool:
        """RPar §2.2: an IdP's entityID selects this provider and that IdP."""
        return authn_provider in self.metadata.idps

    async def logout(
        self, request: Request, identity: Identity, continue_url: str
    ) -> Response | None:
        return await self._logout.logout(request, identity, continue_url)

    def session_keys(self, identity: Identity) -> list[str]:
        return self._logout.session_keys(identity)

    # -- signature approval ---------------------------------------------------------------------

    def can_sign(self, sign: SignRequest) -> bool:
        """Only a Signature Service SP, only approvals (no SAML mechanism signs `tbs_data`),
        only a message SignMessage can carry, and, once its metadata is in, only while one of
        its IdPs may approve. Before that (discovery is built at start, maybe before metadata
        from a URL arrives) it is what it is configured to be; a login meanwhile finds it
        unavailable (`problem`)."""
        return (
            self._config.signature_service
            and not sign.signs
            and can_show(sign)
            and (self.metadata.loaded_at is None or self._has_approvers())
        )

    def _has_approvers(self) -> bool:
        return any(self._config.sign_idps.accepts(idp) for idp in self.metadata.idps.values())

    @property
    def logs_in(self) -> bool:
        return not self._config.signature_service

    # -- login ----------------------------------------------------------------------------------

    async def start(self, request: Request, login: LoginContext) -> Response:
        if login.sign is None and self._config.signature_service:
            raise NotForLogins(self.name, login.login_id, "a Signature Service SP logs no one in")
        if login.sign is not None and not self.can_sign(login.sign):
            raise SignatureNotMade(self.name, login.login_id, "this SP cannot approve that")
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
            user_message=login.user_message.to_dict() if login.user_message else None,
            sign=login.sign.to_dict() if login.sign else None,
        )
        approval = None
        if login.sign is not None:
            approval = Approval(self._config.sign_idps, named=login.identity_hint is not None)
        idps = candidates(self.metadata, loa, approval)
        if not idps:
            raise NoIdentityProviderAvailable(self.name, login.login_id, "no IdP offers the LoA")
        named = next((idp for idp in idps if idp.entity_id == login.authn_provider), None)
        if named is not None:  # RPar §2.2: the e-service chose the IdP; no IdP page
            return await self._requests.send(request, choice, named)
        if len(idps) == 1:
            return await self._requests.send(request, choice, idps[0])
        return await self._choice.ask(request, choice, idps)

    async def finish(self, request: Request) -> tuple[str, Identity]:
        form = await read_form(request, 4)
        pending = await self._requests.outstanding(str(form.get("RelayState", "")))
        if pending is None:
            raise LoginStateLost(self.name, None, "ACS: RelayState of no outstanding request")
        assertion = await self._validated(str(form.get("SAMLResponse", "")), pending)
        now = time.time()
        replay_key = hashlib.sha256(f"{assertion.issuer}\n{assertion.id}".encode()).hexdigest()
        ttl = max(1, int(assertion.valid_until - now) + self._config.clock_skew_seconds)
        if not await self._first_use(f"assertion:{replay_key}", pending.login_id, ttl):
            log.warning("%s: replayed assertion %s from %s", self.name, assertion.id, pending.idp)
            raise AuthenticationFailed(self.name, pending.login_id, "replayed assertion")
        self._check_sign_message_shown(assertion, pending)
        return pending.login_id, self._identity(assertion, pending)

    def _check_sign_message_shown(self, assertion: Assertion, pending: PendingRequest) -> None:
        """DSSExt §3.1.2, Attrs §3.2.4: an approval holds only if the IdP proves it showed
        our very message: `signMessageDigest` equal, algorithm URI and all, to ours."""
        if pending.sign_message_digest is None:
            return
        returned = assertion.attributes.get(SIGN_MESSAGE_DIGEST, ())
        if returned != (pending.sign_message_digest,):
            log.warning(
                "%s: IdP %s did not prove the sign message was shown (%s)",
                self.name,
                pending.idp,
                "no signMessageDigest" if not returned else "another signMessageDigest",
            )
            raise SignatureNotMade(self.name, pending.login_id, "signMessageDigest missing/wrong")

    async def _validated(self, encoded: str, pending: PendingRequest) -> Assertion:
        """The assertion of a Response to `pending`, or the refusal the IdP's status means."""
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
            return await xml_step(_validate, encoded, expected, self._decryption, size=len(encoded))
        except StatusError as status:
            log.info("%s: IdP %s answered %s", self.name, idp.entity_id, status)
            raise _status_failure(self.name, pending.login_id, status) from None
        except AssuranceNotRequested as error:
            raise UnmetAssurance(self.name, pending.login_id, str(error)) from None
        except XmlRejected as error:
            log.warning("%s: Response from %s rejected: %s", self.name, idp.entity_id, error)
            raise AuthenticationFailed(self.name, pending.login_id, str(error)) from None

    async def _first_use(self, key: str, login_id: str, ttl: int) -> bool:
        """The replay cache: an assertion serves one login. The same login may present it again
        (a retry after an instance died mid-finish); that login is still used only once."""
        store = self._services.store
        return await store.add(key, login_id.encode(), ttl) or (
            await store.get(key) == login_id.encode()
        )

    def _identity(self, assertion: Assertion, pending: PendingRequest) -> Identity:
        try:
            person = read_person(assertion.attributes, self._config.attributes)
        except UnacceptableAttribute as error:
            raise AuthenticationFailed(self.name, pending.login_id, str(error)) from None
        if not any(person.get(k) for k in IDENTIFYING_FIELDS):
            raise AuthenticationFailed(
                self.name, pending.login_id, "neither a personal identity number nor a prid"
            )
        session = UpstreamSession(
            assertion.issuer, assertion.name_id, assertion.name_id_format, assertion.session_index
        )
        mapped = person.pop("mapped_identity_number", None)
        evidence = Evidence(
            pending.idp, assertion.id, mapped_identity_number=str(mapped) if mapped else None
        )
        return Identity(
            provider=self.name,
            subject=assertion.name_id,
            loa=assertion.authn_context,
            auth_time=int(assertion.authn_instant),
            upstream_session=session.dumps().decode(),
            evidence=evidence,
            authn_provider=_authn_provider(assertion),
            **person,  # type: ignore[arg-type]
        )

    # -- metadata out ---------------------------------------------------------------------------

    async def _metadata_endpoint(self, _request: Request) -> Response:
        return Response(
            self.sp_metadata,
            media_type="application/samlmetadata+xml",
            headers={"Cache-Control": "public, max-age=3600"},
        )


def _metadata_source(config: SamlConfig, services: ProviderServices) -> MetadataSource:
    signer = config.metadata.cert
    return MetadataSource(
        services.name,
        file=config.metadata.file,
        url=config.metadata.url,
        signer=VerificationKey.from_pem_file(signer) if signer else None,
        cache=config.metadata.cache,
        refresh_seconds=config.metadata.refresh_seconds,
        accept=config.allow.accepts,
        upstream=services.upstream,
    )


def _authn_provider(assertion: Assertion) -> str:
    """Claims §2.3.5: the IdP that authenticated. A proxy IdP names the one it relied on in
    AuthenticatingAuthority; of a chain, the first listed (the origin) is taken."""
    authorities = assertion.authenticating_authorities
    return authorities[0] if authorities else assertion.issuer


def _validate(encoded: str, expected: Expectation, decryption: DecryptionKeys) -> Assertion:
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
