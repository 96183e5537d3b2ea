"""Verifying the compact JWS a wallet or PID provider sends (an issuer-signed JWT, a KB-JWT, a
status list token): header and payload read with bounded JSON first (NaN and Infinity refused:
they are not JSON, and compare false with every time), the `typ` compared as RFC 7515 §4.1.9
says, no `crit`, the algorithm on an allow-list, then the signature checked by joserfc with the
key the caller resolved, which must be on the algorithm's curve."""

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
# RFC 7518 §3.4: each on its own curve (P-256, P-384, P-521), as cryptography names them.
CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
EC_ALGORITHMS = tuple(CURVES)
MAX_HEADER_BYTES = 40_000  # an x5c of up to five certificates
MAX_PAYLOAD_BYTES = 400_000  # a PID with its disclosures' digests, a KB-JWT
MEDIA_TYPE_PREFIX = "application/"


def registry(max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> JWSRegistry:
    """joserfc's registry with our algorithms and bounds; a status list may be larger."""
    made = JWSRegistry(algorithms=list(EC_ALGORITHMS))
    made.max_header_length = MAX_HEADER_BYTES
    made.max_payload_length = max_payload_bytes
    return made


REGISTRY = registry()


@dataclass(frozen=True)
class Unverified:
    """A compact JWS read but not yet verified: what its header says picks the key."""

    token: str
    header: Mapping[str, Any]
    payload: Mapping[str, Any]


def read(token: str, typ: str, error: type[PresentationError] = InvalidPresentation) -> Unverified:
    """The token's header and payload; `error` when it is not a JWS of type `typ` with an
    allowed algorithm and no critical header parameter (none of our types defines one)."""
    try:
        header, payload = compact_jwt_parts(token, refuse_constants=True)
    except MalformedInput as problem:
        raise error(f"{typ}: {problem}") from None
    if not same_media_type(header.get("typ"), typ):
        raise error(f"{typ}: the header's typ is not {typ}")
    if "crit" in header:
        raise error(f"{typ}: the header has critical parameters")
    if header.get("alg") not in EC_ALGORITHMS:
        raise error(f"{typ}: algorithm {str(header.get('alg'))[:20]!r} is not accepted")
    return Unverified(token, header, payload)


def same_media_type(value: object, typ: str) -> bool:
    """RFC 7515 §4.1.9: `value` is a media type, compared without case, with `application/`
    implied when it has no `/`; `typ` is ours, in lower case and without the prefix."""
    return isinstance(value, str) and value.lower().removeprefix(MEDIA_TYPE_PREFIX) == typ


def verify(
    unverified: Unverified,
    key: CertificatePublicKeyTypes | ECKey,
    error: type[PresentationError] = InvalidPresentation,
    jws_registry: JWSRegistry = REGISTRY,
) -> None:
    """`error` unless the signature verifies with `key`, an EC key on the alg's curve."""
    typ = unverified.header.get("typ")
    if not isinstance(key, ECKey):
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise error(f"{typ}: the signer's key is not an EC key")
        key = ECKey.import_key(key)
    algorithm = str(unverified.header["alg"])
    # Checked here, not left to joserfc: it raises KeyError for a curve JOSE has no name for.
    if key.raw_value.curve.name != CURVES[algorithm]:
        raise error(f"{typ}: the signer's key does not fit the token's alg")
    try:
        jws.deserialize_compact(unverified.token, key, [algorithm], jws_registry)
    except (JoseError, ValueError):
        raise error(f"{typ}: the signature does not verify") from None


def public_ec_key(jwk: object) -> ECKey:
    """A holder's public key from `cnf.jwk` (RFC 7800): an EC public key, nothing private."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or "d" in jwk:
        raise InvalidPresentation("cnf.jwk is not an EC public key")
    members = {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}
    try:
        return ECKey.import_key(members)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidPresentation("cnf.jwk is not a valid EC public key") from None
