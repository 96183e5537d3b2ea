"""The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), checked top to bottom.

Until the client and its exact redirect_uri are verified, every error is an HTML page
(`AuthorizeRequestRejected`, never a redirect). After that an `OAuth2Error` goes back to the
e-service with `error`, `error_description`, `state` and `iss` (RFC 9207).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnsupportedResponseTypeError,
)
from authlib.oidc.core.errors import RegistrationNotSupportedError
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

from gateway.oidc.app_device import checked_app_device
from gateway.oidc.claims import SUPPORTED_SCOPES
from gateway.oidc.client_auth import ClientRegistry
from gateway.oidc.error_text import quoted
from gateway.oidc.named_person import named_person
from gateway.oidc.request_object import RequestObjects, ResolvedRequest, required_forms
from gateway.oidc.sign_request import (
    MAX_SIGN_REQUEST_LENGTH,
    SIGN_REQUEST_PARAMETER,
    checked_sign_request,
    sign_scopes_allowed,
)
from gateway.oidc.user_message import (
    USER_MESSAGE_PARAMETER,
    parse_user_message,
    valid_user_message,
)
from gateway.ops.rate_limit import RateLimiter
from gateway.settings import ClientSettings
from providers.forms import read_form
from providers.parsing import MalformedInput, ascii_integer, bounded_json

# The Swedish OIDC profile's parameter naming the e-ID to use, which skips the chooser.
AUTHN_PROVIDER_PARAMETER = "https://id.oidc.se/param/authnProvider"
# RPar 1.1 §2.3: a proxy in front of us names the e-service behind it; we pass them on upstream.
ORIGINAL_CLIENT_ID_PARAMETER = "https://id.oidc.se/param/originalClientId"
ORIGINAL_CLIENT_TOKEN_PARAMETER = "https://id.oidc.se/param/originalClientToken"  # noqa: S105 -- a parameter name
MAX_ORIGINAL_CLIENT_ID_LENGTH = 256
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}", re.ASCII)
CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
PROMPT_VALUES = frozenset({"none", "login", "consent", "select_account"})
MAX_PARAMETER_LENGTH = 4096
MAX_PARAMETERS = 64
# Any larger max_age means "no limit" just as well; the cap keeps giant integers out of records.
MAX_AGE_CEILING = 2**31 - 1


class AuthorizeRequestRejected(Exception):
    """Client or redirect_uri not trusted: show a page, never redirect (RFC 6749 §4.1.2.1)."""

    def __init__(self, reason: str, detail: str, client_id: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.client_id = client_id


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Error Code unmet_authentication_requirements 1.0."""

    error = "unmet_authentication_requirements"


@dataclass(frozen=True)
class AuthorizationParameters:
    """What the e-service asked for, as validated (OIDC Core §3.1.2.1): one value that travels
    unchanged from /authorize through the pending login to the code, serialised as one."""

    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    scopes: tuple[str, ...]
    code_challenge: str | None
    prompt: tuple[str, ...]  # sorted
    max_age: int | None
    acr_values: tuple[str, ...]
    claims: dict[str, dict[str, Any]]
    ui_locales: str | None
    login_hint: str | None
    user_message: dict[str, str] | None = None  # RPar §2.1's object, as validated
    original_client_id: str | None = None
    original_client_token: str | None = None
    # Signature Extension §3.1: the validated signRequest object (gateway/oidc/sign_request.py)
    sign_request: dict[str, Any] | None = None
    # Ours: the registered app's device values (gateway/oidc/app_device.py), for BankID's `app`
    app_device: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON values; the records that carry the parameters embed these keys as their own."""
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthorizationParameters:
        """The parameters among `data`'s keys (a record's other keys are left alone)."""
        # A field added later has a default: a record written before it takes that default.
        own = {name: data[name] for name in _PARAMETER_NAMES if name in data}
        tuples = {name: tuple(own[name]) for name in ("scopes", "prompt", "acr_values")}
        return cls(**{**own, **tuples})

    @classmethod
    def split(cls, record: Mapping[str, Any]) -> tuple[AuthorizationParameters, dict[str, Any]]:
        """A record that embeds the parameters: them, and the record's own fields."""
        own = {k: v for k, v in record.items() if k not in _PARAMETER_NAMES}
        return cls.from_dict(record), own


# Read once: `fields()` builds its tuple anew on every call, and every record load needs them.
_PARAMETER_NAMES = frozenset(field.name for field in fields(AuthorizationParameters))


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request: the registered client and what it asked for."""

    client: ClientSettings
    parameters: AuthorizationParameters


class BeginsLogin(Protocol):
    """What answers a valid authorization request: the login flow (gateway/login/flow.py)."""

    def begin(
        self, request: Request, auth: AuthorizationRequest, authn_provider: str | None
    ) -> Awaitable[Response]: ...


class AuthorizeEndpoint:
    """GET or POST /authorize: rate-limited per address, its request object or pushed request
    resolved, checked, then handed to the login."""

    def __init__(
        self,
        clients: ClientRegistry,
        limiter: RateLimiter,
        login: BeginsLogin,
        requests: RequestObjects,
    ) -> None:
        self._clients = clients
        self._limiter = limiter
        self._login = login
        self._requests = requests

    async def __call__(self, request: Request) -> Response:
        await self._limiter.authorize(request)
        resolved = await self._resolve(await read_parameters(request))
        params = resolved.params
        client, redirect_uri = trusted_client(params, self._clients)
        try:
            required_forms(client, resolved, pushing=False)
            resolved = await self._requests.with_sign_request(resolved, client)
            auth = validate(resolved.params, client, redirect_uri, resolved.signed_members)
            return await self._login.begin(request, auth, params.get(AUTHN_PROVIDER_PARAMETER))
        except OAuth2Error as error:  # from here on, errors may redirect to the e-service
            error.redirect_uri, error.state = redirect_uri, params.get("state")
            raise

    async def _resolve(self, query: ImmutableMultiDict[str, str]) -> ResolvedRequest:
        """The parameters after `request`/`request_uri` (OIDC Core §6.1, RFC 9126 §4). A bad
        object redirects only when the query itself names a trusted redirect_uri."""
        if "request" not in query and "request_uri" not in query:
            return ResolvedRequest(query)
        client_ids = query.getlist("client_id")
        if len(client_ids) != 1 or (client := self._clients.get(client_ids[0])) is None:
            raise AuthorizeRequestRejected(
                "unknown_client", "client_id is missing or not registered"
            )
        try:
            return await self._requests.resolve(query, client)
        except OAuth2Error as error:
            _, redirect_uri = trusted_client(query, self._clients)
            error.redirect_uri, error.state = redirect_uri, query.get("state")
            raise


async def read_parameters(request: Request) -> ImmutableMultiDict[str, str]:
    """GET query or POST form (OIDC Core §3.1.2.1 allows both)."""
    if request.method == "POST":
        form = await read_form(request, MAX_PARAMETERS)
        return ImmutableMultiDict([(k, v) for k, v in form.multi_items() if isinstance(v, str)])
    return ImmutableMultiDict(request.query_params.multi_items())


def trusted_client(
    params: ImmutableMultiDict[str, str], clients: ClientRegistry
) -> tuple[ClientSettings, str]:
    """The two checks after which errors may be sent to the client (node-oidc-provider N2)."""
    client_ids = params.getlist("client_id")
    if len(client_ids) != 1 or (client := clients.get(client_ids[0])) is None:
        raise AuthorizeRequestRejected("unknown_client", "client_id is missing or not registered")
    redirect_uris = params.getlist("redirect_uri")
    if len(redirect_uris) != 1 or redirect_uris[0] not in client.redirect_uris:
        raise AuthorizeRequestRejected(
            "redirect_uri",
            "redirect_uri is missing or not registered exactly for this client",
            client.client_id,
        )
    return client, redirect_uris[0]


def validate(
    params: ImmutableMultiDict[str, str],
    client: ClientSettings,
    redirect_uri: str,
    signed_members: Collection[str] = frozenset(),
) -> AuthorizationRequest:
    """The steps in order; `signed_members` are the parameters the client's signature covers
    (a request object's members), which a signRequest must be among."""
    for step in AUTHORIZE_STEPS:
        step(params, client)
    sign_request = checked_sign_request(params, signed_members)
    app_device = checked_app_device(params, client, signed_members)
    claims = parse_claims(params.get("claims"))
    return AuthorizationRequest(
        client,
        AuthorizationParameters(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=params.get("state"),
            nonce=params.get("nonce"),
            scopes=granted_scopes(params.get("scope", ""), client),
            code_challenge=params.get("code_challenge"),
            prompt=tuple(sorted(set(params.get("prompt", "").split()))),
            max_age=parse_max_age(params.get("max_age")),
            acr_values=requested_acr_values(params, claims),
            claims=claims,
            ui_locales=params.get("ui_locales"),
            login_hint=params.get("login_hint"),
            user_message=parse_user_message(params.get(USER_MESSAGE_PARAMETER)),
            original_client_id=params.get(ORIGINAL_CLIENT_ID_PARAMETER),
            original_client_token=params.get(ORIGINAL_CLIENT_TOKEN_PARAMETER),
            sign_request=sign_request,
            app_device=app_device,
        ),
    )


def requested_acr_values(
    params: ImmutableMultiDict[str, str], claims: Mapping[str, Mapping[str, Any]]
) -> tuple[str, ...]:
    """`acr_values`, or else the ID token's `acr` claim request (OIDC Core §5.5.1.1)."""
    acr_values = tuple(params.get("acr_values", "").split())
    if acr_values:
        return acr_values
    acr = claims.get("id_token", {}).get("acr") or {}
    return tuple(acr.get("values") or ([acr["value"]] if "value" in acr else []))


def authorization_response(issuer: str, redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """The redirect that answers the e-service (RFC 6749 §4.1.2, §4.1.2.1): a code or an
    error, with its `state`; every answer carries `iss` (RFC 9207). None values are left out."""
    values = [(key, value) for key, value in params.items() if value is not None]
    return str(add_params_to_uri(redirect_uri, [*values, ("iss", issuer)]))


def granted_scopes(requested: str, client: ClientSettings) -> tuple[str, ...]:
    """OIDC Core §5.4: scope values the OP does not know are ignored, so never granted; nor
    are those the client's `scopes` key leaves out (a sign scope was refused before)."""
    allowed = client.allowed_scopes
    return tuple(
        scope
        for scope in dict.fromkeys(requested.split())
        if scope in SUPPORTED_SCOPES and scope in allowed
    )


def single_values(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    """RFC 6749 §3.1: parameters MUST NOT be included more than once."""
    for key in params:
        if len(params.getlist(key)) > 1:
            raise InvalidRequestError(f"{quoted(key)} is given more than once")
        limit = MAX_SIGN_REQUEST_LENGTH if key == SIGN_REQUEST_PARAMETER else MAX_PARAMETER_LENGTH
        if len(params[key]) > limit:
            raise InvalidRequestError(f"{quoted(key)} is too long")


def request_objects_resolved(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    """`request` and `request_uri` were replaced by what they carry before the steps run
    (gateway/oidc/request_object.py); a nested one is never followed."""
    if "request" in params or "request_uri" in params:
        raise InvalidRequestError("request and request_uri cannot be nested")
    if "registration" in params:
        raise RegistrationNotSupportedError("the registration parameter is not supported")


def code_response_type(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    response_type = params.get("response_type")
    if not response_type:
        raise InvalidRequestError("response_type is missing")
    if response_type != "code":
        raise UnsupportedResponseTypeError(
            quoted(response_type), "only response_type=code is supported"
        )
    if params.get("response_mode", "query") != "query":
        raise InvalidRequestError("only response_mode=query is supported")


def openid_scope(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    if "openid" not in params.get("scope", "").split():
        raise InvalidScopeError("scope must include openid")


def pkce_s256(params: ImmutableMultiDict[str, str], client: ClientSettings) -> None:
    """RFC 7636 with S256 only (Swedish profile §2.1.8); required for public clients."""
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise InvalidRequestError("code_challenge_method without code_challenge")
        if client.is_public:
            raise InvalidRequestError("public clients must use PKCE (code_challenge with S256)")
        return
    if method != "S256":
        raise InvalidRequestError("code_challenge_method must be S256")
    if not CODE_CHALLENGE.match(challenge):
        raise InvalidRequestError("code_challenge is malformed")


def prompt_and_max_age(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    prompt = set(params.get("prompt", "").split())
    if not prompt <= PROMPT_VALUES:
        unsupported = sorted(prompt - PROMPT_VALUES)[0]
        raise InvalidRequestError(f"unsupported prompt value: {quoted(unsupported)}")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values")
    parse_max_age(params.get("max_age"))


def parse_max_age(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return min(ascii_integer(raw), MAX_AGE_CEILING)
    except MalformedInput:
        raise InvalidRequestError("max_age must be a non-negative integer") from None


def parse_claims(raw: str | None) -> dict[str, dict[str, Any]]:
    """The `claims` parameter (OIDC Core §5.5): which claims go to the ID token and userinfo."""
    if raw is None:
        return {}
    try:
        claims = bounded_json(raw)
    except MalformedInput as problem:
        raise InvalidRequestError(f"claims: {problem}") from None
    if not isinstance(claims, dict) or not set(claims) <= {"id_token", "userinfo"}:
        raise InvalidRequestError("claims must be an object with id_token and/or userinfo")
    for target in claims.values():
        if not isinstance(target, dict) or not all(
            v is None or isinstance(v, dict) for v in target.values()
        ):
            raise InvalidRequestError("each claims member maps claim names to null or an object")
        for request in target.values():
            _check_claim_request(request or {})
    return claims


def _check_claim_request(request: dict[str, Any]) -> None:
    """OIDC Core §5.5.1: essential is a boolean, value a string, values a list of strings."""
    values = request.get("values", [])
    if not isinstance(request.get("essential", False), bool):
        raise InvalidRequestError("claims: essential must be true or false")
    if "value" in request and not isinstance(request["value"], str):
        raise InvalidRequestError("claims: value must be a string")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidRequestError("claims: values must be a list of strings")


def valid_claims(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    parse_claims(params.get("claims"))


def one_named_person(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    """A `claims` value of the personal identity number must be one, and name the same person
    as a login_hint that is one (gateway/oidc/named_person.py)."""
    named_person(params.get("login_hint"), parse_claims(params.get("claims")))


def original_client(params: ImmutableMultiDict[str, str], _client: ClientSettings) -> None:
    """RPar 1.1 §2.3: originalClientId is a string, originalClientToken a Base64 string."""
    client_id = params.get(ORIGINAL_CLIENT_ID_PARAMETER)
    if client_id is not None and not 0 < len(client_id) <= MAX_ORIGINAL_CLIENT_ID_LENGTH:
        raise InvalidRequestError("originalClientId must be 1 to 256 characters")
    token = params.get(ORIGINAL_CLIENT_TOKEN_PARAMETER)
    if token is not None and not _is_base64(token):
        raise InvalidRequestError("originalClientToken must be Base64")


def _is_base64(text: str) -> bool:
    if not BASE64.fullmatch(text):
        return False
    padded = text + "=" * (-len(text) % 4)
    try:
        base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


AUTHORIZE_STEPS: Sequence[Callable[[ImmutableMultiDict[str, str], ClientSettings], None]] = (
    single_values,
    request_objects_resolved,
    code_response_type,
    openid_scope,
    pkce_s256,
    prompt_and_max_age,
    valid_claims,
    valid_user_message,
    one_named_person,
    original_client,
    sign_scopes_allowed,
)
