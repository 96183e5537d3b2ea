"""The simulated wallet's checks of a request object, in the order a strict wallet makes them:
the JWS (RFC 9101; OID4VP 1.0 §5: `typ` `oauth-authz-req+jwt`, HAIP 1.0 §5: ES256, `x5c` with
no trust anchor and a leaf that is not self-signed, chaining to a trusted Access CA, ARF
RPA_04), then the payload (OID4VP §5.2, §5.9.3 `x509_hash`, §5.10 `wallet_nonce`, §8.2-8.3
`direct_post.jwt` and the encryption key, §6-§7 the DCQL query for the PID)."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from providers.eudi_wallet.simulator_issuer import PID_VCT, b64url, es256_registry
from providers.eudi_wallet.simulator_request import (
    ClaimPath,
    ClaimQuery,
    RequestRefused,
    WalletRequest,
    WalletUri,
    is_http_url,
)

STATIC_AUDIENCE = "https://self-issued.me/v2"  # OID4VP §5.8, static discovery
QUERY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENC_PREFERENCE = ("A256GCM", "A128GCM")  # HAIP: a wallet that has both SHOULD use A256GCM


def _segment(part: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: deep nesting
        raise RequestRefused("the request object is not a JWS") from None
    if not isinstance(decoded, dict):
        raise RequestRefused("the request object is not a JWS")
    return decoded


def _x5c(header: Mapping[str, Any]) -> list[x509.Certificate]:
    members = header.get("x5c")
    if not isinstance(members, list) or not 0 < len(members) <= 5:
        raise RequestRefused("the request object has no x5c")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(m, validate=True)) for m in members]
    except (TypeError, ValueError, binascii.Error):
        raise RequestRefused("an x5c member is not a certificate") from None


def _check_chain(
    chain: list[x509.Certificate], anchors: Sequence[x509.Certificate], at: float
) -> None:
    """HAIP §5: the access certificate is not self-signed, x5c holds no trust anchor, and the
    chain validates to an Access CA the wallet trusts (ARF RPA_04)."""
    leaf, intermediates = chain[0], chain[1:]
    if leaf.issuer == leaf.subject:
        raise RequestRefused("the access certificate is self-signed")
    if any(c in anchors for c in chain):
        raise RequestRefused("x5c carries a trust anchor")
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(datetime.datetime.fromtimestamp(at, datetime.UTC))
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except x509.verification.VerificationError:
        raise RequestRefused(
            "the access certificate does not chain to a trusted Access CA"
        ) from None


def x509_hash(certificate: x509.Certificate) -> str:
    """OID4VP §5.9.3: `x509_hash:` + base64url(SHA-256(DER))."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return "x509_hash:" + b64url(hashlib.sha256(der).digest())


def verified_payload(
    request_object: str, anchors: Sequence[x509.Certificate], now: float
) -> tuple[dict[str, Any], x509.Certificate]:
    """OID4VP §5, RFC 9101: `typ`, `alg` ES256, the signature by x5c[0], and its chain."""
    parts = request_object.split(".")
    if len(parts) != 3:
        raise RequestRefused("the request object is not a compact JWS")
    header, payload = _segment(parts[0]), _segment(parts[1])
    try:
        if header.get("typ") != "oauth-authz-req+jwt":
            raise RequestRefused("the request object's typ is not oauth-authz-req+jwt")
        if header.get("alg") != "ES256":
            raise RequestRefused("the request object is not signed with ES256")
        chain = _x5c(header)
        _check_chain(chain, anchors, now)
        key = ECKey.import_key(chain[0].public_key())  # type: ignore[arg-type]
        jws.deserialize_compact(request_object, key, registry=es256_registry())
    except JoseError:
        raise RequestRefused("the request object's signature does not verify", payload) from None
    except (TypeError, ValueError):
        raise RequestRefused("the access certificate's key is not P-256", payload) from None
    except RequestRefused as refused:
        raise RequestRefused(refused.reason, payload) from None
    return payload, chain[0]


Check = Callable[[Mapping[str, Any]], str | None]  # the reason to refuse, or None


def _equals(name: str, expected: str, reason: str) -> Check:
    return lambda p: None if p.get(name) == expected else reason


def _echoed(wallet_nonce: str | None) -> Check:
    if wallet_nonce is None:
        return lambda p: "wallet_nonce was never sent" if "wallet_nonce" in p else None
    return _equals("wallet_nonce", wallet_nonce, "wallet_nonce is not echoed")


def _non_empty(name: str) -> Check:
    return lambda p: None if isinstance(p.get(name), str) and p[name] else f"no {name}"


def _response_uri(payload: Mapping[str, Any]) -> str | None:
    uri = payload.get("response_uri")
    if not isinstance(uri, str) or not is_http_url(uri):
        return "no http(s) response_uri"
    if "redirect_uri" in payload:
        return "redirect_uri is sent with response_uri"
    return None


def payload_checks(
    client_id: str, certificate: x509.Certificate, wallet_nonce: str | None, now: float
) -> tuple[Check, ...]:
    """OID4VP §5.2, §5.9.3, §5.10, §8.2-8.3 and HAIP §5, in the order a wallet reads them."""

    def not_expired(p: Mapping[str, Any]) -> str | None:
        exp = p.get("exp")
        if exp is None:
            return None
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return "exp is not a number"
        return "the request has expired (exp)" if exp <= now else None

    def no_transaction_data(p: Mapping[str, Any]) -> str | None:
        return "transaction_data is not supported" if "transaction_data" in p else None

    return (
        _equals("client_id", client_id, "client_id is not the link's"),
        _equals("client_id", x509_hash(certificate), "client_id is not x509_hash: of x5c[0]"),
        _echoed(wallet_nonce),
        _equals("response_type", "vp_token", "response_type is not vp_token"),
        _equals("response_mode", "direct_post.jwt", "response_mode is not direct_post.jwt"),
        _response_uri,
        _non_empty("nonce"),
        _equals("aud", STATIC_AUDIENCE, f"aud is not {STATIC_AUDIENCE}"),
        not_expired,
        no_transaction_data,
    )


def _claim_path(raw: object) -> ClaimPath:
    """OID4VP §7: strings (keys), null (every element), non-negative integers (an index)."""
    if not isinstance(raw, list) or not raw:
        raise RequestRefused("a claim's path is not a non-empty array")
    for element in raw:
        ok = element is None or isinstance(element, str)
        ok = ok or (isinstance(element, int) and not isinstance(element, bool) and element >= 0)
        if not ok:
            raise RequestRefused("a claim's path has an element that is not a key or index")
    return tuple(raw)


def _claims(query: Mapping[str, Any]) -> tuple[tuple[ClaimQuery, ...], tuple[tuple[str, ...], ...]]:
    raw = query.get("claims", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise RequestRefused("the credential query's claims are not an array of objects")
    claims = tuple(
        ClaimQuery(_claim_path(c.get("path")), c["id"] if isinstance(c.get("id"), str) else None)
        for c in raw
    )
    raw_sets = query.get("claim_sets", [])
    known = {c.id for c in claims if c.id}
    if not isinstance(raw_sets, list) or not all(
        isinstance(s, list) and s and all(isinstance(i, str) and i in known for i in s)
        for s in raw_sets
    ):
        raise RequestRefused("claim_sets name claims the query does not have")
    return claims, tuple(tuple(s) for s in raw_sets)


def _pid_query(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    dcql = payload.get("dcql_query")
    if "scope" in payload or not isinstance(dcql, dict):
        raise RequestRefused("the request has no dcql_query (or a scope beside it)")
    credentials = dcql.get("credentials")
    if not isinstance(credentials, list):
        raise RequestRefused("the dcql_query has no credentials")
    for query in credentials:
        meta = query.get("meta") if isinstance(query, dict) else None
        vcts = meta.get("vct_values") if isinstance(meta, dict) else None
        if query.get("format") == "dc+sd-jwt" and isinstance(vcts, list) and PID_VCT in vcts:
            if not isinstance(query.get("id"), str) or not QUERY_ID.match(query["id"]):
                raise RequestRefused("the PID's credential query has no valid id")
            return query  # type: ignore[no-any-return]
    raise RequestRefused(f"the dcql_query asks for no dc+sd-jwt {PID_VCT}")


def _encryption(payload: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """OID4VP §8.3, HAIP §5: an ECDH-ES P-256 key with a `kid` in client_metadata.jwks."""
    metadata = payload.get("client_metadata")
    jwks = metadata.get("jwks") if isinstance(metadata, dict) else None
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    usable = [
        k
        for k in (keys if isinstance(keys, list) else [])
        if isinstance(k, dict)
        and (k.get("kty"), k.get("crv"), k.get("alg")) == ("EC", "P-256", "ECDH-ES")
        and k.get("use", "enc") == "enc"
        and isinstance(k.get("kid"), str)
        and k["kid"]
    ]
    if not usable:
        raise RequestRefused("client_metadata.jwks has no ECDH-ES P-256 key with a kid")
    offered = metadata.get("encrypted_response_enc_values_supported", ["A128GCM"])  # type: ignore[union-attr]
    enc = next((e for e in ENC_PREFERENCE if isinstance(offered, list) and e in offered), None)
    if enc is None:
        raise RequestRefused("encrypted_response_enc_values_supported offers no A*GCM")
    try:
        ECKey.import_key(usable[0])
    except (JoseError, ValueError, TypeError):
        raise RequestRefused("the encryption key is not a valid P-256 key") from None
    return usable[0], enc


def checked_request(
    request_object: str,
    uri: WalletUri,
    wallet_nonce: str | None,
    anchors: Sequence[x509.Certificate],
    now: float,
) -> WalletRequest:
    payload, certificate = verified_payload(request_object, anchors, now)
    try:
        for check in payload_checks(uri.client_id, certificate, wallet_nonce, now):
            reason = check(payload)
            if reason is not None:
                raise RequestRefused(reason)
        query = _pid_query(payload)
        claims, claim_sets = _claims(query)
        key, enc = _encryption(payload)
    except RequestRefused as refused:
        raise RequestRefused(refused.reason, payload) from None
    state = payload.get("state")
    return WalletRequest(
        client_id=uri.client_id,
        response_uri=payload["response_uri"],
        nonce=payload["nonce"],
        state=state if isinstance(state, str) else None,
        query_id=query["id"],
        claims=claims,
        claim_sets=claim_sets,
        encryption_key=key,
        enc=enc,
        access_certificate=certificate,
    )
