"""A `type: eudi_wallet` entry as `portvakt check-config` and loading see it: certificate
expiry reported, unusable keys and trust lists refused with the key named, the simulator's
certificates refused in production."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.cli.main import main
from providers.eudi_wallet.config import SIMULATOR_ORGANISATION
from tests.doubles.wallet_pki import Issued, PidProvider, issue

DAY = datetime.timedelta(days=1)


def write_config(tmp_path: Path, wallet: dict[str, Any], environment: str = "test") -> Path:
    config = tmp_path / "portvakt.yaml"
    data = {
        "issuer": "https://gw.example.se",
        "environment": environment,
        "secret_key": "k" * 40,
        "subject_salt": "s" * 40,
        "providers": {"wallet": wallet},
        "clients": [
            {"client_id": "c", "client_secret": "s" * 40, "redirect_uris": ["https://e.example/cb"]}
        ],
    }
    config.write_text(yaml.safe_dump(data))
    return config


def wallet_entry(tmp_path: Path, access: Issued, *trusted: x509.Certificate) -> dict[str, Any]:
    key, cert, trust = tmp_path / "rp.key", tmp_path / "rp.crt", tmp_path / "pid.pem"
    key.write_bytes(access.key_pem())
    cert.write_bytes(access.cert_pem())
    trust.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in trusted))
    return {
        "type": "eudi_wallet",
        "access_certificate": {"key": str(key), "cert": str(cert)},
        "trusted_issuers": [str(trust)],
    }


def problems(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str]:
    code = main(["check-config", str(config)])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def access_ca() -> Issued:
    return issue("Test Access CA", ca=True, valid_days=3650)


@pytest.fixture(scope="module")
def sweden() -> PidProvider:
    return PidProvider.make("SE")


def test_a_usable_wallet_entry_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], access_ca: Issued, sweden: PidProvider
) -> None:
    entry = wallet_entry(tmp_path, issue("E-service", access_ca), sweden.ca.certificate)
    assert problems(capsys, write_config(tmp_path, entry)) == (0, "")


def test_an_access_certificate_near_its_end_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], access_ca: Issued, sweden: PidProvider
) -> None:
    expiring = issue("E-service", access_ca, valid_days=10)
    code, err = problems(
        capsys, write_config(tmp_path, wallet_entry(tmp_path, expiring, sweden.ca.certificate))
    )
    assert code != 0
    assert "providers.wallet.access_certificate.cert[0]: the certificate expires in" in err


def test_an_expired_trusted_issuer_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], access_ca: Issued
) -> None:
    old = issue("Old PID CA", ca=True, valid_from=datetime.datetime.now(datetime.UTC) - 400 * DAY)
    code, err = problems(
        capsys,
        write_config(tmp_path, wallet_entry(tmp_path, issue("E", access_ca), old.certificate)),
    )
    assert code != 0
    assert "providers.wallet.trusted_issuers[0][0]: the certificate has expired" in err


@pytest.mark.parametrize(
    ("bend", "says"),
    [
        ("self-signed", "no root, no self-signed certificate"),
        ("other key", "is not the key of the first certificate"),
        ("rsa", "must be an EC P-256 key"),
        ("no trust file", "trusted_issuers"),
        ("empty trust file", "trusted_issuers"),
    ],
)
def test_an_unusable_entry_is_refused_naming_its_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    access_ca: Issued,
    sweden: PidProvider,
    bend: str,
    says: str,
) -> None:
    access = issue("E-service", None if bend == "self-signed" else access_ca)
    entry = wallet_entry(tmp_path, access, sweden.ca.certificate)
    if bend == "other key":
        Path(entry["access_certificate"]["key"]).write_bytes(issue("other", access_ca).key_pem())
    if bend == "rsa":
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        Path(entry["access_certificate"]["key"]).write_bytes(
            rsa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    if bend == "no trust file":
        entry["trusted_issuers"] = [str(tmp_path / "missing.pem")]
    if bend == "empty trust file":
        Path(entry["trusted_issuers"][0]).write_text("")

    code, err = problems(capsys, write_config(tmp_path, entry))

    assert code != 0
    assert "providers.wallet" in err and says in err


def test_the_simulator_is_refused_in_production(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], access_ca: Issued, sweden: PidProvider
) -> None:
    entry = wallet_entry(tmp_path, issue("E-service", access_ca), sweden.ca.certificate)
    entry["simulator_url"] = "https://gw.example.se/wallet-simulator/"

    code, err = problems(capsys, write_config(tmp_path, entry, "production"))

    assert code != 0 and "simulator_url" in err


def test_the_simulators_certificates_are_refused_in_production(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], access_ca: Issued
) -> None:
    marked = simulator_marked_ca()
    entry = wallet_entry(tmp_path, issue("E-service", access_ca), marked)

    code, err = problems(capsys, write_config(tmp_path, entry, "production"))

    assert code != 0 and "wallet simulator's test certificates" in err


def simulator_marked_ca() -> x509.Certificate:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIMULATOR_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, "Simulated PID CA"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - DAY).not_valid_after(now + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
