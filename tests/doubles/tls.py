"""Certificates for mutual-TLS tests, made with `cryptography`: a test CA that signs the
simulated BankID server's certificate (for 127.0.0.1) and the relying party's client
certificate, and a second, untrusted CA for the negative cases; and a BankID server that breaks
below HTTP (TLS alerts, hang-ups, garbage) for the client's error handling."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

P12_PASSWORD = "qwerty123"  # the password BankID uses for its public test RP certificate


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class LocalPKI:
    ca: Path  # the "BankID server root" the RP pins (it also issued the RP's certificate)
    server: Issued
    client: Issued
    client_p12: Path
    rogue_ca: Path
    rogue_client: Issued


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portvakt tests"),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None = None,
    ip: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name = issuer[0].subject if issuer else _name(subject)
    signing_key = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip is not None:
        alt = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(alt, critical=False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    return builder.sign(signing_key, hashes.SHA256())


def _issue(
    directory: Path,
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    usage: x509.ObjectIdentifier,
    ip: str | None = None,
) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key, issuer, usage, ip)
    issued = Issued(directory / f"{name}.pem", directory / f"{name}-key.pem")
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(issued.key, key)
    return issued, cert, key


def _ca(directory: Path, name: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key, None)
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def make_pki(directory: Path) -> LocalPKI:
    ca_path, ca_cert, ca_key = _ca(directory, "test-bankid-root")
    server, _, _ = _issue(
        directory, "bankid-server", (ca_cert, ca_key), ExtendedKeyUsageOID.SERVER_AUTH, "127.0.0.1"
    )
    client, client_cert, client_key = _issue(
        directory, "rp-client", (ca_cert, ca_key), ExtendedKeyUsageOID.CLIENT_AUTH
    )
    p12 = directory / "rp-client.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"rp",
            client_key,
            client_cert,
            None,
            serialization.BestAvailableEncryption(P12_PASSWORD.encode()),
        )
    )
    rogue_path, rogue_cert, rogue_key = _ca(directory, "rogue-root")
    rogue_client, _, _ = _issue(
        directory, "rogue-client", (rogue_cert, rogue_key), ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return LocalPKI(ca_path, server, client, p12, rogue_path, rogue_client)


def tls_server_context(pki: LocalPKI, version: ssl.TLSVersion, client_ca: Path) -> ssl.SSLContext:
    """A server context pinned to one TLS version that demands a client certificate from
    `client_ca` (give it `pki.rogue_ca` and every proper RP certificate is refused)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = context.maximum_version = version
    context.load_cert_chain(pki.server.cert, pki.server.key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class BrokenBankID:
    """A BankID server that fails below HTTP, on a loopback port, in a thread.

    `refuse`: the handshake ends with the server's TLS alert about the client certificate. Under
    TLS 1.2 the client learns it while connecting; under TLS 1.3 the client's handshake is
    already over, and the alert only surfaces when it reads its answer (as `ssl.SSLError`).
    `close`: the server hangs up after reading the request. `garbage`: it answers bytes that are
    not HTTP.
    """

    def __init__(self, context: ssl.SSLContext, behaviour: str) -> None:
        self._context = context
        self._behaviour = behaviour
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/rp/v6.0"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.settimeout(5)
            with (
                connection,
                self._context.wrap_socket(
                    connection, server_side=True, do_handshake_on_connect=False
                ) as tls,
            ):
                self._answer(tls)

    def _answer(self, tls: ssl.SSLSocket) -> None:
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            # The alert is written; closing at once could reset the connection before the
            # client reads it, so wait for the client to hang up first.
            _drain(tls)
            return
        try:
            tls.recv(65536)
            if self._behaviour == "garbage":
                tls.sendall(b"\x16\x03 this is not HTTP \xff\xfe\r\n\r\n")
        except (ssl.SSLError, OSError):
            return


def _drain(tls: ssl.SSLSocket) -> None:
    try:
        while socket.socket.recv(tls, 4096):
            pass
    except OSError:
        return
