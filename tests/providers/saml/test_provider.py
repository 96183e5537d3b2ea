"""SAML upstream end to end over real HTTP: the gateway's SP against tests/doubles/saml_idp.py,
which signs (python3-saml) and encrypts (xmlsec) real responses, with its metadata in a signed
federation aggregate. Runs against MemoryStore and a real Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
import redis
from lxml import etree

import providers.saml.provider as saml_provider_module
from providers.saml.bindings import INLINE_XML_CHARS, xml_step
from providers.saml.xml import XmlRejected
from tests.doubles.saml_idp import (
    EIDAS_PERSON,
    EIDAS_SUB,
    GIVEN_NAME,
    LOA2,
    LOA3,
    NS,
    PERSON,
    PNR,
    FakeIdP,
    KeyPairPaths,
    SpView,
    Twist,
    aggregate,
    make_key_pair,
)
from tests.harness import (
    REDIRECT_URI,
    Browser,
    LiveGateway,
    LogoutListener,
    ServedApp,
    free_port,
    query_of,
    running_gateway,
    token_request,
)
from tests.login.test_flow import CodeWriteFailsOnce
from tests.ops.test_audit import authenticated_event

PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
PRID_CLAIM = "https://id.swedenconnect.se/claim/prid"
EIDAS_SCOPE = "https://id.swedenconnect.se/scope/eidasNaturalPersonIdentity"
IDP_A = "https://idp-a.test.example/idp"
IDP_B = "https://idp-b.test.example/idp"
SP_ENTITY = "https://portvakt.test.example/sp"


@dataclass
class Federation:
    sp_signing: KeyPairPaths
    sp_encryption: KeyPairPaths
    federation: KeyPairPaths
    idp_a: FakeIdP
    idp_b: FakeIdP
    aggregate_file: Path


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    keys = tmp_path_factory.mktemp("saml-keys")
    idp_a = FakeIdP(
        IDP_A,
        f"http://127.0.0.1:{free_port()}",
        make_key_pair(keys, "idp-a"),
        assurance=(LOA3, LOA2, EIDAS_SUB),
    )
    idp_b = FakeIdP(
        IDP_B,
        f"http://127.0.0.1:{free_port()}",
        make_key_pair(keys, "idp-b"),
        display={"sv": "Annan IdP", "en": "Other IdP"},
        assurance=(LOA3, EIDAS_SUB),
    )
    federation_keys = make_key_pair(keys, "federation")
    aggregate_file = keys / "aggregate.xml"
    aggregate_file.write_bytes(
        aggregate([idp_a.entity_descriptor(), idp_b.entity_descriptor()], federation_keys)
    )
    fed = Federation(
        make_key_pair(keys, "sp-sign"),
        make_key_pair(keys, "sp-enc"),
        federation_keys,
        idp_a,
        idp_b,
        aggregate_file,
    )
    servers = [ServedApp(idp.app, int(idp.base_url.rsplit(":", 1)[1])) for idp in (idp_a, idp_b)]
    for server in servers:
        server.__enter__()
    yield fed
    for server in servers:
        server.__exit__(None, None, None)


def saml_provider(fed: Federation, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": "saml",
        "entity_id": SP_ENTITY,
        "signing": {"key": str(fed.sp_signing.key), "cert": str(fed.sp_signing.cert)},
        "encryption": {"key": str(fed.sp_encryption.key), "cert": str(fed.sp_encryption.cert)},
        "metadata": {"file": str(fed.aggregate_file), "cert": str(fed.federation.cert)},
        "allow": {"entity_ids": [IDP_A]},
        "loa": [LOA3, LOA2, EIDAS_SUB],
    }
    config.update(overrides)
    return config


def gateway_with(store_url: str | None, fed: Federation, **overrides: Any) -> Any:
    return running_gateway(store_url, providers={"sc": saml_provider(fed, **overrides)})


def introduce(gateway: LiveGateway, *idps: FakeIdP) -> None:
    """The IdPs read the SP's published metadata, as a federation would register it."""
    metadata = httpx2.get(f"{gateway.url}/providers/sc/metadata").content
    for idp in idps:
        idp.sp = SpView.from_metadata(metadata)


@pytest.fixture(scope="module")
def gateway(store_url: str | None, federation: Federation) -> Iterator[LiveGateway]:
    with gateway_with(store_url, federation) as live:
        introduce(live, federation.idp_a, federation.idp_b)
        yield live


@pytest.fixture
def idp(federation: Federation, gateway: LiveGateway) -> Iterator[FakeIdP]:
    federation.idp_a.reset()
    introduce(gateway, federation.idp_a)
    yield federation.idp_a
    federation.idp_a.reset()


def form_of(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action is not None, html
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return unescape(action.group(1)), {k: unescape(v) for k, v in fields.items()}


def to_idp(browser: Browser, **extra: str) -> httpx2.Response:
    """/authorize → (AuthnRequest) → the IdP's answer page with its auto-posting form."""
    response = browser.authorize(**browser.authorize_params("basic", **extra))
    assert response.status_code == 303, response.text
    return browser.http.get(response.headers["location"])


def post_to_acs(browser: Browser, idp_page: httpx2.Response) -> httpx2.Response:
    assert idp_page.status_code == 200, idp_page.text
    action, fields = form_of(idp_page.text)
    return browser.http.post(action, data=fields)


def saml_login(browser: Browser, **extra: str) -> dict[str, str]:
    answer = post_to_acs(browser, to_idp(browser, **extra))
    assert answer.status_code == 303, answer.text
    return browser.follow_to_client(answer)


def assert_refused(answer: httpx2.Response, error: str = "access_denied") -> None:
    """No code, no 500: the citizen sees our error page with the way back carrying `error`."""
    assert answer.status_code in (400, 403), answer.text
    assert "code=" not in answer.text
    back = re.search(r'href="(http://127\.0\.0\.1:9000/callback[^"]*)"', answer.text)
    assert back is not None, answer.text
    callback = query_of(unescape(back.group(1)))
    assert callback["error"] == error
    assert "code" not in callback


# -- the whole login --------------------------------------------------------------------------


def test_whole_login_authorize_idp_acs_code_token_userinfo(
    gateway: LiveGateway, browser: Browser, idp: FakeIdP
) -> None:
    callback = saml_login(browser, acr_values=LOA3)
    request = idp.requests[-1]
    assert request.binding.endswith("HTTP-Redirect")
    assert request.loa == [LOA3] and request.comparison == "exact"
    assert request.force_authn is False

    tokens = token_request(gateway, code_form_from(callback), auth=("basic", "basic-secret"))
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    claims = jwt_claims(body["id_token"])
    assert claims["acr"] == LOA3
    assert claims[PNR_CLAIM] == "196408233234"
    info = httpx2.get(
        f"{gateway.url}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert info[PNR_CLAIM] == "196408233234"
    assert info["given_name"] == "Ingrid" and info["family_name"] == "Testsson"
    assert info["birthdate"] == "1964-08-23"


def test_post_binding_and_a_signed_assertion(store_url: str | None, federation: Federation) -> None:
    with gateway_with(
        store_url, federation, binding="post", require_signed_assertions=True
    ) as live:
        idp = federation.idp_a
        idp.reset()
        introduce(live, idp)
        idp.twist = Twist(sign_assertion=True)
        browser = Browser(live)
        response = browser.authorize(**browser.authorize_params("basic"))
        assert response.status_code == 200
        action, fields = form_of(response.text)
        assert action == f"{idp.base_url}/sso" and "autosubmit.js" in response.text
        idp_page = browser.http.post(action, data=fields)
        answer = post_to_acs(browser, idp_page)
        assert answer.status_code == 303, answer.text
        assert "code" in browser.follow_to_client(answer)
        assert idp.requests[-1].binding.endswith("HTTP-POST")

        idp.twist = Twist(sign_assertion=False)  # the SP wants signed assertions: refused
        response = browser.authorize(**browser.authorize_params("basic", prompt="login"))
        action, fields = form_of(response.text)
        assert_refused(post_to_acs(browser, browser.http.post(action, data=fields)))
        browser.close()
        idp.reset()


def test_prompt_login_forces_authn_and_login_hint_selects_the_person(
    browser: Browser, idp: FakeIdP
) -> None:
    saml_login(browser, prompt="login", login_hint="196408233234")
    request = idp.requests[-1]
    assert request.force_authn is True
    assert request.principal == {PNR: "196408233234"}


def test_forced_authn_needs_a_fresh_authentication(browser: Browser, idp: FakeIdP) -> None:
    idp.twist = Twist(authn_age_seconds=3600)
    assert_refused(post_to_acs(browser, to_idp(browser, prompt="login")))


def test_eidas_login_gets_prid_claims_and_no_personal_number(
    gateway: LiveGateway, browser: Browser, idp: FakeIdP
) -> None:
    idp.person = dict(EIDAS_PERSON)
    callback = saml_login(browser, acr_values=EIDAS_SUB, scope=f"openid {EIDAS_SCOPE} profile")
    tokens = token_request(gateway, code_form_from(callback), auth=("basic", "basic-secret"))
    claims = jwt_claims(tokens.json()["id_token"])
    assert claims["acr"] == EIDAS_SUB
    assert claims[PRID_CLAIM] == "NO:05068907693"
    assert PNR_CLAIM not in claims
    info = httpx2.get(
        f"{gateway.url}/userinfo",
        headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
    ).json()
    assert info["https://id.swedenconnect.se/claim/eidasPersonIdentifier"] == "NO/SE/05068907693"
    assert info["family_name"] == "Nordmann"


def test_the_idp_page_lists_allowed_idps_and_sends_the_request_to_the_chosen_one(
    store_url: str | None, federation: Federation
) -> None:
    with gateway_with(store_url, federation, allow={"entity_ids": [IDP_A, IDP_B]}) as live:
        introduce(live, federation.idp_a, federation.idp_b)
        browser = Browser(live)
        page = browser.authorize(**browser.authorize_params("basic"))
        assert page.status_code == 200
        assert "Test-IdP" in page.text and "Annan IdP" in page.text
        form = {
            "login": re.search(r'name="login" value="([^"]+)"', page.text).group(1),  # type: ignore[union-attr]
            "csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1),  # type: ignore[union-attr]
            "idp": IDP_B,
        }
        sent = browser.http.post("/providers/sc/idp", data=form)
        assert sent.status_code == 303 and sent.headers["location"].startswith(
            federation.idp_b.base_url
        )
        answer = post_to_acs(browser, browser.http.get(sent.headers["location"]))
        assert "code" in browser.follow_to_client(answer)
        browser.close()


def test_an_idp_outside_the_allow_list_is_never_offered_nor_believed(
    browser: Browser, idp: FakeIdP, federation: Federation
) -> None:
    # Its signed answer to our request to IDP_A: signature by another IdP's key, other issuer.
    idp_page = to_idp(browser)
    impostor = replace(federation.idp_b, sp=idp.sp)
    forged = impostor.response_to(idp.requests[-1])
    action, fields = form_of(idp_page.text)
    fields["SAMLResponse"] = forged
    assert_refused(browser.http.post(action, data=fields))


# -- status errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subcode", "oauth_error", "text_sv"),
    [
        ("http://id.elegnamnden.se/status/1.0/cancel", "access_denied", "Du avbröt"),
        ("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed", "access_denied", "lyckades inte"),
        ("urn:oasis:names:tc:SAML:2.0:status:NoAvailableIDP", "temporarily_unavailable", None),
        (
            "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext",
            "unmet_authentication_requirements",
            None,
        ),
    ],
)
def test_saml_status_errors_reach_citizen_and_e_service(
    browser: Browser, idp: FakeIdP, subcode: str, oauth_error: str, text_sv: str | None
) -> None:
    idp.twist = Twist(status=("urn:oasis:names:tc:SAML:2.0:status:Responder", subcode))
    answer = post_to_acs(browser, to_idp(browser))
    assert_refused(answer, oauth_error)
    if text_sv:
        assert text_sv in answer.text


# -- what must be refused ---------------------------------------------------------------------


def wrap_assertion_in_extensions(response: etree._Element) -> etree._Element:
    """XSW: the signed assertion moves into Extensions; an evil one takes its place and ID."""
    original = response.find("saml:Assertion", NS)
    assert original is not None
    evil = etree.fromstring(etree.tostring(original))
    for signature in evil.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        evil.remove(signature)
    value = evil.find(f".//saml:Attribute[@Name='{PNR}']/saml:AttributeValue", NS)
    assert value is not None
    value.text = "199908072391"
    extensions = etree.Element(f"{{{NS['samlp']}}}Extensions")
    response.replace(original, evil)
    response.insert(1, extensions)
    extensions.append(original)
    return response


def duplicate_assertion(response: etree._Element) -> etree._Element:
    encrypted = response.find("saml:EncryptedAssertion", NS)
    assert encrypted is not None
    response.append(etree.fromstring(etree.tostring(encrypted)))
    return response


@pytest.mark.parametrize(
    "twist",
    [
        pytest.param(Twist(sign_response=False, sign_assertion=False), id="unsigned"),
        pytest.param(Twist(audience="https://other-sp.example"), id="wrong-audience"),
        pytest.param(Twist(destination="https://other-sp.example/acs"), id="wrong-destination"),
        pytest.param(Twist(recipient="https://other-sp.example/acs"), id="wrong-recipient"),
        pytest.param(Twist(age_seconds=900, valid_seconds=300), id="expired"),
        pytest.param(Twist(in_response_to="_not-our-request"), id="unknown-in-response-to"),
        pytest.param(Twist(issuer=IDP_B), id="other-issuer"),
        pytest.param(Twist(encrypt=False), id="unencrypted"),
        pytest.param(Twist(comment_in=PNR), id="comment-in-value"),
        pytest.param(Twist(after=duplicate_assertion), id="duplicated-assertion"),
        pytest.param(Twist(more_attributes=((PNR, "199908072391"),)), id="second-identity-number"),
        pytest.param(Twist(more_attributes=((PNR, PERSON[PNR]),)), id="identity-number-twice"),
        pytest.param(Twist(more_attributes=((GIVEN_NAME, "Mallory"),)), id="given-name-twice"),
        pytest.param(
            Twist(
                sign_response=False,
                sign_assertion=True,
                encrypt=False,
                after=wrap_assertion_in_extensions,
            ),
            id="wrapped-assertion",
        ),
        pytest.param(Twist(after=lambda r: tamper_signed(r)), id="tampered-after-signing"),
    ],
)
def test_bad_responses_are_refused_without_a_code(
    browser: Browser, idp: FakeIdP, twist: Twist
) -> None:
    idp.twist = twist
    assert_refused(post_to_acs(browser, to_idp(browser)))


def tamper_signed(response: etree._Element) -> etree._Element:
    response.set("Consent", "urn:oasis:names:tc:SAML:2.0:consent:obtained")  # inside the digest
    return response


def test_the_wrapping_attack_is_refused_even_where_encryption_is_optional(
    store_url: str | None, federation: Federation
) -> None:
    with gateway_with(store_url, federation, require_encrypted_assertions=False) as live:
        idp = federation.idp_a
        idp.reset()
        introduce(live, idp)
        browser = Browser(live)
        idp.twist = Twist(sign_response=False, sign_assertion=True, encrypt=False)
        assert "code" in saml_login(browser)  # the plain signed assertion is fine here
        idp.twist = Twist(
            sign_response=False,
            sign_assertion=True,
            encrypt=False,
            after=wrap_assertion_in_extensions,
        )
        assert_refused(post_to_acs(browser, to_idp(browser, prompt="login")))
        browser.close()
        idp.reset()


def test_a_lower_loa_than_requested_is_refused(browser: Browser, idp: FakeIdP) -> None:
    idp.twist = Twist(loa=LOA2)
    answer = post_to_acs(browser, to_idp(browser, acr_values=LOA3))
    assert_refused(answer, "unmet_authentication_requirements")


@pytest.mark.usefixtures("idp")
def test_a_replayed_response_is_refused(browser: Browser) -> None:
    idp_page = to_idp(browser)
    action, fields = form_of(idp_page.text)
    first = browser.http.post(action, data=fields)
    assert first.status_code == 303
    again = browser.http.post(action, data=fields)
    assert again.status_code == 400 and "code=" not in again.text


@pytest.mark.usefixtures("idp")
def test_the_replay_cache_holds_even_if_the_request_were_outstanding_again(
    store_url: str | None, gateway: LiveGateway, browser: Browser
) -> None:
    """Defence in depth: the assertion ID itself serves one login, not only our request."""
    idp_page = to_idp(browser)
    action, fields = form_of(idp_page.text)
    key = f"p:sc:request:{fields['RelayState']}"
    saved = raw_store(store_url, gateway, "get", key)
    assert saved is not None
    assert browser.http.post(action, data=fields).status_code == 303
    _, next_fields = form_of(to_idp(browser, prompt="login").text)
    next_request = raw_store(store_url, gateway, "get", f"p:sc:request:{next_fields['RelayState']}")
    assert next_request is not None
    # as if our first request were still pending, now for the citizen's next login
    as_next_login = {**json.loads(saved), "login_id": json.loads(next_request)["login_id"]}
    raw_store(store_url, gateway, "put", key, json.dumps(as_next_login).encode())
    again = browser.http.post(action, data=fields)
    assert again.status_code == 400 and "code=" not in again.text
    assert "Inloggningen lyckades inte" in again.text  # refused as a failure, not as unknown state


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;'
        b'&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><r>&c;</r>',
        b"not xml at all",
        b"",
    ],
    ids=["xxe", "entity-expansion", "garbage", "empty"],
)
@pytest.mark.usefixtures("idp")
def test_hostile_xml_is_refused_without_a_500(browser: Browser, payload: bytes) -> None:
    idp_page = to_idp(browser)
    action, fields = form_of(idp_page.text)
    fields["SAMLResponse"] = base64.b64encode(payload).decode()
    assert_refused(browser.http.post(action, data=fields))


@pytest.mark.usefixtures("idp")
def test_an_unsolicited_or_unknown_relay_state_is_refused(browser: Browser) -> None:
    answer = browser.http.post(
        "/providers/sc/acs", data={"SAMLResponse": "PHg+", "RelayState": "nothing-we-sent"}
    )
    assert answer.status_code == 400 and "code=" not in answer.text
    assert browser.http.post("/providers/sc/acs", data={}).status_code == 400


# -- helpers reading the gateway ----------------------------------------------------------------


def code_form_from(callback: dict[str, str]) -> dict[str, str]:
    assert "code" in callback, callback
    return {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT_URI,
    }


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def raw_store(
    store_url: str | None, gateway: LiveGateway, op: str, key: str, value: bytes = b""
) -> Any:
    """Reach into the gateway's store: Redis directly, or the in-memory store's dict."""
    if store_url is not None:
        client = redis.Redis.from_url(store_url)
        try:
            return client.get(key) if op == "get" else client.set(key, value, ex=60)
        finally:
            client.close()
    memory = gateway.app.state.store.target
    coroutine = memory.get(key) if op == "get" else memory.put(key, value, 60)
    return asyncio.run(coroutine)


# -- single logout --------------------------------------------------------------------------


def logged_in_with_tokens(gateway: LiveGateway, browser: Browser) -> dict[str, Any]:
    callback = saml_login(browser)
    tokens = token_request(gateway, code_form_from(callback), auth=("basic", "basic-secret"))
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def silent_login(browser: Browser) -> dict[str, str]:
    response = browser.authorize(**browser.authorize_params("basic", prompt="none"))
    assert response.status_code in (302, 303), response.text
    return query_of(response.headers["location"])


def test_logout_at_the_gateway_logs_out_at_the_idp_too(
    gateway: LiveGateway, browser: Browser, idp: FakeIdP
) -> None:
    tokens = logged_in_with_tokens(gateway, browser)
    assert "code" in silent_login(browser)
    to_idp_slo = browser.http.get("/logout", params={"id_token_hint": tokens["id_token"]})
    assert to_idp_slo.status_code == 303
    assert to_idp_slo.headers["location"].startswith(f"{idp.base_url}/slo?SAMLRequest=")
    back = browser.http.get(to_idp_slo.headers["location"])
    assert back.status_code == 303, back.text
    logout_request = etree.fromstring(idp.logout_requests[-1])
    assert logout_request.findtext("saml:NameID", namespaces=NS) == idp.name_id
    assert logout_request.findtext("samlp:SessionIndex", namespaces=NS) == idp.session_index
    done = browser.http.get(back.headers["location"])
    assert done.status_code == 303, done.text
    logged_out = browser.http.get(done.headers["location"])
    assert logged_out.status_code == 200
    assert silent_login(browser)["error"] == "login_required"


def test_a_logout_request_from_the_idp_ends_the_gateway_session(
    browser: Browser, idp: FakeIdP, gateway: LiveGateway
) -> None:
    logged_in_with_tokens(gateway, browser)
    with httpx2.Client(follow_redirects=False) as idp_side:  # no cookies: found by SessionIndex
        answer = idp_side.get(idp.idp_initiated_logout_url())
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{idp.base_url}/slo?SAMLResponse=")
    assert silent_login(browser)["error"] == "login_required"


def test_an_unsigned_or_foreign_logout_request_changes_nothing(
    browser: Browser, idp: FakeIdP, gateway: LiveGateway, federation: Federation
) -> None:
    logged_in_with_tokens(gateway, browser)
    url = idp.idp_initiated_logout_url()
    unsigned = url.split("&Signature=")[0]
    with httpx2.Client(follow_redirects=False) as outsider:
        assert outsider.get(unsigned).status_code == 400
        impostor = replace(federation.idp_b, entity_id=idp.entity_id, sp=idp.sp)
        impostor.name_id, impostor.session_index = idp.name_id, idp.session_index
        assert outsider.get(impostor.idp_initiated_logout_url()).status_code == 400
    assert "code" in silent_login(browser)


def test_one_idp_from_its_own_metadata_file(
    store_url: str | None, federation: Federation, tmp_path: Path
) -> None:
    single = tmp_path / "idp-a.xml"
    single.write_bytes(federation.idp_a.metadata())
    with gateway_with(store_url, federation, metadata={"file": str(single)}, allow={}) as live:
        idp = federation.idp_a
        idp.reset()
        introduce(live, idp)
        browser = Browser(live)
        assert "code" in saml_login(browser)
        browser.close()


def test_an_encryption_key_rollover_decrypts_for_old_and_new_certificates(
    store_url: str | None, federation: Federation, tmp_path: Path
) -> None:
    """The documented rollover: the new pair under `encryption`, the old one under `previous`.
    Only the new certificate is published; an IdP still encrypting to the old one (its copy of
    our metadata not yet refreshed) still logs citizens in; a key we never had is refused."""
    new_pair = make_key_pair(tmp_path, "sp-enc-next")
    old_pair = federation.sp_encryption
    encryption = {"key": str(new_pair.key), "cert": str(new_pair.cert),
                  "previous": [{"key": str(old_pair.key), "cert": str(old_pair.cert)}]}  # fmt: skip
    with gateway_with(store_url, federation, encryption=encryption) as live:
        idp = federation.idp_a
        idp.reset()
        introduce(live, idp)
        published = idp.sp.encryption_cert_pem
        assert _cert_body(published) == _cert_body(new_pair.cert.read_text())
        metadata = httpx2.get(f"{live.url}/providers/sc/metadata").text
        assert _cert_body(old_pair.cert.read_text()) not in metadata

        for cert_pem in (published, old_pair.cert.read_text()):
            idp.sp = replace(idp.sp, encryption_cert_pem=cert_pem)
            browser = Browser(live)
            assert "code" in saml_login(browser)
            browser.close()

        stranger = make_key_pair(tmp_path, "never-ours")
        idp.sp = replace(idp.sp, encryption_cert_pem=stranger.cert.read_text())
        browser = Browser(live)
        assert_refused(post_to_acs(browser, to_idp(browser)))
        browser.close()
    idp.reset()


def _cert_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "CERTIFICATE" not in line)


def test_a_discovery_service_picks_the_idp(store_url: str | None, federation: Federation) -> None:
    with gateway_with(
        store_url,
        federation,
        allow={"entity_ids": [IDP_A, IDP_B]},
        discovery_url="https://ds.test.example/ds",
    ) as live:
        introduce(live, federation.idp_a, federation.idp_b)
        browser = Browser(live)
        to_ds = browser.authorize(**browser.authorize_params("basic"))
        assert to_ds.status_code == 303
        location = to_ds.headers["location"]
        assert location.startswith("https://ds.test.example/ds?")
        ds = query_of(location)
        assert ds["entityID"] == SP_ENTITY and ds["returnIDParam"] == "entityID"
        chosen = browser.http.get(f"{ds['return']}&{urlencode({'entityID': IDP_B})}")
        assert chosen.status_code == 303
        assert chosen.headers["location"].startswith(federation.idp_b.base_url)
        browser.close()


def test_idp_initiated_logout_reaches_the_e_services_over_the_back_channel(
    store_url: str | None, federation: Federation
) -> None:
    listener = LogoutListener()
    clients = [
        {
            "client_id": "basic",
            "client_secret": "basic-secret",
            "redirect_uris": [REDIRECT_URI],
            "backchannel_logout_uri": listener.url,
        }
    ]
    with (
        listener.served,
        running_gateway(
            store_url, providers={"sc": saml_provider(federation)}, clients=clients
        ) as live,
    ):
        idp = federation.idp_a
        idp.reset()
        introduce(live, idp)
        browser = Browser(live)
        tokens = logged_in_with_tokens(live, browser)
        sid = jwt_claims(tokens["id_token"])["sid"]
        with httpx2.Client(follow_redirects=False) as idp_side:
            assert idp_side.get(idp.idp_initiated_logout_url()).status_code == 303
        listener.wait_for(1)
        logout_token = jwt_claims(listener.tokens[0])
        assert logout_token["sid"] == sid
        assert "http://schemas.openid.net/event/backchannel-logout" in logout_token["events"]
        browser.close()
        idp.reset()


def test_a_response_posted_again_after_the_code_could_not_be_written_completes(
    store_url: str | None, federation: Federation
) -> None:
    """The instance finishing the login lost its store before the code was written: the
    browser's second POST of the same Response (the replay cache knows it is this login's)
    completes the login, once."""
    with gateway_with(store_url, federation) as live:
        idp = federation.idp_a
        idp.reset()
        introduce(live, idp)
        deferred = live.app.state.store
        faulty = CodeWriteFailsOnce(deferred.target)
        deferred.attach(faulty)
        browser = Browser(live)
        action, fields = form_of(to_idp(browser).text)
        assert browser.http.post(action, data=fields).status_code == 503
        retried = browser.http.post(action, data=fields)
        assert retried.status_code == 303, retried.text
        assert "code" in browser.follow_to_client(retried)
        once_more = browser.http.post(action, data=fields)
        browser.close()
        assert once_more.status_code == 400 and "code=" not in once_more.text


@pytest.mark.usefixtures("idp")
def test_the_audit_writes_the_saml_login_with_the_number_masked(
    browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    saml_login(browser, acr_values=LOA3)
    event = authenticated_event(caplog, "196408233234")
    assert (event["provider"], event["upstream"]) == ("sc", IDP_A)
    assert event["person"] == "19640823****" and event["loa"] == LOA3
    assert event["reference"]  # the assertion's ID, to find it at the IdP


def test_the_audit_writes_an_eidas_login_without_the_prid(
    browser: Browser, idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    idp.person = dict(EIDAS_PERSON)
    saml_login(browser, acr_values=EIDAS_SUB, scope=f"openid {EIDAS_SCOPE} profile")
    event = authenticated_event(caplog, "05068907693")
    assert event["person"] == "prid:NO…" and event["upstream"] == IDP_A


# -- the proxy's duties: authnProvider, PrincipalSelection, the named person ---------------------

AUTHN_PROVIDER_PARAMETER = "https://id.oidc.se/param/authnProvider"
AUTHN_PROVIDER_CLAIM = "https://id.oidc.se/claim/authnProvider"
COUNTRY_PROXY = "http://id.swedenconnect.se/eidas/1.0/proxy-service/de"


def id_token_from(gateway: LiveGateway, callback: dict[str, str]) -> dict[str, Any]:
    tokens = token_request(gateway, code_form_from(callback), auth=("basic", "basic-secret"))
    assert tokens.status_code == 200, tokens.text
    return jwt_claims(tokens.json()["id_token"])


def test_the_id_token_names_the_idp_that_authenticated(
    gateway: LiveGateway, browser: Browser, idp: FakeIdP
) -> None:
    """Claims §2.3.5: the IdP's entityID."""
    claims = id_token_from(gateway, saml_login(browser))
    assert claims[AUTHN_PROVIDER_CLAIM] == IDP_A


def test_a_proxy_idp_names_the_authority_it_relied_on(
    gateway: LiveGateway, browser: Browser, idp: FakeIdP
) -> None:
    """Claims §2.3.5 ≈ SAML AuthenticatingAuthority: of a chain, the first is the origin."""
    idp.twist = Twist(authenticating_authorities=(COUNTRY_PROXY, "https://middle.example/idp"))
    claims = id_token_from(gateway, saml_login(browser, prompt="login"))
    assert claims[AUTHN_PROVIDER_CLAIM] == COUNTRY_PROXY


def test_the_idp_named_by_authn_provider_gets_the_request_without_the_idp_page(
    store_url: str | None, federation: Federation
) -> None:
    """RPar §2.2: the entityID (the claim's value) selects the provider and that IdP; a session
    from another IdP of the same provider does not answer for it."""
    with gateway_with(store_url, federation, allow={"entity_ids": [IDP_A, IDP_B]}) as live:
        introduce(live, federation.idp_a, federation.idp_b)
        browser = Browser(live)
        via_a = browser.authorize(**browser.authorize_params(**{AUTHN_PROVIDER_PARAMETER: IDP_A}))
        assert via_a.status_code == 303, via_a.text
        assert via_a.headers["location"].startswith(federation.idp_a.base_url)
        answer = post_to_acs(browser, browser.http.get(via_a.headers["location"]))
        assert id_token_from(live, browser.follow_to_client(answer))[AUTHN_PROVIDER_CLAIM] == IDP_A

        via_b = browser.authorize(**browser.authorize_params(**{AUTHN_PROVIDER_PARAMETER: IDP_B}))
        assert via_b.status_code == 303, via_b.text  # not silently from IdP A's session
        assert via_b.headers["location"].startswith(federation.idp_b.base_url)
        passive = browser.authorize(
            **browser.authorize_params(**{AUTHN_PROVIDER_PARAMETER: IDP_B, "prompt": "none"})
        )
        assert query_of(passive.headers["location"])["error"] == "login_required"
        again = browser.authorize(
            **browser.authorize_params(**{AUTHN_PROVIDER_PARAMETER: IDP_A, "prompt": "none"})
        )
        assert "code" in query_of(again.headers["location"])
        browser.close()


def test_principal_selection_is_sent_for_a_claims_value(browser: Browser, idp: FakeIdP) -> None:
    wanted = json.dumps({"id_token": {PNR_CLAIM: {"essential": True, "value": "196408233234"}}})
    saml_login(browser, claims=wanted)
    assert idp.requests[-1].principal == {PNR: "196408233234"}


def test_principal_selection_is_not_sent_to_an_idp_that_does_not_ask_for_it(
    store_url: str | None, federation: Federation, tmp_path: Path
) -> None:
    """PrincipalSelection 1.0 §2: only IdPs declaring psc:RequestedPrincipalSelection get it."""
    silent_idp = tmp_path / "idp-a-without-principal-selection.xml"
    silent_idp.write_bytes(replace(federation.idp_a, principal_selection=()).metadata())
    with gateway_with(store_url, federation, metadata={"file": str(silent_idp)}, allow={}) as live:
        idp = federation.idp_a
        idp.reset()
        introduce(live, idp)
        browser = Browser(live)
        assert "code" in saml_login(browser, login_hint="196408233234")
        assert idp.requests[-1].principal == {}
        assert b"PrincipalSelection" not in idp.requests[-1].xml
        browser.close()


@pytest.mark.parametrize(
    "named",
    [
        pytest.param({"login_hint": "199908072391"}, id="login-hint"),
        pytest.param(
            {"claims": json.dumps({"userinfo": {PNR_CLAIM: {"value": "199908072391"}}})},
            id="claims-value",
        ),
    ],
)
def test_an_idp_answering_with_another_person_is_refused(
    browser: Browser, idp: FakeIdP, named: dict[str, str]
) -> None:
    """The IdP may ignore PrincipalSelection; the gateway still refuses another person."""
    answer = post_to_acs(browser, to_idp(browser, **named))
    assert idp.requests[-1].principal == {PNR: "199908072391"}
    assert_refused(answer)
    assert "annan person än den e-tjänsten bad om" in answer.text


def test_a_usual_response_is_checked_on_the_loop_and_a_large_one_in_a_thread(
    gateway: LiveGateway, browser: Browser, idp: FakeIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread hop costs more than checking a usual Response (issue 22); a large one must not
    hold up every other request on the loop meanwhile."""
    threads: list[int] = []
    check = saml_provider_module._validate

    def recorded(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return check(*args)

    monkeypatch.setattr(saml_provider_module, "_validate", recorded)
    saml_login(browser)
    padding = (("urn:test:padding", "x" * INLINE_XML_CHARS),)
    idp.twist = Twist(more_attributes=padding)
    saml_login(browser, prompt="login")
    assert threads[0] == gateway.thread.ident
    assert threads[1] != gateway.thread.ident


def test_an_xml_step_on_the_loop_maps_errors_as_one_in_a_thread() -> None:
    def unreadable() -> None:
        raise etree.XMLSyntaxError("bent", 1, 1, 1)  # type: ignore[call-arg]

    for size in (0, None):  # on the loop, in a thread
        with pytest.raises(XmlRejected, match="unreadable message"):
            asyncio.run(xml_step(unreadable, size=size))
