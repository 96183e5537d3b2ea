"""The contract between the gateway and the upstream e-ID providers.

Everything both sides need lives here: the `Identity` a provider returns, the `LoginContext` it
is started with, the `Store` interface it is handed, the services it may use to render pages,
protect forms and end sessions, the optional capabilities a provider or its configuration
declares by subclassing them, and the `ProviderError` family. `providers` never imports `gateway`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

if TYPE_CHECKING:
    import httpx2

LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"


def _relative_to_config(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("config_dir")
    return path if path.is_absolute() or base is None else Path(base) / path


ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]
"""A file named in the YAML: a relative path is relative to the configuration file's folder."""


class ProviderConfig(BaseModel):
    """What every `providers:` entry shares: its `type` (a row in `providers.registry`), unknown
    keys refused, and the LoA URIs it delivers (one or a list; the first is delivered when the
    e-service asks for none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    loa: list[str] = Field(default_factory=lambda: [LOA3], min_length=1)

    @field_validator("loa", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def refused_in_production(self, name: str) -> str | None:  # noqa: ARG002 -- the overrides name it
        """Why providers.`name` must not load with `environment: production` (a simulator, test
        identities, a test federation's relaxed rule), as one sentence naming it; else None."""
        return None


ConfigProblem = tuple[str, str]
"""(the key under `providers.NAME`, or "" for the entry itself; what is wrong and the fix)."""


class ChecksConfig:
    """A configuration with more to check than loading shows (`portvakt check-config`): what is
    true today but may not be next month, or depends on other machines. Defaults: nothing."""

    def certificate_expiries(self) -> dict[str, float]:
        """The key of each certificate in use (e.g. `signing.cert`) -> when it expires (Unix)."""
        return {}

    async def upstream_problems(self, http: httpx2.AsyncClient) -> list[ConfigProblem]:  # noqa: ARG002 -- overrides fetch with it
        """Whether the upstream's metadata can be fetched and used now."""
        return []


def unusable_upstream(error: Exception) -> ConfigProblem:
    """The problem `upstream_problems` reports when the upstream's metadata failed."""
    return "", f"the upstream metadata cannot be used now: {type(error).__name__}: {error}"


class PublishesMetadata(ABC):
    """A configuration that makes metadata for a federation to import (a SAML SP's): shown by
    `portvakt saml-metadata`, its certificates by `portvakt keys list`."""

    @abstractmethod
    def published_metadata(self, name: str, base_url: str) -> bytes:
        """The signed metadata of providers.`name` at `base_url`; OSError or ValueError when
        its keys cannot be read."""

    @abstractmethod
    def published_certificates(self) -> list[tuple[str, Path]]:
        """(label, PEM certificate file) of every certificate the metadata may carry."""


StoreWrite = tuple[str, bytes, int]  # key, value, TTL in seconds


class Store(Protocol):
    """Key-value records with a TTL on every write; one-time operations in one round trip."""

    async def put(self, key: str, value: bytes, ttl: int) -> None: ...
    async def put_many(self, records: Sequence[StoreWrite]) -> None:
        """Several writes in one round trip, in order; not atomic as a group."""
        ...

    async def get(self, key: str) -> bytes | None: ...
    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        """Write only if absent (replay caches, locks): True when this caller wrote it."""
        ...

    async def take(self, key: str) -> bytes | None:
        """Read and delete atomically: of many concurrent callers exactly one gets the value."""
        ...

    async def put_many_then_take(
        self, records: Sequence[StoreWrite], key: str, once_taken: Sequence[StoreWrite] = ()
    ) -> bytes | None:
        """`put_many(records)`, then `take(key)`, in one round trip where the store can: the
        take comes last, so a caller that dies half-way never loses `key` without the records
        (take-after-write: a login is consumed only once its code is written). `once_taken`
        is written only if this caller took `key` (what only the winner of a race may write),
        in the same round trip where the store can."""
        ...

    async def delete(self, key: str) -> None: ...
    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        """Count each key up by one, all in one round trip; a key's TTL starts with its first
        count (rate limits)."""
        ...

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        """`count(keys, ttl)` and `take(key)` in one round trip where the store can: a request
        over its limit has spent what it came to take."""
        ...

    async def put_many_then_count(
        self, records: Sequence[StoreWrite], keys: Sequence[str], ttl: int
    ) -> list[int]:
        """`put_many(records)`, then `count(keys, ttl)`, in one round trip where the store can:
        the records are written whatever the counts say."""
        ...

    async def ping(self) -> None: ...


class NamespacedStore:
    """A provider's view of the store: its keys cannot collide with the gateway's or another's."""

    def __init__(self, store: Store, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        await self._store.put(self._key(key), value, ttl)

    async def put_many(self, records: Sequence[tuple[str, bytes, int]]) -> None:
        await self._store.put_many([(self._key(k), value, ttl) for k, value, ttl in records])

    async def get(self, key: str) -> bytes | None:
        return await self._store.get(self._key(key))

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        return await self._store.add(self._key(key), value, ttl)

    async def take(self, key: str) -> bytes | None:
        return await self._store.take(self._key(key))

    async def put_many_then_take(
        self, records: Sequence[StoreWrite], key: str, once_taken: Sequence[StoreWrite] = ()
    ) -> bytes | None:
        mine = [(self._key(k), value, ttl) for k, value, ttl in records]
        then = [(self._key(k), value, ttl) for k, value, ttl in once_taken]
        return await self._store.put_many_then_take(mine, self._key(key), then)

    async def delete(self, key: str) -> None:
        await self._store.delete(self._key(key))

    async def count(self, keys: Sequence[str], ttl: int) -> list[int]:
        return await self._store.count([self._key(key) for key in keys], ttl)

    async def count_then_take(
        self, keys: Sequence[str], ttl: int, key: str
    ) -> tuple[list[int], bytes | None]:
        mine = [self._key(counted) for counted in keys]
        return await self._store.count_then_take(mine, ttl, self._key(key))

    async def put_many_then_count(
        self, records: Sequence[StoreWrite], keys: Sequence[str], ttl: int
    ) -> list[int]:
        writes = [(self._key(k), value, record_ttl) for k, value, record_ttl in records]
        return await self._store.put_many_then_count(writes, [self._key(k) for k in keys], ttl)

    async def ping(self) -> None:
        await self._store.ping()


@dataclass(frozen=True)
class Evidence:
    """How the upstream proved who the citizen is, for the audit alone: gateway/ops/audit.py
    writes it when the provider returns; it is never released as a claim, nor kept with the
    session, code or grant (`Identity.to_dict` leaves it out)."""

    upstream: str  # who answered: the IdP's entityID, the OP's issuer, BankID's API
    reference: str | None = None  # the upstream's id of it: SAML assertion ID, BankID orderRef
    device_ip: str | None = None  # BankID: the address the app reported
    certificate_issued: str | None = None  # BankID: bankIdIssueDate
    mapped_identity_number: str | None = None  # eIDAS: the Swedish number mapped to a foreign e-ID
    risk: str | None = None  # BankID: completionData.risk, "unknown" when it sent none
    device_uhi: str | None = None  # BankID: device.uhi, the app's unique hardware id


SIGNATURE_FIELDS = ("user_signature", "authn_evidence")


@dataclass(frozen=True)
class Identity:
    """Who the citizen is, as one upstream proved it; every claim the OP issues derives from it.

    `extra` holds pass-through claim values by claim name (gateway/oidc/claims.py releases the
    ones it knows); `evidence` is for the audit only."""

    provider: str
    subject: str
    loa: str
    auth_time: int
    personal_identity_number: str | None = None
    coordination_number: str | None = None
    prid: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    name: str | None = None
    birthdate: str | None = None
    upstream_session: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    evidence: Evidence | None = None
    # Which e-ID provider authenticated (the `https://id.oidc.se/claim/authnProvider` value):
    # the IdP's entityID or its AuthenticatingAuthority, the upstream OP's issuer or its own
    # authnProvider claim, or a provider's fixed URI. None: the claim is left out.
    authn_provider: str | None = None
    # Signature Extension 1.1 §5.2: what a signing e-ID returned (Base64, verbatim), for the ID
    # token of a `https://id.oidc.se/scope/sign` request: the signature
    # (`https://id.oidc.se/claim/userSignature`) and its proof (`.../authnEvidence`, BankID's
    # OCSP response). A sign flow never becomes a session, so no session keeps them.
    user_signature: str | None = None
    authn_evidence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The identity as sessions, codes and grants keep it: without the evidence, and
        without signature fields a login has not got (only a sign flow's code carries them)."""
        kept = dict(vars(self))  # every field, and nothing else: a dataclass without slots
        del kept["evidence"]
        for name in SIGNATURE_FIELDS:
            if kept[name] is None:
                del kept[name]
        return {**kept, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Identity:
        return cls(**data)


@dataclass(frozen=True)
class UserMessage:
    """What the e-service wants the citizen to read while logging in (RPar 1.1 §2.1,
    `https://id.oidc.se/param/userMessage`), decoded: the texts by language tag ("" for the
    untagged `message`), in the e-service's order, and their MIME type."""

    texts: Mapping[str, str]
    mime_type: str = "text/plain"

    @property
    def is_markdown(self) -> bool:
        return self.mime_type == "text/markdown"

    def text_for(self, locale: str) -> str | None:
        """RPar §2.1: the text in the UI locale in use; else the untagged one; else (where the
        spec lets the OP choose) the first tagged one the e-service gave."""
        tag = self.tag_for(locale)
        if tag is not None:
            return self.texts[tag]
        if "" in self.texts:
            return self.texts[""]
        return next(iter(self.texts.values()), None)

    def tag_for(self, locale: str) -> str | None:
        """The language tag that matches `locale`: the same tag, else one of its language
        (`sv-SE` for `sv`), compared without case as BCP 47 says; None when none matches."""
        wanted = locale.lower()
        tagged = [tag for tag in self.texts if tag]
        exact = next((tag for tag in tagged if tag.lower() == wanted), None)
        primary = wanted.split("-")[0]
        return exact or next((t for t in tagged if t.lower().split("-")[0] == primary), None)

    def to_dict(self) -> dict[str, Any]:
        """As a provider's store record keeps it."""
        return {"texts": dict(self.texts), "mime_type": self.mime_type}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserMessage:
        return cls(dict(data["texts"]), str(data["mime_type"]))


@dataclass(frozen=True)
class SignRequest:
    """What the e-service asks the citizen to sign, or to approve (Signature Extension 1.1
    §3.1, `https://id.oidc.se/param/signRequest`), as /authorize validated it: the sign
    message, decoded like a user message, and `tbs_data` verbatim (the e-service's Base64
    text), None when only the approval of a signature made elsewhere is asked for."""

    message: UserMessage
    tbs_data: str | None = None

    @property
    def signs(self) -> bool:
        """A signature over `tbs_data` is asked for (scope `.../sign`), not only an approval."""
        return self.tbs_data is not None

    def to_dict(self) -> dict[str, Any]:
        """As a provider's store record keeps it."""
        return {"message": self.message.to_dict(), "tbs_data": self.tbs_data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignRequest:
        tbs_data = data.get("tbs_data")
        return cls(
            UserMessage.from_dict(data["message"]), None if tbs_data is None else str(tbs_data)
        )


@dataclass(frozen=True)
class LoginContext:
    """What a provider needs to know about the pending login it is asked to start."""

    login_id: str
    client_id: str
    client_display: Mapping[str, str]
    requested_loa: tuple[str, ...]
    locale: str
    client_ip: str
    identity_hint: str | None = None  # the person the e-service named (login_hint or claims)
    force_authn: bool = False
    user_message: UserMessage | None = None  # never set when no one is to be authenticated
    # RPar §2.2: the e-service's `https://id.oidc.se/param/authnProvider`, verbatim.
    authn_provider: str | None = None
    # RPar §2.3: what an upstream OP is told of the e-service behind us.
    original_client_id: str | None = None
    original_client_token: str | None = None
    # The named person came as a `claims` value (not only a login_hint): an upstream OP is
    # asked with the same `claims` value.
    identity_hint_claimed: bool = False
    # Signature Extension 1.1: the citizen is to sign or approve, not (only) log in. Set only
    # for a provider that `Signs` and said it `can_sign` this request.
    sign: SignRequest | None = None
    # BankID's `app` device data (bankid-2026-and-ciba.md §1.5) when a registered native app
    # logs in: appIdentifier from the client's registration, the rest from its signed request.
    app_device: Mapping[str, str] | None = None
    # What the e-service may receive for this login: its scopes, and the claim names of its
    # `claims` request (either member). A provider that asks the citizen for each attribute
    # (the EU wallet) asks for no more than these need.
    scopes: tuple[str, ...] = ()
    requested_claims: frozenset[str] = frozenset()


class Pages(Protocol):
    """Renders a citizen-facing page in the gateway's layout and the citizen's language."""

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        status_code: int = 200,
        preferred_locale: str | None = None,
    ) -> Response:
        """`preferred_locale` is the login's locale; the citizen's own switch still wins."""
        ...

    def translate(self, request: Request, message: str, preferred_locale: str | None = None) -> str:
        """A catalogue text (marked N_ in the provider's module) in the citizen's language."""
        ...

    def locale(self, request: Request, preferred_locale: str | None = None) -> str:
        """The citizen's language for this request (`sv` or `en`): their own switch wins."""
        ...


class FormGuard(Protocol):
    """CSRF protection for forms that belong to one pending login in one browser."""

    def token(self, request: Request, login_id: str) -> str: ...
    def verify(self, request: Request, login_id: str, token: str) -> bool: ...


class UpstreamObserver(Protocol):
    """Where a provider reports how long each call to its upstream took (metrics) and how it
    ended: `ok`, `rejected` (the upstream answered with a client error) or `error`
    (unreachable, timed out, or a server error; these count against the upstream's health)."""

    def observe(self, operation: str, seconds: float, outcome: str) -> None: ...


class NoUpstreamMetrics:
    def observe(self, operation: str, seconds: float, outcome: str) -> None:
        """UpstreamObserver's signature; with no metrics, nothing is recorded."""


EndUpstreamSession = Callable[[str, str], Awaitable[int]]
"""(provider name, upstream session key) -> how many gateway sessions were ended."""


async def no_sessions_to_end(_provider: str, _key: str) -> int:
    return 0


@dataclass(frozen=True)
class ProviderServices:
    """What the gateway hands each provider at construction, including what it may call back."""

    name: str
    store: NamespacedStore
    pages: Pages
    forms: FormGuard
    base_url: str
    environment: str
    secret: bytes  # this provider's own key for what it signs (cookies); derived, never shared
    upstream: UpstreamObserver = field(default_factory=NoUpstreamMetrics)
    # An upstream logged the citizen out (SAML SLO): end the gateway sessions indexed under the
    # keys the provider gave for them (`UpstreamLogout.session_keys`).
    end_upstream_session: EndUpstreamSession = no_sessions_to_end
    # Now, in seconds: what a provider judges its own intervals by (BankID's collect pacing and
    # QR time), so that tests move time instead of waiting for it.
    clock: Callable[[], float] = time.time


@runtime_checkable
class Provider(Protocol):
    """What every provider is. `display` is its name on the chooser and `tagline` the one line
    under it, per language; `loa` the LoA URIs it can deliver."""

    name: str
    display: Mapping[str, str]
    tagline: Mapping[str, str]
    loa: frozenset[str]
    finish_path: str
    finish_methods: Sequence[str]

    def routes(self) -> list[BaseRoute]: ...
    async def start(self, request: Request, login: LoginContext) -> Response: ...
    async def finish(self, request: Request) -> tuple[str, Identity]: ...


# -- capabilities: a provider class subclasses those it has; the gateway asks isinstance ------


class HasLifecycle:
    """Work beside the requests (a metadata refresher, a connection pool): started when the
    gateway starts serving, closed when it stops."""

    async def astart(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class UpstreamLogout(ABC):
    """Single logout with the upstream: ours ends its session there, and its own
    (`ProviderServices.end_upstream_session`) ends ours."""

    @abstractmethod
    async def logout(
        self, request: Request, identity: Identity, continue_url: str
    ) -> Response | None:
        """Send the browser to log out upstream, coming back to `continue_url`; None when
        there is no upstream session to end."""

    @abstractmethod
    def session_keys(self, identity: Identity) -> list[str]:
        """The keys under which a gateway session of `identity` is found when the upstream
        logs it out."""


class SelectableUpstream(ABC):
    """A provider that answers to `authnProvider` values (RPar §2.2) besides its name: those of
    the `authnProvider` claim it puts in its identities."""

    @abstractmethod
    def answers_to(self, authn_provider: str) -> bool:
        """Whether this `authnProvider` value names this provider (or one of its upstreams)."""


class Signs(ABC):
    """A provider that can have the citizen sign (BankID's /sign, the sandbox) or approve a
    signature made elsewhere (a SAML IdP serving signature services), showing the sign message
    first. Only providers that subclass this are offered for a sign request."""

    @abstractmethod
    def can_sign(self, sign: SignRequest) -> bool:
        """Whether it can do what `sign` asks now: sign `tbs_data` (`sign.signs`) or approve;
        the MIME type of the message is one it can show."""

    @property
    def logs_in(self) -> bool:
        """Whether it is offered for plain logins too (a SAML signature-service SP is not)."""
        return True


@dataclass(frozen=True)
class PhoneRequest:
    """OpenID Connect CIBA in front of an e-ID's phone flow (BankID `phone/auth`): a case
    worker's system asks to identify the person behind `personal_identity_number`, who is on
    the phone with the organisation. No browser takes part."""

    request_id: str  # the gateway's id of this request (never the auth_req_id itself)
    client_id: str
    client_display: Mapping[str, str]  # the organisation's name, per language
    personal_identity_number: str  # 12 digits, formally valid
    call_initiator: str  # "user" (the citizen called) or "RP" (the organisation called)
    requested_loa: tuple[str, ...] = ()
    binding_message: str | None = None  # shown in the e-ID app (CIBA §7.1)
    sign: SignRequest | None = None  # a caller signs (BankID `phone/sign`)


@dataclass(frozen=True)
class PhoneStatus:
    """Where a phone authentication stands. `state` is `pending`, `complete` or `failed`;
    `hint` the upstream's progress or failure code (BankID's hintCode: `userCallConfirm`,
    `userDeclinedCall`, ...); `identity` only when complete. `outcome` names the CIBA answer of
    a failure: `access_denied` (declined, cancelled, refused), `expired_token` (timed out)."""

    state: str
    hint: str | None = None
    identity: Identity | None = None
    outcome: str | None = None


class AuthenticatesByPhone(ABC):
    """A provider that can identify (and have sign) a person on the phone, started without a
    browser: the back end of CIBA poll mode (gateway/oidc/ciba.py)."""

    @abstractmethod
    async def start_phone(self, request: PhoneRequest) -> str:
        """Starts it upstream; the provider's handle of it (kept by the gateway, opaque, at
        most 512 characters). ProviderError when the upstream refuses (an order already in
        progress for the person, the upstream unavailable)."""

    @abstractmethod
    async def phone_status(self, handle: str) -> PhoneStatus:
        """Asks the upstream once (BankID: one collect). The gateway paces the calls."""

    @abstractmethod
    async def cancel_phone(self, handle: str) -> None:
        """Ends it upstream (the request expired or was abandoned); never raises for one
        that has ended already."""


class ReportsHealth:
    """What a provider knows of its own state, for the chooser, /readyz and /metrics."""

    @property
    def problem(self) -> str | None:
        """Why it cannot log anyone in now (its metadata is not loaded), or None."""
        return None

    @property
    def metadata_loaded_at(self) -> float | None:
        """When its upstream metadata was last loaded (Unix time), if it loads any."""
        return None

    @property
    def metadata_valid_until(self) -> float | None:
        """When its upstream metadata says it stops being valid (Unix time), if it says."""
        return None

    def certificates(self) -> dict[str, float]:
        """Expiry (Unix time) of each certificate it uses, by label."""
        return {}


class ProviderError(Exception):
    """A login failed upstream. `reason` picks the citizen's message; `oauth_error` the RP's.

    `login_id` names the pending login the error is about, when the provider may say so; None
    when it cannot (an unknown or foreign transaction: no login may be ended on its word).
    `ends_login` says whether that login is over: the flow then takes it, once, and sends the
    citizen back to the e-service with `oauth_error`."""

    reason: ClassVar[str] = "failed"
    oauth_error: ClassVar[str] = "access_denied"
    status_code: ClassVar[int] = 400
    ends_login: ClassVar[bool] = True

    def __init__(self, provider: str, login_id: str | None, detail: str = "") -> None:
        super().__init__(f"{provider}: {self.reason}: {detail}" if detail else provider)
        self.provider = provider
        self.login_id = login_id
        self.detail = detail

    @property
    def ended_login(self) -> str | None:
        """The pending login this error ends, if any."""
        return self.login_id if self.ends_login else None


class NotFinishedYet(ProviderError):
    """The finish URL was visited before the upstream answered (an early poll, a reload): the
    login goes on, and the citizen is sent back to `url`, the provider's page, to wait."""

    reason = "not_finished"
    ends_login = False

    def __init__(self, provider: str, url: str) -> None:
        super().__init__(provider, None, "not finished yet")
        self.url = url


class UserCancelled(ProviderError):
    reason = "cancelled"


class AuthenticationFailed(ProviderError):
    reason = "failed"


class RefusedForRisk(AuthenticationFailed):
    """The upstream rated the login's risk and the provider's policy refuses that rating
    (BankID's `completionData.risk`). To the citizen and the e-service a failed login like any
    other, never with the reason; the audit also writes it as a security event of its own
    (`login_refused_for_risk`) with `signal`: the rating, the upstream's reference, who."""

    def __init__(
        self, provider: str, login_id: str, detail: str, signal: Mapping[str, str | None]
    ) -> None:
        super().__init__(provider, login_id, detail)
        self.signal = dict(signal)


class LoginStateLost(ProviderError):
    """The upstream came back with a transaction we do not know (expired, replayed or forged)."""

    reason = "state_lost"


class FormRejected(ProviderError):
    """A form failed its CSRF check: the page was not ours or belongs to another browser."""

    reason = "form_rejected"
    status_code = 403


class WrongPerson(ProviderError):
    """The e-service named the person (login_hint or a `claims` value) and another logged in."""

    reason = "wrong_person"


class SignatureNotMade(ProviderError):
    """A sign request ended without the proof it needs: no signature came back, or the
    upstream did not prove the sign message was shown (SAML `signMessageDigest`)."""

    reason = "not_signed"


class PassiveLoginImpossible(ProviderError):
    """The upstream could not log the citizen in without showing a page (prompt=none upstream)."""

    reason = "failed"
    oauth_error = "login_required"


class ProviderUnavailable(ProviderError):
    reason = "unavailable"
    oauth_error = "temporarily_unavailable"
    status_code = 503


class UnmetAssurance(ProviderError):
    """The upstream proved less than was asked for."""

    reason = "unmet_loa"
    oauth_error = "unmet_authentication_requirements"


def choose_loa(offered: frozenset[str], requested: Sequence[str], default: str) -> str | None:
    """The LoA URI to deliver: the first requested one this provider offers, or its default.

    DESIGN.md: when the e-service sent `acr_values`, the `acr` returned is one of them.
    """
    if not requested:
        return default
    return next((uri for uri in requested if uri in offered), None)


def identity_number(identity: Identity) -> str | None:
    """The person's Swedish identity number: personal or coordination number, if any."""
    return identity.personal_identity_number or identity.coordination_number
