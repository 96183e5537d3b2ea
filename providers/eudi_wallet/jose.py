"""Verifying the compact JWS a wallet or PID provider sends (an issuer-signed JWT, a KB-JWT, a
status list token): header and payload read with bounded JSON first, the signature checked by
joserfc with the key the caller resolved, the `typ` and the algorithm on an allow-list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry

from providers.eudi_wallet.errors import InvalidPresentation, PresentationError
from providers.parsing import MalformedInput, compact_jwt_parts

# HAIP §7: ECDSA P-256 with SHA-256 at least; the larger curves where an issuer uses them.
EC_ALGORITHMS = ("ES256", "ES384", "ES512")
MAX_HEADER_BYTES = 40_000  # an x5c of up to five certificates


class _Registry(JWSRegistry):
    max_header_length = MAX_HEADER_BYTES
    max_payload_length = 400_000


REGISTRY = _Registry(algorithms=EC_ALGORITHMS)


@dataclass(frozen=True)
class Unverified:
    """A compact JWS read but not yet verified: what its header says picks the key."""

    token: str
    header: Mapping[str, Any]
    payload: Mapping[str, Any]


def read(token: str, typ: str, error: type[PresentationError] = InvalidPresentation) -> Unverified:
    """The token's header and payload; `error` when it is not a JWS of type `typ` with an
    allowed algorithm."""
    try:
        header, payload = compact_jwt_parts(token)
    except MalformedInput as problem:
        raise error(f"{typ}: {problem}") from None
    if header.get("typ") != typ:
        raise error(f"{typ}: the header's typ is not {typ}")
    if header.get("alg") not in EC_ALGORITHMS:
        raise error(f"{typ}: algorithm {str(header.get('alg'))[:20]!r} is not accepted")
    return Unverified(token, header, payload)


def verify(
    unverified: Unverified,
    key: CertificatePublicKeyTypes | ECKey,
    error: type[PresentationError] = InvalidPresentation,
) -> None:
    """`error` unless the signature verifies with `key` (an EC key of the alg's curve)."""
    if not isinstance(key, ECKey):
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise error(f"{unverified.header.get('typ')}: the signer's key is not an EC key")
        key = ECKey.import_key(key)
    algorithm = str(unverified.header["alg"])
    try:
        jws.deserialize_compact(unverified.token, key, [algorithm], REGISTRY)
    except (JoseError, ValueError):
        raise error(f"{unverified.header.get('typ')}: the signature does not verify") from None


def public_ec_key(jwk: object) -> ECKey:
    """A holder's public key from `cnf.jwk` (RFC 7800): an EC public key, nothing private."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or "d" in jwk:
        raise InvalidPresentation("cnf.jwk is not an EC public key")
    members = {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}
    try:
        return ECKey.import_key(members)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidPresentation("cnf.jwk is not a valid EC public key") from None
