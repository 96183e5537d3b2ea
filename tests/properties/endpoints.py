"""Every public endpoint as the properties see it: how to reach a live state for it (a login part
of the way through), how to make probes for it from that state, and what its answers must be."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, unquote

import httpx2
from hypothesis import strategies as st
from jwcrypto import jwk
from lxml import etree

from gateway.demo.defaults import WALLET_SIMULATOR_PATH
from gateway.login.flow import AUTHN_PROVIDER_PARAMETER
from gateway.oidc.app_device import APP_DEVICE_PARAMETER
from gateway.oidc.claims import SIGN_APPROVAL_SCOPE, SIGN_SCOPE
from gateway.oidc.sign_request import SIGN_REQUEST_PARAMETER
from gateway.oidc.user_message import USER_MESSAGE_PARAMETER
from providers.eudi_wallet.simulator_holder import Twist
from providers.eudi_wallet.simulator_people import PEOPLE
from tests.doubles.saml_idp import LOA2, LOA3
from tests.harness import INFO_SCOPE, NUMBER_SCOPE, REDIRECT_URI, TEST_PERSON, pkce_pair
from tests.properties import checks
from tests.properties.site import (
    CLIENT_IDS,
    LOGOUT_URI,
    PROVIDERS,
    SECRETS,
    WALLET_FLOWS,
    Live,
    Site,
    wallet_jwe,
)
from tests.properties.strategies import (
    Body,
    Pairs,
    Probe,
    basic_credentials,
    bearer,
    bodies,
    deep_values,
    encode_form,
    form_body,
    fuzz_text,
    headers,
    json_values,
    odd_digits,
    parameters,
    value_or_fuzz,
)

OTHER_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIMULATOR = "/bankid-simulator"
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
AUTHN_PROVIDER_CLAIM = "https://id.oidc.se/claim/authnProvider"
ORIGINAL_CLIENT_ID = "https://id.oidc.se/param/originalClientId"
ORIGINAL_CLIENT_TOKEN = "https://id.oidc.se/param/originalClientToken"
AUTHN_PROVIDER_VALUES = ("urn:portvakt:sandbox", "https://www.bankid.com", "https://idp.example")
MAX_URL = 32_000


@dataclass(frozen=True)
class Endpoint:
    name: str
    probes: Callable[[Site, Live], st.SearchStrategy[Probe]]
    check: Callable[..., None]
    live: Callable[[Site], Live] | None = None


def methods(*usual: str) -> st.SearchStrategy[str]:
    """Mostly the endpoint's own methods, sometimes any other."""
    return st.one_of(st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(OTHER_METHODS))


def probe(
    method: st.SearchStrategy[str],
    path: st.SearchStrategy[str] | str,
    query: st.SearchStrategy[Pairs] | None = None,
    body: st.SearchStrategy[Body] | None = None,
    live: Live | None = None,
    authorization: st.SearchStrategy[bytes] | None = None,
) -> st.SearchStrategy[Probe]:
    """A probe whose headers match its body's content type unless the fuzz says otherwise."""
    paths = st.just(path) if isinstance(path, str) else path
    queries = query if query is not None else st.just([])
    cookies = live.cookies if live else {}

    @st.composite
    def build(draw: st.DrawFn) -> Probe:
        chosen_body = draw(body) if body is not None else None
        kind = chosen_body.content_type if chosen_body else None
        chosen = draw(headers(cookies, authorization, kind))
        return Probe(draw(method), draw(paths), draw(queries), chosen, chosen_body)

    # Longer URLs are refused by the HTTP client before they are sent (and by servers anyway).
    return build().filter(lambda made: len(made.target) < MAX_URL)


def login_path(live: Live, suffix: str = "") -> st.SearchStrategy[str]:
    segment = value_or_fuzz(live.login_id or "x").map(lambda s: quote(s or "-", safe=""))
    return segment.map(lambda s: f"/login/{s}{suffix}")


def scopes() -> st.SearchStrategy[str]:
    words = st.sampled_from(
        ["openid", "profile", NUMBER_SCOPE, INFO_SCOPE, "email", "offline", SIGN_SCOPE,
         SIGN_APPROVAL_SCOPE]
    )  # fmt: skip
    return st.lists(words, max_size=4).map(" ".join)


def claims_values() -> st.SearchStrategy[str]:
    shaped = st.fixed_dictionaries(
        {},
        optional={
            "id_token": st.dictionaries(
                st.sampled_from(["acr", "name", "x", PNR_CLAIM, AUTHN_PROVIDER_CLAIM]),
                st.none()
                | st.fixed_dictionaries(
                    {},
                    optional={
                        "essential": json_values(2),
                        "value": value_or_fuzz(TEST_PERSON, "196408233234") | json_values(2),
                        "values": json_values(4),
                    },
                ),
            ),
            "userinfo": json_values(6),
        },
    )
    return st.one_of(deep_values(), shaped.map(json.dumps), json_values().map(json.dumps))


def user_message_values() -> st.SearchStrategy[str]:
    """RPar §2.1's object as JSON text, or JSON nested too deep, or other JSON."""
    return st.one_of(
        deep_values(), user_message_objects().map(json.dumps), json_values().map(json.dumps)
    )


def user_message_objects() -> st.SearchStrategy[dict[str, Any]]:
    """RPar §2.1's object, with its members' names, Base64 and MIME type each right or wrong."""
    texts = fuzz_text().map(lambda text: base64.b64encode(text.encode()).decode())
    member = st.one_of(texts, texts.map(lambda encoded: encoded.rstrip("=")), json_values(2))
    return st.dictionaries(
        st.one_of(
            st.sampled_from(["message", "message#sv", "message#en-GB", "message#", "mime_type"]),
            fuzz_text(12).map(lambda tag: f"message#{tag}"),
        ),
        st.one_of(member, st.sampled_from(["text/plain", "text/markdown", "text/html"])),
        max_size=4,
    )


def app_device_values() -> st.SearchStrategy[str]:
    """Ours (gateway/oidc/app_device.py): a native app's device as plain JSON, always refused
    outside a signed request object; right-shaped, odd or deep."""
    member = st.one_of(fuzz_text(), st.just("x" * 300), json_values(2))
    names = ("deviceOS", "deviceModelName", "deviceIdentifier", "appIdentifier")
    shaped = st.fixed_dictionaries({}, optional=dict.fromkeys(names, member))
    return st.one_of(shaped.map(json.dumps), json_values().map(json.dumps), deep_values())


def sign_request_values() -> st.SearchStrategy[str]:
    """Signature Extension §3.1: the object as plain JSON (always refused: unsigned) or as a
    JWT with plausible or odd claims and a fuzzed signature, tbs_data right or wrong."""
    tbs = st.one_of(
        st.binary(max_size=64).map(lambda raw: base64.b64encode(raw).decode()),
        fuzz_text(),
        json_values(2),
        st.just("QUJD" * 3001),
    )
    fields = st.fixed_dictionaries(
        {},
        optional={
            "tbs_data": tbs,
            # Objects, not text: deep_values() text would exhaust json.loads here, in the test.
            "sign_message": st.one_of(user_message_objects(), json_values(3)),
            "iss": value_or_fuzz(*CLIENT_IDS),
            "aud": value_or_fuzz("http://127.0.0.1", "https://elsewhere.example"),
            "exp": st.one_of(st.integers(-(10**12), 10**12), json_values(2)),
            "iat": st.one_of(st.integers(-(10**12), 10**12), json_values(2)),
        },
    )
    header = st.fixed_dictionaries(
        {"alg": value_or_fuzz("none", "RS256", "PS256", "ES256", "HS256")},
        optional={"kid": value_or_fuzz("jwt-1")},
    )
    jws = st.builds(
        lambda h, c, sig: f"{b64_json(h)}.{b64_json(c)}.{sig}",
        header,
        st.one_of(fields, json_values()),
        st.sampled_from(["", "c2ln", "A" * 342]),
    )
    return st.one_of(jws, fields.map(json.dumps), deep_values(), fuzz_text())


AUTHORIZE_CANONICAL = {
    "client_id": "basic",
    "redirect_uri": REDIRECT_URI,
    "response_type": "code",
    "scope": f"openid {NUMBER_SCOPE}",
    "state": "s",
    "nonce": "n",
}


REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def b64_json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def request_objects() -> st.SearchStrategy[str]:
    """JWT-shaped request objects (RFC 9101): any alg, plausible or odd claims, fuzzed or no
    signature, JWE-shaped, deeply nested."""
    claims = st.fixed_dictionaries(
        {},
        optional={
            "iss": value_or_fuzz(*CLIENT_IDS),
            "aud": value_or_fuzz("http://127.0.0.1", "https://elsewhere.example"),
            "exp": st.one_of(st.integers(-(10**12), 10**12), json_values(2)),
            "nbf": st.integers(0, 10**10),
            "jti": st.one_of(fuzz_text(), json_values(2)),
            "client_id": value_or_fuzz(*CLIENT_IDS),
            "redirect_uri": value_or_fuzz(REDIRECT_URI),
            "claims": st.one_of(claims_values(), json_values(6)),
            "request_uri": value_or_fuzz(REQUEST_URI_PREFIX + "x"),
            "max_age": st.one_of(st.integers(), st.floats(), fuzz_text()),
        },
    )
    header = st.fixed_dictionaries(
        {"alg": value_or_fuzz("none", "RS256", "PS256", "ES256", "HS256", "RSA-OAEP")},
        optional={"kid": value_or_fuzz("jwt-1"), "enc": st.just("A256GCM")},
    )
    jws = st.builds(
        lambda h, c, sig: f"{b64_json(h)}.{b64_json(c)}.{sig}",
        header,
        st.one_of(claims, json_values()),
        st.sampled_from(["", "c2ln", "A" * 342]),
    )
    return st.one_of(
        jws,
        st.builds(lambda h: f"{b64_json(h)}.a.b.c.d", header),
        deep_values(40_000).map(lambda v: f"{b64_json({'alg': 'none'})}.{v}."),
        fuzz_text(),
    )


def request_uris() -> st.SearchStrategy[str]:
    return value_or_fuzz(
        REQUEST_URI_PREFIX + "x", REQUEST_URI_PREFIX, "https://rp.example/r.jwt", "urn:other"
    ).map(lambda v: v or REQUEST_URI_PREFIX)


REQUEST_PARAMETERS = {"request": request_objects, "request_uri": request_uris}


def authorize_parameters(focus: str | None = None) -> st.SearchStrategy[Pairs]:
    """With focus on `request` or `request_uri`, that one is added (left out otherwise, so
    that most probes reach the other parameters' checks)."""
    challenge = pkce_pair()[1]
    by_reference = {focus: REQUEST_PARAMETERS[focus]()} if focus in REQUEST_PARAMETERS else {}
    return parameters(
        {
            **by_reference,
            "client_id": value_or_fuzz(*CLIENT_IDS),
            "redirect_uri": value_or_fuzz(
                REDIRECT_URI, REDIRECT_URI + "/", "https://evil.example/cb"
            ),
            "response_type": value_or_fuzz("code", "token", "code id_token"),
            "scope": st.one_of(st.just(f"openid {NUMBER_SCOPE}"), scopes()),
            "state": fuzz_text(),
            "nonce": fuzz_text(),
            "code_challenge": value_or_fuzz(challenge, "short"),
            "code_challenge_method": value_or_fuzz("S256", "plain"),
            "prompt": value_or_fuzz("none", "login", "consent select_account", "none login"),
            "max_age": st.one_of(st.integers(0, 10**12).map(str), odd_digits()),
            "acr_values": value_or_fuzz(LOA3, LOA2, f"{LOA2} {LOA3}", "urn:other"),
            "claims": claims_values(),
            "ui_locales": value_or_fuzz("sv", "en", "en sv", "xx"),
            "login_hint": value_or_fuzz(TEST_PERSON, "19990807-2391", "990807-2391"),
            USER_MESSAGE_PARAMETER: user_message_values(),
            SIGN_REQUEST_PARAMETER: sign_request_values(),
            APP_DEVICE_PARAMETER: app_device_values(),
            AUTHN_PROVIDER_PARAMETER: value_or_fuzz(
                *PROVIDERS, "bankid-tls", *AUTHN_PROVIDER_VALUES
            ),
            ORIGINAL_CLIENT_ID: value_or_fuzz("e-tjanst", "x" * 257),
            ORIGINAL_CLIENT_TOKEN: value_or_fuzz("ZXlKaGJHY2k=", "ZXlK-_w", "not base64"),
        },
        ("request", "request_uri", "registration", "response_mode", "display", "id_token_hint"),
        focus,
        AUTHORIZE_CANONICAL,
    )


AUTHORIZE_PARAMETERS = (
    *AUTHORIZE_CANONICAL,
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "acr_values",
    "claims",
    "ui_locales",
    "login_hint",
    AUTHN_PROVIDER_PARAMETER,
    *REQUEST_PARAMETERS,
    USER_MESSAGE_PARAMETER,
    SIGN_REQUEST_PARAMETER,
    APP_DEVICE_PARAMETER,
    ORIGINAL_CLIENT_ID,
    ORIGINAL_CLIENT_TOKEN,
)


def authorize_get(site: Site, live: Live, focus: str | None = None) -> st.SearchStrategy[Probe]:
    method = st.just("GET") if focus else methods("GET")
    return probe(method, "/authorize", authorize_parameters(focus), live=live)


def authorize_post(site: Site, live: Live, focus: str | None = None) -> st.SearchStrategy[Probe]:
    made = authorize_parameters(focus)
    form = form_body(made) if focus else bodies(made)
    return probe(st.just("POST") if focus else methods("POST"), "/authorize", body=form, live=live)


def each_authorize_parameter() -> tuple[Endpoint, ...]:
    """/authorize once per parameter: that one hostile, the others those of a valid request."""
    return tuple(
        Endpoint(
            f"authorize {method} {name.rsplit('/', 1)[-1]}",
            partial(make, focus=name),
            checks.authorize,
            signed_in,
        )
        for method, make in (("GET", authorize_get), ("POST", authorize_post))
        for name in AUTHORIZE_PARAMETERS
    )


def token_parameters(live: Live, auth: str) -> st.SearchStrategy[Pairs]:
    """The grant's parameters and those of one client authentication method (`auth`), or of
    several at once ("mixed")."""
    assertion = st.one_of(
        st.sampled_from(["not.a.jwt", "e30.W10.", "e30.e30.", "..", "a.b.c.d.e"]),
        st.one_of(json_values(), deep_values(200_000)).map(
            lambda v: (
                ".".join(
                    base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode()
                    for x in ({"alg": "RS256", "kid": "jwt-1"}, v)
                )
                + ".c2ln"
            )
        ),
        fuzz_text(),
    )
    grant = {
        "grant_type": value_or_fuzz("authorization_code", "refresh_token", "password"),
        "code": value_or_fuzz(live.extra.get("code", "x")),
        "redirect_uri": value_or_fuzz(REDIRECT_URI),
        "code_verifier": value_or_fuzz(live.extra.get("verifier", "v" * 43)),
    }
    client = {
        "client_id": value_or_fuzz(*CLIENT_IDS),
        "client_secret": value_or_fuzz(*SECRETS.values()),
        "client_assertion_type": value_or_fuzz(JWT_BEARER),
        "client_assertion": assertion,
    }
    used = {
        "basic": (),
        "post": ("client_id", "client_secret"),
        "none": ("client_id",),
        "jwt": ("client_id", "client_assertion_type", "client_assertion"),
    }
    chosen = client if auth == "mixed" else {k: v for k, v in client.items() if k in used[auth]}
    return parameters({**grant, **chosen}, ("scope", "refresh_token", "access_token"))


def token_endpoint(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    def by(auth: str) -> st.SearchStrategy[Probe]:
        basic = basic_credentials(CLIENT_IDS, SECRETS)
        authorization = basic if auth == "basic" else st.one_of(basic, bearer())
        return probe(
            methods("POST"),
            "/token",
            body=bodies(token_parameters(live, auth)),
            live=live,
            authorization=authorization,
        )

    return st.sampled_from(["basic", "post", "jwt", "none", "mixed"]).flatmap(by)


def pushed_request_endpoint(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    """/par (RFC 9126): an authorization request plus client authentication, as a form."""
    authentication = parameters(
        {
            "client_secret": value_or_fuzz(*SECRETS.values()),
            "client_assertion_type": value_or_fuzz(JWT_BEARER),
            "client_assertion": fuzz_text(),
            "request": request_objects(),
            "request_uri": request_uris(),
        }
    )
    pairs = st.builds(lambda a, b: a + b, authorize_parameters(), authentication)
    basic = basic_credentials(CLIENT_IDS, SECRETS)
    return probe(
        methods("POST"),
        "/par",
        body=bodies(pairs),
        live=live,
        authorization=st.one_of(basic, bearer()),
    )


def pushed_request_answer(probe: Probe, response: httpx2.Response) -> None:
    """RFC 9126 §2.2/§2.3: 201 with a request_uri of ours, or an OAuth JSON error; no-store."""
    checks.no_server_error(probe, response)
    assert "no-store" in response.headers.get("cache-control", ""), checks.describe(probe, response)
    if response.status_code == 201:
        body = checks.json_body(probe, response)
        assert body["request_uri"].startswith(REQUEST_URI_PREFIX), checks.describe(probe, response)
        assert body["expires_in"] == 60, checks.describe(probe, response)
        return
    errors = checks.TOKEN_ERRORS | checks.AUTHORIZE_ERRORS | {"temporarily_unavailable"}
    checks.oauth_error(probe, response, errors)


# -- CIBA (tests/oidc/test_ciba_properties.py drives these against a phone provider) ------------

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
CIBA_ERRORS = frozenset(
    {"invalid_binding_message", "invalid_authorization_details", "access_denied",
     "authorization_pending", "slow_down", "expired_token", "temporarily_unavailable"}
)  # fmt: skip
PERSONS = (TEST_PERSON, "196408233234", "199908072390", "19990807-2391", "199908672391")


def authorization_details() -> st.SearchStrategy[str]:
    shaped = st.lists(
        st.fixed_dictionaries(
            {"type": value_or_fuzz("phoneAuth", "payment")},
            optional={"callInitiator": st.one_of(value_or_fuzz("user", "RP"), json_values(2))},
        ),
        max_size=2,
    )
    return st.one_of(shaped.map(json.dumps), json_values().map(json.dumps), deep_values())


def backchannel_endpoint(
    client_ids: tuple[str, ...], secrets: dict[str, str]
) -> Callable[[Site, Live], st.SearchStrategy[Probe]]:
    """POST /bc-authorize (CIBA §7.1): its parameters and a client authentication."""

    def probes(_site: Site, live: Live) -> st.SearchStrategy[Probe]:
        form = parameters(
            {
                "scope": st.one_of(st.just(f"openid {NUMBER_SCOPE}"), scopes()),
                "login_hint": value_or_fuzz(*PERSONS),
                "id_token_hint": fuzz_text(),
                "login_hint_token": fuzz_text(),
                "binding_message": value_or_fuzz("Ärende 4711", "x" * 101, "<b>"),
                "requested_expiry": st.one_of(st.integers(-5, 10**20).map(str), odd_digits()),
                "acr_values": value_or_fuzz(LOA3, LOA2, "urn:other"),
                "authorization_details": authorization_details(),
                SIGN_REQUEST_PARAMETER: sign_request_values(),
                "client_id": value_or_fuzz(*client_ids),
                "client_secret": value_or_fuzz(*secrets.values()),
            },
            ("user_code", "request", "client_assertion", "client_assertion_type"),
        )
        basic = basic_credentials(client_ids, secrets)
        return probe(
            methods("POST"), "/bc-authorize", body=bodies(form), live=live,
            authorization=st.one_of(basic, bearer()),
        )  # fmt: skip

    return probes


def backchannel_answer(probe: Probe, response: httpx2.Response) -> None:
    """CIBA §7.3 / §13: the acknowledgement, or a JSON error with its status; no-store."""
    checks.no_server_error(probe, response)
    assert "no-store" in response.headers.get("cache-control", ""), checks.describe(probe, response)
    if response.status_code == 200:
        body = checks.json_body(probe, response)
        assert set(body) == {"auth_req_id", "expires_in", "interval"}, checks.describe(
            probe, response
        )
        assert 0 < body["expires_in"] <= 120, checks.describe(probe, response)
        return
    error = checks.oauth_error(probe, response, checks.TOKEN_ERRORS | CIBA_ERRORS)
    if probe.method == "POST" and error == "invalid_client":
        assert response.status_code == 401, checks.describe(probe, response)


def ciba_poll_endpoint(
    client_ids: tuple[str, ...], secrets: dict[str, str]
) -> Callable[[Site, Live], st.SearchStrategy[Probe]]:
    """POST /token with the CIBA grant (CIBA §10.1) and a live or fuzzed auth_req_id."""

    def probes(_site: Site, live: Live) -> st.SearchStrategy[Probe]:
        form = parameters(
            {
                "grant_type": value_or_fuzz(CIBA_GRANT, "authorization_code"),
                "auth_req_id": value_or_fuzz(live.extra.get("auth_req_id", "x")),
                "client_id": value_or_fuzz(*client_ids),
                "client_secret": value_or_fuzz(*secrets.values()),
            },
            ("code", "scope"),
        )
        basic = basic_credentials(client_ids, secrets)
        return probe(
            methods("POST"), "/token", body=bodies(form), live=live,
            authorization=st.one_of(basic, bearer()),
        )  # fmt: skip

    return probes


def ciba_poll_answer(probe: Probe, response: httpx2.Response) -> None:
    """RFC 6749 §5.1/§5.2 and CIBA §11: tokens, or a JSON error; no-store."""
    checks.no_server_error(probe, response)
    assert "no-store" in response.headers.get("cache-control", ""), checks.describe(probe, response)
    if response.status_code == 200:
        assert "id_token" in checks.json_body(probe, response), checks.describe(probe, response)
        return
    checks.oauth_error(probe, response, checks.TOKEN_ERRORS | CIBA_ERRORS)


def with_code(site: Site) -> Live:
    code, verifier = site.code()
    return Live(extra={"code": code, "verifier": verifier or ""})


def userinfo_endpoint(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    form = parameters({"access_token": value_or_fuzz(site.access_token)})
    return probe(
        methods("GET", "POST"),
        "/userinfo",
        body=st.none() | bodies(form),
        live=live,
        authorization=bearer(site.access_token),
    )


def logout_parameters(site: Site) -> st.SearchStrategy[Pairs]:
    hint = site.id_token
    return parameters(
        {
            "id_token_hint": value_or_fuzz(hint, hint[:-4] + "AAAA", hint.split(".")[0] + ".e30."),
            "client_id": value_or_fuzz(*CLIENT_IDS),
            "post_logout_redirect_uri": value_or_fuzz(LOGOUT_URI, REDIRECT_URI),
            "state": fuzz_text(),
            "ui_locales": value_or_fuzz("sv", "en"),
            "csrf": fuzz_text(),
            "confirm": st.just("1"),
        }
    )


def signed_in(site: Site) -> Live:
    return Live(cookies=dict(site.session_cookies))


def logout_get(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    return probe(methods("GET"), "/logout", logout_parameters(site), live=live)


def logout_post(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    return probe(methods("POST"), "/logout", body=bodies(logout_parameters(site)), live=live)


def fixed_document(path: str) -> Callable[[Site, Live], st.SearchStrategy[Probe]]:
    def probes(site: Site, live: Live) -> st.SearchStrategy[Probe]:
        query = parameters({}, ("callback", "format"))
        return probe(methods("GET"), path, query, st.none() | bodies(query), live)

    return probes


# -- the login between the OP and a provider -----------------------------------------------------


def login_form(live: Live, **fields: st.SearchStrategy[str]) -> st.SearchStrategy[Pairs]:
    return parameters(
        {
            "login": value_or_fuzz(live.login_id or "x"),
            "csrf": value_or_fuzz(live.csrf or "x"),
            **fields,
        }
    )


def login_page_get(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    query = parameters({"lang": value_or_fuzz("sv", "en")})
    return probe(methods("GET"), login_path(live), query, live=live)


def login_page_post(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    form = parameters(
        {"csrf": value_or_fuzz(live.csrf or "x"), "provider": value_or_fuzz(*PROVIDERS)}
    )
    return probe(methods("POST"), login_path(live), body=bodies(form), live=live)


def login_suffix(suffix: str) -> Callable[[Site, Live], st.SearchStrategy[Probe]]:
    def probes(site: Site, live: Live) -> st.SearchStrategy[Probe]:
        return probe(methods("GET"), login_path(live, suffix), parameters({}), live=live)

    return probes


def error_page(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    signed = site.send("GET", "/login/nothing").text  # a real failure page links its signed form
    token = signed.split("/error?e=")[1].split('"')[0] if "/error?e=" in signed else "x"
    query = parameters({"e": value_or_fuzz(token, token[:-3]), "lang": value_or_fuzz("sv", "en")})
    return probe(methods("GET"), "/error", query, live=live)


def provider_get(path: str, **fields: Callable[[Live], st.SearchStrategy[str]]):
    def probes(site: Site, live: Live) -> st.SearchStrategy[Probe]:
        query = parameters(
            {
                "login": value_or_fuzz(live.login_id or "x"),
                **{name: make(live) for name, make in fields.items()},
            }
        )
        return probe(methods("GET"), path, query, live=live)

    return probes


def provider_post(path: str, **fields: Callable[[Live], st.SearchStrategy[str]]):
    def probes(site: Site, live: Live) -> st.SearchStrategy[Probe]:
        form = login_form(live, **{name: make(live) for name, make in fields.items()})
        return probe(methods("POST"), path, body=bodies(form), live=live)

    return probes


def identity_numbers(live: Live) -> st.SearchStrategy[str]:
    return value_or_fuzz(TEST_PERSON, "19990807-2391", "990807+2391", "199908072390", "٣" * 12)


def flags(live: Live) -> st.SearchStrategy[str]:
    return st.sampled_from(["", "1", "yes"])


# -- SAML -----------------------------------------------------------------------------------------


def saml_response(live: Live) -> st.SearchStrategy[str]:
    """The IdP's real answer, bent at one byte, cut short, or replaced with fuzz."""
    real = live.extra.get("SAMLResponse", "")
    xml = base64.b64decode(real) if real else b"<samlp:Response/>"

    def bent(position: int, byte: int) -> str:
        data = bytearray(xml)
        data[position % len(data)] = byte
        return base64.b64encode(bytes(data)).decode()

    return st.one_of(
        st.just(real),
        st.builds(bent, st.integers(min_value=0), st.integers(0, 255)),
        st.integers(0, len(xml)).map(lambda n: base64.b64encode(xml[:n]).decode()),
        st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
        json_values().map(lambda v: base64.b64encode(json.dumps(v).encode()).decode()),
        st.integers(1, 20_000).map(lambda n: base64.b64encode(b"<a>" * n + b"</a>" * n).decode()),
        fuzz_text(),
    )


def saml_acs(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    form = parameters(
        {"SAMLResponse": saml_response(live), "RelayState": value_or_fuzz(live.relay_state or "x")}
    )
    return probe(methods("POST"), "/providers/sc/acs", body=bodies(form), live=live)


def deflated(text: str) -> str:
    compressor = zlib.compressobj(wbits=-15)
    return base64.b64encode(compressor.compress(text.encode()) + compressor.flush()).decode()


def saml_messages(site: Site) -> st.SearchStrategy[str]:
    idp = site.idps[0]
    request = idp.logout_message("LogoutRequest")
    xml = etree.tostring(request).decode()
    return st.one_of(
        st.just(deflated(xml)),
        st.just(base64.b64encode(xml.encode()).decode()),
        st.builds(
            lambda a, b: deflated(xml[:a] + b + xml[a:]), st.integers(0, len(xml)), fuzz_text(8)
        ),
        st.binary(max_size=100).map(lambda b: base64.b64encode(b).decode()),
        st.binary(max_size=100).map(lambda b: deflated(b.decode("latin-1"))),
        fuzz_text(),
    )


def saml_slo(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    signed = site.idps[0].idp_initiated_logout_url().split("?", 1)[1]
    names = st.sampled_from(["SAMLRequest", "SAMLResponse"])
    fields = parameters(
        {
            "RelayState": fuzz_text(),
            "SigAlg": value_or_fuzz(
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            ),
            "Signature": value_or_fuzz(base64.b64encode(b"x" * 256).decode()),
        }
    )
    built = st.builds(lambda n, m, rest: [(n, m), *rest], names, saml_messages(site), fields)
    as_sent = st.just(signed).map(lambda q: [tuple(p.split("=", 1)) for p in q.split("&")])
    query = st.one_of(built, as_sent.map(lambda ps: [(k, unquote(v)) for k, v in ps]))
    return st.one_of(
        probe(st.just("GET"), "/providers/sc/slo", query, live=live),
        probe(methods("POST"), "/providers/sc/slo", body=bodies(built), live=live),
    )


def idp_choice(live: Live) -> st.SearchStrategy[str]:
    return value_or_fuzz("https://idp-a.test.example/idp", "https://idp-b.test.example/idp")


# -- upstream OIDC ---------------------------------------------------------------------------------


def oidc_callback(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    query = parameters(
        {
            "state": value_or_fuzz(live.state or "x"),
            "code": value_or_fuzz(live.extra.get("code", "c")),
            "iss": value_or_fuzz(site.upstream.base_url),
            "error": value_or_fuzz("access_denied", "login_required"),
            "error_description": fuzz_text(),
        },
        ("session_state",),
    )
    return probe(methods("GET"), "/providers/freja/callback", query, live=live)


# -- the bundled BankID simulator -----------------------------------------------------------


def simulator_bodies(site: Site) -> st.SearchStrategy[Body]:
    start = {
        "endUserIp": "127.0.0.1",
        "userVisibleData": base64.b64encode(b"Hej").decode(),
        "requirement": {"certificatePolicies": ["1.2.3.4.5"], "personalNumber": TEST_PERSON},
        "returnUrl": "http://127.0.0.1/r",
        "web": {"referringDomain": "127.0.0.1", "deviceIdentifier": "d"},
        "personalNumber": TEST_PERSON,
        "callInitiator": "user",
        "orderRef": "00000000-0000-0000-0000-000000000000",
    }
    keys = st.sampled_from(
        [*sorted(start), "userNonVisibleData", "userVisibleDataFormat", "app", "returnRisk", "x"]
    )

    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, object]:
        chosen = draw(st.lists(keys, unique=True, max_size=6))
        return {
            k: draw(st.one_of(st.just(start.get(k)), json_values(6), odd_digits())) for k in chosen
        }

    as_json = st.one_of(
        objects().map(json.dumps), json_values().map(json.dumps), deep_values(100_000)
    )
    return st.one_of(
        as_json.map(lambda text: Body(text.encode("utf-8", "surrogatepass"), "application/json")),
        bodies(st.just([])),
        st.binary(max_size=100).map(lambda b: Body(b, "application/json")),
    )


def simulator_api(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    paths = st.sampled_from(["auth", "sign", "phone/auth", "phone/sign", "collect", "cancel"])
    path = st.one_of(
        paths,
        paths,
        fuzz_text(10).filter(lambda p: p not in (".", "..")).map(lambda p: quote(p, safe="")),
    )
    return probe(
        methods("POST"),
        path.map(lambda p: f"{SIMULATOR}/rp/v6.0/{p}"),
        body=simulator_bodies(site),
        live=live,
    )


def qr_codes(live: Live) -> st.SearchStrategy[str]:
    token = live.extra.get("qr_start_token", "t")
    return st.one_of(
        st.builds(
            lambda t, s, c: f"bankid.{t}.{s}.{c}",
            value_or_fuzz(token),
            st.one_of(odd_digits(), st.integers(0, 10**10).map(str)),
            fuzz_text(64),
        ),
        fuzz_text(),
    )


def simulator_phone(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    query = parameters({"qr": qr_codes(live), "autostarttoken": fuzz_text()})
    return probe(methods("GET"), f"{SIMULATOR}/phone", query, live=live)


def simulator_phone_post(suffix: str) -> Callable[[Site, Live], st.SearchStrategy[Probe]]:
    def probes(site: Site, live: Live) -> st.SearchStrategy[Probe]:
        form = parameters(
            {
                "orderRef": value_or_fuzz(live.extra.get("order_ref", "x")),
                "personal_number": value_or_fuzz(TEST_PERSON, "196408233234"),
            }
        )
        return probe(methods("POST"), f"{SIMULATOR}/phone/{suffix}", body=bodies(form), live=live)

    return probes


# -- the EU wallet (OpenID4VP 1.0 as HAIP 1.0 profiles it) ----------------------------------

WALLET = "/providers/wallet"
# A key no request was made with: a JWE to it has the right shape and never decrypts.
STRANGER_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="stranger").export_public()
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Built once: a recursive strategy costs more to build than to draw from.
ANY_JSON, JSON_2, JSON_4, JSON_6, JSON_8 = (json_values(n) for n in (20, 2, 4, 6, 8))


def wallet_values(live: Live, name: str) -> st.SearchStrategy[str]:
    """A live value of either request (`same_state`, `cross_id`, ...), or fuzz."""
    found = [
        live.extra[f"{flow}_{name}"] for flow in WALLET_FLOWS if f"{flow}_{name}" in live.extra
    ]
    return value_or_fuzz(*found or ["x"])


def wallet_path(live: Live, route: str) -> st.SearchStrategy[str]:
    ids = wallet_values(live, "id").filter(lambda i: i not in (".", ".."))
    return ids.map(lambda i: f"{WALLET}/{route}/{quote(i or '-', safe='')}")


def wallet_request_endpoint(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    """The request URI (OpenID4VP §5.10): GET, or POST with `wallet_nonce` and
    `wallet_metadata` (§5.10.1), each right, odd or huge."""
    form = parameters(
        {
            "wallet_nonce": value_or_fuzz("wn", "n" * 256, "n" * 257, "n\x7f"),
            "wallet_metadata": st.one_of(JSON_8.map(json.dumps), deep_values(100_000), fuzz_text()),
        }
    )
    path = wallet_path(live, "request")
    return st.one_of(
        probe(methods("POST"), path, body=st.one_of(form_body(form), bodies(form)), live=live),
        probe(methods("GET"), path, form, live=live),
    )


def wallet_presentations(live: Live, flow: str) -> st.SearchStrategy[str]:
    """The live SD-JWT+KB of a trusted PID, bent at one character, cut short, without a
    disclosure or its KB-JWT, with its issuer's header replaced; or fuzz."""
    real = live.extra.get(f"{flow}_presentation", "e30.e30.c2ln~WyJ4Il0~e30.e30.c2ln")
    parts = real.split("~")

    def bent(position: int, character: str) -> str:
        at = position % len(real)
        return real[:at] + character + real[at + 1 :]

    def without(index: int) -> str:
        return "~".join(parts[:index] + parts[index + 1 :])

    def reheaded(header: object) -> str:
        return b64_json(header) + real[real.index(".") :]

    return st.one_of(
        *[st.just(real)] * 4,
        st.builds(bent, st.integers(min_value=0), st.sampled_from("A_-~.=")),
        st.integers(0, len(real)).map(lambda n: real[:n]),
        st.integers(0, len(parts) - 1).map(without),
        st.just("~".join(parts[:-1]) + "~"),
        JSON_4.map(reheaded),
        st.lists(fuzz_text(30), max_size=4).map("~".join),
        fuzz_text(),
    )


def vp_tokens(live: Live, flow: str) -> st.SearchStrategy[Any]:
    """OpenID4VP §8.1's `vp_token` (an object of our query's id to one presentation) and the
    shapes a wallet must not send."""
    shown = wallet_presentations(live, flow)
    return st.one_of(
        *[shown.map(lambda p: {"pid": [p]})] * 4,
        shown.map(lambda p: {"pid": p}),
        st.lists(shown, max_size=3).map(lambda ps: {"pid": ps}),
        st.dictionaries(value_or_fuzz("pid", "mdl"), st.lists(shown, max_size=2), max_size=3),
        shown,
        JSON_8,
    )


def own_states(live: Live, flow: str) -> st.SearchStrategy[Any]:
    """Mostly the state of the request answered; the other request's, fuzz or any JSON."""
    own = st.just(live.extra.get(f"{flow}_state", "s"))
    return st.one_of(own, own, wallet_values(live, "state"), JSON_2)


def wallet_payloads(
    live: Live, flow: str, tokens: st.SearchStrategy[Any]
) -> st.SearchStrategy[bytes]:
    """What the JWE holds: the answer with each member right or wrong, an error, any JSON,
    nesting to the depth the parser refuses, huge values, or no JSON at all."""
    states = own_states(live, flow)
    answer = st.fixed_dictionaries(
        {"vp_token": tokens, "state": states},
        optional={"presentation_submission": JSON_4, "iss": fuzz_text()},
    )
    other = st.fixed_dictionaries(
        {},
        optional={
            "vp_token": tokens,
            "state": states,
            "error": st.one_of(value_or_fuzz("access_denied", "invalid_request"), JSON_2),
            "error_description": fuzz_text(),
        },
    )
    state = live.extra.get(f"{flow}_state", "s")
    # Within the body limit once encrypted and form-encoded, and beyond it.
    huge = st.sampled_from([10_000, 600_000]).map(
        lambda n: {"vp_token": {"pid": ["x" * n]}, "state": state}
    )
    shaped = st.one_of(answer, answer, answer, other, huge, ANY_JSON)
    texts = st.one_of(deep_values(20_000), fuzz_text())
    return st.one_of(
        shaped.map(lambda v: json.dumps(v).encode()),
        texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


def jwe_headers(live: Live, flow: str) -> st.SearchStrategy[dict[str, Any]]:
    """HAIP §5: ECDH-ES, A128GCM or A256GCM, the request key's kid; or what jwcrypto also makes
    (another enc, compression, odd members, no kid)."""
    kid = json.loads(live.extra.get(f"{flow}_key", STRANGER_KEY)).get("kid", "")
    required = {
        "alg": st.just("ECDH-ES"),
        "enc": st.sampled_from(["A128GCM", "A256GCM", "A256GCM", "A128CBC-HS256"]),
        "kid": st.one_of(st.just(kid), st.just(kid), fuzz_text(20)),
    }
    odd = {"zip": st.just("DEF"), "typ": value_or_fuzz("oauth-authz-res+jwt"), "cty": fuzz_text()}
    return st.one_of(
        st.fixed_dictionaries(required),
        st.fixed_dictionaries(required),
        st.fixed_dictionaries(required, optional=odd),
        st.fixed_dictionaries(  # jwcrypto makes none without alg and enc; the kid may go
            {"alg": required["alg"], "enc": required["enc"]},
            optional={"kid": required["kid"], "zip": st.just("DEF")},
        ),
    )


def bend_jwe(token: str, how: str, position: int, replacement: str) -> str:
    """One compact JWE bent: a part replaced, cut short or with one character changed, or a
    part too many or too few."""
    parts = token.split(".")
    index = position % len(parts)
    if how == "as made":
        return token
    if how == "replace":
        parts[index] = replacement
    elif how == "cut":
        parts[index] = parts[index][: position % (len(parts[index]) + 1)]
    elif how == "flip" and parts[index]:
        at = position % len(parts[index])
        swapped = B64URL[(B64URL.find(parts[index][at]) + 1) % len(B64URL)]
        parts[index] = parts[index][:at] + swapped + parts[index][at + 1 :]
    elif how == "more":
        parts.append(replacement)
    elif how == "fewer":
        del parts[index]
    return ".".join(parts)


def wallet_jwes(live: Live, flow: str, tokens: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """A real JWE (jwcrypto) to the request's key, another request's or a stranger's, as made
    or bent; or a JWE-shaped fuzz with any protected header."""
    own = live.extra.get(f"{flow}_key", STRANGER_KEY)
    others = [live.extra.get(f"{other}_key", STRANGER_KEY) for other in WALLET_FLOWS]
    keys = st.one_of(st.just(own), st.just(own), st.sampled_from([*others, STRANGER_KEY]))
    headers = jwe_headers(live, flow)
    made = st.builds(wallet_jwe, keys, wallet_payloads(live, flow, tokens), headers)
    replacements = st.one_of(JSON_6.map(b64_json), fuzz_text(), st.just(""), st.just("A" * 2800))
    hows = st.sampled_from(["as made"] * 5 + ["replace", "cut", "flip", "more", "fewer"])
    bent = st.builds(bend_jwe, made, hows, st.integers(min_value=0), replacements)
    shaped = st.builds(
        lambda header, rest: f"{b64_json(header)}.{rest}",
        st.one_of(JSON_6, headers),
        st.lists(fuzz_text(20), min_size=4, max_size=4).map(".".join),
    )
    return st.one_of(bent, bent, bent, shaped, fuzz_text())


def wallet_response_endpoint(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    """The response URI (OpenID4VP §8.2, `direct_post.jwt`): `response` (a JWE, bent in every
    way), an `error` with a `state` (§8.5), an unencrypted `vp_token`, or all at once."""

    def by_flow(flow: str) -> st.SearchStrategy[Probe]:
        states = own_states(live, flow).map(str)
        error = value_or_fuzz("access_denied", "invalid_request", "vp_formats_not_supported")
        tokens = vp_tokens(live, flow)
        unencrypted = tokens.map(json.dumps)
        jwes = wallet_jwes(live, flow, tokens)
        forms = st.one_of(
            parameters({"response": jwes}, ("state",)),
            parameters({"response": jwes}, ("state",)),
            parameters({"error": error, "error_description": fuzz_text(), "state": states}),
            parameters({"vp_token": unencrypted, "state": states}),
            parameters(
                {
                    "response": jwes,
                    "error": error,
                    "vp_token": unencrypted,
                    "state": states,
                }
            ),
        )
        ids = value_or_fuzz(live.extra.get(f"{flow}_id", "x")).filter(
            lambda i: i not in (".", "..")
        )
        path = ids.map(lambda i: f"{WALLET}/response/{quote(i or '-', safe='')}")
        body = st.one_of(form_body(forms), form_body(forms), bodies(forms))
        return probe(methods("POST"), path, body=body, live=live)

    return st.sampled_from(WALLET_FLOWS).flatmap(by_flow)


def response_codes(live: Live) -> st.SearchStrategy[str]:
    return value_or_fuzz(live.extra.get("response_code", "x"))


# -- the bundled wallet simulator -----------------------------------------------------------


def wallet_links(site: Site, live: Live) -> st.SearchStrategy[str]:
    """The wallet page's `openid4vp://` links as they are, or with each parameter right or
    fuzzed; request URIs only on this loopback site (the simulator fetches them)."""
    links = [live.extra[f"{f}_link"] for f in WALLET_FLOWS if f"{f}_link" in live.extra]
    client_ids = [live.extra[k] for k in ("same_client_id", "cross_client_id") if k in live.extra]
    request_uris = wallet_values(live, "id").map(
        lambda i: f"{site.url}{WALLET}/request/{quote(i, safe='')}"
    )
    query = parameters(
        {
            "client_id": value_or_fuzz(*client_ids or ["x509_hash:x"]),
            "request_uri": st.one_of(request_uris, request_uris, fuzz_text()),
            "request_uri_method": value_or_fuzz("post", "get"),
        },
        ("request", "response_type"),
    )
    built = st.builds(
        lambda scheme, pairs: f"{scheme}?{encode_form(pairs).decode()}",
        value_or_fuzz("openid4vp://", "haip-vp://"),
        query,
    )
    return st.one_of(st.sampled_from(links or ["openid4vp://"]), built)


def wallet_simulator_page(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    query = parameters({"request": wallet_links(site, live)})
    return probe(methods("GET"), f"{WALLET_SIMULATOR_PATH}/", query, live=live)


def wallet_simulator_forms(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    """The simulator's consent forms, Share and Decline (one endpoint: each probe of these
    costs a wallet login opened in the simulator): the pending request, the test person, the
    twist."""
    form = parameters(
        {
            "pending": value_or_fuzz(live.extra.get("pending", "x")),
            "person": value_or_fuzz(*PEOPLE),
            "twist": value_or_fuzz("", *Twist.__members__),
        }
    )
    path = st.sampled_from(["share", "decline"]).map(lambda r: f"{WALLET_SIMULATOR_PATH}/{r}")
    body = st.one_of(form_body(form), form_body(form), bodies(form))
    return probe(methods("POST"), path, body=body, live=live)


def wallet_status_lists(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    numbers = st.one_of(
        st.integers(0, 3).map(str),
        odd_digits(),
        fuzz_text(10).filter(lambda n: n not in (".", "..")),
    )
    path = numbers.map(lambda n: f"{WALLET_SIMULATOR_PATH}/status-lists/{quote(n or '-', safe='')}")
    return probe(methods("GET"), path, parameters({}), live=live)


def anywhere(site: Site, live: Live) -> st.SearchStrategy[Probe]:
    known = [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/demo/",
        "/demo/login",
        "/demo/callback",
        "/demo/logout",
        "/demo/backchannel-logout",
        "/demo/sign",
        "/demo/sign/callback",
        "/demo/contact-centre",
        "/demo/contact-centre/status",
        f"{SIMULATOR}/phone-calls",
        f"{SIMULATOR}/phone-calls/open",
        f"{SIMULATOR}/phone-calls/answer",
        f"{SIMULATOR}/phone-calls/identify",
        f"{SIMULATOR}/phone-calls/cancel",
        f"{SIMULATOR}/member-banks-root.pem",
        "/static/portvakt.css",
        "/branding/basic/brand.css",
        "/branding/basic/logo",
        "/providers/freja/jwks",
        "/providers/sc/metadata",
        "/providers/sc/discovered",
        f"{WALLET}/wait",
        f"{WALLET}/status",
        f"{WALLET}/done",
        f"{WALLET}/retry",
        f"{WALLET}/cancel",
        f"{WALLET}/request/x",
        f"{WALLET}/response/x",
        f"{WALLET_SIMULATOR_PATH}/",
        f"{WALLET_SIMULATOR_PATH}/share",
        f"{WALLET_SIMULATOR_PATH}/decline",
        f"{WALLET_SIMULATOR_PATH}/status-lists/0",
        "/static/wallet.js",
        "/static/../gateway/app.py",
    ]
    paths = st.one_of(st.sampled_from(known), fuzz_text(30).map(lambda p: "/" + quote(p, safe="/")))
    query = parameters(
        {
            "code": fuzz_text(),
            "state": fuzz_text(),
            "entityID": idp_choice(live),
            "login": fuzz_text(),
            # the demo's contact centre and the simulator's phone-call page
            "auto": fuzz_text(),
            "orderRef": fuzz_text(),
            "answer": fuzz_text(),
            # the wallet's routes and its simulator
            "request": fuzz_text(),
            "response_code": fuzz_text(),
            "pending": fuzz_text(),
        }
    )
    return probe(methods("GET", "POST"), paths, query, st.none() | bodies(query), live)


def any_login(site: Site) -> Live:
    return site.chooser()


ENDPOINTS = (
    Endpoint("authorize GET", authorize_get, checks.authorize, signed_in),
    Endpoint("authorize POST", authorize_post, checks.authorize, signed_in),
    Endpoint("token", token_endpoint, checks.token, with_code),
    Endpoint("par", pushed_request_endpoint, pushed_request_answer),
    Endpoint("bc-authorize", backchannel_endpoint(CLIENT_IDS, SECRETS), backchannel_answer),
    Endpoint("token ciba", ciba_poll_endpoint(CLIENT_IDS, SECRETS), ciba_poll_answer),
    Endpoint("userinfo", userinfo_endpoint, checks.userinfo),
    Endpoint("logout GET", logout_get, checks.page, signed_in),
    Endpoint("logout POST", logout_post, checks.page, signed_in),
    Endpoint("discovery", fixed_document("/.well-known/openid-configuration"), checks.public_json),
    Endpoint("jwks", fixed_document("/jwks"), checks.public_json),
    Endpoint("login GET", login_page_get, checks.page, Site.chooser),
    Endpoint("login POST", login_page_post, checks.page, Site.chooser),
    Endpoint("login resume", login_suffix("/resume"), checks.page, Site.chooser),
    Endpoint("login cancel", login_suffix("/cancel"), checks.page, Site.chooser),
    Endpoint("error page", error_page, checks.page),
    Endpoint(
        "sandbox login GET", provider_get("/providers/sandbox/login"), checks.page, Site.at_sandbox
    ),
    Endpoint(
        "sandbox login POST",
        provider_post("/providers/sandbox/login", pnr=identity_numbers, cancel=flags),
        checks.page,
        Site.at_sandbox,
    ),
    Endpoint("sandbox done", provider_get("/providers/sandbox/done"), checks.page, Site.at_sandbox),
    Endpoint(
        "sandbox sign GET", provider_get("/providers/sandbox/sign"), checks.page, Site.at_sandbox
    ),
    Endpoint(
        "sandbox sign POST",
        provider_post("/providers/sandbox/sign", sign=flags, cancel=flags),
        checks.page,
        Site.at_sandbox,
    ),
    Endpoint("saml acs", saml_acs, checks.page, Site.at_saml_acs),
    Endpoint("saml slo", saml_slo, checks.page),
    Endpoint("saml idp GET", provider_get("/providers/sc/idp"), checks.page, Site.at_saml_idp_page),
    Endpoint(
        "saml idp POST",
        provider_post("/providers/sc/idp", idp=idp_choice, cancel=flags),
        checks.page,
        Site.at_saml_idp_page,
    ),
    Endpoint(
        "saml discovered",
        provider_get("/providers/sc/discovered", entityID=idp_choice),
        checks.page,
        Site.at_saml_idp_page,
    ),
    Endpoint("saml metadata", fixed_document("/providers/sc/metadata"), checks.any_answer),
    Endpoint("oidc callback", oidc_callback, checks.page, Site.at_upstream_oidc),
    Endpoint("bankid wait", provider_get("/providers/bankid/wait"), checks.page, Site.at_bankid),
    Endpoint(
        "bankid status",
        provider_get("/providers/bankid/status"),
        checks.page_or_json,
        Site.at_bankid,
    ),
    Endpoint("bankid open", provider_get("/providers/bankid/open"), checks.page, Site.at_bankid),
    Endpoint(
        "bankid return",
        provider_get("/providers/bankid/return", nonce=lambda _live: fuzz_text()),
        checks.page,
        Site.at_bankid,
    ),
    Endpoint("bankid retry", provider_post("/providers/bankid/retry"), checks.page, Site.at_bankid),
    Endpoint(
        "bankid cancel",
        provider_post("/providers/bankid/cancel", other=flags),
        checks.page,
        Site.at_bankid,
    ),
    Endpoint("bankid done", provider_get("/providers/bankid/done"), checks.page, Site.at_bankid),
    Endpoint("simulator api", simulator_api, checks.bankid_api),
    Endpoint("simulator phone", simulator_phone, checks.simulator_page, Site.at_bankid),
    Endpoint(
        "simulator approve",
        simulator_phone_post("approve"),
        checks.simulator_page,
        Site.at_bankid_app,
    ),
    Endpoint(
        "simulator cancel",
        simulator_phone_post("cancel"),
        checks.simulator_page,
        Site.at_bankid_app,
    ),
    Endpoint("wallet wait", provider_get(f"{WALLET}/wait"), checks.page, Site.at_wallet),
    Endpoint(
        "wallet status", provider_get(f"{WALLET}/status"), checks.page_or_json, Site.at_wallet
    ),
    Endpoint(
        "wallet done",
        provider_get(f"{WALLET}/done", response_code=response_codes),
        checks.page,
        Site.at_wallet_answered,
    ),
    Endpoint("wallet retry", provider_post(f"{WALLET}/retry"), checks.page, Site.at_wallet),
    Endpoint(
        "wallet cancel",
        provider_post(f"{WALLET}/cancel", other=flags, cancel=flags),
        checks.page,
        Site.at_wallet,
    ),
    Endpoint("wallet request", wallet_request_endpoint, checks.wallet_request, Site.at_wallet),
    Endpoint("wallet response", wallet_response_endpoint, checks.wallet_response, Site.at_wallet),
    Endpoint("wallet simulator page", wallet_simulator_page, checks.simulator_page, Site.at_wallet),
    Endpoint(
        "wallet simulator forms",
        wallet_simulator_forms,
        checks.simulator_page,
        Site.at_wallet_simulator,
    ),
    Endpoint("wallet status lists", wallet_status_lists, checks.status_list),
    Endpoint("anywhere else", anywhere, checks.any_answer, any_login),
)
