"""Regressions for the server errors the properties found, one plain example each: text that
is not ASCII where a secret is compared (hmac.compare_digest refuses such str), and JSON nested
deeper than Python's recursion limit sent to the BankID simulator, and client input quoted in an
OAuth error_description, which authlib refuses outside RFC 6749's characters (ValueError)."""

from __future__ import annotations

from tests.properties.site import Live, Site

DEEP = "[" * 100_000 + "]" * 100_000


def cookie(live: Live) -> dict[str, str]:
    return {"cookie": "; ".join(f"{name}={value}" for name, value in live.cookies.items())}


def test_a_form_token_that_is_not_ascii_is_refused_not_a_crash(site: Site) -> None:
    live = site.at_sandbox()
    form = {"login": live.login_id, "csrf": "ö", "pnr": "199908072391"}
    answer = site.send("POST", "/providers/sandbox/login", data=form, headers=cookie(live))
    assert answer.status_code == 403, answer.text


def test_a_bankid_return_nonce_that_is_not_ascii_is_refused_not_a_crash(site: Site) -> None:
    live = site.at_bankid()
    query = {"login": live.login_id, "nonce": "ö"}
    answer = site.send("GET", "/providers/bankid/return", params=query, headers=cookie(live))
    assert answer.status_code == 400, answer.text


def test_a_qr_code_whose_authentication_code_is_not_ascii_is_refused(site: Site) -> None:
    token = site.at_bankid().extra["qr_start_token"]
    answer = site.send("GET", "/bankid-simulator/phone", params={"qr": f"bankid.{token}.0.ö"})
    assert answer.status_code == 400, answer.text


def test_the_simulator_refuses_json_nested_too_deep(site: Site) -> None:
    headers = {"content-type": "application/json"}
    answer = site.send("POST", "/bankid-simulator/rp/v6.0/auth", content=DEEP, headers=headers)
    assert (answer.status_code, answer.json()["errorCode"]) == (400, "invalidParameters")


def test_a_prompt_value_that_is_not_ascii_is_an_invalid_request(site: Site) -> None:
    query = site.authorize_params(prompt="lögin")
    answer = site.send("GET", "/authorize", params=query)
    assert answer.status_code == 302, answer.text
    assert "error=invalid_request" in answer.headers["location"]


def test_a_repeated_parameter_whose_name_is_not_ascii_is_an_invalid_request(site: Site) -> None:
    pairs = [*site.authorize_params().items(), ("ö\\", "1"), ("ö\\", "2")]
    answer = site.send("GET", "/authorize", params=pairs)
    assert answer.status_code == 302, answer.text
    assert "error=invalid_request" in answer.headers["location"]
    token = site.send(
        "POST",
        "/token",
        content=b"%C3%B6=1&%C3%B6=2",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (token.status_code, token.json()["error"]) == (400, "invalid_request")


def test_a_logout_signature_that_is_not_ascii_is_refused_not_a_crash(site: Site) -> None:
    """SAML SLO over HTTP-Redirect: base64 of text that is not ASCII raised ValueError."""
    signed = site.idps[0].idp_initiated_logout_url().split("?", 1)[1]
    query = "&".join(
        part if not part.startswith("Signature=") else "Signature=%E0%AD%AA"
        for part in signed.split("&")
    )
    answer = site.send("GET", f"/providers/sc/slo?{query}")
    assert answer.status_code == 400, answer.text
