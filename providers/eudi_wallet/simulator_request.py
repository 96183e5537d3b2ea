"""The simulated wallet's side of an OpenID4VP 1.0 authorization request, as HAIP 1.0 §5/§5.1
profiles it: read the `openid4vp://` (or `haip-vp://`) URI, fetch the request object from its
`request_uri` (OID4VP §5.10: POST with a fresh `wallet_nonce`, `Accept:
application/oauth-authz-req+jwt`; no redirects followed), and check it as a strict wallet does.
A request failing any check (simulator_request_checks.py) is refused with the reason;
`RequestRefused` carries the `state` and `response_uri` when the payload gave them, so the
wallet can post `invalid_request`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from cryptography import x509
from cryptography.x509.oid import NameOID

WALLET_SCHEMES = ("openid4vp", "haip-vp")
REQUEST_TYPE = "application/oauth-authz-req+jwt"
MAX_REQUEST_BYTES = 64_000
HTTP_TIMEOUT = 10.0

ClaimPath = tuple[str | int | None, ...]


class RequestRefused(Exception):
    def __init__(self, reason: str, payload: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        known = payload or {}
        state, uri = known.get("state"), known.get("response_uri")
        self.state = state if isinstance(state, str) else None
        self.response_uri = uri if isinstance(uri, str) and is_http_url(uri) else None


@dataclass(frozen=True)
class WalletUri:
    client_id: str
    request_uri: str
    method: str  # "get" or "post"


@dataclass(frozen=True)
class ClaimQuery:
    path: ClaimPath
    id: str | None = None


@dataclass(frozen=True)
class WalletRequest:
    """A request object that passed every check: what the wallet needs to answer it."""

    client_id: str
    response_uri: str
    nonce: str
    state: str | None
    query_id: str
    claims: tuple[ClaimQuery, ...]
    claim_sets: tuple[tuple[str, ...], ...]
    encryption_key: Mapping[str, Any]
    enc: str
    access_certificate: x509.Certificate

    @property
    def requester(self) -> str:
        """Who asks, as the access certificate names them (ARF RPA_06: the trade name)."""
        names = self.access_certificate.subject
        parts = [
            str(a.value)
            for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME)
            for a in names.get_attributes_for_oid(oid)
        ]
        return " / ".join(parts) or names.rfc4514_string()


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        return False


def parse_wallet_uri(uri: str) -> WalletUri:
    """OID4VP §5.10 by reference only: HAIP §5.1 wants a signed request with `request_uri`."""
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        raise RequestRefused("not a link") from None
    if parts.scheme not in WALLET_SCHEMES:
        raise RequestRefused("not an openid4vp:// or haip-vp:// link")
    query = parse_qs(parts.query)
    if any(len(values) != 1 for values in query.values()):
        raise RequestRefused("a parameter of the link is repeated")
    params = {key: values[0] for key, values in query.items()}
    client_id, request_uri = params.get("client_id", ""), params.get("request_uri", "")
    method = params.get("request_uri_method", "get")
    if not client_id or not is_http_url(request_uri):
        raise RequestRefused("the link lacks client_id or an http(s) request_uri")
    if method not in ("get", "post"):
        raise RequestRefused("request_uri_method is neither get nor post")
    return WalletUri(client_id, request_uri, method)


async def fetch_request_object(uri: WalletUri, wallet_nonce: str | None) -> str:
    """POST sends `wallet_nonce` (OID4VP §5.10.1); GET (RFC 9101) has nowhere to send it."""
    headers = {"Accept": REQUEST_TYPE}
    try:
        async with httpx2.AsyncClient(
            timeout=HTTP_TIMEOUT, follow_redirects=False, trust_env=False
        ) as http:
            if uri.method == "post":
                form = {"wallet_nonce": wallet_nonce} if wallet_nonce else {}
                answer = await http.post(uri.request_uri, data=form, headers=headers)
            else:
                answer = await http.get(uri.request_uri, headers=headers)
    except (httpx2.HTTPError, httpx2.InvalidURL, ValueError):  # ValueError: e.g. IDNA
        raise RequestRefused("the request_uri could not be reached") from None
    if answer.status_code != 200:
        raise RequestRefused(f"the request_uri answered HTTP {answer.status_code}")
    if answer.headers.get("content-type", "").split(";")[0].strip() != REQUEST_TYPE:
        raise RequestRefused(f"the request object is not {REQUEST_TYPE}")
    if len(answer.content) > MAX_REQUEST_BYTES:
        raise RequestRefused("the request object is too large")
    return answer.text.strip()
