"""An upstream OpenID Connect Provider (Freja eID, a regional IdP, another broker or Portvakt).

The gateway is the relying party: authorization code flow with PKCE S256, `state` and `nonce` in
the store under the pending login, the answer at `/providers/NAME/callback`. The ID token is
checked in full (signature by the upstream's JWKS with the shared algorithm allow-list, then
joserfc's claims registry: `iss`, `aud`, `azp`, `exp`/`iat`/`nbf` with skew, `nonce`, `sub`,
`auth_time` after prompt=login; `acr` against the request), RFC 9207's `iss` on the callback when
the upstream advertises it, and userinfo's `sub` must be the ID token's. Claims become an
`Identity` through a mapping with the Swedish OIDC profile's claims as defaults.

Discovery and JWKS are fetched at start-up and refreshed in the background; while the upstream
cannot be reached the provider reports a `problem` and the chooser shows it as unavailable.
JOSE work is done with joserfc (Authlib's JOSE library).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeGuard
from urllib.parse import quote, urlencode

import httpx2
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import InvalidClaimError, JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from providers.base import (
    AuthenticationFailed,
    ChecksConfig,
    ConfigPath,
    ConfigProblem,
    Evidence,
    HasLifecycle,
    Identity,
    LoginContext,
    LoginStateLost,
    PassiveLoginImpossible,
    ProviderConfig,
    ProviderError,
    ProviderServices,
    ProviderUnavailable,
    ReportsHealth,
    UnmetAssurance,
    UserCancelled,
    unusable_upstream,
)
from providers.identity_numbers import InvalidIdentityNumber, parse_identity_number
from providers.jws import ACCEPTED_JWS_ALGORITHMS
from providers.records import StoreRecord

log = logging.getLogger("portvakt.oidc_upstream")

TRANSACTION_TTL_SECONDS = 900
IDENTIFYING_FIELDS = ("personal_identity_number", "coordination_number", "prid")

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


class IdTokenClaims(JWTClaimsRegistry):
    """joserfc's registry checks iss, sub, aud, exp, iat and nbf with their types; a claim it
    does not know is compared by value only, and a list holding the value passes. These rules
    add the types for the ID token's own claims, and prompt=login's freshness of auth_time."""

    def __init__(
        self, *, authenticated_since: float | None, leeway: int, **options: ClaimsOption
    ) -> None:
        super().__init__(None, leeway, **options)
        self._authenticated_since = authenticated_since

    def validate_nonce(self, value: object) -> None:
        _require_string("nonce", value)
        self.check_value("nonce", value)

    def validate_azp(self, value: object) -> None:
        _require_string("azp", value)
        self.check_value("azp", value)

    def validate_auth_time(self, value: object) -> None:
        if not _is_numeric_date(value):
            raise InvalidClaimError("auth_time", "Claim 'auth_time' must be a NumericDate value")
        since = self._authenticated_since
        if since is not None and value < since:
            raise InvalidClaimError("auth_time", "prompt=login but an older authentication")


def _require_string(claim: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidClaimError(claim, f"Claim '{claim}' must be a string")


def _is_numeric_date(value: object) -> TypeGuard[int | float]:
    """RFC 7519 §2 NumericDate: a JSON number; not a boolean, NaN or an infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


class UpstreamCallFailed(Exception):
    """A call to the upstream ended in an exception of the HTTP/TLS stack, whichever it was."""


class OidcProvider(HasLifecycle, ReportsHealth):
    finish_path = "/callback"
    finish_methods: Sequence[str] = ("GET",)
    # ReportsHealth's two properties as attributes, which refresh() sets
    problem: str | None = None
    metadata_loaded_at: float | None = None

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
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(config.timeout_seconds), follow_redirects=False
        )
        self._client_key = _client_key(config.private_key) if config.private_key else None
        self._metadata: dict[str, Any] = config.endpoints.model_dump() if config.endpoints else {}
        self._jwks: KeySet | None = None
        self._refetched_for: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.problem: str | None = "the upstream's discovery and keys are not loaded yet"
        self.metadata_loaded_at: float | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route("/jwks", self._our_jwks)]

    async def astart(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._http.aclose()

    async def refresh(self) -> bool:
        """Discovery (unless endpoints are configured) and JWKS; False (logged) when down."""
        try:
            if self._config.endpoints is None:
                metadata = await self._get_json(
                    f"{self._config.issuer.rstrip('/')}/.well-known/openid-configuration"
                )
                if metadata.get("issuer") != self._config.issuer:
                    raise ValueError("discovery names another issuer")
                self._metadata = metadata
            await self._fetch_jwks()
        except Exception as error:  # whatever the upstream sent, the refresher must live on
            self.problem = f"upstream unreachable or invalid: {type(error).__name__}"
            log.error(
                "%s: discovery/JWKS from %s failed: %s", self.name, self._config.issuer, error
            )
            return False
        self.problem = None
        self.metadata_loaded_at = time.time()
        return True

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.refresh_seconds if not self.problem else 30)
            await self.refresh()

    async def _fetch_jwks(self) -> None:
        jwks = await self._get_json(self._metadata["jwks_uri"])
        self._jwks = KeySet.import_key_set(jwks)  # type: ignore[arg-type]

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._timed("metadata", self._http.get(url))
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamCallFailed(f"{url} answered {response.status_code}, not a JSON object")
        return body

    # -- login ------------------------------------------------------------------------------------

    async def start(self, request: Request, login: LoginContext) -> Response:
        if self.problem or not self._metadata:
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
        if login.identity_hint:
            params["login_hint"] = login.identity_hint
        endpoint = self._metadata["authorization_endpoint"]
        separator = "&" if "?" in endpoint else "?"
        return RedirectResponse(f"{endpoint}{separator}{urlencode(params)}", status_code=303)

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
        advertised = self._metadata.get("authorization_response_iss_parameter_supported")
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
        tokens = await self._redeem(code, transaction)
        claims = await self._verified_id_token(tokens.get("id_token"), transaction)
        if not (self._config.userinfo and self._metadata.get("userinfo_endpoint")):
            return claims
        userinfo = await self._userinfo(str(tokens.get("access_token", "")), login_id)
        if userinfo.get("sub") != claims["sub"]:
            raise AuthenticationFailed(self.name, login_id, "userinfo is about another sub")
        for claim in self._claims.values():
            if claim in claims and claim in userinfo and claims[claim] != userinfo[claim]:
                raise AuthenticationFailed(
                    self.name, login_id, f"userinfo and the ID token disagree on {claim}"
                )
        return {**userinfo, **claims}

    async def _redeem(self, code: str, transaction: Transaction) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.callback_url,
            "code_verifier": transaction.code_verifier,
        }
        config = self._config
        headers: dict[str, str] = {}
        if config.client_auth == "client_secret_basic":
            pair = (
                f"{quote(config.client_id, safe='')}:{quote(config.client_secret or '', safe='')}"
            )
            headers["Authorization"] = f"Basic {base64.b64encode(pair.encode()).decode()}"
        elif config.client_auth == "client_secret_post":
            form.update(client_id=config.client_id, client_secret=config.client_secret or "")
        else:
            form.update(
                client_id=config.client_id,
                client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                client_assertion=self._client_assertion(),
            )
        response = await self._timed(
            "token", self._http.post(self._metadata["token_endpoint"], data=form, headers=headers)
        )
        if response.status_code >= 500:
            raise ProviderUnavailable(
                self.name, transaction.login_id, f"token endpoint answered {response.status_code}"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            refusal = body.get("error") if isinstance(body, dict) else None
            raise AuthenticationFailed(
                self.name,
                transaction.login_id,
                f"token request refused: {refusal or response.status_code}",
            )
        return body

    async def _verified_id_token(self, token: Any, transaction: Transaction) -> dict[str, Any]:
        login_id = transaction.login_id
        if not isinstance(token, str):
            raise AuthenticationFailed(self.name, login_id, "no ID token")
        try:
            decoded = jwt.decode(
                token, await self._keys_for(token), algorithms=self._config.algorithms
            )
            claims = dict(decoded.claims)
            self._id_token_rules(claims, transaction).validate(claims)
        except (JoseError, ValueError) as error:
            raise AuthenticationFailed(self.name, login_id, f"ID token: {error}") from None
        return claims

    def _id_token_rules(self, claims: Mapping[str, Any], transaction: Transaction) -> IdTokenClaims:
        """OIDC Core §3.1.3.7: ours (iss, aud), fresh (exp, iat, nbf), of this login (nonce), about
        someone (sub); azp names us when present and must be present for several audiences."""
        audience = claims.get("aud")
        several_audiences = isinstance(audience, list) and len(audience) > 1
        skew = self._config.clock_skew_seconds
        return IdTokenClaims(
            authenticated_since=transaction.requested_at - skew
            if transaction.force_authn
            else None,
            leeway=skew,
            iss={"essential": True, "value": self._config.issuer},
            aud={"essential": True, "value": self._config.client_id},
            azp={"essential": several_audiences, "value": self._config.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": transaction.nonce},
            sub={"essential": True},
        )

    async def _keys_for(self, token: str) -> KeySet:
        """The upstream's keys; fetched again once for each kid we have not seen (rotation)."""
        if self._jwks is None:
            await self._fetch_jwks()
        assert self._jwks is not None
        kid = _header(token).get("kid")
        known = {key.kid for key in self._jwks.keys}
        if isinstance(kid, str) and kid not in known and kid not in self._refetched_for:
            if len(self._refetched_for) > 100:
                self._refetched_for.clear()
            self._refetched_for.add(kid)
            try:
                await self._fetch_jwks()
            except (UpstreamCallFailed, ValueError, JoseError) as error:
                log.warning("%s: JWKS refetch for kid %s failed: %s", self.name, kid, error)
        return self._jwks

    async def _userinfo(self, access_token: str, login_id: str) -> dict[str, Any]:
        response = await self._timed(
            "userinfo",
            self._http.get(
                self._metadata["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {access_token}"},
            ),
        )
        if response.status_code >= 500:
            raise ProviderUnavailable(self.name, login_id, f"userinfo {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            raise AuthenticationFailed(self.name, login_id, f"userinfo {response.status_code}")
        return body

    async def _timed(self, operation: str, call: Awaitable[httpx2.Response]) -> httpx2.Response:
        """The one place where a call to the upstream is made: timed for the metrics, and any
        exception of the HTTP/TLS stack (httpx's, ssl's, the OS's) becomes UpstreamCallFailed."""
        started, outcome = time.perf_counter(), "error"
        try:
            response = await call
        except httpx2.TimeoutException:
            raise UpstreamCallFailed(f"{operation}: timed out") from None
        except Exception as error:
            raise UpstreamCallFailed(f"{operation}: {type(error).__name__}") from error
        else:
            status = response.status_code
            outcome = "ok" if status < 400 else ("rejected" if status < 500 else "error")
            return response
        finally:
            self._services.upstream.observe(operation, time.perf_counter() - started, outcome)

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
            **person,
        )

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

    def _client_assertion(self) -> str:
        assert self._client_key is not None
        now = int(time.time())
        claims = {
            "iss": self._config.client_id,
            "sub": self._config.client_id,
            "aud": self._metadata["token_endpoint"],
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        }
        alg = "RS256" if self._client_key.key_type == "RSA" else "ES256"
        header = {"alg": alg, "kid": self._client_key.thumbprint()}
        return jwt.encode(header, claims, self._client_key)

    async def _our_jwks(self, request: Request) -> Response:
        """Our public key for private_key_jwt, to register at the upstream."""
        if self._client_key is None:
            return JSONResponse({"keys": []})
        public = self._client_key.as_dict(private=False)
        public.update(kid=self._client_key.thumbprint(), use="sig")
        return JSONResponse({"keys": [public]})


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


def _client_key(path: Path) -> RSAKey | ECKey:
    data = path.read_bytes()
    try:
        return RSAKey.import_key(data)
    except (ValueError, JoseError):
        return ECKey.import_key(data)


def _header(token: str) -> dict[str, Any]:
    try:
        segment = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        return {}
    return header if isinstance(header, dict) else {}
