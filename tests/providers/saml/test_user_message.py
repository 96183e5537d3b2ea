"""The e-service's `https://id.oidc.se/param/userMessage` as Sweden Connect's UserMessage
extension (User Message Extension in SAML Authentication Requests 1.0): in the signed
AuthnRequest to an IdP whose metadata declares the entity category
`http://id.swedenconnect.se/general-ec/1.0/supports-user-message`, and to no other IdP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from lxml import etree

from tests.doubles.saml_idp import (
    LOA2,
    LOA3,
    NS,
    PNR,
    SUPPORTS_USER_MESSAGE,
    FakeIdP,
    aggregate,
    make_key_pair,
)
from tests.harness import Browser, ServedApp, free_port, hidden_field
from tests.providers.saml.test_provider import (
    EIDAS_SUB,
    IDP_A,
    IDP_B,
    Federation,
    form_of,
    gateway_with,
    introduce,
    post_to_acs,
    saml_login,
)

USER_MESSAGE = "https://id.oidc.se/param/userMessage"
SV_TEXT = "Logga in för att söka bygglov"
EN_TEXT = "Log in to apply for a building permit"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """IdP A declares the user-message entity category; IdP B does not."""
    keys = tmp_path_factory.mktemp("saml-umsg-keys")
    idp_a = FakeIdP(
        IDP_A,
        f"http://127.0.0.1:{free_port()}",
        make_key_pair(keys, "idp-a"),
        assurance=(LOA3, LOA2, EIDAS_SUB),
        categories=("http://id.elegnamnden.se/ec/1.0/loa3-pnr", SUPPORTS_USER_MESSAGE),
    )
    idp_b = FakeIdP(IDP_B, f"http://127.0.0.1:{free_port()}", make_key_pair(keys, "idp-b"))
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
    with (
        ServedApp(idp_a.app, int(idp_a.base_url.rsplit(":", 1)[1])),
        ServedApp(idp_b.app, int(idp_b.base_url.rsplit(":", 1)[1])),
    ):
        yield fed


def login_at(
    store_url: str | None, fed: Federation, idp: FakeIdP, binding: str = "redirect", **extra: str
) -> FakeIdP:
    """One whole login through `idp` alone; the IdP keeps the AuthnRequest it verified."""
    idp.reset()
    with gateway_with(
        store_url, fed, allow={"entity_ids": [idp.entity_id]}, binding=binding
    ) as live:
        introduce(live, idp)
        browser = Browser(live)
        if binding == "post":  # our auto-posting page, then the IdP's
            page = browser.authorize(**browser.authorize_params("basic", **extra))
            action, fields = form_of(page.text)
            answer = post_to_acs(browser, browser.http.post(action, data=fields))
            assert "code" in browser.follow_to_client(answer)
        else:
            assert "code" in saml_login(browser, **extra)
        browser.close()
    return idp


def test_the_message_goes_in_every_language_to_an_idp_that_shows_it(
    store_url: str | None, federation: Federation
) -> None:
    value = json.dumps(
        {"message#en": b64(EN_TEXT), "message#sv": b64(SV_TEXT), "mime_type": "text/markdown"}
    )
    idp = login_at(store_url, federation, federation.idp_a, **{USER_MESSAGE: value})
    request = idp.requests[-1]
    # The text for the login's language first: an IdP that matches no language shows the first.
    assert request.user_message == ("text/markdown", [("sv", SV_TEXT), ("en", EN_TEXT)])


def test_an_untagged_message_gets_the_logins_language(
    store_url: str | None, federation: Federation
) -> None:
    """SAML's xml:lang is required: the untagged OIDC message is tagged with the UI locale."""
    value = json.dumps({"message": b64(EN_TEXT)})
    idp = login_at(
        store_url, federation, federation.idp_a, ui_locales="en", **{USER_MESSAGE: value}
    )
    assert idp.requests[-1].user_message == ("text/plain", [("en", EN_TEXT)])


def test_an_untagged_message_yields_to_one_tagged_with_the_logins_language(
    store_url: str | None, federation: Federation
) -> None:
    value = json.dumps({"message": b64("neutral"), "message#sv": b64(SV_TEXT)})
    idp = login_at(store_url, federation, federation.idp_a, **{USER_MESSAGE: value})
    assert idp.requests[-1].user_message == ("text/plain", [("sv", SV_TEXT)])


def test_the_message_is_in_the_signed_post_request_beside_principal_selection(
    store_url: str | None, federation: Federation
) -> None:
    """HTTP-POST: the IdP verified the enveloped signature over the Extensions it read."""
    value = json.dumps({"message#sv": b64(SV_TEXT)})
    idp = login_at(
        store_url,
        federation,
        federation.idp_a,
        binding="post",
        login_hint="196408233234",
        **{USER_MESSAGE: value},
    )
    request = idp.requests[-1]
    assert request.binding.endswith("HTTP-POST")
    assert request.user_message == ("text/plain", [("sv", SV_TEXT)])
    assert request.principal == {PNR: "196408233234"}
    root = etree.fromstring(request.xml)
    children = [etree.QName(child).localname for child in root]
    assert children[:4] == ["Issuer", "Signature", "Extensions", "NameIDPolicy"]
    assert len(root.findall("samlp:Extensions", NS)) == 1
    message = root.find("samlp:Extensions/umsg:UserMessage", NS)
    assert message is not None and message.prefix == "umsg"


def test_an_idp_without_the_entity_category_gets_no_message(
    store_url: str | None, federation: Federation
) -> None:
    """UMsg §3.2: only IdPs that declare the category; RPar §2.1 lets the OP ignore it."""
    value = json.dumps({"message#sv": b64(SV_TEXT)})
    idp = login_at(store_url, federation, federation.idp_b, **{USER_MESSAGE: value})
    request = idp.requests[-1]
    assert request.user_message is None
    assert b"user-message" not in request.xml


def test_no_message_asked_for_means_no_extension(
    store_url: str | None, federation: Federation
) -> None:
    idp = login_at(store_url, federation, federation.idp_a)
    assert idp.requests[-1].user_message is None
    assert b"Extensions" not in idp.requests[-1].xml


def test_the_message_waits_with_the_login_while_the_citizen_picks_the_idp(
    store_url: str | None, federation: Federation
) -> None:
    idp = federation.idp_a
    idp.reset()
    value = json.dumps({"message#sv": b64(SV_TEXT)})
    with gateway_with(store_url, federation, allow={"entity_ids": [IDP_A, IDP_B]}) as live:
        introduce(live, federation.idp_a, federation.idp_b)
        browser = Browser(live)
        page = browser.authorize(**browser.authorize_params("basic", **{USER_MESSAGE: value}))
        assert page.status_code == 200, page.text
        form = {name: hidden_field(page.text, name) for name in ("login", "csrf")}
        sent = browser.http.post("/providers/sc/idp", data={**form, "idp": IDP_A})
        assert sent.status_code == 303, sent.text
        answer = post_to_acs(browser, browser.http.get(sent.headers["location"]))
        assert "code" in browser.follow_to_client(answer)
        browser.close()
    assert idp.requests[-1].user_message == ("text/plain", [("sv", SV_TEXT)])
