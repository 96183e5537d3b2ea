"""The simulator's `completionData.signature`/`ocspResponse` are BankID-shaped evidence that an
e-service verifies offline (bankid-2026-and-ciba.md §2), checked with our verifier and with
xmlsec1 and openssl as independent ones. The simulator is driven over its HTTP API."""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from starlette.testclient import TestClient

from providers.bankid.client import qr_payload
from providers.bankid.signature_check import SignatureNotVerified, verify_bankid_signature
from providers.bankid.simulator import API_PREFIX, BankIDSimulator
from providers.bankid.simulator_pki import Issued, Person, SimulatorPki
from tests.clock import ManualClock

PERSON = "196408233234"  # Ingrid Testsson on the simulated phone
VISIBLE = base64.b64encode("Jag ansöker om bygglov för Storgatan 1.".encode()).decode()
TBS = base64.b64encode(
    b"sha256:" + hashlib.sha256(b"the application").hexdigest().encode()
).decode()


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall_clock() -> ManualClock:
    return ManualClock(float(int(time.time())))  # OCSP times have whole seconds


@pytest.fixture
def simulator(wall_clock: ManualClock) -> BankIDSimulator:
    return BankIDSimulator(clock=MonotonicClock(), wall_clock=wall_clock)


@pytest.fixture
def api(simulator: BankIDSimulator) -> Iterator[TestClient]:
    with TestClient(simulator.app, raise_server_exceptions=False) as client:
        yield client


def completed(api: TestClient, endpoint: str = "sign", **body: Any) -> dict[str, Any]:
    """Start an order, scan its QR and approve it on the simulated phone, then collect."""
    started = api.post(f"{API_PREFIX}/{endpoint}", json={"endUserIp": "192.0.2.1", **body})
    assert started.status_code == 200, started.text
    order = started.json()
    qr = qr_payload(order["qrStartToken"], order["qrStartSecret"], 0)
    assert api.get("/phone", params={"qr": qr}).status_code == 200
    approve = {"orderRef": order["orderRef"], "personal_number": PERSON}
    assert api.post("/phone/approve", data=approve).status_code == 200
    done = api.post(f"{API_PREFIX}/collect", json={"orderRef": order["orderRef"]}).json()
    assert done["status"] == "complete", done
    return dict(done["completionData"])


def signed(api: TestClient) -> dict[str, Any]:
    return completed(api, userVisibleData=VISIBLE, userNonVisibleData=TBS)


def root_pem(api: TestClient) -> bytes:
    response = api.get("/member-banks-root.pem")
    assert response.status_code == 200
    return response.content


def with_altered_non_visible_data(signature_b64: str) -> str:
    xml = base64.b64decode(signature_b64)
    start = xml.index(b"<usrNonVisibleData>") + len(b"<usrNonVisibleData>")
    altered = xml[:start] + (b"A" if xml[start : start + 1] != b"A" else b"B") + xml[start + 1 :]
    return base64.b64encode(altered).decode()


def test_a_simulator_signature_verifies_with_the_simulator_root(
    api: TestClient, wall_clock: ManualClock
) -> None:
    evidence = signed(api)
    facts = verify_bankid_signature(
        evidence["signature"],
        evidence["ocspResponse"],
        root_pem(api),
        expected_visible=VISIBLE,
        expected_non_visible=TBS,
    )
    assert (facts.personal_number, facts.given_name, facts.surname) == (
        PERSON,
        "Ingrid",
        "Testsson",
    )
    assert facts.func_id == "Signing"
    assert facts.signed_at == datetime.datetime.fromtimestamp(wall_clock(), datetime.UTC)
    assert "TEST" in facts.relying_party


def test_the_root_is_a_self_signed_simulated_member_banks_ca(api: TestClient) -> None:
    root = x509.load_pem_x509_certificate(root_pem(api))
    assert root.subject == root.issuer
    assert "BankID Member Banks CA (simulated)" in root.subject.rfc4514_string()
    assert "TEST" in root.subject.rfc4514_string()
    assert api.get("/member-banks-root.pem").content == root_pem(api)  # one root per simulator


def test_the_user_certificate_names_the_person_and_the_ocsp_service(api: TestClient) -> None:
    evidence = signed(api)
    user = verify_bankid_signature(
        evidence["signature"], evidence["ocspResponse"], root_pem(api)
    ).certificate
    assert user.not_valid_after_utc - user.not_valid_before_utc >= datetime.timedelta(days=365)
    access = user.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [a.access_method for a in access] == [x509.oid.AuthorityInformationAccessOID.OCSP]


def test_one_altered_byte_in_usr_non_visible_data_fails(api: TestClient) -> None:
    evidence = signed(api)
    altered = with_altered_non_visible_data(evidence["signature"])
    with pytest.raises(SignatureNotVerified, match="XML signature does not verify"):
        verify_bankid_signature(altered, evidence["ocspResponse"], root_pem(api))


def test_a_different_root_fails(api: TestClient, wall_clock: ManualClock) -> None:
    evidence = signed(api)
    other_root = SimulatorPki(wall_clock).root_pem()
    with pytest.raises(SignatureNotVerified, match="pinned root"):
        verify_bankid_signature(evidence["signature"], evidence["ocspResponse"], other_root)


def test_the_ocsp_nonce_binds_the_response_to_this_signature(api: TestClient) -> None:
    """The same person's next signature has the same certificate: only the nonce tells."""
    first, second = signed(api), signed(api)
    nonce = (
        ocsp.load_der_ocsp_response(base64.b64decode(first["ocspResponse"]))
        .extensions.get_extension_for_class(x509.OCSPNonce)
        .value.nonce
    )
    sent = first["signature"].encode()
    assert len(nonce) == 32
    assert nonce[:20] == hashlib.sha1(sent, usedforsecurity=False).digest()
    with pytest.raises(SignatureNotVerified, match="another signature"):
        verify_bankid_signature(second["signature"], first["ocspResponse"], root_pem(api))


@pytest.mark.parametrize(("endpoint", "func_id"), [("sign", "Signing"), ("auth", "Identification")])
def test_func_id_says_which_endpoint_started_the_order(
    api: TestClient, endpoint: str, func_id: str
) -> None:
    evidence = completed(api, endpoint, userVisibleData=VISIBLE)
    facts = verify_bankid_signature(
        evidence["signature"], evidence["ocspResponse"], root_pem(api), expected_visible=VISIBLE
    )
    assert facts.func_id == func_id
    assert facts.non_visible_data is None


def test_an_identification_without_texts_signs_no_texts(api: TestClient) -> None:
    evidence = completed(api, "auth")
    facts = verify_bankid_signature(evidence["signature"], evidence["ocspResponse"], root_pem(api))
    assert (facts.visible_data, facts.non_visible_data) == (None, None)


def test_the_texts_must_be_those_sent(api: TestClient) -> None:
    evidence = signed(api)
    other = base64.b64encode(b"another document").decode()
    with pytest.raises(SignatureNotVerified, match="usrNonVisibleData"):
        verify_bankid_signature(
            evidence["signature"], evidence["ocspResponse"], root_pem(api), None, other
        )


def test_certificates_are_judged_at_the_signing_time(
    api: TestClient, wall_clock: ManualClock
) -> None:
    evidence = signed(api)
    produced = ocsp.load_der_ocsp_response(base64.b64decode(evidence["ocspResponse"]))
    assert produced.produced_at_utc.timestamp() == wall_clock()  # the simulator's clock
    wall_clock.advance(2 * 365 * 86400)  # archived: the user certificate expired since
    args = (evidence["signature"], evidence["ocspResponse"], root_pem(api))
    verify_bankid_signature(*args)
    later = datetime.datetime.fromtimestamp(wall_clock(), datetime.UTC)
    with pytest.raises(SignatureNotVerified, match="not valid at"):
        verify_bankid_signature(*args, at=later)


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE Signature [<!ENTITY x "y">]>'
        b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">&x;</Signature>',
        b"<Signature/>",
        b"not xml",
    ],
)
def test_hostile_or_foreign_xml_is_refused(api: TestClient, xml: bytes) -> None:
    evidence = signed(api)
    with pytest.raises(SignatureNotVerified):
        verify_bankid_signature(
            base64.b64encode(xml).decode(), evidence["ocspResponse"], root_pem(api)
        )


def test_a_second_bank_id_signed_data_is_refused(api: TestClient) -> None:
    """Signature wrapping: a payload beside the signed one must not be read."""
    evidence = signed(api)
    xml = base64.b64decode(evidence["signature"])
    start = xml.index(b"<bankIdSignedData")
    end = xml.index(b"</bankIdSignedData>") + len(b"</bankIdSignedData>")
    copy = xml[start:end].replace(b'Id="bidSignedData"', b'Id="other"')
    wrapped = base64.b64encode(xml[:end] + copy + xml[end:]).decode()
    with pytest.raises(SignatureNotVerified, match="exactly one"):
        verify_bankid_signature(wrapped, evidence["ocspResponse"], root_pem(api))


def test_garbage_evidence_is_refused_not_crashed(api: TestClient) -> None:
    evidence = signed(api)
    for signature, response in [
        ("%%%", evidence["ocspResponse"]),
        (evidence["signature"], base64.b64encode(b"not der").decode()),
    ]:
        with pytest.raises(SignatureNotVerified):
            verify_bankid_signature(signature, response, root_pem(api))
    with pytest.raises(SignatureNotVerified, match="PEM"):
        verify_bankid_signature(evidence["signature"], evidence["ocspResponse"], b"no root")


def flipped(data: bytes, position: int) -> str:
    return base64.b64encode(
        data[:position] + bytes([data[position] ^ 0x41]) + data[position + 1 :]
    ).decode()


def test_any_corrupted_byte_is_refused_never_crashes(api: TestClient) -> None:
    """Whatever a byte of the evidence turns into (a certificate's key type, an algorithm
    identifier, a length), the answer is SignatureNotVerified."""
    evidence = signed(api)
    root = root_pem(api)
    xml = base64.b64decode(evidence["signature"])
    der = base64.b64decode(evidence["ocspResponse"])
    for position in range(0, len(der), 3):
        with pytest.raises(SignatureNotVerified):
            verify_bankid_signature(evidence["signature"], flipped(der, position), root)
    for position in range(xml.index(b"<X509Certificate>"), len(xml), 11):
        with pytest.raises(SignatureNotVerified):
            verify_bankid_signature(flipped(xml, position), evidence["ocspResponse"], root)


def test_a_certificate_of_an_unknown_version_is_refused(api: TestClient) -> None:
    evidence = signed(api)
    xml = base64.b64decode(evidence["signature"])
    start = xml.index(b"<X509Certificate>") + len(b"<X509Certificate>")
    end = xml.index(b"</X509Certificate>")
    der = bytearray(base64.b64decode(xml[start:end]))
    assert der[8:13] == b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2: v3
    der[12] = 18
    bad = xml[:start] + base64.b64encode(bytes(der)) + xml[end:]
    with pytest.raises(SignatureNotVerified, match="malformed"):
        verify_bankid_signature(
            base64.b64encode(bad).decode(), evidence["ocspResponse"], root_pem(api)
        )


@pytest.mark.parametrize(
    ("signed_with", "weaker"),
    [
        (b"xmldsig-more#rsa-sha256", b"xmldsig#rsa-sha1"),
        (b"xmlenc#sha256", b"xmldsig#sha1"),
    ],
)
def test_weaker_algorithms_are_refused(api: TestClient, signed_with: bytes, weaker: bytes) -> None:
    evidence = signed(api)
    xml = base64.b64decode(evidence["signature"])
    assert signed_with in xml
    bad = base64.b64encode(xml.replace(signed_with, weaker)).decode()
    with pytest.raises(SignatureNotVerified, match=r"not allowed|weaker"):
        verify_bankid_signature(bad, evidence["ocspResponse"], root_pem(api))


def ocsp_signed_by(
    signer: Issued, evidence: dict[str, Any], pki: SimulatorPki, status: ocsp.OCSPCertStatus
) -> str:
    """An OCSP response for the evidence's certificate, with its nonce, made by `signer`."""
    user = verify_bankid_signature(
        evidence["signature"], evidence["ocspResponse"], pki.root_pem()
    ).certificate
    now = pki.now()
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    nonce = hashlib.sha1(evidence["signature"].encode(), usedforsecurity=False).digest()
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=user,
            issuer=pki.customer_ca.certificate,
            algorithm=hashes.SHA256(),
            cert_status=status,
            this_update=now,
            next_update=None,
            revocation_time=now if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, signer.certificate)
        .certificates([signer.certificate])
        .add_extension(x509.OCSPNonce(nonce + bytes(12)), critical=False)
        .sign(signer.key, hashes.SHA256())
    )
    return base64.b64encode(response.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize(
    ("signer", "status", "refusal"),
    [
        ("responder", ocsp.OCSPCertStatus.REVOKED, "not good"),
        ("another CA's responder", ocsp.OCSPCertStatus.GOOD, "not the user's CA's"),
        ("the issuing CA itself", ocsp.OCSPCertStatus.GOOD, "not the user's CA's"),
        ("another user of that CA", ocsp.OCSPCertStatus.GOOD, "not for OCSP signing"),
    ],
)
def test_an_ocsp_response_must_be_good_and_from_the_users_ca_responder(
    api: TestClient,
    simulator: BankIDSimulator,
    wall_clock: ManualClock,
    signer: str,
    status: ocsp.OCSPCertStatus,
    refusal: str,
) -> None:
    evidence = signed(api)
    pki = simulator.evidence.pki
    signers = {
        "responder": pki.responder,
        "another CA's responder": SimulatorPki(wall_clock).responder,
        "the issuing CA itself": pki.customer_ca,
        "another user of that CA": pki.user(Person("199908072391", "Erik", "Provsson")),
    }
    genuine = ocsp_signed_by(pki.responder, evidence, pki, ocsp.OCSPCertStatus.GOOD)
    verify_bankid_signature(evidence["signature"], genuine, root_pem(api))
    forged = ocsp_signed_by(signers[signer], evidence, pki, status)
    with pytest.raises(SignatureNotVerified, match=refusal):
        verify_bankid_signature(evidence["signature"], forged, root_pem(api))


def test_binary_non_visible_data_is_signed_verbatim(api: TestClient) -> None:
    """userNonVisibleData is any Base64 (BankID: "base64, not shown"), such as the digest of a
    document an e-service sends as tbs_data; only the visible text must be UTF-8."""
    digest = base64.b64encode(hashlib.sha256(b"the application, as a PDF").digest()).decode()
    evidence = completed(api, userVisibleData=VISIBLE, userNonVisibleData=digest)
    facts = verify_bankid_signature(
        evidence["signature"], evidence["ocspResponse"], root_pem(api), VISIBLE, digest
    )
    assert facts.non_visible_data == digest
    refused = api.post(
        f"{API_PREFIX}/sign",
        json={"endUserIp": "192.0.2.1", "userVisibleData": digest},  # not UTF-8: refused
    )
    assert refused.json()["errorCode"] == "invalidParameters"
