"""The simulated wallet refuses a request object a HAIP 1.0 wallet refuses (OpenID4VP 1.0 §5,
§5.9.3, §5.10, §8.3; HAIP §5): one test per check. A refused request is not presented; when its
payload named a response_uri, the wallet posts `error=invalid_request` with the `state`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from providers.eudi_wallet.simulator import WalletSimulator
from providers.eudi_wallet.simulator_request import RequestRefused
from tests.doubles.wallet_pki import Issued, issue
from tests.harness import ServedApp, free_port
from tests.providers.eudi_wallet.relying_party import (
    DELETE,
    RelyingParty,
    b64url,
    other_access_certificate,
)


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[RelyingParty]:
    with RelyingParty(tmp_path) as relying_party:
        yield relying_party


@pytest.fixture
def simulator(verifier: RelyingParty) -> Iterator[WalletSimulator]:
    port = free_port()
    wallet = WalletSimulator(
        trusted_access_cas=[verifier.access_ca.certificate],
        public_url=f"http://127.0.0.1:{port}",
    )
    with ServedApp(wallet.app, port):
        yield wallet


def _client_id(issued: Issued) -> str:
    der = issued.certificate.public_bytes(serialization.Encoding.DER)
    return "x509_hash:" + b64url(hashlib.sha256(der).digest())


def _sign_as(verifier: RelyingParty, issued: Issued, *chain: Issued) -> None:
    verifier.signing_key = issued.key
    verifier.x5c = [issued.der_b64, *(c.der_b64 for c in chain)]
    verifier.client_id = _client_id(issued)


def _untrusted_chain(verifier: RelyingParty, tmp_path: Path) -> None:
    _ca, access = other_access_certificate(tmp_path)
    _sign_as(verifier, access)


def _self_signed(verifier: RelyingParty, tmp_path: Path) -> None:
    _sign_as(verifier, issue("Self-signed e-service"))


def _anchor_in_x5c(verifier: RelyingParty, tmp_path: Path) -> None:
    verifier.x5c = [verifier.x5c[0], verifier.access_ca.der_b64]


def _other_key(verifier: RelyingParty, tmp_path: Path) -> None:
    verifier.signing_key = issue("Someone else").key


def _changes(**changes: object) -> Callable[[RelyingParty, Path], None]:
    def bend(verifier: RelyingParty, tmp_path: Path) -> None:
        verifier.payload_changes.update(changes)

    return bend


def _no_wallet_nonce(verifier: RelyingParty, tmp_path: Path) -> None:
    verifier.echo_wallet_nonce = False


def _metadata(**members: object) -> Callable[[RelyingParty, Path], None]:
    def bend(verifier: RelyingParty, tmp_path: Path) -> None:
        metadata = verifier.payload(None)["client_metadata"]
        key = verifier.public_enc_jwk()
        for name, value in members.items():
            if name.startswith("key_"):
                if value is DELETE:
                    key.pop(name[4:])
                else:
                    key[name[4:]] = value
            else:
                metadata[name] = value
        metadata["jwks"] = {"keys": [key]}
        verifier.payload_changes["client_metadata"] = metadata

    return bend


def _dcql(**members: object) -> Callable[[RelyingParty, Path], None]:
    def bend(verifier: RelyingParty, tmp_path: Path) -> None:
        verifier.dcql["credentials"][0].update(members)

    return bend


def _header(**changes: object) -> Callable[[RelyingParty, Path], None]:
    def bend(verifier: RelyingParty, tmp_path: Path) -> None:
        verifier.header_changes.update(changes)

    return bend


def _unsigned(verifier: RelyingParty, tmp_path: Path) -> None:
    verifier.algorithm = "none"


REFUSALS = {
    "typ is not oauth-authz-req+jwt": (_header(typ="JWT"), "typ"),
    "alg none": (_unsigned, "ES256"),
    "signed by another key than x5c[0]": (_other_key, "signature"),
    "x5c[0] not under a trusted access CA": (_untrusted_chain, "trusted Access CA"),
    "x5c[0] self-signed": (_self_signed, "self-signed"),
    "x5c carries the trust anchor": (_anchor_in_x5c, "trust anchor"),
    "client_id not x509_hash of x5c[0]": (
        _changes(client_id="x509_hash:" + b64url(b"\0" * 32)),
        "client_id",
    ),
    "wallet_nonce not echoed": (_no_wallet_nonce, "wallet_nonce"),
    "wallet_nonce altered": (_changes(wallet_nonce="other"), "wallet_nonce"),
    "response_type not vp_token": (_changes(response_type="vp_token id_token"), "response_type"),
    "response_mode direct_post": (_changes(response_mode="direct_post"), "response_mode"),
    "response_mode fragment": (_changes(response_mode="fragment"), "response_mode"),
    "redirect_uri beside response_uri": (_changes(redirect_uri="http://x/"), "redirect_uri"),
    "no nonce": (_changes(nonce=DELETE), "nonce"),
    "no aud": (_changes(aud=DELETE), "aud"),
    "another aud": (_changes(aud="https://wallet.example"), "aud"),
    "exp passed": (_changes(exp=int(time.time()) - 10), "expired"),
    "transaction_data": (_changes(transaction_data=["e30"]), "transaction_data"),
    "no dcql_query": (_changes(dcql_query=DELETE), "dcql_query"),
    "scope beside dcql_query": (_changes(scope="openid"), "dcql_query"),
    "dcql asks for mdoc only": (_dcql(format="mso_mdoc"), "dc\\+sd-jwt"),
    "dcql asks for another vct": (_dcql(meta={"vct_values": ["urn:other:1"]}), "urn:eudi:pid:1"),
    "dcql claims path is not an array": (_dcql(claims=[{"path": "given_name"}]), "path"),
    "no client_metadata": (_changes(client_metadata=DELETE), "ECDH-ES"),
    "encryption key without kid": (_metadata(key_kid=DELETE), "kid"),
    "encryption key is RSA-OAEP": (_metadata(key_alg="RSA-OAEP-256"), "ECDH-ES"),
    "encryption key on P-384": (_metadata(key_crv="P-384"), "P-256"),
    "encryption key for signing": (_metadata(key_use="sig"), "ECDH-ES"),
    "no A*GCM offered": (
        _metadata(encrypted_response_enc_values_supported=["A128CBC-HS256"]),
        "A\\*GCM",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_request_failing_a_check_is_refused_with_invalid_request(
    case: str, verifier: RelyingParty, simulator: WalletSimulator, tmp_path: Path
) -> None:
    bend, reason = REFUSALS[case]
    bend(verifier, tmp_path)
    with pytest.raises(RequestRefused, match=reason):
        await simulator.present(verifier.link(), "se")
    assert len(verifier.posts) == 1
    post = verifier.posts[0]
    assert (post["error"], post["state"]) == ("invalid_request", verifier.state)
    assert "vp_token" not in post and "response" not in post


async def test_a_client_id_other_than_the_links_is_refused(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """OID4VP §5.10: the client_id in the link and in the request object are identical."""
    with pytest.raises(RequestRefused, match="link's"):
        await simulator.present(verifier.link(client_id="x509_hash:other"), "se")
    assert verifier.posts[0]["error"] == "invalid_request"


async def test_no_response_uri_means_nothing_is_posted(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    verifier.payload_changes["response_uri"] = DELETE
    with pytest.raises(RequestRefused, match="response_uri"):
        await simulator.present(verifier.link(), "se")
    assert verifier.posts == []


async def test_a_request_object_of_another_media_type_is_refused(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    verifier.content_type = "application/jwt"
    with pytest.raises(RequestRefused, match="oauth-authz-req"):
        await simulator.present(verifier.link(), "se")
    assert verifier.posts == []


@pytest.mark.parametrize(
    "link",
    [
        "https://example.org/?client_id=a&request_uri=http%3A%2F%2F127.0.0.1%2F",
        "openid4vp://?client_id=a",
        "openid4vp://?request_uri=http%3A%2F%2F127.0.0.1%2F",
        "openid4vp://?client_id=a&request_uri=file%3A%2F%2F%2Fetc%2Fpasswd",
        "openid4vp://?client_id=a&request_uri=http%3A%2F%2F127.0.0.1%2F&request_uri_method=PUT",
        "openid4vp://?client_id=a&client_id=b&request_uri=http%3A%2F%2F127.0.0.1%2F",
        "openid4vp://?client_id=a&request_uri=http%3A%2F%2F127.0.0.1%3A1%2F",
    ],
)
async def test_a_link_that_is_not_a_request_by_reference_is_refused(
    link: str, simulator: WalletSimulator
) -> None:
    with pytest.raises(RequestRefused):
        await simulator.present(link, "se")


async def test_an_access_certificate_under_an_intermediate_ca_is_accepted(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """HAIP §5: x5c is the access certificate and its intermediates, without the root."""
    intermediate = issue("Test Access Sub-CA", verifier.access_ca, ca=True)
    _sign_as(verifier, issue("E-service under a sub-CA", intermediate), intermediate)
    assert await simulator.present(verifier.link(), "se") == {}
    assert "response" in verifier.posts[0]
