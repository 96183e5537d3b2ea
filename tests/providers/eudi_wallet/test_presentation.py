"""The SD-JWT VC + KB-JWT verifier against PIDs made by the test-only issuer
(tests/doubles/sd_jwt_vc.py, PyJWT), each refusal the issue lists with its own test."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.eudi_wallet import jose
from providers.eudi_wallet.errors import (
    CredentialExpired,
    InvalidPresentation,
    PresentationError,
    UntrustedIssuer,
)
from providers.eudi_wallet.pid import PresentationExpectation, StatusReference
from providers.eudi_wallet.presentation import verify_pid_presentation
from providers.eudi_wallet.sd_jwt import disclose, hash_of
from providers.eudi_wallet.trust import TrustList
from tests.doubles.sd_jwt_vc import SE_PERSON, Pid, b64url, digest, holder_key, issue_pid
from tests.doubles.sd_jwt_vc import disclose as make_disclosure
from tests.doubles.wallet_pki import PidProvider, issue

NONCE = "n-0S6_WzA2Mj-9bd2eb0c9cb3e8c1"
CLIENT_ID = "x509_hash:Uvo3HtuIxuhC92rShpgqcT3YXwrqRxWEviRiA0OZszk"
SE = PidProvider.make("SE")


def expecting(
    provider: PidProvider = SE, now: float | None = None, nonce: str = NONCE
) -> PresentationExpectation:
    return PresentationExpectation(
        nonce=nonce,
        audience=CLIENT_ID,
        now=time.time() if now is None else now,
        trust=TrustList([provider.ca.certificate]),
    )


def presented(pid: Pid | None = None, **bend: Any) -> str:
    return (pid or issue_pid(SE)).present(NONCE, CLIENT_ID, **bend)


def encode(part: dict[str, Any]) -> str:
    return b64url(json.dumps(part).encode())


def test_a_pid_verifies_with_every_disclosure_in_place() -> None:
    status = {"status_list": {"idx": 412, "uri": "https://pid.example/status/1"}}
    pid = issue_pid(SE, status=status)

    verified = verify_pid_presentation(presented(pid), expecting())

    assert verified.claims == SE_PERSON
    assert verified.vct == "urn:eudi:pid:1"
    assert "Test PID Provider SE" in verified.issuer
    assert verified.status == StatusReference("https://pid.example/status/1", 412)
    assert verified.issuer_chain == tuple(SE.x5c)


def test_a_withheld_claim_is_absent_and_its_digest_is_no_claim() -> None:
    pid = issue_pid(SE)
    kept = [d for d in pid.disclosures if "given_name" not in _decoded(d)]

    verified = verify_pid_presentation(pid.present(NONCE, CLIENT_ID, disclosures=kept), expecting())

    assert "given_name" not in verified.claims
    assert verified.claims["family_name"] == "Tolvansson"


def test_an_array_element_withheld_is_left_out_and_the_others_stay() -> None:
    person = {**SE_PERSON, "nationalities": ["SE", "FI"]}
    pid = issue_pid(SE, person)
    kept = [d for d in pid.disclosures if _decoded(d) != [_decoded(d)[0], "FI"]]

    verified = verify_pid_presentation(pid.present(NONCE, CLIENT_ID, disclosures=kept), expecting())

    assert verified.claims["nationalities"] == ["SE"]


def test_the_rfc_9901_disclosure_vectors_hash_and_disclose() -> None:
    # RFC 9901 §4.2.1 and §4.2.2: a claim and an array element with their digests.
    claim = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
    element = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0"
    payload = {
        "_sd": ["X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"],
        "nationalities": [{"...": "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"}],
    }

    claims = disclose(payload, [claim, element], hash_of("sha-256"))

    assert claims == {"family_name": "Möbius", "nationalities": ["FR"]}


@pytest.mark.parametrize(
    ("bend", "why"),
    [
        ({"nonce": "another-nonce"}, "nonce"),
        ({"audience": "x509_hash:another-verifier"}, "aud"),
    ],
)
def test_a_key_binding_for_another_request_is_refused(bend: dict[str, str], why: str) -> None:
    pid = issue_pid(SE)
    token = pid.present(bend.get("nonce", NONCE), bend.get("audience", CLIENT_ID))

    with pytest.raises(InvalidPresentation, match=why):
        verify_pid_presentation(token, expecting())


def test_a_key_binding_signed_with_another_key_is_refused() -> None:
    with pytest.raises(InvalidPresentation, match="signature"):
        verify_pid_presentation(presented(key=holder_key()), expecting())


@pytest.mark.parametrize("age", [-3600, 3600])
def test_a_key_binding_neither_fresh_nor_now_is_refused(age: int) -> None:
    with pytest.raises(InvalidPresentation, match="iat"):
        verify_pid_presentation(presented(iat=time.time() - age), expecting())


def test_a_key_binding_of_another_type_is_refused() -> None:
    with pytest.raises(InvalidPresentation, match="typ"):
        verify_pid_presentation(presented(headers={"typ": "JWT"}), expecting())


def test_a_key_binding_whose_sd_hash_covers_other_disclosures_is_refused() -> None:
    pid = issue_pid(SE)
    kb = pid.present(NONCE, CLIENT_ID, disclosures=pid.disclosures[:2]).split("~")[-1]

    with pytest.raises(InvalidPresentation, match="sd_hash"):
        verify_pid_presentation(pid.sd_jwt() + kb, expecting())


def test_a_pid_without_key_binding_is_refused() -> None:
    with pytest.raises(InvalidPresentation, match="key binding"):
        verify_pid_presentation(issue_pid(SE).sd_jwt(), expecting())


def test_an_altered_disclosure_is_refused() -> None:
    pid = issue_pid(SE)
    name = _decoded(pid.disclosures[0])
    altered = make_disclosure(name[2] + "x", name[1], salt=name[0])
    disclosures = [altered, *pid.disclosures[1:]]

    with pytest.raises(InvalidPresentation, match="not referenced"):
        verify_pid_presentation(presented(pid, disclosures=disclosures), expecting())


def test_an_added_disclosure_is_refused() -> None:
    pid = issue_pid(SE)
    disclosures = [*pid.disclosures, make_disclosure("191212121212", "personal_identity_number")]

    with pytest.raises(InvalidPresentation, match="not referenced"):
        verify_pid_presentation(presented(pid, disclosures=disclosures), expecting())


def test_a_disclosure_presented_twice_is_refused() -> None:
    pid = issue_pid(SE)
    disclosures = [*pid.disclosures, pid.disclosures[0]]

    with pytest.raises(InvalidPresentation, match="twice"):
        verify_pid_presentation(presented(pid, disclosures=disclosures), expecting())


def test_an_issuer_not_on_the_trust_list_is_refused() -> None:
    stranger = PidProvider.make("SE")

    with pytest.raises(UntrustedIssuer):
        verify_pid_presentation(presented(issue_pid(stranger)), expecting())


def test_a_self_signed_issuer_is_refused_even_when_its_ca_is_the_same_key() -> None:
    lone = issue("Self-signed PID provider")
    provider = PidProvider(SE.ca, lone)

    with pytest.raises(UntrustedIssuer, match="self-signed"):
        verify_pid_presentation(presented(issue_pid(provider)), expecting())


def test_a_trust_anchor_inside_x5c_is_refused() -> None:
    pid = issue_pid(SE, headers={"x5c": [SE.signer.der_b64, SE.ca.der_b64]})

    with pytest.raises(UntrustedIssuer, match="anchor"):
        verify_pid_presentation(presented(pid), expecting())


def test_an_issuer_certificate_expired_is_refused() -> None:
    later = time.time() + 400 * 86400
    pid = issue_pid(SE, iat=later - 60)

    with pytest.raises(UntrustedIssuer, match="chain"):
        verify_pid_presentation(pid.present(NONCE, CLIENT_ID, iat=later), expecting(now=later))


def test_an_expired_pid_is_refused() -> None:
    pid = issue_pid(SE, iat=time.time() - 7200, lifetime=3600)

    with pytest.raises(CredentialExpired):
        verify_pid_presentation(presented(pid), expecting())


def test_a_pid_not_valid_yet_is_refused() -> None:
    pid = issue_pid(SE, extra={"nbf": int(time.time()) + 3600})

    with pytest.raises(CredentialExpired, match="nbf"):
        verify_pid_presentation(presented(pid), expecting())


def test_a_pid_that_never_expires_is_refused() -> None:
    pid = issue_pid(SE, extra={"exp": None})

    with pytest.raises(InvalidPresentation, match="exp"):
        verify_pid_presentation(presented(pid), expecting())


@pytest.mark.parametrize("vct", ["urn:eudi:pid:de:1", "https://example.com/diploma"])
def test_a_credential_of_another_type_is_refused(vct: str) -> None:
    with pytest.raises(InvalidPresentation, match="vct"):
        verify_pid_presentation(presented(issue_pid(SE, vct=vct)), expecting())


@pytest.mark.parametrize("typ", ["vc+sd-jwt", "JWT", None])
def test_an_issuer_jwt_of_another_type_is_refused(typ: str | None) -> None:
    with pytest.raises(InvalidPresentation, match="typ"):
        verify_pid_presentation(presented(issue_pid(SE, headers={"typ": typ})), expecting())


@pytest.mark.parametrize("typ", ["application/dc+sd-jwt", "DC+SD-JWT", "Application/Dc+Sd-Jwt"])
def test_the_issuer_jwts_typ_is_compared_as_a_media_type(typ: str) -> None:
    """RFC 7515 §4.1.9: `application/` is implied, and media types have no case."""
    pid = issue_pid(SE, headers={"typ": typ})

    verified = verify_pid_presentation(pid.present(NONCE, CLIENT_ID), expecting())

    assert verified.vct == "urn:eudi:pid:1"


def test_the_key_bindings_typ_is_compared_as_a_media_type() -> None:
    presentation = presented(headers={"typ": "application/KB+JWT"})

    assert verify_pid_presentation(presentation, expecting()).claims == SE_PERSON


@pytest.mark.parametrize("typ", ["text/dc+sd-jwt", "application/application/dc+sd-jwt", ""])
def test_another_media_type_for_the_issuer_jwt_is_refused(typ: str) -> None:
    with pytest.raises(InvalidPresentation, match="typ"):
        verify_pid_presentation(presented(issue_pid(SE, headers={"typ": typ})), expecting())


def test_critical_header_parameters_are_refused() -> None:
    """No PID or KB-JWT parameter is critical: one named so is not understood (RFC 7515 §4.1.11)."""
    critical = issue_pid(SE, headers={"crit": ["exp_policy"], "exp_policy": "strict"})

    with pytest.raises(InvalidPresentation, match="critical"):
        verify_pid_presentation(presented(critical), expecting())
    with pytest.raises(InvalidPresentation, match="critical"):
        verify_pid_presentation(presented(headers={"crit": ["x"], "x": 1}), expecting())


@pytest.mark.parametrize("exp", [float("nan"), float("inf")])
def test_a_pid_whose_exp_is_nan_or_infinity_is_refused(exp: float) -> None:
    """PyJWT writes them as NaN and Infinity, which Python's json reads and JSON has not: a
    NaN `exp` compared false with every time, so such a PID never expired."""
    with pytest.raises(InvalidPresentation, match="JSON"):
        verify_pid_presentation(presented(issue_pid(SE, extra={"exp": exp})), expecting())


def test_a_pid_whose_exp_overflows_to_infinity_is_refused() -> None:
    """`1e999` is JSON, and Python reads it as inf: a PID that never expires."""
    pid = resigned(issue_pid(SE), lambda text: re.sub(r'"exp":\s*\d+', '"exp":1e999', text))

    with pytest.raises(InvalidPresentation, match="exp"):
        verify_pid_presentation(presented(pid), expecting())


def test_a_pid_whose_nbf_is_a_huge_integer_is_refused() -> None:
    pid = resigned(
        issue_pid(SE), lambda text: text.replace('"iat":', '"nbf":' + "9" * 400 + ',"iat":')
    )

    with pytest.raises(InvalidPresentation, match="nbf"):
        verify_pid_presentation(presented(pid), expecting())


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1(), ec.BrainpoolP256R1()])
def test_a_signer_key_off_the_algs_curve_is_refused(curve: ec.EllipticCurve) -> None:
    """RFC 7518 §3.4: ES256 is P-256 only; a curve JOSE has no name for is refused, not a crash."""
    issued = jose.read(issue_pid(SE).issuer_jwt, "dc+sd-jwt")
    other = ec.generate_private_key(curve).public_key()

    with pytest.raises(InvalidPresentation, match="does not fit"):
        jose.verify(issued, other)


def resigned(pid: Pid, edit: Callable[[str], str]) -> Pid:
    """The PID signed again by its issuer over an edited payload text: what PyJWT's json
    writer would not write."""
    header_part, payload_part, _ = pid.issuer_jwt.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=="))
    payload = edit(base64.urlsafe_b64decode(payload_part + "==").decode())
    token = jwt.api_jws.encode(payload.encode(), SE.signer.key, algorithm="ES256", headers=header)
    return Pid(token, pid.disclosures, pid.holder)


def test_alg_none_is_refused_for_the_issuer_jwt_and_the_key_binding() -> None:
    pid = issue_pid(SE)
    header, payload, _ = pid.issuer_jwt.split(".")
    unsigned = encode({"alg": "none", "typ": "dc+sd-jwt", "x5c": SE.x5c}) + f".{payload}."
    token = presented(pid)
    kb_header, kb_payload, _ = token.split("~")[-1].split(".")
    unsigned_kb = encode({"alg": "none", "typ": "kb+jwt"}) + f".{kb_payload}."

    with pytest.raises(InvalidPresentation, match="algorithm"):
        verify_pid_presentation(token.replace(pid.issuer_jwt, unsigned), expecting())
    with pytest.raises(InvalidPresentation, match="algorithm"):
        verify_pid_presentation(token.rsplit("~", 1)[0] + "~" + unsigned_kb, expecting())
    assert header and kb_header


def test_an_hmac_signed_issuer_jwt_is_refused() -> None:
    payload = jwt.decode(issue_pid(SE).issuer_jwt, options={"verify_signature": False})
    forged = jwt.encode(payload, "k" * 32, algorithm="HS256", headers={"typ": "dc+sd-jwt"})

    with pytest.raises(InvalidPresentation, match="algorithm"):
        verify_pid_presentation(forged + "~" + presented().split("~")[-1], expecting())


def test_a_payload_changed_after_signing_is_refused() -> None:
    pid = issue_pid(SE)
    header, payload, signature = pid.issuer_jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["vct"] = "urn:eudi:pid:1"
    claims["exp"] += 10 * 365 * 86400
    changed = Pid(f"{header}.{encode(claims)}.{signature}", pid.disclosures, pid.holder)

    with pytest.raises(InvalidPresentation, match="signature"):
        verify_pid_presentation(presented(changed), expecting())


def test_an_unknown_sd_alg_is_refused() -> None:
    with pytest.raises(InvalidPresentation, match="_sd_alg"):
        verify_pid_presentation(presented(issue_pid(SE, extra={"_sd_alg": "md5"})), expecting())


def test_a_disclosed_credential_claim_is_refused() -> None:
    pid = issue_pid(SE, {**SE_PERSON, "vct#integrity": "sha256-abc"})

    with pytest.raises(InvalidPresentation, match="credential claim"):
        verify_pid_presentation(presented(pid), expecting())


@pytest.mark.parametrize(
    "status",
    [{"status_list": {"idx": -1, "uri": "https://x"}}, {"status_list": {"idx": 1}}, {"x": 1}],
)
def test_a_malformed_status_is_refused(status: dict[str, Any]) -> None:
    with pytest.raises(InvalidPresentation, match="status"):
        verify_pid_presentation(presented(issue_pid(SE, status=status)), expecting())


def test_a_disclosure_naming_sd_is_refused() -> None:
    evil = make_disclosure(["x"], "_sd")
    payload = {"_sd": [digest(evil)]}

    with pytest.raises(InvalidPresentation, match="name"):
        disclose(payload, [evil], hash_of(None))


def test_a_disclosed_name_that_exists_already_is_refused() -> None:
    twin = make_disclosure("Eve", "given_name")
    payload = {"given_name": "Tolvan", "_sd": [digest(twin)]}

    with pytest.raises(InvalidPresentation, match="already exists"):
        disclose(payload, [twin], hash_of(None))


def test_disclosures_in_the_wrong_place_are_refused() -> None:
    element = make_disclosure("SE")
    member = make_disclosure("SE", "country")

    with pytest.raises(InvalidPresentation, match="array element"):
        disclose({"_sd": [digest(element)]}, [element], hash_of(None))
    with pytest.raises(InvalidPresentation, match="in an array"):
        disclose({"n": [{"...": digest(member)}]}, [member], hash_of(None))


def test_a_digest_that_appears_twice_is_refused() -> None:
    one = make_disclosure("Tolvan", "given_name")
    payload = {"_sd": [digest(one)], "place": {"_sd": [digest(one)]}}

    with pytest.raises(InvalidPresentation, match="twice"):
        disclose(payload, [one], hash_of(None))


def test_a_deeply_nested_disclosure_is_refused_not_crashed() -> None:
    deep = b64url(("[" * 5000 + "]" * 5000).encode())
    payload = {"_sd": [digest(deep)]}

    with pytest.raises(InvalidPresentation):
        disclose(payload, [deep], hash_of(None))


def test_an_oversized_presentation_is_refused() -> None:
    with pytest.raises(InvalidPresentation, match="size"):
        verify_pid_presentation("a" * 300_000, expecting())


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0), junk=st.text(max_size=40), at=st.integers(min_value=0))
def test_any_mangled_presentation_is_refused_as_a_presentation_error(
    cut: int, junk: str, at: int
) -> None:
    token = presented(PRESENTED)
    position = at % (len(token) + 1)
    mangled = token[:position] + junk + token[position + cut % 7 :]

    try:
        verify_pid_presentation(mangled, expecting())
    except PresentationError:
        return
    assert mangled == token or junk == token[position : position + cut % 7]


PRESENTED = issue_pid(SE)


def _decoded(disclosure: str) -> list[Any]:
    value: list[Any] = json.loads(base64.urlsafe_b64decode(disclosure + "=="))
    return value
