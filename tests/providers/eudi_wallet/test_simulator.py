"""The wallet simulator against a test verifier (PyJWT + jwcrypto) over loopback HTTP: what it
presents (OpenID4VP 1.0 §8.3 encrypted response, RFC 9901 SD-JWT+KB, SD-JWT VC), what it
discloses (DCQL), what its status lists say (TSL -14), and each twist it can bend an answer by."""

from __future__ import annotations

import base64
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx2
import jwt
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from providers.eudi_wallet.config import SIMULATOR_ORGANISATION, EudiWalletConfig
from providers.eudi_wallet.errors import UntrustedIssuer
from providers.eudi_wallet.simulator import SimulatorError, VerifierRefused, WalletSimulator
from providers.eudi_wallet.simulator_holder import Twist
from providers.eudi_wallet.simulator_people import PEOPLE
from providers.eudi_wallet.simulator_pki import shared_test_pki, write_demo_files
from providers.eudi_wallet.simulator_request import RequestRefused
from providers.eudi_wallet.trust import TrustList
from tests.clock import ManualClock
from tests.harness import ServedApp, free_port
from tests.providers.eudi_wallet.relying_party import RelyingParty
from tests.providers.eudi_wallet.sd_jwt_check import b64decode, digest, unpack


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


async def test_a_share_is_an_encrypted_pid_with_key_binding(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """OID4VP §8.3, HAIP §5: ECDH-ES with the request key's kid, A256GCM when offered; the
    payload carries vp_token by credential query id and the state."""
    answer = await simulator.present(verifier.link(), "se")
    assert answer == {}
    assert verifier.fetches[0]["method"] == "POST" and verifier.fetches[0]["wallet_nonce"]
    header, payload = verifier.decrypted(verifier.posts[-1])
    assert (header["alg"], header["enc"], header["kid"]) == (
        "ECDH-ES",
        "A256GCM",
        verifier.kid,
    )
    assert payload["state"] == verifier.state
    assert list(payload["vp_token"]) == ["pid"] and len(payload["vp_token"]["pid"]) == 1
    vp = unpack(payload["vp_token"]["pid"][0])
    assert vp.header["typ"] == "dc+sd-jwt" and len(vp.header["x5c"]) == 1
    vp.signer.verify_directly_issued_by(shared_test_pki().pid_ca.certificate)
    assert vp.payload["vct"] == "urn:eudi:pid:1" and vp.payload["_sd_alg"] == "sha-256"
    assert vp.payload["iat"] <= time.time() < vp.payload["exp"]
    assert vp.payload["status"]["status_list"]["uri"].startswith(simulator.public_url or "")
    assert vp.unreferenced == []
    kb = vp.kb_claims(verifier.client_id)
    assert kb["nonce"] == verifier.nonce and kb["sd_hash"] == digest(vp.sd_jwt)
    assert abs(kb["iat"] - time.time()) < 60
    assert jwt.get_unverified_header(vp.kb_jwt)["typ"] == "kb+jwt"


async def test_only_the_requested_claims_are_disclosed(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    await simulator.present(verifier.link(), "se")
    vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
    disclosed = {k for k in vp.claims if k not in ("vct", "iat", "exp", "cnf", "status")}
    assert disclosed == {
        "given_name",
        "family_name",
        "issuing_country",
        "personal_administrative_number",
    }
    assert vp.claims["personal_administrative_number"] == "199908072391"
    assert len(vp.disclosures) == 4


async def test_nested_members_and_array_elements_are_disclosed_recursively(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """RFC 9901 §4.2.6: place_of_birth's members and each nationality are disclosures of their
    own; asking for one element discloses that element only."""
    verifier.dcql["credentials"][0]["claims"] = [
        {"path": ["place_of_birth"]},
        {"path": ["nationalities", 1]},
    ]
    await simulator.present(verifier.link(), "fi")
    vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
    assert vp.claims["place_of_birth"] == {
        "country": "FI",
        "region": "Uusimaa",
        "locality": "Espoo",
    }
    assert vp.claims["nationalities"] == ["SE"]
    assert len(vp.disclosures) == 6  # the object, its three members, the array, one element
    assert vp.unreferenced == []


async def test_the_first_satisfiable_claim_set_is_chosen(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """OID4VP §6.4.1: a PID without personal_administrative_number answers the fallback set."""
    verifier.dcql["credentials"][0]["claims"] = [
        {"id": "gn", "path": ["given_name"]},
        {"id": "pan", "path": ["personal_administrative_number"]},
        {"id": "bd", "path": ["birthdate"]},
    ]
    verifier.dcql["credentials"][0]["claim_sets"] = [["gn", "pan"], ["gn", "bd"]]
    await simulator.present(verifier.link(), "se-no-number")
    vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
    assert "personal_administrative_number" not in vp.claims
    assert vp.claims["birthdate"] == "1985-06-15"


async def test_a_pid_lacking_a_requested_claim_is_not_offered(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    with pytest.raises(SimulatorError, match="personal_administrative_number"):
        await simulator.present(verifier.link(), "se-no-number")
    assert verifier.posts == []
    await simulator.present(verifier.link(), "se-no-number", Twist.SHARE_WHAT_IT_HAS)
    vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
    assert "personal_administrative_number" not in vp.claims
    assert vp.claims["given_name"] == "David"


async def test_present_raises_when_the_response_uri_refuses(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    verifier.response_status = 400
    with pytest.raises(VerifierRefused) as refused:
        await simulator.present(verifier.link(), "se")
    assert refused.value.status_code == 400 and "invalid_request" in refused.value.body
    assert simulator.last_form == verifier.posts[-1]  # a test may replay it


async def test_decline_posts_access_denied_with_the_state(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """OID4VP §8.5."""
    await simulator.decline(verifier.link())
    assert verifier.posts == [{"error": "access_denied", "state": verifier.state}]


async def test_the_same_device_answer_returns_its_redirect_uri(
    tmp_path: Path, simulator: WalletSimulator
) -> None:
    with RelyingParty(tmp_path, same_device=True) as same_device:
        simulator.trusted_access_cas.append(same_device.access_ca.certificate)
        answer = await simulator.present(same_device.link(), "se")
    assert answer == {"redirect_uri": f"{same_device.url}/done?response_code=abc"}


async def test_a_get_request_uri_is_fetched_with_get(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    verifier.echo_wallet_nonce = False  # no wallet_nonce was sent, so none is echoed
    await simulator.present(verifier.link(method="get"), "se")
    assert verifier.fetches == [{"method": "GET"}]


def _statuses(token: str, uri: str) -> bytes:
    """Token Status List -14 §5: verified with the x5c leaf, sub = the URI, zlib + base64url."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "statuslist+jwt"
    leaf = base64.b64decode(header["x5c"][0])
    certificate = x509.load_der_x509_certificate(leaf)
    certificate.verify_directly_issued_by(shared_test_pki().pid_ca.certificate)
    claims = jwt.decode(token, certificate.public_key(), algorithms=["ES256"])
    assert claims["sub"] == uri and claims["ttl"] > 0 and claims["exp"] > claims["iat"]
    assert claims["status_list"]["bits"] == 2
    return zlib.decompress(b64decode(claims["status_list"]["lst"]))


def _status_at(raw: bytes, idx: int) -> int:
    return (raw[idx // 4] >> ((idx % 4) * 2)) & 0b11


async def test_the_status_list_marks_revoked_and_suspended_pids(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    expected = {"se": 0, "se-revoked": 1, "se-suspended": 2, "fi": 0}
    references = {}
    for person in expected:
        await simulator.present(verifier.link(), person)
        vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
        references[person] = vp.payload["status"]["status_list"]
    async with httpx2.AsyncClient(trust_env=False) as http:
        for person, status in expected.items():
            answer = await http.get(references[person]["uri"])
            assert answer.headers["content-type"] == "application/statuslist+jwt"
            raw = _statuses(answer.text, references[person]["uri"])
            assert _status_at(raw, references[person]["idx"]) == status, person
        assert (await http.get(f"{simulator.public_url}/status-lists/9")).status_code == 404
    assert references["fi"]["uri"] != references["se"]["uri"]


async def test_a_revoked_pid_is_on_a_list_fetched_before_it_was_issued(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """A verifier caches a list for its ttl: a revoked person's PID must not look valid in a
    list fetched (and cached) before that PID was issued."""
    uri = f"{simulator.public_url}/status-lists/1"
    async with httpx2.AsyncClient(trust_env=False) as http:
        raw = _statuses((await http.get(uri)).text, uri)
    for person, status in (("se-revoked", 1), ("se-suspended", 2)):
        await simulator.present(verifier.link(), person)
        vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
        assert _status_at(raw, vp.payload["status"]["status_list"]["idx"]) == status


async def test_indices_are_random_and_unique(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    """HAIP §6.1: an unpredictable index per credential."""
    holder = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}  # never used to verify here
    indices = {
        simulator.issuer.issue(PEOPLE["se"], holder, "http://x").status_idx for _ in range(50)
    }
    assert len(indices) == 50 and indices != set(range(min(indices), min(indices) + 50))


# -- twists: each a presentation a verifier must refuse ---------------------------------------


async def _bent(verifier: RelyingParty, simulator: WalletSimulator, twist: Twist) -> str:
    await simulator.present(verifier.link(), "se", twist)
    return str(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])


async def test_twist_kb_signed_with_another_key(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    vp = unpack(await _bent(verifier, simulator, Twist.KB_OTHER_KEY))
    with pytest.raises(jwt.InvalidSignatureError):
        vp.kb_claims(verifier.client_id)


async def test_twist_wrong_nonce_and_wrong_aud(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    vp = unpack(await _bent(verifier, simulator, Twist.WRONG_NONCE))
    assert vp.kb_claims(verifier.client_id)["nonce"] != verifier.nonce
    vp = unpack(await _bent(verifier, simulator, Twist.WRONG_AUD))
    with pytest.raises(jwt.InvalidAudienceError):
        vp.kb_claims(verifier.client_id)


async def test_twist_stale_missing_and_unsigned_key_binding(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    vp = unpack(await _bent(verifier, simulator, Twist.STALE_KB))
    assert time.time() - vp.kb_claims(verifier.client_id)["iat"] >= 3600
    assert (await _bent(verifier, simulator, Twist.NO_KEY_BINDING)).endswith("~")
    vp = unpack(await _bent(verifier, simulator, Twist.KB_ALG_NONE))
    assert jwt.get_unverified_header(vp.kb_jwt)["alg"] == "none"


async def test_twist_unencrypted_response(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    await simulator.present(verifier.link(), "se", Twist.UNENCRYPTED)
    assert set(verifier.posts[-1]) == {"vp_token", "state"}


async def test_twist_altered_and_added_disclosures_hash_to_nothing(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    for twist in (Twist.ALTERED_DISCLOSURE, Twist.ADDED_DISCLOSURE):
        vp = unpack(await _bent(verifier, simulator, twist))
        assert len(vp.unreferenced) == 1, twist
        assert vp.kb_claims(verifier.client_id)["sd_hash"] == digest(vp.sd_jwt)


async def test_twist_expired_pid_and_untrusted_issuer(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    vp = unpack(await _bent(verifier, simulator, Twist.EXPIRED_PID))
    assert vp.payload["exp"] < time.time()
    vp = unpack(await _bent(verifier, simulator, Twist.UNTRUSTED_ISSUER))
    with pytest.raises((InvalidSignature, ValueError, TypeError)):
        vp.signer.verify_directly_issued_by(shared_test_pki().pid_ca.certificate)


async def test_a_twist_bends_the_next_answer_only(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    simulator.next_twist = Twist.UNENCRYPTED
    await simulator.present(verifier.link(), "se")
    await simulator.present(verifier.link(), "se")
    assert "vp_token" in verifier.posts[0] and "response" in verifier.posts[1]


# -- the test PKI -------------------------------------------------------------------------------


def test_every_simulator_certificate_is_marked_test() -> None:
    pki = shared_test_pki()
    issued = [pki.pid_ca, *pki.pid_signers.values(), pki.access_ca, pki.access, pki.rogue_signer]
    for item in issued:
        names = item.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert [n.value for n in names] == [SIMULATOR_ORGANISATION]
    assert pki.access.certificate.issuer == pki.access_ca.certificate.subject
    pki.access.certificate.verify_directly_issued_by(pki.access_ca.certificate)


def test_the_demo_files_are_refused_in_production(tmp_path: Path) -> None:
    key_path, cert_path, trust_list_path = write_demo_files(tmp_path / "keys")
    config = EudiWalletConfig(
        type="eudi_wallet",
        access_certificate={"key": key_path, "cert": cert_path},
        trusted_issuers=[trust_list_path],
    )
    assert config.refused_in_production("wallet") is not None
    assert len(x509.load_pem_x509_certificates(cert_path.read_bytes())) == 1  # no root
    assert key_path.stat().st_mode & 0o077 == 0


def test_the_pid_signers_chain_to_the_demo_trust_list(tmp_path: Path) -> None:
    """The verifier's trust list (trust.py) accepts SE and FI signers, not the rogue one."""
    _key, _cert, trust_list_path = write_demo_files(tmp_path)
    trust = TrustList.from_pem_files([trust_list_path])
    pki = shared_test_pki()
    for country in ("SE", "FI"):
        signer = trust.signer([pki.pid_signer(country).x5c_member], time.time())
        assert signer.certificate == pki.pid_signer(country).certificate
    with pytest.raises(UntrustedIssuer):
        trust.signer([pki.rogue_signer.x5c_member], time.time())


async def test_a128gcm_is_used_when_it_is_all_the_verifier_offers(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    metadata = verifier.payload(None)["client_metadata"]
    metadata["encrypted_response_enc_values_supported"] = ["A128GCM"]
    verifier.payload_changes["client_metadata"] = metadata
    await simulator.present(verifier.link(), "se")
    assert verifier.decrypted(verifier.posts[-1])[0]["enc"] == "A128GCM"


async def test_the_wallet_judges_time_by_its_clock(verifier: RelyingParty) -> None:
    """The injected clock dates PIDs and KB-JWTs, and decides whether a request has expired."""
    clock = ManualClock(time.time() - 7200)
    wallet = WalletSimulator(
        trusted_access_cas=[verifier.access_ca.certificate], clock=clock, public_url="http://x"
    )
    await wallet.present(verifier.link(), "se")
    vp = unpack(verifier.decrypted(verifier.posts[-1])[1]["vp_token"]["pid"][0])
    assert vp.payload["iat"] == int(clock.now)
    assert vp.kb_claims(verifier.client_id)["iat"] == int(clock.now)
    clock.advance(7200 + 301)  # past the request object's exp
    with pytest.raises(RequestRefused, match="expired"):
        await wallet.present(verifier.link(), "se")


async def test_an_altered_disclosure_without_a_string_claim_changes_its_salt(
    verifier: RelyingParty, simulator: WalletSimulator
) -> None:
    verifier.dcql["credentials"][0]["claims"] = [{"path": ["nationalities", 0]}]
    vp = unpack(await _bent(verifier, simulator, Twist.ALTERED_DISCLOSURE))
    assert len(vp.disclosures) == 2 and len(vp.unreferenced) >= 1
