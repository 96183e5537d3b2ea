"""Issue 20's "done when": an unmodified openid-client (npm, v6, pinned in package-lock.json)
logs in to the gateway over HTTPS with a signed request object (RFC 9101) and with a pushed
authorization request (RFC 9126). The citizen's part (the sandbox e-ID) is walked by the test's
browser; openid-client builds the request, redeems the code and validates the ID token."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.app import create_app
from gateway.settings import Settings
from tests.doubles.tls import LocalPKI, make_pki
from tests.harness import (
    REDIRECT_URI,
    TEST_PERSON,
    Browser,
    LiveGateway,
    ServedApp,
    base_settings,
    free_port,
    hidden_field,
)

INTEROP = Path(__file__).parent
PNR_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
CLIENT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NODE_TIMEOUT = 60
SIGN_SCOPE = "https://id.oidc.se/scope/sign"
USER_SIGNATURE = "https://id.oidc.se/claim/userSignature"
TBS_DATA = base64.b64encode(b"interop: sign this").decode()
SIGN_REQUEST = {
    "tbs_data": TBS_DATA,
    "sign_message": {"message": base64.b64encode(b"Sign this, please").decode()},
}


def private_jwk() -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(CLIENT_KEY, as_dict=True), "kid": "interop-1"}


def public_jwk() -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(CLIENT_KEY.public_key(), as_dict=True), "kid": "interop-1"}


CLIENTS = [
    {"client_id": "node-jar", "jwks": {"keys": [public_jwk()]}, "redirect_uris": [REDIRECT_URI],
     "require_signed_request_object": True},
    {"client_id": "node-sign", "jwks": {"keys": [public_jwk()]}, "redirect_uris": [REDIRECT_URI],
     "require_signed_request_object": True,
     "scopes": ["openid", "https://id.oidc.se/scope/naturalPersonNumber", SIGN_SCOPE]},
    {"client_id": "node-par", "client_secret": "node-par-secret", "redirect_uris": [REDIRECT_URI],
     "token_endpoint_auth_method": "client_secret_basic",
     "require_pushed_authorization_requests": True},
]  # fmt: skip


class HttpsGateway(LiveGateway):
    """The gateway on https://127.0.0.1:PORT with a certificate from the test CA."""

    def __init__(self, settings: Settings, pki: LocalPKI) -> None:
        self.settings = settings
        self.app = create_app(settings)
        port = int(settings.issuer.rsplit(":", 1)[1])
        ServedApp.__init__(
            self, self.app, port, ssl_certfile=str(pki.server.cert), ssl_keyfile=str(pki.server.key)
        )


def node_modules() -> Path:
    """`npm ci` into tests/interop once per lock file content (a marker holds its hash);
    a file lock keeps parallel test processes from installing at the same time."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed: run scripts/ensure-test-tools.sh"
    lock_hash = hashlib.sha256((INTEROP / "package-lock.json").read_bytes()).hexdigest()
    marker = INTEROP / "node_modules" / ".portvakt-lock-sha256"
    with (INTEROP / ".npm-ci.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != lock_hash:
            command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
            subprocess.run(command, cwd=INTEROP, check=True, timeout=300, capture_output=True)
            marker.write_text(lock_hash)
    return INTEROP / "node_modules"


def node_command(*args: str) -> list[str]:
    node = shutil.which("node") or "node"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    # Node 18 (Debian 12) has Web Crypto only behind this flag; openid-client needs it.
    flags = ["--experimental-global-webcrypto"] if major < 19 else []
    return [node, *flags, str(INTEROP / "script.mjs"), *args]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    return make_pki(tmp_path_factory.mktemp("interop-pki"))


@pytest.fixture(scope="module")
def gateway(pki: LocalPKI) -> Iterator[HttpsGateway]:
    node_modules()
    issuer = f"https://127.0.0.1:{free_port()}"
    with HttpsGateway(base_settings(issuer, None, clients=CLIENTS), pki) as live:
        yield live


def log_in_with_openid_client(
    gateway: HttpsGateway, pki: LocalPKI, mode: str, client_id: str, credential: str
) -> dict[str, Any]:
    discovery = f"{gateway.url}/.well-known/openid-configuration"
    env = {
        **os.environ,
        "NODE_EXTRA_CA_CERTS": str(pki.ca),
        "SIGN_REQUEST": json.dumps(SIGN_REQUEST),
    }
    process = subprocess.Popen(
        node_command(mode, discovery, client_id, credential, REDIRECT_URI),
        cwd=INTEROP, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        authorization_url = process.stdout.readline().strip()
        assert authorization_url.startswith(gateway.url), process.communicate()[1]
        callback = citizen_logs_in(gateway, pki, authorization_url)
        out, err = process.communicate(f"{REDIRECT_URI}?{urlencode(callback)}\n", NODE_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    claims: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return claims


def citizen_logs_in(gateway: HttpsGateway, pki: LocalPKI, url: str) -> dict[str, str]:
    browser = Browser(gateway)
    browser.http.close()
    verify = ssl.create_default_context(cafile=str(pki.ca))
    browser.http = httpx2.Client(base_url=gateway.url, follow_redirects=False, verify=verify)
    try:
        page = browser.http.get(url)
        assert page.status_code == 200, page.text
        picked = browser.submit_sandbox(page)
        if "/providers/sandbox/sign?" in picked.headers.get("location", ""):
            shown = browser.http.get(picked.headers["location"])
            form = {name: hidden_field(shown.text, name) for name in ("login", "csrf")}
            picked = browser.http.post("/providers/sandbox/sign", data={**form, "sign": "1"})
        return browser.follow_to_client(picked)
    finally:
        browser.close()


def test_openid_client_logs_in_with_a_signed_request_object(
    gateway: HttpsGateway, pki: LocalPKI
) -> None:
    """buildAuthorizationUrlWithJAR, private_key_jwt at the token endpoint; the client requires
    signed request objects, so the login proves the object was used."""
    claims = log_in_with_openid_client(gateway, pki, "jar", "node-jar", json.dumps(private_jwk()))
    assert claims["iss"] == gateway.url
    assert claims["aud"] == "node-jar"
    assert claims[PNR_CLAIM] == TEST_PERSON


def test_openid_client_logs_in_with_a_pushed_authorization_request(
    gateway: HttpsGateway, pki: LocalPKI
) -> None:
    """buildAuthorizationUrlWithPAR, client_secret_basic at /par and /token; the client
    requires PAR, so the login proves the pushed request was used."""
    claims = log_in_with_openid_client(gateway, pki, "par", "node-par", "node-par-secret")
    assert claims["iss"] == gateway.url
    assert claims["aud"] == "node-par"
    assert claims[PNR_CLAIM] == TEST_PERSON


def test_openid_client_asks_for_a_sandbox_signature_in_a_signed_request_object(
    gateway: HttpsGateway, pki: LocalPKI
) -> None:
    """Issue 21: the signRequest as a member of openid-client's signed request object (JAR);
    the ID token it validated carries the sandbox's test signature over our tbs_data."""
    claims = log_in_with_openid_client(
        gateway, pki, "jar-sign", "node-sign", json.dumps(private_jwk())
    )
    statement = json.loads(base64.b64decode(claims[USER_SIGNATURE]))
    assert statement["format"] == "portvakt-sandbox-test-signature/1"
    assert statement["tbs_data_sha256"] == hashlib.sha256(TBS_DATA.encode()).hexdigest()
    assert statement["signer"] == claims[PNR_CLAIM] == TEST_PERSON
