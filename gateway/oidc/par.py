"""The pushed authorization request endpoint (RFC 9126): the client authenticates as at the
token endpoint, pushes its authorization request (plain parameters or a `request` object),
which is checked exactly as /authorize would check it, and gets a single-use `request_uri`
that names it for PUSHED_REQUEST_TTL_SECONDS."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.oidc.authorize import (
    MAX_PARAMETERS,
    AuthorizeRequestRejected,
    trusted_client,
    validate,
)
from gateway.oidc.client_auth import ClientAuthenticator, ClientRegistry
from gateway.oidc.request_object import (
    PUSHED_REQUEST_TTL_SECONDS,
    RequestObjects,
    ResolvedRequest,
    required_forms,
)
from gateway.oidc.token import NO_STORE, single_valued
from gateway.ops.rate_limit import RateLimiter
from gateway.settings import ClientSettings
from providers.forms import read_form

# What the client authenticated with (RFC 6749 §2.3, RFC 7523 §2.2): not part of the request.
CLIENT_AUTHENTICATION = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


class PushedAuthorizationEndpoint:
    """POST /par (RFC 9126 §2): 201 with request_uri and expires_in, or an OAuth JSON error."""

    def __init__(
        self,
        clients: ClientRegistry,
        authenticator: ClientAuthenticator,
        limiter: RateLimiter,
        requests: RequestObjects,
    ) -> None:
        self._clients = clients
        self._authenticator = authenticator
        self._limiter = limiter
        self._requests = requests

    async def __call__(self, request: Request) -> Response:
        form = await read_form(request, MAX_PARAMETERS)
        values = single_valued(form)
        client = await self._authenticator.authenticate(request, values)
        await self._limiter.pushed_request(request, client.client_id)
        if "request_uri" in values:
            raise InvalidRequestError("request_uri cannot be pushed (RFC 9126 section 2.1)")
        resolved = await self._requests.resolve(pushed_parameters(values, client), client)
        resolved = await self._requests.with_sign_request(resolved, client)
        checked_request(resolved, client, self._clients)
        request_uri = await self._requests.push(client.client_id, resolved)
        answer = {"request_uri": request_uri, "expires_in": PUSHED_REQUEST_TTL_SECONDS}
        return JSONResponse(answer, status_code=201, headers=NO_STORE)


def pushed_parameters(
    values: dict[str, str], client: ClientSettings
) -> ImmutableMultiDict[str, str]:
    """The authorization request's own parameters; client_id is the authenticated client's."""
    if values.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestError("client_id differs from the authenticated client")
    params = {k: v for k, v in values.items() if k not in CLIENT_AUTHENTICATION}
    return ImmutableMultiDict({**params, "client_id": client.client_id})


def checked_request(
    resolved: ResolvedRequest, client: ClientSettings, clients: ClientRegistry
) -> None:
    """RFC 9126 §2.1: validated as the authorization endpoint would, errors as JSON (§2.3)."""
    try:
        _, redirect_uri = trusted_client(resolved.params, clients)
    except AuthorizeRequestRejected as rejected:
        raise InvalidRequestError(str(rejected)) from None
    required_forms(client, resolved, pushing=True)
    validate(resolved.params, client, redirect_uri, resolved.signed_members)
