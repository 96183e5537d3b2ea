"""What every answer must look like: never a 5xx; OAuth endpoints answer the RFCs' error shape;
pages answer HTML (or, to a client that asks for JSON only, an OAuth-shaped JSON error)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx2

from tests.harness import REDIRECT_URI
from tests.properties.strategies import Probe

# RFC 6749 §4.1.2.1 and OIDC Core §3.1.2.6 (the authorization endpoint).
AUTHORIZE_ERRORS = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
        "unmet_authentication_requirements",
    }
)
# RFC 6749 §5.2 (the token endpoint).
TOKEN_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)
# RFC 6750 §3.1 (a protected resource: userinfo).
BEARER_ERRORS = {"invalid_request": 400, "invalid_token": 401, "insufficient_scope": 403}
# RFC 6749 §5.2: error_description is limited to these characters.
DESCRIPTION = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]*")


def describe(probe: Probe, response: httpx2.Response) -> str:
    return f"{probe.method} {probe.target[:300]} -> {response.status_code}: {response.text[:400]}"


def no_server_error(probe: Probe, response: httpx2.Response) -> None:
    assert response.status_code < 500, describe(probe, response)
    assert "Traceback" not in response.text, describe(probe, response)


def media_type(response: httpx2.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def json_body(probe: Probe, response: httpx2.Response) -> Any:
    assert media_type(response) == "application/json", describe(probe, response)
    return json.loads(response.content)


def oauth_error(probe: Probe, response: httpx2.Response, allowed: frozenset[str]) -> str:
    """A JSON object with an RFC `error` code and an RFC-clean error_description."""
    body = json_body(probe, response)
    assert isinstance(body, dict), describe(probe, response)
    assert body.get("error") in allowed, describe(probe, response)
    description = body.get("error_description")
    if description is not None:
        assert isinstance(description, str), describe(probe, response)
        assert DESCRIPTION.fullmatch(description), describe(probe, response)
    return str(body["error"])


def wants_json_only(probe: Probe) -> bool:
    accept = probe.headers.get("accept", b"").decode("latin-1").lower()
    return "json" in accept and "html" not in accept


def page(probe: Probe, response: httpx2.Response) -> None:
    """A citizen's page: a redirect, HTML, or the JSON error a JSON-only client asked for."""
    no_server_error(probe, response)
    if response.is_redirect:
        assert response.headers.get("location"), describe(probe, response)
        return
    if media_type(response) == "application/json" and wants_json_only(probe):
        oauth_error(probe, response, frozenset({"invalid_request", "temporarily_unavailable"}))
        return
    if probe.method == "HEAD":
        return
    assert media_type(response) == "text/html", describe(probe, response)


def page_or_json(probe: Probe, response: httpx2.Response) -> None:
    """Pages that a script also polls (BankID /status) answer JSON when all is well."""
    no_server_error(probe, response)
    if response.status_code == 200 and media_type(response) == "application/json":
        assert isinstance(json.loads(response.content), dict), describe(probe, response)
        return
    page(probe, response)


def authorize(probe: Probe, response: httpx2.Response) -> None:
    """RFC 6749 §4.1.2.1: errors go back to a verified redirect_uri with `error`, the request's
    `state` and (RFC 9207) `iss`; before that verification they are pages, never redirects."""
    page(probe, response)
    location = response.headers.get("location", "")
    if response.is_redirect and location.startswith(REDIRECT_URI):
        answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert "code" in answer or answer.get("error") in AUTHORIZE_ERRORS, location
        assert "iss" in answer, location


def token(probe: Probe, response: httpx2.Response) -> None:
    """RFC 6749 §5.1/§5.2: JSON, no-store; 400, or 401 with WWW-Authenticate for a client that
    authenticated with the Authorization header (§5.2 invalid_client)."""
    no_server_error(probe, response)
    assert "no-store" in response.headers.get("cache-control", ""), describe(probe, response)
    if response.status_code == 200:
        body = json_body(probe, response)
        assert body["token_type"] == "Bearer" and body["access_token"] and body["id_token"]
        return
    error = oauth_error(probe, response, TOKEN_ERRORS)
    if probe.method != "POST":
        assert response.status_code == 405, describe(probe, response)
        return
    scheme = probe.headers.get("authorization", b"").split(b" ")[0].lower()
    if error == "invalid_client" and scheme == b"basic":
        assert response.status_code == 401, describe(probe, response)
    if response.status_code == 401:
        assert response.headers.get("www-authenticate", "").lower().startswith("basic")
    else:
        assert response.status_code == 400, describe(probe, response)


def userinfo(probe: Probe, response: httpx2.Response) -> None:
    """OIDC Core §5.3.3, RFC 6750 §3: the claims, or an error with its status; a 401 names the
    Bearer scheme in WWW-Authenticate."""
    no_server_error(probe, response)
    if response.status_code == 200:
        assert media_type(response) in ("application/json", "application/jwt")
        return
    if probe.method not in ("GET", "POST"):
        assert response.status_code == 405, describe(probe, response)
        oauth_error(probe, response, frozenset({"invalid_request"}))
        return
    error = oauth_error(probe, response, frozenset(BEARER_ERRORS))
    assert response.status_code == BEARER_ERRORS[error], describe(probe, response)
    if response.status_code == 401:
        challenge = response.headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer"), describe(probe, response)


def public_json(probe: Probe, response: httpx2.Response) -> None:
    """Discovery and JWKS: the document, or (other methods) a JSON error."""
    no_server_error(probe, response)
    if probe.method in ("GET", "HEAD"):
        assert response.status_code == 200, describe(probe, response)
        return
    assert response.status_code == 405, describe(probe, response)
    oauth_error(probe, response, frozenset({"invalid_request"}))


def simulator_page(probe: Probe, response: httpx2.Response) -> None:
    """The simulator's phone: its pages, or Starlette's plain-text refusals of what never gets
    to them (no such method, a form it cannot parse); the simulator has no error pages."""
    no_server_error(probe, response)
    if response.status_code in (400, 404, 405, 413) and media_type(response) == "text/plain":
        return
    page(probe, response)


def any_answer(probe: Probe, response: httpx2.Response) -> None:
    no_server_error(probe, response)


SIMULATOR_ERRORS = {
    "alreadyInProgress": 400,
    "invalidParameters": 400,
    "notFound": 404,
    "methodNotAllowed": 405,
    "unsupportedMediaType": 415,
}


def bankid_api(probe: Probe, response: httpx2.Response) -> None:
    """RP API v6.0 §5: a JSON object, or an `errorCode` with its HTTP status."""
    no_server_error(probe, response)
    body = json_body(probe, response)
    assert isinstance(body, dict), describe(probe, response)
    if response.status_code != 200:
        code = body.get("errorCode")
        assert SIMULATOR_ERRORS.get(code) == response.status_code, describe(probe, response)
        assert isinstance(body.get("details"), str), describe(probe, response)


# -- the EU wallet's endpoints (OpenID4VP 1.0, HAIP 1.0) ------------------------------------------

REQUEST_OBJECT_TYPE = "application/oauth-authz-req+jwt"  # OpenID4VP §5.10.1, RFC 9101 §10.2
WALLET_ERRORS = frozenset({"invalid_request"})


def _routed(probe: Probe) -> bool:
    """The probe reaches the wallet's route: its last path segment stays one segment once
    decoded (otherwise the gateway's own 404 page answers). A newline is never routed:
    Starlette's patterns match paths with `.`, which stops at one."""
    segment = unquote(probe.path.rsplit("/", 1)[-1])
    return not any(c in segment for c in "/\n") and segment not in ("", ".", "..")


def _wallet_error(probe: Probe, response: httpx2.Response, methods: tuple[str, ...]) -> None:
    """A JSON invalid_request, not stored; 405 (with Allow) for any method but the route's."""
    assert 400 <= response.status_code < 500, describe(probe, response)
    oauth_error(probe, response, WALLET_ERRORS)
    assert "no-store" in response.headers.get("cache-control", ""), describe(probe, response)
    if probe.method not in methods:
        assert response.status_code == 405, describe(probe, response)
        assert response.headers.get("allow") == ", ".join(methods), describe(probe, response)


def _wallet_answered(probe: Probe, response: httpx2.Response, methods: tuple[str, ...]) -> bool:
    """What every wallet route's answer is (never a 5xx or a redirect; the gateway's page when
    the probe was not routed to it; else a JSON error), and whether it is a 200 whose body the
    route's own check reads."""
    no_server_error(probe, response)
    assert not response.is_redirect, describe(probe, response)
    if not _routed(probe):
        page(probe, response)
        return False
    if response.status_code != 200:
        _wallet_error(probe, response, methods)
        return False
    return True


def wallet_request(probe: Probe, response: httpx2.Response) -> None:
    """The request URI: a signed request object as `application/oauth-authz-req+jwt` (a compact
    JWS of `typ` oauth-authz-req+jwt), or a JSON `invalid_request`; never a redirect."""
    if not _wallet_answered(probe, response, ("GET", "POST")):
        return
    assert media_type(response) == REQUEST_OBJECT_TYPE, describe(probe, response)
    parts = response.text.split(".")
    assert len(parts) == 3 and all(parts), describe(probe, response)
    header, claims = (_b64_json(part) for part in parts[:2])
    assert header["typ"] == "oauth-authz-req+jwt" and header["alg"] == "ES256", header
    assert claims["response_mode"] == "direct_post.jwt", claims
    assert claims.get("wallet_nonce") == _posted_wallet_nonce(probe), describe(probe, response)


def _b64_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _posted_wallet_nonce(probe: Probe) -> str | None:
    """OpenID4VP §5.10.1: the request object echoes the wallet_nonce the wallet posted (the
    request URI reads its form as UTF-8 whatever the content type; a GET posts none)."""
    if probe.method != "POST" or probe.body is None:
        return None
    form = parse_qs(probe.body.content.decode("utf-8"), keep_blank_values=True)
    return form.get("wallet_nonce", [None])[0]


def wallet_response(probe: Probe, response: httpx2.Response) -> None:
    """The response URI (OpenID4VP §8.2, HAIP §5.1): 200 JSON, with a `redirect_uri` back to
    the done route for the same-device request and `{}` for the other; or a JSON
    `invalid_request`; never a redirect."""
    if not _wallet_answered(probe, response, ("POST",)):
        return
    body = json_body(probe, response)
    assert isinstance(body, dict) and set(body) <= {"redirect_uri"}, describe(probe, response)
    if body:
        target = urlsplit(body["redirect_uri"])
        assert target.path.endswith("/providers/wallet/done"), describe(probe, response)
        assert "response_code" in parse_qs(target.query), describe(probe, response)


def status_list(probe: Probe, response: httpx2.Response) -> None:
    """The wallet simulator's status lists (Token Status List §8): the list as a JWT, or a
    plain-text 404 (or Starlette's 405)."""
    no_server_error(probe, response)
    if response.status_code == 200:
        assert media_type(response) == "application/statuslist+jwt", describe(probe, response)
        return
    assert response.status_code in (404, 405), describe(probe, response)
