"""Our access certificate (ARF RPA_02, HAIP §5): the key that signs our request objects, the
`x5c` that names us to the wallet, and the `x509_hash:` client_id derived from it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from providers.eudi_wallet.sd_jwt import b64url


@dataclass(frozen=True)
class AccessKey:
    key: ECKey
    chain: tuple[x509.Certificate, ...]

    @classmethod
    def load(cls, key: Path, cert: Path) -> AccessKey:
        """OSError when a file cannot be read; ValueError saying what is wrong with them."""
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        chain = tuple(x509.load_pem_x509_certificates(cert.read_bytes()))
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
            private.curve, ec.SECP256R1
        ):
            raise ValueError("access_certificate.key must be an EC P-256 key (ES256, HAIP §7)")
        leaf = chain[0]
        if leaf.public_key() != private.public_key():
            raise ValueError("access_certificate.key is not the key of the first certificate")
        if any(certificate.issuer == certificate.subject for certificate in chain):
            raise ValueError(
                "access_certificate.cert must hold the access certificate and its "
                "intermediates only: no root, no self-signed certificate (HAIP §5)"
            )
        return cls(ECKey.import_key(private), chain)

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def x5c(self) -> list[str]:
        der = (c.public_bytes(serialization.Encoding.DER) for c in self.chain)
        return [base64.b64encode(d).decode("ascii") for d in der]

    @property
    def client_id(self) -> str:
        """OpenID4VP §5.9.3: `x509_hash:` and base64url(SHA-256(DER of the leaf))."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return "x509_hash:" + b64url(hashlib.sha256(der).digest())
