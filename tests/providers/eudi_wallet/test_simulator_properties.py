"""Whatever a verifier sends, the simulated wallet either accepts the request or refuses it
with a reason (RequestRefused): never another exception, which its page would turn into a 5xx.
Request objects are signed with PyJWT by a test access certificate, with members replaced by
arbitrary JSON."""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.eudi_wallet.simulator_holder import missing_claims, requested_paths
from providers.eudi_wallet.simulator_people import PEOPLE
from providers.eudi_wallet.simulator_request import (
    RequestRefused,
    WalletRequest,
    WalletUri,
    parse_wallet_uri,
)
from providers.eudi_wallet.simulator_request_checks import checked_request
from tests.doubles.wallet_pki import issue
from tests.providers.eudi_wallet.relying_party import PID_QUERY, b64url

ACCESS_CA = issue("Property Access CA", ca=True)
ACCESS = issue("Property e-service", ACCESS_CA)
CLIENT_ID = "x509_hash:" + b64url(
    hashlib.sha256(ACCESS.certificate.public_bytes(serialization.Encoding.DER)).digest()
)
URI = WalletUri(CLIENT_ID, "http://127.0.0.1:1/request", "post")
WALLET_NONCE = "wallet-nonce"
ENC_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "use": "enc",
    "alg": "ECDH-ES",
    "kid": "k1",
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
MEMBERS = [
    "client_id",
    "response_type",
    "response_mode",
    "response_uri",
    "nonce",
    "state",
    "aud",
    "exp",
    "dcql_query",
    "client_metadata",
    "wallet_nonce",
    "transaction_data",
    "redirect_uri",
    "scope",
]
QUERY_MEMBERS = ["id", "format", "meta", "claims", "claim_sets", "multiple"]
METADATA_MEMBERS = ["jwks", "encrypted_response_enc_values_supported", "vp_formats_supported"]


def _payload() -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "response_type": "vp_token",
        "response_mode": "direct_post.jwt",
        "response_uri": "http://127.0.0.1:1/response",
        "nonce": "n",
        "state": "s",
        "aud": "https://self-issued.me/v2",
        "exp": int(time.time()) + 300,
        "wallet_nonce": WALLET_NONCE,
        "dcql_query": {"credentials": [dict(PID_QUERY)]},
        "client_metadata": {
            "jwks": {"keys": [ENC_KEY]},
            "encrypted_response_enc_values_supported": ["A256GCM"],
        },
    }


def _check(payload: dict[str, Any]) -> WalletRequest | None:
    token = jwt.encode(
        payload,
        ACCESS.key,
        algorithm="ES256",
        headers={"typ": "oauth-authz-req+jwt", "x5c": [ACCESS.der_b64]},
    )
    try:
        return checked_request(token, URI, WALLET_NONCE, [ACCESS_CA.certificate], time.time())
    except RequestRefused:
        return None


def test_the_unchanged_request_is_accepted() -> None:
    assert _check(_payload()) is not None


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(MEMBERS), JSON, max_size=4))
def test_any_member_values_are_accepted_or_refused(changes: dict[str, Any]) -> None:
    _check({**_payload(), **changes})


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(QUERY_MEMBERS), JSON, max_size=4))
def test_any_credential_query_is_accepted_or_refused(changes: dict[str, Any]) -> None:
    payload = _payload()
    payload["dcql_query"] = {"credentials": [{**PID_QUERY, **changes}]}
    request = _check(payload)
    if request is not None:  # what the holder then does with it must not fail either
        for person in PEOPLE.values():
            requested_paths(request, person.claims)
            missing_claims(request, person.claims)


CLAIM = st.fixed_dictionaries(
    {"path": st.lists(st.none() | st.integers(-1, 3) | st.sampled_from(["given_name", "x"]))},
    optional={"id": st.sampled_from(["a", "b"]) | JSON},
)


@settings(max_examples=150, deadline=None)
@given(st.lists(CLAIM, max_size=4), st.lists(st.lists(st.sampled_from(["a", "b"]) | JSON)))
def test_any_claims_and_claim_sets_are_accepted_or_refused(
    claims: list[dict[str, Any]], claim_sets: list[list[Any]]
) -> None:
    payload = _payload()
    query = {**PID_QUERY, "claims": claims, "claim_sets": claim_sets}
    payload["dcql_query"] = {"credentials": [query]}
    request = _check(payload)
    if request is not None:
        for person in PEOPLE.values():
            requested_paths(request, person.claims)
            missing_claims(request, person.claims)


def test_a_claim_set_naming_a_non_string_is_refused() -> None:
    payload = _payload()
    payload["dcql_query"] = {"credentials": [{**PID_QUERY, "claim_sets": [[{}]]}]}
    assert _check(payload) is None


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(METADATA_MEMBERS), JSON, max_size=3))
def test_any_client_metadata_is_accepted_or_refused(changes: dict[str, Any]) -> None:
    payload = _payload()
    payload["client_metadata"] = {**payload["client_metadata"], **changes}
    _check(payload)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_as_a_request_object_is_refused(text: str) -> None:
    with pytest.raises(RequestRefused):
        checked_request(text, URI, WALLET_NONCE, [ACCESS_CA.certificate], time.time())


def test_a_deeply_nested_request_object_is_refused() -> None:
    header = b64url(b'{"alg":"ES256","typ":"oauth-authz-req+jwt"}')
    with pytest.raises(RequestRefused):
        checked_request(
            f"{header}.{b64url(b'[' * 100_000)}.", URI, None, [ACCESS_CA.certificate], 0
        )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_link_is_parsed_or_refused(text: str) -> None:
    for link in (text, "openid4vp://?" + text):
        with contextlib.suppress(RequestRefused):
            parse_wallet_uri(link)
