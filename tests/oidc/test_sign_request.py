"""The Signature Extension 1.1 at the OIDC front (issue 21): `https://id.oidc.se/param/signRequest`
signed by the e-service with PyJWT (as a JWT parameter, a member of a request object, or pushed
to /par), every §5.1 check with its error code, and a signature and an approval made by the
sandbox end to end over HTTP, the ID token verified with PyJWT against our JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import jwt as pyjwt
import pytest

from gateway.oidc.discovery import provider_metadata
from gateway.settings import SettingsError, settings_from_data
from tests.doubles.pigeon import PIGEON_TYPE, pigeons_registered
from tests.harness import (
    INFO_SCOPE,
    NUMBER_SCOPE,
    REDIRECT_URI,
    TEST_PERSON,
    Browser,
    LiveGateway,
    LoginResult,
    code_form,
    hidden_field,
    query_of,
    running_gateway,
)
from tests.oidc.test_request_object import (
    JWT_BEARER,
    PNR_CLAIM,
    STRANGER_KEY,
    claims,
    client,
    signed,
    unsigned,
)

SIGN = "https://id.oidc.se/scope/sign"
APPROVAL = "https://id.oidc.se/scope/signApproval"
SIGN_REQUEST = "https://id.oidc.se/param/signRequest"
USER_SIGNATURE = "https://id.oidc.se/claim/userSignature"
AUTHN_EVIDENCE = "https://id.oidc.se/claim/authnEvidence"
OTHER_PERSON = "196408233234"
TBS_DATA = base64.b64encode(b"<application id='4711'>a garden shed</application>").decode()
SIGNING_SCOPES = ["openid", NUMBER_SCOPE, INFO_SCOPE, SIGN, APPROVAL]


def text(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


MESSAGE = {
    "message#sv": text("Jag ansöker om bygglov för ett förråd"),
    "message#en": text("I apply for a building permit for a shed"),
    "mime_type": "text/plain",
}

CLIENTS = [
    client("signer", scopes=SIGNING_SCOPES),
    client("approver", scopes=["openid", NUMBER_SCOPE, APPROVAL]),
    client("unsigned-signer", scopes=SIGNING_SCOPES, request_object_signing_alg="none"),
    client("pigeon-only", scopes=SIGNING_SCOPES, providers=["loft"]),
    client("jar"),
]


@pytest.fixture(scope="module")
def live(store_url: str | None) -> Iterator[LiveGateway]:
    providers = {"sandbox": {"type": "sandbox"}, "loft": {"type": PIGEON_TYPE}}
    with (
        pigeons_registered(),
        running_gateway(store_url, clients=CLIENTS, providers=providers) as gateway,
    ):
        yield gateway


@pytest.fixture
def citizen(live: LiveGateway) -> Iterator[Browser]:
    browser = Browser(live)
    yield browser
    browser.close()


def sign_request(tbs_data: str | None = TBS_DATA, **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"sign_message": MESSAGE, **fields}
    if tbs_data is not None:
        made["tbs_data"] = tbs_data
    return made


def sign_jwt(
    live: LiveGateway, request: dict[str, Any], client_id: str = "signer", **claims: Any
) -> str:
    """The JWT form (digest §2.3): the fields as top-level claims, iss and aud as for JAR."""
    now = int(time.time())
    made = {"iss": client_id, "aud": live.url, "iat": now, "exp": now + 300, **request}
    made.update(claims)
    return signed({k: v for k, v in made.items() if v is not None})


def sign_params(
    live: LiveGateway, client_id: str = "signer", scope: str = f"openid {NUMBER_SCOPE} {SIGN}",
    **extra: str,
) -> dict[str, str]:  # fmt: skip
    """A query that signs with the JWT form: the whole request in the query."""
    params = {
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": scope,
        "state": "query-state",
        "nonce": "query-nonce",
        "prompt": "login consent",
        SIGN_REQUEST: sign_jwt(live, sign_request(), client_id),
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


def object_claims(
    live: LiveGateway, client_id: str = "signer", scope: str = f"openid {NUMBER_SCOPE} {SIGN}",
    **members: Any,
) -> dict[str, Any]:  # fmt: skip
    """A request object carrying the signRequest as a JSON member."""
    made = {"scope": scope, "prompt": "login consent", SIGN_REQUEST: sign_request()}
    made.update(members)
    return claims(live, client_id, **made)


def error_of(response: httpx2.Response) -> dict[str, str]:
    """The e-service's answer: an error redirected to its redirect_uri, never a page or 5xx."""
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    answer = query_of(location)
    assert "code" not in answer
    return answer


def sign_page(
    citizen: Browser, page: httpx2.Response, number: str = TEST_PERSON
) -> httpx2.Response:
    picked = citizen.submit_sandbox(page, number)
    assert picked.status_code == 303, picked.text
    assert "/providers/sandbox/sign?" in picked.headers["location"]
    shown = citizen.http.get(picked.headers["location"])
    assert shown.status_code == 200, shown.text
    return shown


def press(citizen: Browser, shown: httpx2.Response, button: str = "sign") -> httpx2.Response:
    form = {
        "login": hidden_field(shown.text, "login"),
        "csrf": hidden_field(shown.text, "csrf"),
        button: "1",
    }
    return citizen.http.post("/providers/sandbox/sign", data=form)


def signed_through_sandbox(citizen: Browser, page: httpx2.Response) -> dict[str, str]:
    assert page.status_code == 200, page.text
    pressed = press(citizen, sign_page(citizen, page))
    assert pressed.status_code == 303, pressed.text
    return citizen.follow_to_client(pressed)


def verified_id_token(live: LiveGateway, callback: dict[str, str], client_id: str) -> dict:
    """The token request with a private_key_jwt assertion; the ID token verified by PyJWT."""
    now = int(time.time())
    assertion = signed(
        {"iss": client_id, "sub": client_id, "aud": f"{live.url}/token",
         "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    )  # fmt: skip
    form = {**code_form(LoginResult(callback, None)), "client_assertion_type": JWT_BEARER}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        response = http.post("/token", data={**form, "client_assertion": assertion})
        assert response.status_code == 200, response.text
        keys = pyjwt.PyJWKSet.from_dict(http.get("/jwks").json())
    token = response.json()["id_token"]
    key = keys[pyjwt.get_unverified_header(token)["kid"]]
    return pyjwt.decode(token, key.key, algorithms=["RS256"], audience=client_id, issuer=live.url)


def test_the_sandbox_signs_and_the_id_token_carries_its_test_signature(
    live: LiveGateway, citizen: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """§5.2: userSignature in the ID token, auth_time the signing time; the sandbox's test
    signature in the documented format (docs/integrating.md)."""
    caplog.set_level(logging.INFO)
    before = int(time.time())
    page = citizen.authorize(**sign_params(live, ui_locales="en"))
    id_token = verified_id_token(live, signed_through_sandbox(citizen, page), "signer")
    statement = json.loads(base64.b64decode(id_token[USER_SIGNATURE], validate=True))
    assert statement["format"] == "portvakt-sandbox-test-signature/1"
    assert statement["test"] is True and "no legal value" in statement["warning"]
    assert statement["signer"] == TEST_PERSON == id_token[PNR_CLAIM]
    assert statement["client_id"] == "signer"
    assert statement["tbs_data_sha256"] == hashlib.sha256(TBS_DATA.encode()).hexdigest()
    shown = hashlib.sha256(b"I apply for a building permit for a shed").hexdigest()
    assert statement["sign_message_sha256"] == shown
    assert before <= id_token["auth_time"] == statement["signed_at"] <= int(time.time())
    assert AUTHN_EVIDENCE not in id_token  # the sandbox has no evidence to give
    assert "sid" not in id_token  # no session was made
    ours = [record for record in caplog.records if record.name.startswith("portvakt")]
    logged = "\n".join(f"{record.getMessage()} {vars(record)}" for record in ours)
    assert "signed" in logged and statement["tbs_data_sha256"] in logged
    assert id_token[USER_SIGNATURE] not in logged and TBS_DATA not in logged


def test_an_approval_in_a_signed_request_object_carries_no_signature(
    live: LiveGateway, citizen: Browser
) -> None:
    made = object_claims(
        live, "approver", scope=f"openid {NUMBER_SCOPE} {APPROVAL}", ui_locales="en",
        **{SIGN_REQUEST: sign_request(tbs_data=None)},
    )  # fmt: skip
    page = citizen.http.post("/authorize", data={"client_id": "approver", "request": signed(made)})
    assert page.status_code == 200, page.text
    shown = sign_page(citizen, page)
    assert "approving a signature" in shown.text
    pressed = press(citizen, shown)
    id_token = verified_id_token(live, citizen.follow_to_client(pressed), "approver")
    assert USER_SIGNATURE not in id_token
    assert id_token[PNR_CLAIM] == TEST_PERSON


def test_both_scopes_make_a_real_signature(live: LiveGateway, citizen: Browser) -> None:
    """§5.1: both scopes present, the OP performs a signing."""
    params = sign_params(live, scope=f"openid {SIGN} {APPROVAL}")
    id_token = verified_id_token(
        live, signed_through_sandbox(citizen, citizen.authorize(**params)), "signer"
    )
    assert USER_SIGNATURE in id_token


def test_a_pushed_request_carries_the_sign_request(live: LiveGateway, citizen: Browser) -> None:
    """RFC 9126 with a signed request object whose member is the signRequest."""
    now = int(time.time())
    assertion = signed(
        {"iss": "signer", "sub": "signer", "aud": live.url,
         "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    )  # fmt: skip
    form = {
        "client_id": "signer",
        "request": signed(object_claims(live)),
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        pushed = http.post("/par", data=form)
    assert pushed.status_code == 201, pushed.text
    page = citizen.authorize(client_id="signer", request_uri=pushed.json()["request_uri"])
    id_token = verified_id_token(live, signed_through_sandbox(citizen, page), "signer")
    assert USER_SIGNATURE in id_token


def test_a_pushed_plain_sign_request_is_refused(live: LiveGateway) -> None:
    """A signRequest pushed as plain JSON is no more signed for having been pushed."""
    now = int(time.time())
    assertion = signed(
        {"iss": "signer", "sub": "signer", "aud": live.url,
         "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    )  # fmt: skip
    form = {
        **sign_params(live, **{SIGN_REQUEST: json.dumps(sign_request())}),
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        pushed = http.post("/par", data=form)
    assert pushed.status_code == 400, pushed.text
    assert pushed.json()["error"] == "invalid_request"


def test_a_sign_flow_neither_uses_nor_makes_a_session(live: LiveGateway, citizen: Browser) -> None:
    """§5.1 (SHOULD NOT keep it for SSO), SC.OIDC 1.1 §2.4 (MUST NOT)."""
    sandbox = {"https://id.oidc.se/param/authnProvider": "sandbox"}
    citizen.login("signer", **sandbox)  # a session exists in this browser now
    assert "pv_session" in citizen.http.cookies
    session = citizen.http.cookies["pv_session"]
    page = citizen.authorize(**sign_params(live))
    assert page.status_code == 200, page.text  # the sandbox asks again: no silent answer
    pressed = press(citizen, sign_page(citizen, page))
    assert pressed.status_code == 303
    finished = citizen.http.get(pressed.headers["location"])
    assert "pv_session" not in finished.headers.get("set-cookie", "")
    assert citizen.http.cookies["pv_session"] == session


def test_a_sign_flow_leaves_no_session_behind(live: LiveGateway, citizen: Browser) -> None:
    signed_through_sandbox(citizen, citizen.authorize(**sign_params(live)))
    assert "pv_session" not in citizen.http.cookies
    silent = citizen.authorize(**citizen.authorize_params("signer", prompt="none"))
    assert error_of(silent)["error"] == "login_required"


def test_the_test_person_page_says_a_signature_follows(live: LiveGateway, citizen: Browser) -> None:
    page = citizen.authorize(**sign_params(live, ui_locales="en"))
    assert "You are going to sign" in page.text
    plain = citizen.authorize(
        **citizen.authorize_params("signer", ui_locales="en", **{AUTHN_PROVIDER: "sandbox"})
    )
    assert plain.status_code == 200 and "You are going to sign" not in plain.text


def test_no_sign_scope_is_advertised_without_a_provider_that_signs() -> None:
    """§5.3: scopes_supported lists only what a configured provider can do."""
    metadata = provider_metadata("https://op.example", [])
    assert not {SIGN, APPROVAL} & set(metadata["scopes_supported"])


def test_the_sign_message_is_shown_as_text_never_as_html(
    live: LiveGateway, citizen: Browser
) -> None:
    markdown = {
        "message": text("**Bygglov** <script>alert(1)</script>"),
        "mime_type": "text/markdown",
    }
    params = sign_params(
        live, ui_locales="en", **{SIGN_REQUEST: sign_jwt(live, sign_request(sign_message=markdown))}
    )
    shown = sign_page(citizen, citizen.authorize(**params))
    assert "**Bygglov** &lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    assert "<script>alert" not in shown.text
    assert "TEST" in shown.text and "You are signing" in shown.text


def test_a_cancelled_signature_answers_access_denied(
    live: LiveGateway, citizen: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    shown = sign_page(citizen, citizen.authorize(**sign_params(live)))
    cancelled = press(citizen, shown, "cancel")
    assert cancelled.status_code == 400, cancelled.text  # the failure page, with the way back
    assert "error=access_denied" in cancelled.text
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sign_failed")]
    assert failed and "kind=sign" in failed[0] and "tbs_data_sha256=" in failed[0]


def test_another_person_than_the_one_named_never_sees_the_message(
    live: LiveGateway, citizen: Browser
) -> None:
    """§5.1: with an essential identity value, the user is proven to match first."""
    named = json.dumps({"id_token": {PNR_CLAIM: {"essential": True, "value": TEST_PERSON}}})
    page = citizen.authorize(**sign_params(live, claims=named))
    login_id = hidden_field(page.text, "login")
    picked = citizen.submit_sandbox(page, OTHER_PERSON)
    assert picked.status_code == 400, picked.text  # the failure page, with the way back
    assert "error=access_denied" in picked.text
    assert "shed" not in picked.text and "förråd" not in picked.text
    later = citizen.http.get("/providers/sandbox/sign", params={"login": login_id})
    assert later.status_code != 200 and "förråd" not in later.text


def signed_by(live: LiveGateway, request: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    return {SIGN_REQUEST: sign_jwt(live, request, **kwargs)}


def with_client(live: LiveGateway, client_id: str) -> dict[str, str]:
    return {"client_id": client_id, **signed_by(live, sign_request(), client_id=client_id)}


def foreign(live: LiveGateway) -> dict[str, str]:
    made = {"iss": "signer", "aud": live.url, **sign_request()}
    return {SIGN_REQUEST: signed(made, key=STRANGER_KEY)}


def alg_none(live: LiveGateway) -> dict[str, str]:
    return {SIGN_REQUEST: unsigned({"iss": "signer", "aud": live.url, **sign_request()})}


AUTHN_PROVIDER = "https://id.oidc.se/param/authnProvider"
Change = Callable[[LiveGateway], dict[str, str]]
# What the e-service did wrong, and the error §5.1 (or the digest's note) gives it.
BAD_REQUESTS: dict[str, tuple[Change, str]] = {
    "no signRequest": (lambda _live: {SIGN_REQUEST: ""}, "invalid_request"),
    "plain JSON in the query": (
        lambda _live: {SIGN_REQUEST: json.dumps(sign_request())},
        "invalid_request",
    ),
    "a bad signature": (foreign, "invalid_request"),
    "an unsigned JWT": (alg_none, "invalid_request"),
    "a JWT for another OP": (
        lambda live: signed_by(live, sign_request(), aud="https://op.example"),
        "invalid_request",
    ),
    "a JWT from another client": (
        lambda live: signed_by(live, sign_request(), iss="jar"),
        "invalid_request",
    ),
    "an expired JWT": (
        lambda live: signed_by(live, sign_request(), exp=int(time.time()) - 600),
        "invalid_request",
    ),
    "not a JWT": (lambda _live: {SIGN_REQUEST: "not-a-jwt"}, "invalid_request"),
    "tbs_data missing for sign": (
        lambda live: signed_by(live, sign_request(tbs_data=None)),
        "invalid_request",
    ),
    "tbs_data with approval only": (
        lambda _live: {"scope": f"openid {APPROVAL}"},
        "invalid_request",
    ),
    "prompt without consent": (lambda _live: {"prompt": "login"}, "invalid_request"),
    "prompt without login": (lambda _live: {"prompt": "consent"}, "invalid_request"),
    "no prompt": (lambda _live: {"prompt": ""}, "invalid_request"),
    "signRequest without a sign scope": (lambda _live: {"scope": "openid"}, "invalid_request"),
    "a client not registered to sign": (
        lambda live: with_client(live, "jar"),
        "unauthorized_client",
    ),
    "a client registered for approval only asks to sign": (
        lambda live: with_client(live, "approver"),
        "unauthorized_client",
    ),
    "oversized tbs_data": (
        lambda live: signed_by(live, sign_request(tbs_data="QUJD" * 3001)),
        "invalid_request",
    ),
    "tbs_data not Base64": (
        lambda live: signed_by(live, sign_request(tbs_data="not base64!")),
        "invalid_request",
    ),
    "an unknown MIME type": (
        lambda live: signed_by(live, sign_request(sign_message={**MESSAGE, "mime_type": "x/y"})),
        "invalid_request",
    ),
    "sign_message missing": (
        lambda live: signed_by(live, {"tbs_data": TBS_DATA}),
        "invalid_request",
    ),
    "sign_message not a userMessage": (
        lambda live: signed_by(live, sign_request(sign_message={"message": "åäö"})),
        "invalid_request",
    ),
    "a preselected provider that cannot sign": (
        lambda _live: {AUTHN_PROVIDER: "loft"},
        "invalid_request",
    ),
    "no provider of the client can sign": (
        lambda live: with_client(live, "pigeon-only"),
        "invalid_request",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_sign_request_gets_its_error(live: LiveGateway, citizen: Browser, case: str) -> None:
    change, error = BAD_REQUESTS[case]
    answer = error_of(citizen.authorize(**sign_params(live, **change(live))))
    assert answer["error"] == error, answer
    assert answer["state"] == "query-state"


def test_a_sign_request_member_of_an_unsigned_object_is_refused(
    live: LiveGateway, citizen: Browser
) -> None:
    """§3.1.2: the whole request object must be signed (alg none is not)."""
    made = object_claims(live, "unsigned-signer")
    answer = error_of(citizen.authorize(client_id="unsigned-signer", request=unsigned(made)))
    assert answer["error"] == "invalid_request"


def test_a_large_sign_request_fits_in_a_posted_request_object(
    live: LiveGateway, citizen: Browser
) -> None:
    """tbs_data up to the documented limit passes the 4096-character parameter limit."""
    made = object_claims(live, **{SIGN_REQUEST: sign_request(tbs_data="QUJD" * 3000)})
    page = citizen.http.post("/authorize", data={"client_id": "signer", "request": signed(made)})
    assert page.status_code == 200, page.text


def test_discovery_advertises_what_the_extension_requires(live: LiveGateway) -> None:
    """§5.3: the sign scopes (the sandbox can do both), their claims, request parameters."""
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert {SIGN, APPROVAL} <= set(metadata["scopes_supported"])
    assert {USER_SIGNATURE, AUTHN_EVIDENCE, "auth_time"} <= set(metadata["claims_supported"])
    for name in ("request_parameter_supported", "request_uri_parameter_supported",
                 "claims_parameter_supported"):  # fmt: skip
        assert metadata[name] is True
    assert "text/plain" in metadata["https://id.oidc.se/disco/userMessageSupportedMimeTypes"]


def test_the_signature_is_not_at_userinfo_unless_asked(live: LiveGateway, citizen: Browser) -> None:
    callback = signed_through_sandbox(citizen, citizen.authorize(**sign_params(live)))
    now = int(time.time())
    assertion = signed(
        {"iss": "signer", "sub": "signer", "aud": f"{live.url}/token",
         "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    )  # fmt: skip
    form = {**code_form(LoginResult(callback, None)), "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion}  # fmt: skip
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        tokens = http.post("/token", data=form).json()
        info = http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.text
    assert USER_SIGNATURE not in info.json()


def test_a_scope_outside_the_clients_list_is_not_granted(
    live: LiveGateway, citizen: Browser
) -> None:
    """The `scopes` key: other scopes outside it are simply not granted."""
    scope = f"openid {NUMBER_SCOPE} {INFO_SCOPE}"
    result = citizen.login("approver", scope=scope, **{AUTHN_PROVIDER: "sandbox"})
    now = int(time.time())
    assertion = signed(
        {"iss": "approver", "sub": "approver", "aud": f"{live.url}/token",
         "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    )  # fmt: skip
    form = {**code_form(result), "client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    with httpx2.Client(base_url=live.url, timeout=10) as http:
        tokens = http.post("/token", data=form).json()
    assert tokens["scope"].split() == ["openid", NUMBER_SCOPE]


@pytest.mark.parametrize(
    ("scopes", "problem"),
    [(["openid", "https://id.oidc.se/scope/unknown"], "unknown scope"),
     ([NUMBER_SCOPE, SIGN], "must include openid")],
)  # fmt: skip
def test_the_scopes_key_is_validated(scopes: list[str], problem: str) -> None:
    data = {
        "issuer": "http://127.0.0.1:1", "environment": "test",
        "secret_key": "k" * 48, "subject_salt": "salt",
        "providers": {"sandbox": {"type": "sandbox"}},
        "clients": [client("signer", scopes=scopes)],
    }  # fmt: skip
    with pytest.raises(SettingsError, match=problem):
        settings_from_data(data)
