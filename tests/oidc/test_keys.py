"""Signing-key rotation: `portvakt keys` on a directory shared by two running instances (and a
real Redis), checked the way a relying party sees it: through /jwks and the ID tokens' kid."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.cli.main import main
from gateway.oidc.key_rotation import RotationRefused, generate, listing, rotate
from gateway.oidc.keys import key_files, load_signing_keys
from providers.saml.xml import KeyPair
from tests.harness import (
    Browser,
    LiveGateway,
    RedisServer,
    code_form,
    running_gateway,
    token_request,
)


def states(directory: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"signing": [], "next": [], "retired": []}
    for file in key_files(directory):
        found[file.state].append(file.kid)
    return found


def test_generate_writes_a_signing_key_and_a_published_next_key(tmp_path: Path) -> None:
    assert main(["keys", "generate", "--dir", str(tmp_path)]) == 0
    found = states(tmp_path)
    assert len(found["signing"]) == 1 and len(found["next"]) == 1 and not found["retired"]
    for path in tmp_path.glob("*.pem"):
        assert path.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".*.partial"))


def test_generate_refuses_a_directory_that_already_signs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tmp_path)
    assert main(["keys", "generate", "--dir", str(tmp_path)]) == 1
    assert "already has a signing key; use `portvakt keys rotate`" in capsys.readouterr().err


def test_rotate_refuses_a_next_key_published_too_recently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tmp_path)
    before = states(tmp_path)
    assert main(["keys", "rotate", "--dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "has been published for 0 s" in error and "wait until it is 330 s old" in error
    assert states(tmp_path) == before


def test_rotate_promotes_next_retires_signing_and_publishes_a_new_next(tmp_path: Path) -> None:
    generate(tmp_path)
    first = states(tmp_path)
    later = time.time() + 331
    done = rotate(tmp_path, reload_seconds=30, retired_keep_seconds=86400, clock=later)
    after = states(tmp_path)
    assert done.promoted == first["next"][0] and after["signing"] == first["next"]
    assert after["retired"] == first["signing"]
    assert after["next"] == [done.created] and done.created not in first["next"]
    assert not done.removed


def test_rotate_drops_retired_keys_only_after_they_were_kept_long_enough(tmp_path: Path) -> None:
    generate(tmp_path)
    rotate(tmp_path, 30, 86400, now=True)
    retired = states(tmp_path)["retired"]
    kept = rotate(tmp_path, 30, 86400, now=True, clock=time.time() + 3600)
    assert not kept.removed and set(retired) <= set(states(tmp_path)["retired"])
    dropped = rotate(tmp_path, 30, 86400, now=True, clock=time.time() + 86401)
    assert retired[0] in dropped.removed
    assert retired[0] not in states(tmp_path)["retired"]


def test_rotate_of_a_directory_without_next_key_publishes_one_first(tmp_path: Path) -> None:
    load_signing_keys(tmp_path, may_generate=True)  # what a pre-rotation gateway left behind
    with pytest.raises(RotationRefused, match="is now published and can be promoted in 330 s"):
        rotate(tmp_path, 30, 86400)
    assert len(states(tmp_path)["next"]) == 1


def test_list_shows_each_key_with_its_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tmp_path)
    rotate(tmp_path, 30, 86400, now=True)
    assert main(["keys", "list", "--dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    for state, kids in states(tmp_path).items():
        for kid in kids:
            assert any(line.startswith(state) and kid in line for line in shown.splitlines())
    assert len(listing(tmp_path)) == 3


def test_an_instance_switches_when_the_directory_changes(tmp_path: Path) -> None:
    generate(tmp_path)
    keys = load_signing_keys(tmp_path, may_generate=False)
    old, waiting = keys.kid, states(tmp_path)["next"][0]
    assert {k["kid"] for k in keys.jwks()["keys"]} == {old, waiting}
    assert not keys.refresh()
    rotate(tmp_path, 30, 86400, now=True)
    assert keys.refresh() and keys.kid == waiting
    assert old in {k["kid"] for k in keys.jwks()["keys"]}


def test_an_instance_keeps_its_keys_while_the_directory_has_no_signing_key(
    tmp_path: Path,
) -> None:
    generate(tmp_path)
    keys = load_signing_keys(tmp_path, may_generate=False)
    kid = keys.kid
    for path in tmp_path.glob("signing-*.pem"):
        path.unlink()
    assert not keys.refresh()
    assert keys.kid == kid


def test_saml_key_pairs_are_written_for_a_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["keys", "saml", "skatteverket", "--dir", str(tmp_path), "--use", "encryption"]
    assert main([*argv, "--days", "400"]) == 0
    printed = capsys.readouterr().out
    assert "providers.skatteverket:" in printed and "encryption:" in printed
    (key_path,) = tmp_path.glob("saml-skatteverket-encryption-*.key")
    assert key_path.stat().st_mode & 0o777 == 0o600
    pair = KeyPair.from_files(key_path, key_path.with_suffix(".crt"))
    lifetime = pair.certificate.not_valid_after_utc - pair.certificate.not_valid_before_utc
    assert 399 < lifetime.days <= 400


# Two instances sharing the key directory and a real Redis


@pytest.fixture
def two_instances(
    tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[LiveGateway, LiveGateway]]:
    generate(tmp_path / "keys")
    keys = {"dir": str(tmp_path / "keys"), "reload_seconds": 1}
    with (
        running_gateway(redis_server.url, keys=keys) as first,
        running_gateway(redis_server.url, keys=keys) as second,
    ):
        yield first, second


def id_token_from(gateway: LiveGateway) -> str:
    browser = Browser(gateway)
    try:
        result = browser.login()
    finally:
        browser.close()
    answer = token_request(gateway, code_form(result), auth=("basic", "basic-secret"))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id_token"])


def published(gateway: LiveGateway) -> KeySet:
    answer = httpx2.get(f"{gateway.url}/jwks", timeout=5)
    assert answer.status_code == 200
    return KeySet.import_key_set(answer.json())


def kids(gateway: LiveGateway) -> set[str]:
    return {str(key.kid) for key in published(gateway)}


def signed_by(token: str, gateway: LiveGateway) -> str:
    """The kid of a token whose signature verifies with the gateway's published keys."""
    return str(jwt.decode(token, published(gateway)).header["kid"])


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the instances did not pick up the key directory in time")


def test_rotation_is_seen_by_both_instances_next_key_first(
    tmp_path: Path, two_instances: tuple[LiveGateway, LiveGateway]
) -> None:
    first = two_instances[0]
    directory = tmp_path / "keys"
    before = states(directory)
    (signing,), (waiting,) = before["signing"], before["next"]
    for instance in two_instances:
        assert kids(instance) == {signing, waiting}  # the next key is published before it signs
    old_tokens = [id_token_from(instance) for instance in two_instances]
    assert [signed_by(token, first) for token in old_tokens] == [signing, signing]

    assert main(["keys", "rotate", "--dir", str(directory), "--now"]) == 0
    (created,) = states(directory)["next"]
    wait_until(lambda: all(created in kids(instance) for instance in two_instances))
    for instance in two_instances:
        assert kids(instance) == {signing, waiting, created}
        assert signed_by(id_token_from(instance), instance) == waiting
        for token in old_tokens:  # tokens signed before the rotation still verify
            assert signed_by(token, instance) == signing

    for path in directory.glob("retired-*.pem"):
        os.utime(path, (time.time() - 86401, time.time() - 86401))
    assert main(["keys", "rotate", "--dir", str(directory), "--now"]) == 0
    wait_until(lambda: all(signing not in kids(instance) for instance in two_instances))
    for instance in two_instances:
        assert signed_by(id_token_from(instance), instance) == created
