"""The wallet simulator's certificates, P-256, made in memory once per process and marked TEST
in every subject (`O=` `SIMULATOR_ORGANISATION`, so `EudiWalletConfig.refused_in_production`
catches a deployment that trusts or uses them):

    Test PID CA (the trust anchor)  -> Test PID Provider SE, Test PID Provider FI
    Test Access CA                  -> the demo e-service's access certificate
    Rogue PID CA (never written)    -> Rogue PID Provider (for "an issuer not on the trust list")

HAIP 1.0 §5/§6.1: what signs (a PID, a status list, a request object) is not self-signed, and
the `x5c` it travels with leaves the trust anchor out. The ARF's access-certificate profile
(ETSI TS 119 411-8) is not followed beyond that: a name, a key, and the CA that issued it.
"""

from __future__ import annotations

import base64
import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers.eudi_wallet.config import SIMULATOR_ORGANISATION

PID_COUNTRIES = ("SE", "FI")
DEMO_SERVICE_NAME = "Portvakt demo e-service (TEST)"
CA_DAYS = 3650
LEAF_DAYS = 730
BACKDATE = datetime.timedelta(hours=1)  # a clock a little behind still sees valid certificates


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def x5c_member(self) -> str:
        """RFC 7515 §4.1.6: standard base64 (not base64url) of the DER."""
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class SimulatorPki:
    pid_ca: Issued
    pid_signers: Mapping[str, Issued]  # issuing country -> the PID provider's signer
    access_ca: Issued
    access: Issued
    rogue_signer: Issued  # chains to a CA no trust list holds

    def pid_signer(self, country: str) -> Issued:
        return self.pid_signers[country]


def _name(common_name: str, country: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATOR_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, certifies: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not certifies,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certifies,
        crl_sign=certifies,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(common_name: str, country: str, issuer: Issued | None, now: datetime.datetime) -> Issued:
    """A CA when `issuer` is None (self-signed root), else a signing certificate under it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name, country)
    is_ca = issuer is None
    signer_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS if is_ca else LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), True)
        .add_extension(_key_usage(certifies=is_ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), False
        )
    )
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


def make_test_pki(now: datetime.datetime | None = None) -> SimulatorPki:
    """A fresh hierarchy; `shared_test_pki()` is the one the simulator and the demo share."""
    at = now or datetime.datetime.now(datetime.UTC)
    pid_ca = _issue("Portvakt test PID CA - TEST", "SE", None, at)
    signers = {c: _issue(f"Test PID Provider {c} - TEST", c, pid_ca, at) for c in PID_COUNTRIES}
    access_ca = _issue("Portvakt test Access CA - TEST", "SE", None, at)
    rogue_ca = _issue("Rogue PID CA - TEST", "SE", None, at)
    return SimulatorPki(
        pid_ca=pid_ca,
        pid_signers=signers,
        access_ca=access_ca,
        access=_issue(DEMO_SERVICE_NAME, "SE", access_ca, at),
        rogue_signer=_issue("Rogue PID Provider - TEST", "SE", rogue_ca, at),
    )


@functools.cache
def shared_test_pki() -> SimulatorPki:
    return make_test_pki()


def write_demo_files(directory: Path, pki: SimulatorPki | None = None) -> tuple[Path, Path, Path]:
    """The demo provider's `access_certificate.key`, `access_certificate.cert` (the leaf alone:
    its CA is the trust anchor, which x5c leaves out) and `trusted_issuers` (the PID CA)."""
    chosen = pki or shared_test_pki()
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "wallet-simulator-rp.key"
    cert_path = directory / "wallet-simulator-rp.crt"
    trust_list_path = directory / "wallet-simulator-pid-ca.pem"
    key_path.write_bytes(chosen.access.key_pem())
    key_path.chmod(0o600)
    cert_path.write_bytes(chosen.access.cert_pem())
    trust_list_path.write_bytes(chosen.pid_ca.cert_pem())
    return key_path, cert_path, trust_list_path
