"""An upstream OpenID Connect Provider (Freja eID, a regional IdP, another broker or Portvakt).

The gateway is the relying party: authorization code flow with PKCE S256, `state` and `nonce` in
the store under the pending login, the answer at `/providers/NAME/callback`. The ID token is
checked in full (signature by the upstream's JWKS with the shared algorithm allow-list, then
joserfc's claims registry: `iss`, `aud`, `azp`, `exp`/`iat`/`nbf` with skew, `nonce`, `sub`,
`auth_time` after prompt=login; `acr` against the request), RFC 9207's `iss` on the callback when
the upstream advertises it, and userinfo's `sub` must be the ID token's. Claims become an
`Identity` through a mapping with the Swedish OIDC profile's claims as defaults.

Discovery and JWKS are fetched at start-up and refreshed in the background (`upstream.py`); while
the upstream cannot be reached the provider reports a `problem` and the chooser shows it as
unavailable.
JOSE work is done with joserfc (Authlib's JOSE library).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
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
    ProviderUnavailable,
    ReportsHealth,
    SelectableUpstream,
    UnmetAssurance,
    UserCancelled,
    UserMessage,
)
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number
from providers.oidc.config import DEFAULT_CLAIMS, OidcConfig
from providers.oidc.id_token import id_token_rules
from providers.oidc.upstream import Upstream, UpstreamCallFailed
from providers.records import StoreRecord

log = logging.getLogger("portvakt.oidc_upstream")

TRANSACTION_TTL_SECONDS = 900
USER_MESSAGE_PARAMETER = "https://id.oidc.se/param/userMessage"
USER_MESSAGE_SUPPORTED = "https://id.oidc.se/disco/userMessageSupported"
USER_MESSAGE_MIME_TYPES = "https://id.oidc.se/disco/userMessageSupportedMimeTypes"
AUTHN_PROVIDER_CLAIM = "https://id.oidc.se/claim/authnProvider"
# RPar 1.1 §2.3 and §3.3: what we tell an upstream OP that declares it accepts it.
ORIGINAL_CLIENT_ID = "https://id.oidc.se/param/originalClientId"
ORIGINAL_CLIENT_TOKEN = "https://id.oidc.se/param/originalClientToken"  # noqa: S105 -- a name
ORIGINAL_CLIENT_ID_SUPPORTED = "https://id.oidc.se/disco/originalClientIdSupported"
ORIGINAL_CLIENT_TOKEN_SUPPORTED = "https://id.oidc.se/disco/originalClientTokenSupported"  # noqa: S105 -- a name
MAX_AUTHN_PROVIDER_LENGTH = 1024
IDENTIFYING_FIELDS = ("personal_identity_number", "coordination_number", "prid")


@dataclass(frozen=True)
class Transaction(StoreRecord):
    """One authorization request upstream, by its `state`. The callback reads it and keeps it:
    the pending login's single use decides whether a login completes, so a callback repeated on
    another instance (this one died before writing the code) can still finish. The verified
    identity is kept in it, since the upstream's code cannot be redeemed a second time."""

    login_id: str
    nonce: str
    code_verifier: str
    loa: tuple[str, ...]
    requested_at: float
    force_authn: bool
    identity: dict[str, Any] | None = None

    TUPLE_FIELDS = ("loa",)


class OidcProvider(HasLifecycle, ReportsHealth, SelectableUpstream):
    finish_path = "/callback"
    finish_methods: Sequence[str] = ("GET",)

    def __init__(self, config: OidcConfig, services: ProviderServices) -> None:
        self.name = services.name
        self.display: Mapping[str, str] = config.display
        self.tagline: Mapping[str, str] = config.hint
        self.loa = frozenset(config.loa)
        self._config = config
        self._services = services
        self.callback_url = f"{services.base_url}/providers/{self.name}{self.finish_path}"
        self._claims: dict[str, str] = {**DEFAULT_CLAIMS, **dict(config.claims.items())}
        self._acr_in = {upstream: ours for ours, upstream in config.acr_map.items()}
        self._upstream = Upstream(config, services, self.callback_url)

    # -- lifecycle --------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route("/jwks", self._our_jwks)]

    async def astart(self) -> None:
        await self._upstream.astart()

    async def aclose(self) -> None:
        await self._upstream.aclose()

    @property
    def problem(self) -> str | None:
        return self._upstream.problem

    def answers_to(self, authn_provider: str) -> bool:
        """RPar §2.2: the upstream's issuer selects it."""
        return authn_provider == self._config.issuer

    @property
    def metadata_loaded_at(self) -> float | None:
        return self._upstream.loaded_at

    async def _our_jwks(self, _request: Request) -> Response:
        return JSONResponse(self._upstream.our_jwks())

    # -- login ------------------------------------------------------------------------------------

    async def start(self, request: Request, login: LoginContext) -> Response:  # noqa: ARG002 -- Provider.start; a redirect needs no request
        if self.problem or not self._upstream.metadata:
            raise ProviderUnavailable(self.name, login.login_id, self.problem or "not loaded")
        if login.requested_loa:
            loa = tuple(uri for uri in login.requested_loa if uri in self.loa)
            if not loa:
                raise UnmetAssurance(self.name, login.login_id, "no requested LoA is configured")
        else:
            loa = ()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        transaction = Transaction(
            login.login_id, nonce, verifier, loa, time.time(), login.force_authn
        )
        await self._services.store.put(f"txn:{state}", transaction.dumps(), TRANSACTION_TTL_SECONDS)
        params: dict[str, str] = {
            **self._config.authorize_parameters,
            "response_type": "code",
            "client_id": self._config.client_id,
            "redirect_uri": self.callback_url,
            "scope": " ".join(self._config.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            "ui_locales": login.locale,
        }
        if loa:
            params["acr_values"] = " ".join(self._config.acr_map.get(uri, uri) for uri in loa)
        if login.force_authn:
            params["prompt"] = "login"
        if login.user_message and self._shows(login.user_message):
            params[USER_MESSAGE_PARAMETER] = user_message_parameter(login.user_message)
        params.update(self._person_parameters(login))
        params.update(self._original_client(login))
        endpoint = self._upstream.metadata["authorization_endpoint"]
        separator = "&" if "?" in endpoint else "?"
        return RedirectResponse(f"{endpoint}{separator}{urlencode(params)}", status_code=303)

    def _shows(self, message: UserMessage) -> bool:
        """RPar 1.1 §3.1: the upstream says it takes the parameter, and this MIME type
        (`["text/plain"]` when it lists none); else the message is not sent (RPar §2.1)."""
        metadata = self._upstream.metadata
        mime_types = metadata.get(USER_MESSAGE_MIME_TYPES, ["text/plain"])
        return (
            metadata.get(USER_MESSAGE_SUPPORTED) is True
            and isinstance(mime_types, list)
            and message.mime_type in mime_types
        )

    def _person_parameters(self, login: LoginContext) -> dict[str, str]:
        """The named person: as login_hint, and as the same `claims` value the e-service used
        (OIDC Core §5.5.1) where the upstream declares it takes `claims`."""
        if not login.identity_hint:
            return {}
        params = {"login_hint": login.identity_hint}
        if login.identity_hint_claimed and self._upstream.metadata.get(
            "claims_parameter_supported"
        ):
            claim = self._claims["personal_identity_number"]
            params["claims"] = json.dumps({"id_token": {claim: {"value": login.identity_hint}}})
        return params

    def _original_client(self, login: LoginContext) -> dict[str, str]:
        """RPar 1.1 §2.3: the e-service behind us, to an upstream that declares it takes it."""
        metadata = self._upstream.metadata
        params: dict[str, str] = {}
        if login.original_client_id and metadata.get(ORIGINAL_CLIENT_ID_SUPPORTED) is True:
            params[ORIGINAL_CLIENT_ID] = login.original_client_id
        if login.original_client_token and metadata.get(ORIGINAL_CLIENT_TOKEN_SUPPORTED) is True:
            params[ORIGINAL_CLIENT_TOKEN] = login.original_client_token
        return params

    async def finish(self, request: Request) -> tuple[str, Identity]:
        params = request.query_params
        state = params.get("state", "")
        raw = await self._services.store.get(f"txn:{state}") if state else None
        if raw is None:
            raise LoginStateLost(self.name, None, "callback with a state of no request of ours")
        transaction = Transaction.loads(raw)
        if transaction.identity is not None:  # a repeated callback: the code is spent upstream
            # no evidence: the first callback's was audited, nothing new was proven
            return transaction.login_id, Identity.from_dict(transaction.identity)
        login_id = transaction.login_id
        issuer = params.get("iss")
        advertised = self._upstream.metadata.get("authorization_response_iss_parameter_supported")
        if (issuer is not None or advertised) and issuer != self._config.issuer:
            raise AuthenticationFailed(self.name, login_id, "RFC 9207 iss is not the upstream's")
        if "error" in params:
            raise _upstream_error(
                self.name, login_id, params["error"], params.get("error_description")
            )
        code = params.get("code")
        if not code:
            raise AuthenticationFailed(self.name, login_id, "callback without code")
        try:
            claims = await self._upstream_claims(code, transaction)
        except UpstreamCallFailed as failure:
            raise ProviderUnavailable(self.name, login_id, str(failure)) from None
        identity = replace(
            self._identity(claims, transaction), evidence=Evidence(self._config.issuer)
        )
        kept = replace(transaction, identity=identity.to_dict())
        left = int(transaction.requested_at + TRANSACTION_TTL_SECONDS - time.time())
        await self._services.store.put(f"txn:{state}", kept.dumps(), max(left, 1))
        return login_id, identity

    async def _upstream_claims(self, code: str, transaction: Transaction) -> dict[str, Any]:
        """The ID token's claims, with userinfo's where it adds to them (never contradicts)."""
        login_id = transaction.login_id
        tokens = await self._upstream.redeem(code, transaction.code_verifier, login_id)
        claims = await self._verified_id_token(tokens.get("id_token"), transaction)
        if not (self._config.userinfo and self._upstream.metadata.get("userinfo_endpoint")):
            return claims
        userinfo = await self._upstream.userinfo(str(tokens.get("access_token", "")), login_id)
        if userinfo.get("sub") != claims["sub"]:
            raise AuthenticationFailed(self.name, login_id, "userinfo is about another sub")
        for claim in self._claims.values():
            if claim in claims and claim in userinfo and claims[claim] != userinfo[claim]:
                raise AuthenticationFailed(
                    self.name, login_id, f"userinfo and the ID token disagree on {claim}"
                )
        return {**userinfo, **claims}

    async def _verified_id_token(self, token: Any, transaction: Transaction) -> dict[str, Any]:
        login_id = transaction.login_id
        if not isinstance(token, str):
            raise AuthenticationFailed(self.name, login_id, "no ID token")
        try:
            decoded = jwt.decode(
                token, await self._upstream.keys_for(token), algorithms=self._config.algorithms
            )
            claims = dict(decoded.claims)
            since = transaction.requested_at - self._config.clock_skew_seconds
            authenticated_since = since if transaction.force_authn else None
            rules = id_token_rules(claims, self._config, transaction.nonce, authenticated_since)
            rules.validate(claims)
        except (JoseError, ValueError) as error:
            raise AuthenticationFailed(self.name, login_id, f"ID token: {error}") from None
        return claims

    def _identity(self, claims: Mapping[str, Any], transaction: Transaction) -> Identity:
        login_id = transaction.login_id
        upstream_acr = claims.get("acr")
        if isinstance(upstream_acr, str):
            loa = self._acr_in.get(upstream_acr, upstream_acr)
        else:
            loa = self._config.loa[0]
        if transaction.loa and loa not in transaction.loa:
            raise UnmetAssurance(
                self.name, login_id, f"upstream acr {upstream_acr!r} not requested"
            )
        if not transaction.loa and loa not in self.loa:
            raise UnmetAssurance(self.name, login_id, f"upstream acr {upstream_acr!r} not offered")
        values = {field: claims.get(claim) for field, claim in self._claims.items()}
        for field in IDENTIFYING_FIELDS:
            if values[field] is not None and not isinstance(values[field], str):
                raise AuthenticationFailed(self.name, login_id, f"{field} is not one string")
        person: dict[str, Any] = {k: v for k, v in values.items() if isinstance(v, str) and v}
        person.update(self._identity_number(person, login_id))
        auth_time = claims.get("auth_time")
        return Identity(
            provider=self.name,
            subject=str(claims["sub"]),
            loa=loa,
            auth_time=int(auth_time) if isinstance(auth_time, int | float) else int(time.time()),
            authn_provider=self._authn_provider(claims),
            **person,
        )

    def _authn_provider(self, claims: Mapping[str, Any]) -> str:
        """Claims §2.3.5: an upstream that is itself a proxy names who authenticated; else
        the upstream did."""
        named = claims.get(AUTHN_PROVIDER_CLAIM)
        if isinstance(named, str) and 0 < len(named) <= MAX_AUTHN_PROVIDER_LENGTH:
            return named
        return self._config.issuer

    def _identity_number(self, person: dict[str, Any], login_id: str) -> dict[str, str]:
        """The one identity number the claims give, under the kind it really is; two different
        numbers (a personal and a coordination number) could name two people: refused."""
        numbers = set()
        for field in ("personal_identity_number", "coordination_number"):
            if field in person:
                try:
                    numbers.add(parse_identity_number(person.pop(field)))
                except InvalidIdentityNumber as error:
                    raise AuthenticationFailed(self.name, login_id, f"{field}: {error}") from None
        if len(numbers) > 1:
            raise AuthenticationFailed(self.name, login_id, "two different identity numbers")
        if not numbers:
            return {}
        (number,) = numbers
        kind = (
            "coordination_number" if number.is_coordination_number else "personal_identity_number"
        )
        return {kind: number.digits}


def _upstream_error(
    provider: str, login_id: str, error: str, description: str | None
) -> ProviderError:
    """The upstream's authorization error -> the citizen's message and the e-service's error."""
    detail = f"{error}: {description or ''}"
    if error == "access_denied":
        return UserCancelled(provider, login_id, detail)
    if error in ("login_required", "interaction_required", "consent_required"):
        return PassiveLoginImpossible(provider, login_id, detail)
    if error in ("temporarily_unavailable", "server_error"):
        return ProviderUnavailable(provider, login_id, detail)
    if error == "unmet_authentication_requirements":
        return UnmetAssurance(provider, login_id, detail)
    return AuthenticationFailed(provider, login_id, detail)


def user_message_parameter(message: UserMessage) -> str:
    """RPar §2.1's JSON object again, member for member: /authorize accepted only the one
    Base64 spelling of each text, so re-encoding gives back what the e-service sent
    (`mime_type` written out even where the e-service left text/plain implied)."""
    members = {
        f"message#{tag}" if tag else "message": base64.b64encode(text.encode()).decode()
        for tag, text in message.texts.items()
    }
    return json.dumps({**members, "mime_type": message.mime_type}, separators=(",", ":"))
