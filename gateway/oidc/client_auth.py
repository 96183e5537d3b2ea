"""Token endpoint client authentication (RFC 6749 §2.3, OIDC Core §9): client_secret_basic,
client_secret_post, private_key_jwt (RFC 7523 §3) and `none` for public clients with PKCE."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from starlette.requests import Request

from gateway.oidc.client_keys import ClientKeys, ClientKeysUnavailable
from gateway.settings import ClientSettings, Settings
from providers.base import Store
from providers.jws import ACCEPTED_JWS_ALGORITHMS
from providers.parsing import MalformedInput, compact_jwt_parts

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# authlib's client signs assertions for an hour (exp = iat + 3600), pyoidc's for 600 s; longer
# ones are refused. Clocks may differ by CLOCK_SKEW either way for iat, nbf and exp.
ASSERTION_MAX_LIFETIME = 3600
CLOCK_SKEW = 60


@dataclass(frozen=True)
class BasicCredentials:
    client_id: str
    # RFC 6749 §2.3.1's form-urldecoded secret, then the secret as sent, for the many clients
    # that skip that encoding (a base64-made secret's '+' would otherwise be a space).
    secrets: tuple[str, ...]


def replay_key(kind: str, client_id: str, jti: str) -> str:
    """The store key that makes a client's `jti` single use for one kind of JWT. Hashed as a
    JSON pair, so that no client_id or jti (with any `:` in it) can meet another client's."""
    digest = hashlib.sha256(json.dumps([client_id, jti]).encode()).hexdigest()
    return f"jti:{kind}:{digest}"


class ClientRegistry:
    """The registered e-services, by client_id."""

    def __init__(self, settings: Settings) -> None:
        self._clients = {client.client_id: client for client in settings.clients}

    def get(self, client_id: str) -> ClientSettings | None:
        return self._clients.get(client_id)

    def __iter__(self) -> Iterator[ClientSettings]:
        return iter(self._clients.values())


class ClientAuthenticator:
    def __init__(
        self, clients: ClientRegistry, keys: ClientKeys, store: Store, audiences: tuple[str, ...]
    ) -> None:
        self._clients = clients
        self._keys = keys
        self._store = store
        self._audiences = audiences

    async def authenticate(self, request: Request, form: Mapping[str, str]) -> ClientSettings:
        basic = basic_credentials(request)
        method, client_id = self._method_and_client_id(basic.client_id if basic else None, form)
        client = self._clients.get(client_id) if client_id else None
        if client is None or method not in client.auth_methods():
            raise self._failure(method, "client authentication failed")
        if method == "client_secret_basic" and basic is not None:
            self._check_secret(client, basic.secrets, method)
        elif method == "client_secret_post":
            self._check_secret(client, (form.get("client_secret", ""),), method)
        elif method == "private_key_jwt":
            await self._check_assertion(client, form.get("client_assertion", ""))
        return client

    def _method_and_client_id(
        self, basic_id: str | None, form: Mapping[str, str]
    ) -> tuple[str, str | None]:
        used = [
            name
            for name, present in (
                ("client_secret_basic", basic_id is not None),
                ("client_secret_post", "client_secret" in form),
                ("private_key_jwt", "client_assertion" in form),
            )
            if present
        ]
        if len(used) > 1:
            raise InvalidRequestError("use exactly one client authentication method")
        method = used[0] if used else "none"
        if method == "client_secret_basic":
            form_id = form.get("client_id")
            if form_id is not None and form_id != basic_id:
                raise InvalidRequestError("client_id differs from the authenticated client")
            return method, basic_id
        if method == "private_key_jwt":
            return method, self._assertion_subject(form)
        return method, form.get("client_id")

    def _assertion_subject(self, form: Mapping[str, str]) -> str | None:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise InvalidRequestError(f"client_assertion_type must be {JWT_BEARER}")
        try:  # read `iss` to know whose keys to verify with; the signature is checked next
            issuer = compact_jwt_parts(form["client_assertion"])[1].get("iss")
        except MalformedInput:
            return None
        client_id = form.get("client_id")
        if client_id is not None and client_id != issuer:
            raise InvalidRequestError("client_id differs from the client assertion's issuer")
        return str(issuer) if issuer is not None else None

    def _check_secret(self, client: ClientSettings, candidates: Sequence[str], method: str) -> None:
        if not client.has_secret or not any(
            [_secret_matches(client, secret) for secret in candidates if secret]
        ):
            raise self._failure(method, "client authentication failed")

    async def _check_assertion(self, client: ClientSettings, assertion: str) -> None:
        """RFC 7523 §3: iss = sub = client_id, aud = our issuer or token endpoint, jti once."""
        try:
            header, _ = compact_jwt_parts(assertion)  # no JSON that could exhaust JOSE's parser
            kid = header.get("kid")
            keys = await self._keys.for_token(client, kid if isinstance(kid, str) else None)
            token = jwt.decode(assertion, keys, ACCEPTED_JWS_ALGORITHMS)
            JWTClaimsRegistry(
                leeway=CLOCK_SKEW,
                iss={"essential": True, "value": client.client_id},
                sub={"essential": True, "value": client.client_id},
                aud={"essential": True, "values": list(self._audiences)},
                exp={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError, ClientKeysUnavailable) as error:
            raise self._failure("private_key_jwt", "client assertion rejected") from error
        expires_in = int(token.claims["exp"] - time.time())
        issued_at = token.claims.get("iat")
        if expires_in > ASSERTION_MAX_LIFETIME + CLOCK_SKEW or (
            issued_at is not None and token.claims["exp"] - issued_at > ASSERTION_MAX_LIFETIME
        ):
            raise self._failure("private_key_jwt", "client assertion lives too long")
        # Kept for as long as the assertion could be accepted; SET NX makes the check atomic.
        once = replay_key("assertion", client.client_id, str(token.claims["jti"]))
        if not await self._store.add(once, b"1", max(expires_in, 0) + CLOCK_SKEW + 1):
            raise self._failure("private_key_jwt", "client assertion was already used")

    @staticmethod
    def _failure(method: str, description: str) -> InvalidClientError:
        error = InvalidClientError(description)
        if method == "client_secret_basic":
            error.status_code = 401
        return error


def _secret_matches(client: ClientSettings, secret: str) -> bool:
    if client.client_secret_sha256 is not None:
        presented = hashlib.sha256(secret.encode()).hexdigest().encode()
        expected = client.client_secret_sha256.encode()
    else:
        presented, expected = secret.encode(), (client.client_secret or "").encode()
    return hmac.compare_digest(presented, expected)


def basic_credentials(request: Request) -> BasicCredentials | None:
    """RFC 6749 §2.3.1 credentials, or None when the client did not use HTTP Basic. Once it did,
    anything malformed is a 401 with a Basic challenge (§5.2), never a fall-back to no auth."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        userpass = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        encoded_id, colon, encoded_secret = userpass.partition(":")
        client_id = unquote_plus(encoded_id, errors="strict")
        secret = unquote_plus(encoded_secret, errors="strict")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or a header that is not ASCII
        raise _malformed_basic() from None
    if not colon or not client_id:
        raise _malformed_basic()
    return BasicCredentials(client_id, tuple(dict.fromkeys((secret, encoded_secret))))


def _malformed_basic() -> InvalidClientError:
    return InvalidClientError("malformed Basic authorization header", status_code=401)
