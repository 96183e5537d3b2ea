"""The trust list: the PID providers' certificates (CAs, or pinned signing certificates) an
operator configured as a PEM bundle, and X.509 path validation of a JOSE `x5c` to them.

HAIP §5/§6.1: `x5c` carries the signing certificate and its intermediates, never the trust
anchor, and the signing certificate is not self-signed; a presentation breaking either is
refused. A signing certificate pinned itself in the bundle (a PID provider without a CA) is
trusted as it stands, within its validity; a pinned CA never signs a PID itself. The EU's List
of Trusted Entities for PID providers is not read yet (its address is not published); an
operator builds the bundle from it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from providers.eudi_wallet.errors import UntrustedIssuer

MAX_CHAIN = 5  # certificates in an x5c; PID chains are leaf + one or two intermediates
MAX_CERTIFICATE_CHARS = 16_000


@dataclass(frozen=True)
class TrustedSigner:
    """The outcome of a validated `x5c`: the signing certificate and its key."""

    certificate: x509.Certificate

    @property
    def public_key(self) -> CertificatePublicKeyTypes:
        return self.certificate.public_key()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def country(self) -> str | None:
        """The subject's countryName: the member state a PID provider serves."""
        found = self.certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
        return str(found[0].value) if len(found) == 1 else None


class TrustList:
    def __init__(self, anchors: Sequence[x509.Certificate]) -> None:
        if not anchors:
            raise ValueError("a trust list needs at least one certificate")
        self._anchors = tuple(anchors)
        self._pinned = {_fingerprint(certificate) for certificate in anchors}
        self._store = Store(list(anchors))

    @classmethod
    def from_pem_files(cls, paths: Iterable[Path]) -> TrustList:
        """OSError when a file cannot be read, ValueError when it holds no certificate."""
        anchors: list[x509.Certificate] = []
        for path in paths:
            found = x509.load_pem_x509_certificates(path.read_bytes())
            anchors.extend(found)
        return cls(anchors)

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self._anchors

    def signer(self, x5c: object, now: float) -> TrustedSigner:
        """The signing certificate of a JOSE header's `x5c`, validated to this list at `now`;
        UntrustedIssuer when it does not chain, is malformed, or breaks HAIP's x5c rules."""
        chain = _certificates(x5c)
        leaf, intermediates = chain[0], chain[1:]
        at = datetime.datetime.fromtimestamp(now, datetime.UTC)
        if any(_fingerprint(c) in self._pinned for c in intermediates):
            raise UntrustedIssuer("x5c carries a trust anchor")
        if _fingerprint(leaf) in self._pinned:
            if _is_ca(leaf):
                raise UntrustedIssuer("x5c carries a trust anchor")
            if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
                raise UntrustedIssuer("the pinned signing certificate is not valid now")
            return TrustedSigner(leaf)
        if leaf.issuer == leaf.subject:
            raise UntrustedIssuer("the signing certificate is self-signed")
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(at)
            .max_chain_depth(MAX_CHAIN)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, list(intermediates))
        except VerificationError as error:
            raise UntrustedIssuer(f"the certificate chain does not validate: {error}") from None
        return TrustedSigner(leaf)


def _certificates(x5c: object) -> list[x509.Certificate]:
    """RFC 7515 §4.1.6: a non-empty array of base64 (not base64url) DER certificates."""
    if not isinstance(x5c, list) or not 0 < len(x5c) <= MAX_CHAIN:
        raise UntrustedIssuer("x5c is not an array of one to five certificates")
    chain = []
    for item in x5c:
        if not isinstance(item, str) or len(item) > MAX_CERTIFICATE_CHARS:
            raise UntrustedIssuer("an x5c member is not a certificate")
        try:
            chain.append(x509.load_der_x509_certificate(base64.b64decode(item, validate=True)))
        except (ValueError, binascii.Error):
            raise UntrustedIssuer("an x5c member is not a DER certificate") from None
    return chain


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca
