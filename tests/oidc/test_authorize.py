"""Authorization request errors (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 9207)."""

from __future__ import annotations

import pytest

from tests.harness import REDIRECT_URI, Browser, LiveGateway, pkce_pair, query_of


def assert_error_page(response, status: int = 400) -> None:
    assert response.status_code == status
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "uppge den här referensen" in response.text


def assert_redirected_error(
    gateway: LiveGateway, response, error: str, state: str
) -> dict[str, str]:
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    params = query_of(response.headers["location"])
    assert params["error"] == error
    assert params["state"] == state
    assert params["iss"] == gateway.url
    assert params["error_description"]
    assert "code" not in params
    return params


def test_unknown_client_gets_a_page_not_a_redirect(browser: Browser) -> None:
    assert_error_page(browser.authorize(**browser.authorize_params("nobody")))


def test_missing_client_id_gets_a_page(browser: Browser) -> None:
    params = browser.authorize_params()
    del params["client_id"]
    assert_error_page(browser.authorize(**params))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:9000/callback/",
        "http://127.0.0.1:9000/Callback",
        "http://127.0.0.1:9000/callback?x=1",
        "http://127.0.0.1:9001/callback",
        "https://evil.example/callback",
    ],
)
def test_redirect_uri_must_match_exactly(browser: Browser, redirect_uri: str) -> None:
    """Swedish profile §2.1.3: exact string match, never a redirect to an unregistered URI."""
    assert_error_page(browser.authorize(**browser.authorize_params(redirect_uri=redirect_uri)))


def test_missing_redirect_uri_gets_a_page(browser: Browser) -> None:
    params = browser.authorize_params()
    del params["redirect_uri"]
    assert_error_page(browser.authorize(**params))


def test_missing_response_type_is_invalid_request(gateway: LiveGateway, browser: Browser) -> None:
    params = browser.authorize_params(state="s1")
    del params["response_type"]
    assert_redirected_error(gateway, browser.authorize(**params), "invalid_request", "s1")


def test_token_response_type_is_unsupported(gateway: LiveGateway, browser: Browser) -> None:
    response = browser.authorize(
        **browser.authorize_params(response_type="id_token token", state="s2")
    )
    assert_redirected_error(gateway, response, "unsupported_response_type", "s2")


def test_scope_without_openid_is_invalid_scope(gateway: LiveGateway, browser: Browser) -> None:
    response = browser.authorize(**browser.authorize_params(scope="profile", state="s3"))
    assert_redirected_error(gateway, response, "invalid_scope", "s3")


def test_public_client_without_pkce_is_rejected(gateway: LiveGateway, browser: Browser) -> None:
    response = browser.authorize(**browser.authorize_params("spa", state="s4"))
    assert_redirected_error(gateway, response, "invalid_request", "s4")


def test_plain_pkce_is_rejected(gateway: LiveGateway, browser: Browser) -> None:
    """Swedish profile §2.1.8: the OP MUST NOT allow plain."""
    verifier, _ = pkce_pair()
    params = browser.authorize_params(
        "spa", state="s5", code_challenge=verifier, code_challenge_method="plain"
    )
    assert_redirected_error(gateway, browser.authorize(**params), "invalid_request", "s5")


def test_pkce_without_method_is_rejected(gateway: LiveGateway, browser: Browser) -> None:
    """RFC 7636 §4.3 would default to plain; we do not."""
    _, challenge = pkce_pair()
    params = browser.authorize_params("spa", state="s6", code_challenge=challenge)
    assert_redirected_error(gateway, browser.authorize(**params), "invalid_request", "s6")


def test_malformed_code_challenge_is_rejected(gateway: LiveGateway, browser: Browser) -> None:
    params = browser.authorize_params(
        "spa", state="s7", code_challenge="short", code_challenge_method="S256"
    )
    assert_redirected_error(gateway, browser.authorize(**params), "invalid_request", "s7")


def test_duplicated_parameter_is_invalid_request(gateway: LiveGateway, browser: Browser) -> None:
    """RFC 6749 §3.1: parameters MUST NOT be included more than once."""
    params = [*list(browser.authorize_params(state="s8").items()), ("scope", "openid")]
    response = browser.http.get("/authorize", params=params)
    assert_redirected_error(gateway, response, "invalid_request", "s8")


def test_duplicated_client_id_gets_a_page(browser: Browser) -> None:
    params = [*list(browser.authorize_params().items()), ("client_id", "post")]
    assert_error_page(browser.http.get("/authorize", params=params))


def test_prompt_none_without_session_is_login_required(
    gateway: LiveGateway, browser: Browser
) -> None:
    response = browser.authorize(**browser.authorize_params(prompt="none", state="s9"))
    assert_redirected_error(gateway, response, "login_required", "s9")


def test_prompt_none_with_other_values_is_invalid(gateway: LiveGateway, browser: Browser) -> None:
    response = browser.authorize(**browser.authorize_params(prompt="none login", state="s10"))
    assert_redirected_error(gateway, response, "invalid_request", "s10")


def test_unknown_prompt_value_is_invalid(gateway: LiveGateway, browser: Browser) -> None:
    response = browser.authorize(**browser.authorize_params(prompt="sometimes", state="s11"))
    assert_redirected_error(gateway, response, "invalid_request", "s11")


def test_prompt_login_and_max_age_start_a_fresh_login(browser: Browser) -> None:
    page = browser.authorize(**browser.authorize_params(prompt="login", max_age="0"))
    assert page.status_code == 200
    assert 'name="pnr"' in page.text


def test_negative_max_age_is_invalid(gateway: LiveGateway, browser: Browser) -> None:
    response = browser.authorize(**browser.authorize_params(max_age="-1", state="s12"))
    assert_redirected_error(gateway, response, "invalid_request", "s12")


def test_undeliverable_acr_is_unmet_authentication_requirements(
    gateway: LiveGateway, browser: Browser
) -> None:
    """DESIGN.md: the acr returned is one of acr_values, or the login fails clearly."""
    params = browser.authorize_params(
        acr_values="http://id.elegnamnden.se/loa/1.0/loa4", state="s13"
    )
    assert_redirected_error(
        gateway, browser.authorize(**params), "unmet_authentication_requirements", "s13"
    )


def test_essential_acr_in_claims_is_honoured(gateway: LiveGateway, browser: Browser) -> None:
    """Swedish profile §2.1.6: an essential acr that cannot be met stops the login."""
    claims = '{"id_token": {"acr": {"essential": true, "values": ["http://id.elegnamnden.se/loa/1.0/loa4"]}}}'
    params = browser.authorize_params(claims=claims, state="s14")
    assert_redirected_error(
        gateway, browser.authorize(**params), "unmet_authentication_requirements", "s14"
    )


def test_malformed_claims_parameter_is_invalid_request(
    gateway: LiveGateway, browser: Browser
) -> None:
    response = browser.authorize(**browser.authorize_params(claims="{not json", state="s15"))
    assert_redirected_error(gateway, response, "invalid_request", "s15")


def test_an_unsigned_request_object_is_invalid_request_object(
    gateway: LiveGateway, browser: Browser
) -> None:
    """RFC 9101 §6.3: `alg: none` only from a client registered for it (test_request_object.py
    covers request objects in full)."""
    response = browser.authorize(**browser.authorize_params(request="e30.e30.", state="s16"))
    assert_redirected_error(gateway, response, "invalid_request_object", "s16")


def test_form_post_response_mode_is_rejected(gateway: LiveGateway, browser: Browser) -> None:
    response = browser.authorize(**browser.authorize_params(response_mode="form_post", state="s17"))
    assert_redirected_error(gateway, response, "invalid_request", "s17")


def test_authorize_accepts_post(browser: Browser) -> None:
    """OIDC Core §3.1.2.1: GET and POST."""
    page = browser.http.post("/authorize", data=browser.authorize_params())
    assert page.status_code == 200
    assert 'name="pnr"' in page.text


def test_error_without_state_has_no_state(gateway: LiveGateway, browser: Browser) -> None:
    params = browser.authorize_params(scope="profile")
    del params["state"]
    response = browser.authorize(**params)
    assert "state" not in query_of(response.headers["location"])
    assert query_of(response.headers["location"])["error"] == "invalid_scope"


@pytest.mark.parametrize("max_age", ["²", "١٢", "１０", "+5", " 5", "5 ", "0x10", "1_000", ""])
def test_max_age_must_be_ascii_digits(gateway: LiveGateway, browser: Browser, max_age) -> None:
    """OIDC Core §3.1.2.1: a non-negative integer; `²` passes str.isdigit but is no integer."""
    response = browser.authorize(**browser.authorize_params(max_age=max_age, state="s18"))
    assert_redirected_error(gateway, response, "invalid_request", "s18")


def test_a_huge_max_age_is_no_limit(browser: Browser) -> None:
    page = browser.authorize(**browser.authorize_params(max_age="9" * 4000))
    assert page.status_code == 200
    assert 'name="pnr"' in page.text


@pytest.mark.parametrize(
    ("member", "opening", "closing", "depth"),
    [("values", "[", "]", 2000), ("x-nested", '{"a":', "}", 650)],
    ids=["arrays", "objects"],
)
def test_deeply_nested_claims_are_invalid_request(
    gateway: LiveGateway, browser: Browser, member: str, opening: str, closing: str, depth: int
) -> None:
    """Nesting is bounded: 2,000 arrays would exhaust the parser's recursion (a 500 before),
    and an unknown member (allowed by OIDC Core §5.5.1) may not smuggle in deep objects."""
    nested = opening * depth + "1" + closing * depth
    claims = f'{{"userinfo": {{"given_name": {{"{member}": {nested}}}}}}}'
    assert len(claims) < 4096
    response = browser.authorize(**browser.authorize_params(claims=claims, state="s19"))
    assert_redirected_error(gateway, response, "invalid_request", "s19")


def test_deeply_nested_claims_sent_by_post_are_invalid_request(
    gateway: LiveGateway, browser: Browser
) -> None:
    claims = '{"id_token": ' + "[" * 2000 + "]" * 2000 + "}"
    params = browser.authorize_params(claims=claims, state="s20")
    response = browser.http.post("/authorize", data=params)
    assert_redirected_error(gateway, response, "invalid_request", "s20")
