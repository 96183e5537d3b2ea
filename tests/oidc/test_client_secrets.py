"""Client secrets kept out of the configuration: hashed (client_secret_sha256) or read from a
file (`${file:PATH}`), exercised over HTTP at the token endpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gateway.settings import SettingsError, load_settings
from tests.harness import REDIRECT_URI, Browser, code_form, running_gateway, token_request

SECRET = "a-long-random-client-secret-0123456789abcdef"


def test_a_hashed_client_secret_authenticates_the_client(store_url: str | None) -> None:
    clients = [
        {
            "client_id": "basic",
            "client_secret_sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
            "redirect_uris": [REDIRECT_URI],
        }
    ]
    with running_gateway(store_url, clients=clients) as live:
        browser = Browser(live)
        wrong = token_request(live, code_form(browser.login("basic")), auth=("basic", "nope"))
        assert wrong.status_code == 401
        right = token_request(
            live, code_form(browser.login("basic", prompt="login")), auth=("basic", SECRET)
        )
        assert right.status_code == 200, right.text
        browser.close()


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "client").write_text(SECRET + "\n")
    config = tmp_path / "portvakt.yaml"
    config.write_text(
        "issuer: http://127.0.0.1:8080\nproviders: {sandbox: {type: sandbox}}\n"
        "clients: [{client_id: c, client_secret: '${file:secrets/client}', "
        "redirect_uris: ['http://127.0.0.1:9000/cb']}]\n"
    )
    assert load_settings(config).clients[0].client_secret == SECRET
    config.write_text(config.read_text().replace("secrets/client", "secrets/missing"))
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    assert error.value.problems[0].startswith("clients[0].client_secret: cannot read ")
