"""Certificates for the EU wallet tests, made with `cryptography` alone: a PID provider's CA
and signing (document signer) certificates, an access CA and our access certificate, and
whatever broken variants a test needs (expired, self-signed, another CA)."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def der_b64(self) -> str:
        """As a JOSE `x5c` member: standard base64 of the DER."""
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, country: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portvakt tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    common_name: str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    country: str = "SE",
    valid_from: datetime.datetime | None = None,
    valid_days: int = 365,
) -> Issued:
    """A P-256 certificate signed by `issuer`, or self-signed when `issuer` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = valid_from or datetime.datetime.now(datetime.UTC) - DAY
    subject = _name(common_name, country)
    signer_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + valid_days * DAY)
        .add_extension(_usage(signs_certificates=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


@dataclass(frozen=True)
class PidProvider:
    """A member state's PID provider: its root CA (what the trust list holds) and the
    certificate its PIDs and status lists are signed with."""

    ca: Issued
    signer: Issued

    @classmethod
    def make(cls, country: str = "SE") -> PidProvider:
        ca = issue(f"Test PID Provider CA {country}", ca=True, country=country, valid_days=3650)
        return cls(ca, issue(f"Test PID Provider {country}", ca, country=country))

    @property
    def x5c(self) -> list[str]:
        """The signer alone: HAIP's x5c leaves the trust anchor out."""
        return [self.signer.der_b64]

    def write_trust_list(self, path: Path) -> Path:
        path.write_bytes(self.ca.cert_pem())
        return path


def access_certificate(tmp_path: Path) -> tuple[Path, Path, Issued, Issued]:
    """Our access certificate under a test access CA, written as the config names them: (key
    file, cert file with the intermediate-free chain, the access CA, the access certificate)."""
    access_ca = issue("Test Access CA", ca=True, valid_days=3650)
    access = issue("Test municipality e-service", access_ca)
    key_file = tmp_path / "wallet-rp.key"
    cert_file = tmp_path / "wallet-rp.crt"
    key_file.write_bytes(access.key_pem())
    cert_file.write_bytes(access.cert_pem())
    return key_file, cert_file, access_ca, access
