"""The BankID simulator's own certificate hierarchy, shaped like BankID's signing PKI
(shared/reference/bankid-2026-and-ciba.md §2.1-§2.3) and marked simulated/TEST everywhere:

    root "BankID Member Banks CA (simulated)" -> bank CA -> customer CA -> user certificates
                                                                       -> OCSP responder

The user certificate and the OCSP responder share their issuer, as BankID's do; a signature's
KeyInfo carries user, customer CA and bank CA, never the root, which e-services pin out of band
(the simulator serves it). All keys live in memory only and die with the simulator instance.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

ORGANISATION = "Portvakt BankID simulator - TEST"
ROOT_NAME = "Portvakt BankID simulator Root CA - TEST"
MEMBER_BANKS_UNIT = "BankID Member Banks CA (simulated)"
BANK_CA_NAME = "Simulated Testbank CA v1 for BankID TEST"
CUSTOMER_CA_NAME = "Simulated Testbank Customer CA v1 for BankID TEST"
RESPONDER_NAME = CUSTOMER_CA_NAME + " OCSP Signing"
# BankID's policy OID for a test BankID on file (digest §2.1): only test BankIDs use it.
TEST_POLICY_OID = "1.2.3.4.5"
# .invalid (RFC 2606): the simulator answers no OCSP requests; the response comes in collect.
OCSP_URL = "http://ocsp.bankid-simulator.invalid/"
USER_CERTIFICATE_DAYS = 365
CA_DAYS = 3650
BACKDATE = datetime.timedelta(hours=1)  # a clock a little behind still sees valid certificates


@dataclass(frozen=True)
class Issued:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class Person:
    personal_number: str
    given_name: str
    surname: str


def _new_key() -> rsa.RSAPrivateKey:
    # RSA, as BankID's rsa-sha256; 2048 bits keeps a fresh simulator fast.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str, *extra: x509.NameAttribute[str]) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            *extra,
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, key: rsa.RSAPrivateKey, issuer: Issued | None, now: datetime.datetime
) -> x509.CertificateBuilder:
    issuer_name = subject if issuer is None else issuer.certificate.subject
    issuer_key = key.public_key() if issuer is None else issuer.key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
        )
    )


def _sign(
    builder: x509.CertificateBuilder, key: rsa.RSAPrivateKey, issuer: Issued | None
) -> Issued:
    signer = key if issuer is None else issuer.key
    return Issued(key, builder.sign(signer, hashes.SHA256()))


def _key_usage(*, signs: bool = False, certifies: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signs,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certifies,
        crl_sign=certifies,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate_authority(
    common_name: str, issuer: Issued | None, path_length: int, now: datetime.datetime
) -> Issued:
    key = _new_key()
    unit = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, MEMBER_BANKS_UNIT)]
    subject = _name(common_name, *(unit if issuer is None else []))
    builder = (
        _builder(subject, key, issuer, now)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(certifies=True), critical=True)
    )
    return _sign(builder, key, issuer)


def _responder(issuer: Issued, now: datetime.datetime) -> Issued:
    key = _new_key()
    builder = (
        _builder(_name(RESPONDER_NAME), key, issuer, now)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=True)
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    return _sign(builder, key, issuer)


@dataclass
class SimulatorPki:
    """Generated on first use, once per simulator instance; `clock` gives epoch seconds."""

    clock: Callable[[], float]
    _users: dict[str, Issued] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = self.now()
        self.root = _certificate_authority(ROOT_NAME, None, 2, now)
        self.bank_ca = _certificate_authority(BANK_CA_NAME, self.root, 1, now)
        self.customer_ca = _certificate_authority(CUSTOMER_CA_NAME, self.bank_ca, 0, now)
        self.responder = _responder(self.customer_ca, now)

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.clock(), tz=datetime.UTC)

    def root_pem(self) -> bytes:
        return self.root.certificate.public_bytes(serialization.Encoding.PEM)

    def key_info_chain(self, user: x509.Certificate) -> list[x509.Certificate]:
        """What BankID puts in KeyInfo: the user's certificate first, then its CAs, no root."""
        return [user, self.customer_ca.certificate, self.bank_ca.certificate]

    def user(self, person: Person) -> Issued:
        """The person's certificate: one per person as one BankID has one, renewed when the
        clock has passed its end (or the name changed)."""
        issued = self._users.get(person.personal_number)
        now = self.now()
        if (
            issued is None
            or issued.certificate.not_valid_after_utc < now
            or (_subject(person) != issued.certificate.subject)
        ):
            issued = self._users[person.personal_number] = self._new_user(person, now)
        return issued

    def _new_user(self, person: Person, now: datetime.datetime) -> Issued:
        key = _new_key()
        policy = x509.PolicyInformation(x509.ObjectIdentifier(TEST_POLICY_OID), None)
        ocsp = x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(OCSP_URL)
        )
        builder = (
            _builder(_subject(person), key, self.customer_ca, now)
            .not_valid_after(now + datetime.timedelta(days=USER_CERTIFICATE_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs=True), critical=True)
            .add_extension(x509.CertificatePolicies([policy]), critical=False)
            .add_extension(x509.AuthorityInformationAccess([ocsp]), critical=False)
        )
        return _sign(builder, key, self.customer_ca)


def _subject(person: Person) -> x509.Name:
    return _name(
        f"{person.given_name} {person.surname}",
        x509.NameAttribute(NameOID.SURNAME, person.surname),
        x509.NameAttribute(NameOID.GIVEN_NAME, person.given_name),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, person.personal_number),
    )
