"""Configuration: validated at start, with messages that name the key, the problem and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import SettingsError, load_settings

EXAMPLE = Path(__file__).parent.parent / "config" / "portvakt.example.yaml"
EXAMPLE_ENV = {
    "PORTVAKT_SECRET_KEY": "s" * 40,
    "PORTVAKT_SUBJECT_SALT": "salt" * 5,
    "BYGGLOV_CLIENT_SECRET": "bygglov-secret",
}
MINIMAL = """
issuer: http://127.0.0.1:8080
providers: {sandbox: {type: sandbox}}
clients: [{client_id: a, client_secret: s, redirect_uris: ["http://127.0.0.1:9000/cb"]}]
"""


def problems_of(tmp_config, text: str) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        load_settings(tmp_config(text))
    return raised.value.problems


def test_the_example_config_is_valid(monkeypatch) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(EXAMPLE)
    assert settings.client("bygglov").client_secret == "bygglov-secret"
    assert settings.client("skolval").auth_methods() == {"private_key_jwt"}


def test_a_minimal_config_is_valid(tmp_config) -> None:
    assert load_settings(tmp_config(MINIMAL)).store is None


def test_unset_environment_variable_names_the_key(tmp_config, monkeypatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    text = MINIMAL.replace("client_secret: s", "client_secret: '${NOT_SET_ANYWHERE}'")
    assert problems_of(tmp_config, text) == [
        "clients[0].client_secret: refers to ${NOT_SET_ANYWHERE}, which is not set; "
        "export NOT_SET_ANYWHERE"
    ]


def test_unknown_key_is_an_error_with_a_fix(tmp_config) -> None:
    problems = problems_of(tmp_config, MINIMAL + "storage: {url: redis://x}\n")
    assert problems == [
        "storage: Extra inputs are not permitted; remove it or check its spelling against "
        "config/portvakt.example.yaml"
    ]


def test_unknown_provider_type_lists_the_known_ones(tmp_config) -> None:
    text = MINIMAL.replace("{type: sandbox}", "{type: smoke-signals}")
    [problem] = problems_of(tmp_config, text)
    assert problem.startswith("providers.sandbox: ")
    assert problem.endswith("set type to one of: sandbox, bankid, saml, oidc, eudi_wallet")


def test_misspelt_provider_key_names_the_full_path(tmp_config) -> None:
    text = MINIMAL.replace("{type: sandbox}", "{type: sandbox, lao: x}")
    [problem] = problems_of(tmp_config, text)
    assert problem.startswith("providers.sandbox.lao: Extra inputs are not permitted")


def test_missing_required_key(tmp_config) -> None:
    text = MINIMAL.replace("issuer: http://127.0.0.1:8080\n", "")
    assert problems_of(tmp_config, text) == [
        "issuer: Field required; add it (see config/portvakt.example.yaml)"
    ]


def test_http_issuer_outside_localhost_is_refused(tmp_config) -> None:
    [problem] = problems_of(tmp_config, MINIMAL.replace("127.0.0.1:8080", "login.kommun.example"))
    assert problem == "issuer: must use https outside localhost"


def test_redirect_uri_with_fragment_is_refused(tmp_config) -> None:
    [problem] = problems_of(tmp_config, MINIMAL.replace("/cb", "/cb#x"))
    assert problem.startswith("clients[0].redirect_uris: ")
    assert "without a fragment" in problem


def test_duplicate_client_id_is_refused(tmp_config) -> None:
    text = MINIMAL.replace(
        "clients: [",
        'clients: [{client_id: a, client_secret: t, redirect_uris: ["http://127.0.0.1:9000/x"]}, ',
    )
    assert problems_of(tmp_config, text) == ["(top level): client_id 'a' is registered twice"]


def test_client_naming_an_unknown_provider_is_refused(tmp_config) -> None:
    text = MINIMAL.replace("client_secret: s,", "client_secret: s, providers: [bankid],")
    [problem] = problems_of(tmp_config, text)
    assert "names provider 'bankid', which is not under providers:" in problem


def test_production_refuses_the_sandbox(tmp_config) -> None:
    text = (
        MINIMAL.replace("http://127.0.0.1:8080", "https://login.kommun.example")
        + "environment: production\n"
    )
    [problem] = problems_of(tmp_config, text)
    assert "provider 'sandbox' is the sandbox" in problem
    assert "refuses to load with environment: production" in problem


def test_private_key_jwt_without_jwks_is_refused(tmp_config) -> None:
    text = MINIMAL.replace("client_secret: s,", "token_endpoint_auth_method: private_key_jwt,")
    [problem] = problems_of(tmp_config, text)
    assert problem.startswith("clients[0]: private_key_jwt needs the client's public keys in jwks")


def test_not_yaml_is_reported(tmp_config) -> None:
    [problem] = problems_of(tmp_config, "issuer: [unclosed")
    assert problem.startswith("not valid YAML")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_exits_zero_on_a_good_file(tmp_config) -> None:
    result = run_cli("check-config", str(tmp_config(MINIMAL)))
    assert result.returncode == 0
    assert "OK" in result.stdout


def test_serve_with_a_bad_file_exits_non_zero_without_a_traceback(tmp_config) -> None:
    result = run_cli("serve", "--config", str(tmp_config(MINIMAL + "storage: 1\n")), "--port", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "storage: Extra inputs are not permitted" in result.stderr


def test_client_jwks_must_be_a_usable_key_set(tmp_config) -> None:
    text = MINIMAL.replace("client_secret: s,", "jwks: {keys: [{kty: RSA, n: x}]},")
    [problem] = problems_of(tmp_config, text)
    assert problem.startswith("clients[0].jwks: is not a JWK Set with usable keys")


def test_client_jwks_must_not_hold_a_private_key(tmp_config) -> None:
    from joserfc.jwk import ECKey

    private = ECKey.generate_key("P-256").as_dict(private=True)
    text = MINIMAL.replace("client_secret: s,", f"jwks: {{keys: [{json.dumps(private)}]}},")
    [problem] = problems_of(tmp_config, text)
    assert problem == "clients[0].jwks: holds a private key; register only the client's public keys"


def test_serve_with_an_unreadable_key_directory_exits_without_a_traceback(
    tmp_config, tmp_path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the key directory should be")
    config = tmp_config(MINIMAL + f"keys: {{dir: '{blocked / 'keys'}'}}\n")
    result = run_cli("serve", "--config", str(config), "--port", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "portvakt: keys.dir: cannot load the signing keys" in result.stderr


def test_a_file_that_is_not_utf8_is_a_problem_not_a_traceback(tmp_path) -> None:
    config = tmp_path / "portvakt.yaml"
    latin1 = MINIMAL.replace("client_id: a", "client_id: 'r\xe4ksm\xf6rg\xe5s'").encode("latin-1")
    config.write_bytes(latin1)
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"portvakt: the configuration in {config} cannot be used:" in result.stderr
    assert "  - cannot read the file: it is not UTF-8 text (byte 0xe4 at position " in result.stderr


def test_a_secret_file_that_is_not_utf8_names_its_key(tmp_config, tmp_path) -> None:
    (tmp_path / "secret").write_bytes(b"\xff\xfe-not-text")
    text = MINIMAL.replace("client_secret: s", "client_secret: '${file:secret}'")
    [problem] = problems_of(tmp_config, text)
    assert problem.startswith(
        f"clients[0].client_secret: cannot read {tmp_path / 'secret'}: it is not UTF-8 text"
    )


PUBLIC_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}  # fmt: skip (RFC 7517 A.1)


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (f"jwks: {{keys: [{json.dumps(PUBLIC_JWK)}]}}, jwks_uri: 'https://rp.example/jwks'",
         "clients[0]: give either jwks or jwks_uri, not both"),
        ("client_secret: s, jwks_uri: 'https://rp.example/jwks'",
         "clients[0]: give either client_secret or jwks (or jwks_uri), not both"),
        ("jwks_uri: 'http://rp.example/jwks'",
         "clients[0].jwks_uri: 'http://rp.example/jwks' must be an absolute https URI"),
        ("client_secret: s, request_object_signing_alg: RS256",
         "clients[0]: request_object_signing_alg RS256 needs jwks or jwks_uri"),
        ("client_secret: s, require_signed_request_object: true",
         "clients[0]: require_signed_request_object needs jwks or jwks_uri"),
        ("jwks_uri: 'https://rp.example/jwks', request_object_signing_alg: none, "
         "require_signed_request_object: true",
         "clients[0]: require_signed_request_object contradicts request_object_signing_alg: none"),
        ("jwks_uri: 'https://rp.example/jwks', request_object_signing_alg: HS256",
         "clients[0].request_object_signing_alg: Input should be"),
    ],
    ids=["jwks-and-jwks-uri", "secret-and-jwks-uri", "plain-http-jwks-uri", "alg-without-keys",
         "signed-required-without-keys", "signed-required-but-none", "hmac-alg"],
)  # fmt: skip
def test_request_object_client_metadata_is_checked(tmp_config, client: str, expected: str) -> None:
    """RFC 7591 §2, RFC 9101 §10.5: each inconsistent registration named with its key."""
    text = MINIMAL.replace(
        "client_secret: s,", client.replace("client_secret: s", "client_secret: s") + ","
    )
    [problem] = problems_of(tmp_config, text)
    assert problem.startswith(expected), problem


def test_a_jwks_uri_client_authenticates_with_private_key_jwt(tmp_config) -> None:
    text = MINIMAL.replace("client_secret: s,", "jwks_uri: 'https://rp.example/jwks',")
    [client] = load_settings(tmp_config(text)).clients
    assert client.auth_methods() == {"private_key_jwt"}


# --- profile: sweden-connect (SC.OIDC 1.0 §2.3, §3.2) -------------------------------------------

SC_JWK = {
    "kty": "EC", "crv": "P-256", "kid": "k1",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}  # fmt: skip
SWEDEN_CONNECT_CLIENT = {
    "client_id": "sc",
    "profile": "sweden-connect",
    "jwks": {"keys": [SC_JWK]},
    "redirect_uris": ["https://tjanst.example/cb"],
    "display": {"sv": "Exempeltjänsten", "en": "The Example Service"},
    "contacts": ["drift@tjanst.example"],
    "logo_uri": "https://tjanst.example/logo.svg",
    "client_uri": "https://tjanst.example/",
}


def sc_config(**changes: object) -> str:
    client = {k: v for k, v in {**SWEDEN_CONNECT_CLIENT, **changes}.items() if v is not None}
    return json.dumps(
        {"issuer": "http://127.0.0.1:8080", "providers": {"sandbox": {"type": "sandbox"}},
         "clients": [client]}
    )  # fmt: skip


def test_a_complete_sweden_connect_client_is_valid(tmp_config) -> None:
    client = load_settings(tmp_config(sc_config())).client("sc")
    assert client.profile == "sweden-connect"
    assert client.contacts == ["drift@tjanst.example"]
    assert client.logo_uri == "https://tjanst.example/logo.svg"


def test_the_default_profile_keeps_todays_rules(tmp_config) -> None:
    assert load_settings(tmp_config(MINIMAL)).client("a").profile == "swedish-oidc"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"jwks": None, "client_secret": "s" * 40},
         "clients[0].client_secret: the sweden-connect profile allows only private_key_jwt "
         "(SC.OIDC §2.3; mTLS is not implemented); remove client_secret and register the "
         "client's public keys in jwks"),
        ({"jwks": None},
         "clients[0].token_endpoint_auth_method: the sweden-connect profile allows only "
         "private_key_jwt (SC.OIDC §2.3; mTLS is not implemented); register the client's "
         "public keys in jwks"),
        ({"contacts": None},
         "clients[0].contacts: the sweden-connect profile needs at least one contact e-mail "
         "address (SC.OIDC §3.2); add contacts: [drift@example.se]"),
        ({"display": {"sv": "Exempeltjänsten"}},
         "clients[0].display: the sweden-connect profile needs the e-service's name in Swedish "
         "and English (client_name#sv, #en; SC.OIDC §3.2); add display: {sv: …, en: …}"),
        ({"logo_uri": None},
         "clients[0].logo_uri: the sweden-connect profile needs the e-service's logo "
         "(SC.OIDC §3.2); add logo_uri: https://…"),
        ({"logo_uri": "http://127.0.0.1:9000/logo.svg"},
         "clients[0].logo_uri: the sweden-connect profile needs an https URL (SC.OIDC §3.2); "
         "serve the logo over https"),
        ({"client_uri": None},
         "clients[0].client_uri: the sweden-connect profile needs the e-service's home page "
         "(SC.OIDC §3.2); add client_uri: https://…"),
        ({"client_uri": "http://tjanst.example/"},
         "clients[0].client_uri: the sweden-connect profile needs an https URL (SC.OIDC §3.2); "
         "serve the page over https"),
    ],
    ids=["secret", "public", "contacts", "english-name", "no-logo", "http-logo", "no-home",
         "http-home"],
)  # fmt: skip
def test_a_sweden_connect_client_missing_what_the_profile_requires_is_refused(
    tmp_config, changes, expected
) -> None:
    assert problems_of(tmp_config, sc_config(**changes)) == [expected]


def test_every_missing_sweden_connect_requirement_is_its_own_line(tmp_config) -> None:
    text = sc_config(contacts=None, logo_uri=None, client_uri=None)
    assert [line.split(":")[0] for line in problems_of(tmp_config, text)] == [
        "clients[0].contacts", "clients[0].logo_uri", "clients[0].client_uri",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"contacts": ["drift@tjanst.example", "not an address"]}, "contacts[1]"),
        ({"logo_uri": "https://user@tjanst.example/logo.svg"}, "logo_uri"),
        ({"logo_uri": "https://tjanst.example;script-src */logo.svg"}, "logo_uri"),
        ({"logo_uri": "javascript:alert(1)"}, "logo_uri"),
    ],
)
def test_contacts_and_logo_uri_are_checked_for_every_client(tmp_config, changes, key) -> None:
    """The logo's origin goes into the chooser's Content-Security-Policy: only a plain host."""
    [problem] = problems_of(tmp_config, sc_config(profile=None, **changes))
    assert problem.startswith(f"clients[0].{key}: ")


def test_a_local_http_logo_is_allowed_outside_the_profile(tmp_config) -> None:
    text = sc_config(profile=None, logo_uri="http://127.0.0.1:9000/logo.svg")
    assert load_settings(tmp_config(text)).client("sc").logo_uri.startswith("http://127.0.0.1")
