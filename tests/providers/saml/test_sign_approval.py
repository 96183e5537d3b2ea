"""Signature approval through Sweden Connect IdPs (Signature Extension 1.1 `signApproval`, SC
profile §7, DSSExt 1.5 §3.1.2): a `signature_service` SP sends a signed, forced AuthnRequest
with `<csig:SignMessage MustShow="true">` (encrypted to an IdP that publishes a key),
PrincipalSelection and Scoping/RequesterID, and accepts the answer only with the
`signMessageDigest` of the very message it sent.

End to end over HTTP: the e-service's signRequest is a JWT it signs (PyJWT), /authorize and the
flow hand the approval to the SAML provider, the test IdP verifies our AuthnRequest with
python3-saml and decrypts the SignMessage with xmlsec, and the ID token is verified with
PyJWT."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html import unescape
from pathlib import Path
from typing import Any

import httpx2
import pytest
import xmlsec
from lxml import etree
from starlette.routing import Mount

from gateway.settings import SettingsError
from providers.base import SignRequest, UserMessage
from providers.saml.authn import PendingRequest
from providers.saml.metadata import read_federation
from providers.saml.provider import SamlProvider
from tests.doubles.saml_idp import (
    LOA3,
    NS,
    PERSON,
    PNR,
    SHA256,
    SIGSERVICE,
    SUPPORTS_USER_MESSAGE,
    FakeIdP,
    KeyPairPaths,
    Twist,
    aggregate,
    cert_body,
    make_key_pair,
)
from tests.harness import (
    NUMBER_SCOPE,
    REDIRECT_URI,
    Browser,
    LiveGateway,
    ServedApp,
    base_settings,
    free_port,
    hidden_field,
    query_of,
    running_gateway,
)
from tests.oidc.test_request_object import PNR_CLAIM, client, signed
from tests.oidc.test_sign_request import USER_SIGNATURE, verified_id_token
from tests.providers.saml.test_provider import (
    SP_ENTITY,
    assert_refused,
    form_of,
    introduce,
    post_to_acs,
)

IDP_A = "https://idp-a.sign.example/idp"  # publishes an encryption key
IDP_B = "https://idp-b.sign.example/idp"  # publishes none: the message goes in the clear
IDP_C = "https://idp-c.sign.example/idp"  # not among the SP's sign_idps
SV_TEXT = "Jag godkänner ansökan om bygglov för Storgatan 1"
EN_TEXT = "I approve the building permit application for Storgatan 1"
AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
NUMBER = PERSON[PNR]
APPROVER = "approver"  # an e-service registered for the signApproval scope
APPROVAL_SCOPE = "https://id.oidc.se/scope/signApproval"
SIGN_REQUEST = "https://id.oidc.se/param/signRequest"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class SignFederation:
    sp_signing: KeyPairPaths
    sp_encryption: KeyPairPaths
    federation: KeyPairPaths
    idps: dict[str, FakeIdP]
    aggregate_file: Path

    def write(self, *idps: FakeIdP) -> None:
        """The federation's aggregate as these IdPs' metadata now reads."""
        entities = [idp.entity_descriptor() for idp in idps or self.idps.values()]
        self.aggregate_file.write_bytes(aggregate(entities, self.federation))


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignFederation]:
    keys = tmp_path_factory.mktemp("saml-sign-keys")
    idp_a = FakeIdP(
        IDP_A,
        f"http://127.0.0.1:{free_port()}",
        make_key_pair(keys, "idp-a"),
        encryption_keys=make_key_pair(keys, "idp-a-enc"),
        encryption_methods=(AES128_GCM, AES256_CBC, RSA_OAEP),
    )
    idp_b = FakeIdP(IDP_B, f"http://127.0.0.1:{free_port()}", make_key_pair(keys, "idp-b"))
    idp_c = FakeIdP(IDP_C, f"http://127.0.0.1:{free_port()}", make_key_pair(keys, "idp-c"))
    fed = SignFederation(
        make_key_pair(keys, "sp-sign"),
        make_key_pair(keys, "sp-enc"),
        make_key_pair(keys, "federation"),
        {idp.entity_id: idp for idp in (idp_a, idp_b, idp_c)},
        keys / "aggregate.xml",
    )
    fed.write()
    servers = [
        ServedApp(idp.app, int(idp.base_url.rsplit(":", 1)[1])) for idp in (idp_a, idp_b, idp_c)
    ]
    for server in servers:
        server.__enter__()
    yield fed
    for server in servers:
        server.__exit__(None, None, None)


def sign_provider(fed: SignFederation, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": "saml",
        "entity_id": SP_ENTITY,
        "signing": {"key": str(fed.sp_signing.key), "cert": str(fed.sp_signing.cert)},
        "encryption": {"key": str(fed.sp_encryption.key), "cert": str(fed.sp_encryption.cert)},
        "metadata": {"file": str(fed.aggregate_file), "cert": str(fed.federation.cert)},
        "allow": {"entity_ids": [IDP_A]},
        "signature_service": True,
        "sign_idps": {"entity_ids": [IDP_A, IDP_B]},
    }
    config.update(overrides)
    return config


def signing_gateway(store_url: str | None, fed: SignFederation, **overrides: Any) -> Any:
    clients = [client(APPROVER, scopes=["openid", NUMBER_SCOPE, APPROVAL_SCOPE]), client("basic")]
    providers = {"sc": sign_provider(fed, **overrides)}
    return running_gateway(store_url, providers=providers, clients=clients)


def saml_provider_of(gateway: LiveGateway, name: str = "sc") -> SamlProvider:
    """The running gateway's provider object, found through its mounted /metadata route."""
    for route in gateway.app.routes:
        if isinstance(route, Mount) and route.path == f"/providers/{name}":
            for inner in route.routes:
                if getattr(inner, "path", None) == "/metadata":
                    provider = inner.endpoint.__wrapped__.__self__  # type: ignore[attr-defined]
                    assert isinstance(provider, SamlProvider)
                    return provider
    raise AssertionError(f"no SAML provider {name!r} is mounted")


def approval(
    texts: dict[str, str] | None = None, mime_type: str = "text/plain", tbs_data: str | None = None
) -> SignRequest:
    return SignRequest(UserMessage(texts or {"sv": SV_TEXT, "en": EN_TEXT}, mime_type), tbs_data)


def approval_params(
    gateway: LiveGateway, mime_type: str = "text/plain", **extra: str
) -> dict[str, str]:
    """/authorize for an approval (Signature Extension §3.1): scope signApproval, prompt
    login consent, the person named, and the signRequest as a JWT the client signed."""
    now = int(time.time())
    message = {"message#sv": b64(SV_TEXT), "message#en": b64(EN_TEXT), "mime_type": mime_type}
    sign_request = {"iss": APPROVER, "aud": gateway.url, "iat": now, "exp": now + 300}
    params = {
        "client_id": APPROVER,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": f"openid {NUMBER_SCOPE} {APPROVAL_SCOPE}",
        "state": "approval-state",
        "nonce": "approval-nonce",
        "prompt": "login consent",
        "login_hint": NUMBER,
        SIGN_REQUEST: signed({**sign_request, "sign_message": message}),
    }
    params.update(extra)
    return params


def to_idp(browser: Browser, mime_type: str = "text/plain", **extra: str) -> httpx2.Response:
    response = browser.authorize(**approval_params(browser.gateway, mime_type, **extra))
    assert response.status_code == 303, response.text
    return browser.http.get(response.headers["location"])


def approved(browser: Browser, mime_type: str = "text/plain", **extra: str) -> dict[str, str]:
    answer = post_to_acs(browser, to_idp(browser, mime_type, **extra))
    assert answer.status_code == 303, answer.text
    return browser.follow_to_client(answer)


def reset(fed: SignFederation) -> None:
    for idp in fed.idps.values():
        idp.reset()


@pytest.fixture(scope="module")
def gateway(store_url: str | None, federation: SignFederation) -> Iterator[LiveGateway]:
    """IdP A alone is allowed: the AuthnRequest goes straight to it."""
    with signing_gateway(store_url, federation) as live:
        introduce(live, *federation.idps.values())
        yield live


@pytest.fixture
def idp_a(federation: SignFederation, gateway: LiveGateway) -> Iterator[FakeIdP]:
    reset(federation)
    introduce(gateway, *federation.idps.values())  # another test's gateway may have been last
    yield federation.idps[IDP_A]
    reset(federation)


@pytest.fixture
def browser(gateway: LiveGateway) -> Iterator[Browser]:
    client = Browser(gateway)
    yield client
    client.close()


# -- the AuthnRequest -------------------------------------------------------------------------


def test_an_approval_sends_the_sign_message_encrypted_to_the_idp_and_completes(
    browser: Browser, idp_a: FakeIdP
) -> None:
    before = int(time.time())
    id_token = verified_id_token(browser.gateway, approved(browser), APPROVER)
    assert id_token[PNR_CLAIM] == NUMBER
    assert USER_SIGNATURE not in id_token  # an approval: no signature of ours to give
    assert "sid" not in id_token  # a sign flow makes no session
    assert before - 5 <= id_token["auth_time"] <= int(time.time())
    request = idp_a.requests[-1]  # the IdP verified our signature with python3-saml
    assert request.force_authn
    assert request.principal == {PNR: NUMBER}
    assert request.requester_id == APPROVER
    assert request.user_message is None
    message = request.sign_message
    assert message is not None
    assert message.must_show and message.mime_type == "text"
    assert message.encrypted and message.display_entity == IDP_A
    assert message.text == SV_TEXT  # the login's locale (sv); one message, no language tag
    # the IdP's first listed algorithm we support, with RSA-OAEP key transport
    assert message.algorithms == (AES128_GCM, RSA_OAEP)
    xml = request.xml
    assert base64.b64encode(SV_TEXT.encode()) not in xml
    root = etree.fromstring(xml)
    sign_message = root.find("samlp:Extensions/csig:SignMessage", NS)
    assert sign_message is not None and sign_message.get("MustShow") == "true"
    assert sign_message.find("csig:Message", NS) is None
    assert [etree.QName(child).localname for child in root][-1] == "Scoping"


def test_the_message_is_decryptable_only_with_the_idps_key(
    browser: Browser, idp_a: FakeIdP, federation: SignFederation
) -> None:
    """Decrypted here with the IdP's private key by xmlsec, independently of the double."""
    approved(browser, ui_locales="en")
    root = etree.fromstring(idp_a.requests[-1].xml)
    data = root.find(
        "samlp:Extensions/csig:SignMessage/csig:EncryptedMessage/xenc:EncryptedData", NS
    )
    assert data is not None
    manager = xmlsec.KeysManager()
    keys = federation.idps[IDP_A].encryption_keys
    assert keys is not None
    manager.add_key(
        xmlsec.Key.from_memory(keys.key_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    )
    message = xmlsec.EncryptionContext(manager).decrypt(data)
    assert message.tag == "{http://id.elegnamnden.se/csig/1.1/dss-ext/ns}Message"
    assert base64.b64decode(message.text).decode() == EN_TEXT
    wrong = xmlsec.KeysManager()
    wrong.add_key(
        xmlsec.Key.from_memory(
            federation.sp_encryption.key_pem.encode(), xmlsec.constants.KeyDataFormatPem
        )
    )
    with pytest.raises(xmlsec.Error):
        xmlsec.EncryptionContext(wrong).decrypt(
            etree.fromstring(idp_a.requests[-1].xml).find(
                "samlp:Extensions/csig:SignMessage/csig:EncryptedMessage/xenc:EncryptedData", NS
            )
        )


def test_an_idp_without_an_encryption_key_gets_the_message_in_the_clear_over_post(
    store_url: str | None, federation: SignFederation
) -> None:
    """HTTP-POST: the IdP verified the enveloped signature over the SignMessage it read."""
    reset(federation)
    idp_b = federation.idps[IDP_B]
    with signing_gateway(
        store_url, federation, allow={"entity_ids": [IDP_B]}, binding="post"
    ) as live:
        introduce(live, idp_b)
        browser = Browser(live)
        page = browser.authorize(**approval_params(live, "text/markdown"))
        assert page.status_code == 200, page.text
        action, fields = form_of(page.text)
        answer = post_to_acs(browser, browser.http.post(action, data=fields))
        assert "code" in browser.follow_to_client(answer)
        browser.close()
    request = idp_b.requests[-1]
    assert request.binding.endswith("HTTP-POST")
    message = request.sign_message
    assert message is not None and not message.encrypted
    assert message.display_entity is None
    assert (message.mime_type, message.text) == ("text/markdown", SV_TEXT)
    root = etree.fromstring(request.xml)
    plain = root.find("samlp:Extensions/csig:SignMessage/csig:Message", NS)
    assert plain is not None and base64.b64decode(plain.text or "").decode() == SV_TEXT
    assert [etree.QName(c).localname for c in root][:3] == ["Issuer", "Signature", "Extensions"]


def test_without_a_shared_algorithm_the_message_is_encrypted_with_aes256_gcm(
    store_url: str | None, federation: SignFederation
) -> None:
    reset(federation)
    idp_a = federation.idps[IDP_A]
    no_shared = replace(
        idp_a, encryption_methods=("http://www.w3.org/2001/04/xmlenc#tripledes-cbc",)
    )
    federation.write(no_shared, federation.idps[IDP_B], federation.idps[IDP_C])
    try:
        with signing_gateway(store_url, federation) as live:
            introduce(live, idp_a)
            browser = Browser(live)
            assert "code" in approved(browser)
            browser.close()
    finally:
        federation.write()
    message = idp_a.requests[-1].sign_message
    assert message is not None and message.algorithms == (AES256_GCM, RSA_OAEP)


# -- the proof --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "twist",
    [
        pytest.param(Twist(omit_sign_message_digest=True), id="no-digest"),
        pytest.param(
            Twist(sign_message_digest=f"{SHA256};{base64.b64encode(b'x' * 32).decode()}"),
            id="wrong-digest",
        ),
        pytest.param(
            Twist(
                sign_message_digest="http://www.w3.org/2001/04/xmlenc#sha512;"
                + base64.b64encode(hashlib.sha256(SV_TEXT.encode()).digest()).decode()
            ),
            id="unknown-algorithm",
        ),
        pytest.param(
            Twist(
                sign_message_digest=f"{SHA256};"
                + base64.b64encode(hashlib.sha256(EN_TEXT.encode()).digest()).decode()
            ),
            id="digest-of-another-message",
        ),
    ],
)
def test_an_answer_that_does_not_prove_the_message_was_shown_is_refused(
    browser: Browser, idp_a: FakeIdP, twist: Twist
) -> None:
    idp_a.twist = twist
    answer = post_to_acs(browser, to_idp(browser))
    assert_refused(answer)
    assert "Underskriften gjordes inte" in answer.text


def test_an_idp_that_ignores_must_show_is_refused(browser: Browser, idp_a: FakeIdP) -> None:
    """It cannot show Markdown yet answers with an assertion: no digest, no approval."""
    idp_a.shows_sign_messages = ("text",)
    idp_a.twist = Twist(ignore_must_show=True)
    try:
        answer = post_to_acs(browser, to_idp(browser, "text/markdown"))
    finally:
        idp_a.shows_sign_messages = ("text", "text/markdown")
    assert_refused(answer)


def test_the_digest_accepted_is_the_sha256_of_the_utf8_message(
    browser: Browser, idp_a: FakeIdP
) -> None:
    """What the IdP returned, computed here from the text we asked it to show, let the
    approval complete."""
    assert "code" in approved(browser)
    expected = f"{SHA256};{base64.b64encode(hashlib.sha256(SV_TEXT.encode()).digest()).decode()}"
    returned = idp_a.requests[-1].sign_message
    assert returned is not None and returned.digest == expected


def test_another_person_at_the_idp_gets_unknown_principal_and_no_approval(
    browser: Browser, idp_a: FakeIdP
) -> None:
    idp_a.person = {**PERSON, PNR: "199908072391"}
    answer = post_to_acs(browser, to_idp(browser))
    assert_refused(answer)
    assert "tillhör någon annan" in answer.text


def test_an_idp_ignoring_principal_selection_is_still_refused_for_another_person(
    browser: Browser, idp_a: FakeIdP
) -> None:
    idp_a.person = {**PERSON, PNR: "199908072391"}
    idp_a.twist = Twist(ignore_principal_selection=True)
    answer = post_to_acs(browser, to_idp(browser))
    assert_refused(answer)
    assert "annan person än den e-tjänsten bad om" in answer.text


# -- which IdPs, which requests ---------------------------------------------------------------


def test_only_idps_that_can_approve_are_offered(
    store_url: str | None, federation: SignFederation
) -> None:
    """All three are allowed for logins; C is not among sign_idps, so the IdP page lists A
    and B, says it is a signature, and C cannot be chosen by a forged form either."""
    reset(federation)
    with signing_gateway(
        store_url, federation, allow={"entity_ids": [IDP_A, IDP_B, IDP_C]}
    ) as live:
        introduce(live, *federation.idps.values())
        browser = Browser(live)
        page = browser.authorize(**approval_params(live))
        assert page.status_code == 200, page.text
        offered = re.findall(r'name="idp" value="([^"]+)"', page.text)
        assert sorted(offered) == [IDP_A, IDP_B]
        assert "Välj e-legitimation att skriva under med" in page.text
        form = {name: hidden_field(page.text, name) for name in ("login", "csrf")}
        forged = browser.http.post("/providers/sc/idp", data={**form, "idp": IDP_C})
        assert_refused(forged)
        assert federation.idps[IDP_C].requests == []
        browser.close()


def test_a_named_person_is_not_sent_to_an_idp_that_cannot_select_by_number(
    store_url: str | None, federation: SignFederation
) -> None:
    """The sign message must not be shown before the person is proven: an IdP that does not
    ask for PrincipalSelection cannot refuse another person first, so it is not offered."""
    reset(federation)
    idp_b = federation.idps[IDP_B]
    federation.write(federation.idps[IDP_A], replace(idp_b, principal_selection=()))
    try:
        with signing_gateway(store_url, federation, allow={"entity_ids": [IDP_A, IDP_B]}) as live:
            introduce(live, *federation.idps.values())
            browser = Browser(live)
            response = browser.authorize(**approval_params(live))
            assert response.status_code == 303, response.text  # A alone: straight to it
            assert response.headers["location"].startswith(federation.idps[IDP_A].base_url)
            browser.close()
    finally:
        federation.write()


def test_can_sign_only_approvals_it_can_show_through_idps_that_can(
    store_url: str | None, federation: SignFederation
) -> None:
    with signing_gateway(store_url, federation) as live:
        provider = saml_provider_of(live)
        assert provider.can_sign(approval())
        assert provider.can_sign(approval(mime_type="text/markdown"))
        assert not provider.can_sign(approval(tbs_data="VGhpcyBpcyB0aGUgZGF0YQ=="))
        assert not provider.can_sign(approval(mime_type="text/html"))
        assert not provider.logs_in
    with signing_gateway(store_url, federation, sign_idps={"entity_ids": [IDP_C]}) as live:
        assert not saml_provider_of(live).can_sign(approval())  # C is not allowed at all
    with signing_gateway(store_url, federation, signature_service=False) as live:
        assert not saml_provider_of(live).can_sign(approval())
        assert saml_provider_of(live).logs_in


def test_a_signature_service_logs_no_one_in(
    store_url: str | None, federation: SignFederation
) -> None:
    """A plain login is not offered the signature-service SP (logs_in False): with no other
    e-ID the e-service gets an error, and no IdP sees a request."""
    reset(federation)
    with signing_gateway(store_url, federation) as live:
        introduce(live, *federation.idps.values())
        browser = Browser(live)
        answer = browser.authorize(**browser.authorize_params("basic"))
        assert answer.status_code == 302, answer.text
        assert answer.headers["location"].startswith(REDIRECT_URI)
        callback = query_of(answer.headers["location"])
        assert "error" in callback and "code" not in callback, callback
        browser.close()
    assert all(idp.requests == [] for idp in federation.idps.values())


def test_the_metadata_of_a_signature_service_declares_it(
    store_url: str | None, federation: SignFederation
) -> None:
    category = "http://macedir.org/entity-category"
    for signature_service in (True, False):
        with signing_gateway(store_url, federation, signature_service=signature_service) as live:
            root = etree.fromstring(httpx2.get(f"{live.url}/providers/sc/metadata").content)
        values = {
            (v.text or "").strip()
            for v in root.findall(
                f"md:Extensions/mdattr:EntityAttributes/saml:Attribute[@Name='{category}']"
                "/saml:AttributeValue",
                NS,
            )
        }
        assert (SIGSERVICE in values) is signature_service
        descriptor = root.find("md:SPSSODescriptor", NS)
        assert descriptor is not None and descriptor.get("AuthnRequestsSigned") == "true"


def test_an_older_pending_request_record_still_loads() -> None:
    old = {
        "request_id": "_r",
        "login_id": "l",
        "idp": IDP_A,
        "loa": [LOA3],
        "force_authn": False,
        "requested_at": 1.0,
    }
    assert PendingRequest.loads(json.dumps(old).encode()).sign_message_digest is None


def test_the_idps_encryption_key_and_methods_are_read_from_its_metadata(
    federation: SignFederation,
) -> None:
    idp_a = federation.idps[IDP_A]
    read = read_federation(idp_a.metadata(), None).idps[IDP_A]
    keys = idp_a.encryption_keys
    assert keys is not None
    assert read.encryption_certificates == (cert_body(keys.cert_pem),)
    assert read.encryption_methods == (AES128_GCM, AES256_CBC, RSA_OAEP)
    assert read.selects_by_number
    assert (
        read_federation(federation.idps[IDP_B].metadata(), None).idps[IDP_B].encryption_certificates
        == ()
    )


def test_a_key_descriptor_without_use_serves_encryption_too(federation: SignFederation) -> None:
    """SAML metadata §2.4.1.1: no `use` means both."""
    entity = federation.idps[IDP_B].entity_descriptor()
    descriptor = entity.find("md:IDPSSODescriptor/md:KeyDescriptor", NS)
    assert descriptor is not None
    del descriptor.attrib["use"]
    read = read_federation(etree.tostring(entity), None).idps[IDP_B]
    assert read.encryption_certificates == (read.signing_keys[0].certificate_b64,)


@pytest.mark.parametrize(
    "deprecated",
    [
        "http://id.elegnamnden.se/loa/1.0/loa3-sigmessage",
        "http://id.swedenconnect.se/loa/1.0/uncertified-loa3-sigmessage",
        "http://id.elegnamnden.se/loa/1.0/eidas-nf-sub-sigm",
    ],
)
def test_the_deprecated_sigmessage_loa_uris_are_refused_in_the_configuration(
    federation: SignFederation, deprecated: str
) -> None:
    """Registry 1.7 dropped them and Regler §3.3 forbids them: signMessageDigest is the proof."""
    with pytest.raises(SettingsError, match="sigmessage"):
        base_settings(
            "http://127.0.0.1:1",
            providers={"sc": sign_provider(federation, loa=[LOA3, deprecated])},
        )


def test_no_user_message_goes_beside_the_sign_message(
    store_url: str | None, federation: SignFederation
) -> None:
    """Even to an IdP that shows user messages: the citizen is to read the sign message."""
    reset(federation)
    idp_a = federation.idps[IDP_A]
    showing = replace(idp_a, categories=(*idp_a.categories, SUPPORTS_USER_MESSAGE))
    federation.write(showing, federation.idps[IDP_B], federation.idps[IDP_C])
    user_message = json.dumps({"message#sv": base64.b64encode(b"Logga in").decode()})
    try:
        with signing_gateway(store_url, federation) as live:
            introduce(live, idp_a)
            browser = Browser(live)
            assert "code" in approved(
                browser, **{"https://id.oidc.se/param/userMessage": user_message}
            )
            browser.close()
    finally:
        federation.write()
    request = idp_a.requests[-1]
    assert request.sign_message is not None and request.sign_message.text == SV_TEXT
    assert request.user_message is None


def test_an_idp_with_a_weak_encryption_key_gets_the_message_in_the_clear_not_a_500(
    store_url: str | None, federation: SignFederation, tmp_path: Path
) -> None:
    """A 512-bit RSA key cannot carry an AES-256 key under RSA-OAEP, and would not protect an
    AES-128 one; like our own keys, an IdP's encryption key is used only when it is RSA of
    2048 bits or more."""
    weak = KeyPairPaths(tmp_path / "weak.key", tmp_path / "weak.crt")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:512",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=weak",
            "-keyout",
            str(weak.key),
            "-out",
            str(weak.cert),
        ],
        check=True,
        capture_output=True,
    )
    reset(federation)
    idp_a = federation.idps[IDP_A]
    own = idp_a.encryption_keys, idp_a.encryption_methods
    idp_a.encryption_keys, idp_a.encryption_methods = weak, ()  # AES-256-GCM, then
    federation.write()
    try:
        with signing_gateway(store_url, federation) as live:
            introduce(live, idp_a)
            browser = Browser(live)
            assert "code" in approved(browser)
            browser.close()
    finally:
        idp_a.encryption_keys, idp_a.encryption_methods = own
        federation.write()
    message = idp_a.requests[-1].sign_message
    assert message is not None and not message.encrypted and message.text == SV_TEXT


def test_sign_idps_can_narrow_the_approvers_by_an_entity_category(
    store_url: str | None, federation: SignFederation
) -> None:
    """Where a federation marks the IdPs that serve signature services (here with the
    sigservice URI, which EntCat §1.3 itself defines for SPs only), `sign_idps` selects them."""
    reset(federation)
    idp_b = federation.idps[IDP_B]
    marked = replace(idp_b, categories=(*idp_b.categories, SIGSERVICE))
    federation.write(federation.idps[IDP_A], marked, federation.idps[IDP_C])
    try:
        with signing_gateway(
            store_url,
            federation,
            allow={"entity_ids": [IDP_A, IDP_B, IDP_C]},
            sign_idps={"entity_categories": [SIGSERVICE]},
        ) as live:
            introduce(live, *federation.idps.values())
            browser = Browser(live)
            answer = post_to_acs(browser, to_idp(browser))  # B alone: no IdP page
            assert "code" in browser.follow_to_client(answer)
            browser.close()
    finally:
        federation.write()
    assert idp_b.requests[-1].sign_message is not None
    assert federation.idps[IDP_A].requests == federation.idps[IDP_C].requests == []


def test_discovery_advertises_approvals_before_the_federation_metadata_has_loaded(
    store_url: str | None, federation: SignFederation, tmp_path: Path
) -> None:
    """Discovery is built at start, when metadata from a URL has not arrived yet (here it
    never does): the SP is configured to approve, so signApproval is advertised, and a login
    meanwhile is told the e-ID is unavailable rather than offered nothing."""
    unreachable = {
        "url": f"http://127.0.0.1:{free_port()}/idp.xml",
        "cert": str(federation.federation.cert),
        "cache": str(tmp_path / "never-written.xml"),
    }
    with signing_gateway(store_url, federation, metadata=unreachable) as live:
        scopes = httpx2.get(f"{live.url}/.well-known/openid-configuration").json()
        assert APPROVAL_SCOPE in scopes["scopes_supported"]
        assert "https://id.oidc.se/scope/sign" not in scopes["scopes_supported"]
        browser = Browser(live)
        try:
            answer = browser.authorize(**approval_params(live))
        finally:
            browser.close()
    assert answer.status_code == 503, answer.text
    back = re.search(r'href="(http://127\.0\.0\.1:9000/callback[^"]*)"', answer.text)
    assert back is not None, answer.text
    assert query_of(unescape(back.group(1)))["error"] == "temporarily_unavailable"
