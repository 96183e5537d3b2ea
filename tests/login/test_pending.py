"""gateway/login/pending.py: the authorization parameters travel as one value, from /authorize
through the pending login to the code."""

from __future__ import annotations

import json

from gateway.login.pending import PendingLogin
from gateway.oidc.authorize import AuthorizationParameters
from gateway.oidc.codes import IssuedCode
from tests.harness import (
    INFO_SCOPE,
    NUMBER_SCOPE,
    REDIRECT_URI,
    Browser,
    RedisServer,
    hidden_field,
    pkce_pair,
    running_gateway,
    token_request,
)

LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
ASKED = AuthorizationParameters(
    client_id="basic",
    redirect_uri=REDIRECT_URI,
    state="st-1",
    nonce="n-1",
    scopes=("openid", NUMBER_SCOPE),
    code_challenge=None,
    prompt=("consent", "login"),
    max_age=300,
    acr_values=(LOA3,),
    claims={"userinfo": {"given_name": {"essential": True}}},
    ui_locales="en sv",
    login_hint="199908072391",
)


def redis_value(server: RedisServer, key: str) -> bytes:
    """GET through RESP: `$<length>\\r\\n<value>`."""
    reply = server.command("GET", key)
    assert reply.startswith("$") and not reply.startswith("$-1"), reply
    return reply.split("\r\n", 1)[1].encode()


def test_the_parameters_survive_their_own_serialisation() -> None:
    assert AuthorizationParameters.from_dict(json.loads(json.dumps(ASKED.to_dict()))) == ASKED


def test_a_pending_login_keeps_the_parameters_as_one_value() -> None:
    login = PendingLogin("id-1", ASKED, None, "browser-1", 1_700_000_000, provider="sandbox")
    assert PendingLogin.loads(login.dumps()) == login
    assert AuthorizationParameters.from_dict(json.loads(login.dumps())) == ASKED


def test_what_authorize_was_asked_reaches_the_pending_login_and_the_code_unchanged(
    redis_server: RedisServer,
) -> None:
    redis_server.command("FLUSHALL")
    verifier, challenge = pkce_pair()
    with running_gateway(redis_server.url) as gateway:
        citizen = Browser(gateway)
        params = citizen.authorize_params(
            scope=f"openid {NUMBER_SCOPE} unknown-scope {INFO_SCOPE}",
            state="st-2",
            nonce="n-2",
            code_challenge=challenge,
            code_challenge_method="S256",
            prompt="login consent",
            max_age="300",
            acr_values=LOA3,
            claims=json.dumps({"userinfo": {"given_name": {"essential": True}}}),
            ui_locales="en",
            login_hint="199908072391",
        )
        page = citizen.authorize(**params)
        login_id = hidden_field(page.text, "login")
        pending = PendingLogin.loads(redis_value(redis_server, "login:{" + login_id + "}"))
        submitted = citizen.submit_sandbox(page)
        callback = citizen.follow_to_client(submitted)
        issued = IssuedCode.loads(redis_value(redis_server, f"code:{callback['code']}"))
        form = {**code_form_for(callback["code"]), "code_verifier": verifier}
        tokens = token_request(gateway, form, auth=("basic", "basic-secret"))
        citizen.close()
    expected = AuthorizationParameters(
        client_id="basic",
        redirect_uri=REDIRECT_URI,
        state="st-2",
        nonce="n-2",
        scopes=("openid", NUMBER_SCOPE, INFO_SCOPE),  # unknown scopes are never granted
        code_challenge=challenge,
        prompt=("consent", "login"),
        max_age=300,
        acr_values=(LOA3,),
        claims={"userinfo": {"given_name": {"essential": True}}},
        ui_locales="en",
        login_hint="199908072391",
    )
    assert pending.parameters == expected
    assert issued.request == expected
    assert tokens.status_code == 200, tokens.text


def code_form_for(code: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}


def test_a_record_written_before_the_original_client_fields_still_loads() -> None:
    """A pending login or code stored by the previous release lacks the RPar §2.3 keys."""
    login = PendingLogin("id-1", ASKED, None, "browser-1", 1_700_000_000)
    older = json.loads(login.dumps())
    del older["original_client_id"], older["original_client_token"]
    assert PendingLogin.loads(json.dumps(older).encode()) == login
