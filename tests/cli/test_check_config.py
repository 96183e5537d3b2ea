"""`portvakt check-config` beyond loading: expiring certificates, plain-http redirect URIs,
upstream metadata that cannot be fetched now. Each problem's message is asserted."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.cli.main import main
from tests.cli.test_main import console_script
from tests.doubles.client_jwks import PublishedKeys
from tests.doubles.pigeon import PIGEON_TYPE, pigeons_registered
from tests.doubles.saml_idp import FakeIdP, make_key_pair
from tests.harness import free_port


def short_lived_pair(folder: Path, name: str, days: int) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def write(tmp_path: Path, providers: dict, redirect: str = "https://e.example/cb") -> Path:
    config = tmp_path / "portvakt.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "issuer": "http://127.0.0.1:8080",
                "providers": providers,
                "clients": [
                    {"client_id": "c", "client_secret": "s" * 40, "redirect_uris": [redirect]}
                ],
            }
        )
    )
    return config


def problems(capsys: pytest.CaptureFixture[str], config: Path) -> list[str]:
    code = main(["check-config", str(config)])
    err = capsys.readouterr().err
    lines = [line.removeprefix("  - ") for line in err.splitlines() if line.startswith("  - ")]
    assert (code == 0) == (lines == [])
    return lines


def saml(tmp_path: Path, signing: tuple[Path, Path]) -> dict:
    enc = make_key_pair(tmp_path, "enc")
    idp_file = tmp_path / "idp.xml"
    idp_file.write_bytes(
        FakeIdP(
            "https://idp.example/idp", "https://idp.example", make_key_pair(tmp_path, "idp")
        ).metadata()
    )
    return {
        "type": "saml",
        "entity_id": "https://sp.example/sp",
        "signing": {"key": str(signing[0]), "cert": str(signing[1])},
        "encryption": {"key": str(enc.key), "cert": str(enc.cert)},
        "metadata": {"file": str(idp_file)},
    }


def test_a_clean_configuration_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signing = short_lived_pair(tmp_path, "sign", 365)
    assert problems(capsys, write(tmp_path, {"sc": saml(tmp_path, signing)})) == []


def test_a_certificate_expiring_within_30_days_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signing = short_lived_pair(tmp_path, "sign", 10)
    [problem] = problems(capsys, write(tmp_path, {"sc": saml(tmp_path, signing)}))
    assert problem.startswith("providers.sc.signing.cert: the certificate expires in ")
    assert "renew it" in problem


def test_plain_http_redirect_uris_outside_localhost_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, {"sandbox": {"type": "sandbox"}}, "http://e.example/cb")
    assert problems(capsys, config) == [
        "clients[0].redirect_uris: 'http://e.example/cb' is plain http; codes would travel "
        "unprotected. Use https (http is only for localhost)"
    ]


def test_unreachable_upstream_metadata_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    signing = short_lived_pair(tmp_path, "sign", 365)
    federation = make_key_pair(tmp_path, "fed")
    provider = saml(tmp_path, signing)
    provider["metadata"] = {
        "url": f"{down}/md.xml",
        "cert": str(federation.cert),
        "cache": str(tmp_path / "c.xml"),
    }
    oidc = {
        "type": "oidc",
        "display": {"sv": "X"},
        "issuer": down,
        "client_id": "c",
        "client_secret": "s",
    }
    found = problems(capsys, write(tmp_path, {"sc": provider, "op": oidc}))
    assert sorted(p.split(":")[0] for p in found) == ["providers.op", "providers.sc"]
    assert all("the upstream metadata cannot be used now: ConnectError" in p for p in found)


def test_a_plugged_in_type_says_what_to_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config asks each entry's config (ChecksConfig), so a type registered by one row
    gets its certificates and upstream checked without a line in gateway/."""
    in_five_days = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5, hours=1)).timestamp()
    pigeon = {"type": PIGEON_TYPE, "loft": "closed", "certificate_expires_at": in_five_days}
    with pigeons_registered():
        found = problems(capsys, write(tmp_path, {"loft": pigeon}))
    assert found == [
        "providers.loft.ring.cert: the certificate expires in 5 days; renew it (and publish the "
        "new SAML metadata) now",
        "providers.loft.loft: the loft is closed",
    ]


def test_check_config_names_every_missing_variable_and_the_file_it_read(tmp_path: Path) -> None:
    """Run as the operator runs it: one pass lists every `${NAME}` to export, not one per try."""
    config = tmp_path / "portvakt.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "issuer": "http://127.0.0.1:8080",
                "secret_key": "${PV_TEST_UNSET_SECRET_KEY}",
                "subject_salt": "${PV_TEST_UNSET_SALT}",
                "providers": {"sandbox": {"type": "sandbox"}},
                "clients": [
                    {
                        "client_id": "c",
                        "client_secret": "${file:secrets/absent}",
                        "redirect_uris": ["https://${PV_TEST_UNSET_HOST}/cb"],
                    }
                ],
            },
            sort_keys=False,
        )
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PV_TEST_UNSET_")}
    result = subprocess.run(
        [console_script(), "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"portvakt: the configuration in {config} cannot be used:"
    assert lines[1:] == [
        "  - secret_key: refers to ${PV_TEST_UNSET_SECRET_KEY}, which is not set; "
        "export PV_TEST_UNSET_SECRET_KEY",
        "  - subject_salt: refers to ${PV_TEST_UNSET_SALT}, which is not set; "
        "export PV_TEST_UNSET_SALT",
        f"  - clients[0].client_secret: cannot read {tmp_path / 'secrets' / 'absent'}: "
        "No such file or directory",
        "  - clients[0].redirect_uris[0]: refers to ${PV_TEST_UNSET_HOST}, which is not set; "
        "export PV_TEST_UNSET_HOST",
    ]


def with_jwks_uri_client(config: Path, jwks_uri: str) -> Path:
    data = yaml.safe_load(config.read_text())
    data["clients"].append(
        {"client_id": "by-uri", "jwks_uri": jwks_uri, "redirect_uris": ["https://e.example/cb"]}
    )
    config.write_text(yaml.safe_dump(data))
    return config


def client_public_jwk() -> dict:
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k"}


def test_a_reachable_jwks_uri_with_a_public_key_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signing = short_lived_pair(tmp_path, "sign", 365)
    with PublishedKeys(client_public_jwk()) as published:
        config = with_jwks_uri_client(
            write(tmp_path, {"sc": saml(tmp_path, signing)}), published.url
        )
        assert problems(capsys, config) == []


@pytest.mark.parametrize(
    ("keys", "status", "reason"),
    [
        ([], 200, "the JWK Set holds no keys"),
        ([{"kty": "RSA", "n": "x"}], 200, "not a JWK Set with usable keys"),
        (None, 500, "answered 500"),
        (None, None, "ConnectError"),
    ],
    ids=["no-keys", "unusable-key", "server-error", "unreachable"],
)
def test_a_client_jwks_uri_that_cannot_be_used_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys, status, reason
) -> None:
    """The keys that verify the client's request objects and assertions (RFC 7591 §2)."""
    signing = short_lived_pair(tmp_path, "sign", 365)
    with PublishedKeys(*(keys or [client_public_jwk()])) as published:
        published.keys = keys if keys is not None else published.keys
        published.status = status or 200
        url = published.url if status is not None else f"http://127.0.0.1:{free_port()}/jwks"
        config = with_jwks_uri_client(write(tmp_path, {"sc": saml(tmp_path, signing)}), url)
        [problem] = problems(capsys, config)
    assert problem.startswith("clients[1].jwks_uri: the client's keys cannot be used now: ")
    assert reason in problem


def test_a_sweden_connect_client_without_its_metadata_is_reported_line_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "portvakt.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "issuer": "http://127.0.0.1:8080",
                "providers": {"sandbox": {"type": "sandbox"}},
                "clients": [
                    {"client_id": "sc", "profile": "sweden-connect", "client_secret": "s" * 40,
                     "redirect_uris": ["https://e.example/cb"],
                     "display": {"sv": "Tjänsten", "en": "The service"},
                     "logo_uri": "https://e.example/logo.svg",
                     "client_uri": "https://e.example/"}
                ],
            }
        )
    )  # fmt: skip
    assert problems(capsys, config) == [
        "clients[0].client_secret: the sweden-connect profile allows only private_key_jwt "
        "(SC.OIDC §2.3; mTLS is not implemented); remove client_secret and register the "
        "client's public keys in jwks",
        "clients[0].contacts: the sweden-connect profile needs at least one contact e-mail "
        "address (SC.OIDC §3.2); add contacts: [drift@example.se]",
    ]
