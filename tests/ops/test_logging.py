"""Logs never hold an identity number, a code, a token or a secret (masked or left out)."""

from __future__ import annotations

import logging

import pytest

from providers.identity_numbers import mask
from tests.harness import TEST_PERSON, Browser, LiveGateway, code_form, token_request

# The test's own HTTP client logs its URLs; only what the gateway's process writes counts.
SERVER_LOGGERS = ("portvakt", "uvicorn", "starlette", "authlib", "redis")


def test_a_whole_login_logs_no_identity_number_or_secret(
    gateway: LiveGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    citizen = Browser(gateway)
    result = citizen.login("basic", login_hint=TEST_PERSON)
    response = token_request(gateway, code_form(result), auth=("basic", "basic-secret"))
    citizen.close()
    tokens = response.json()
    server_side = [r for r in caplog.records if r.name.startswith(SERVER_LOGGERS)]
    logged = "\n".join(record.getMessage() for record in server_side)
    assert "/authorize" in logged  # the access log did run
    for secret in (TEST_PERSON, "basic-secret", result.callback["code"],
                   tokens["access_token"], tokens["id_token"]):  # fmt: skip
        assert secret not in logged


def test_mask_keeps_only_the_birth_date_part() -> None:
    assert mask("199908072391") == "19990807****"
    assert mask(None) == ""
