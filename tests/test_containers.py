"""The container files, loaded and checked here because our machines cannot build or pull
images: docker-compose.yml's services, ports, environment and health checks, the Dockerfile's
user, health check and install steps (the README's), and the configuration compose mounts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_gateway_and_a_password_protected_redis(compose: dict) -> None:
    gateway, redis = compose["services"]["gateway"], compose["services"]["redis"]
    assert gateway["build"] == "." and "8080:8080" in gateway["ports"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
    assert set(gateway["environment"]) == {
        "PORTVAKT_SECRET_KEY", "PORTVAKT_SUBJECT_SALT", "REDIS_PASSWORD", "DEMO_CLIENT_SECRET"
    }  # fmt: skip
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in gateway["volumes"]}
    assert mounts["./config/compose.yaml"] == "/etc/portvakt/portvakt.yaml"
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == "${REDIS_PASSWORD}"
    assert command[command.index("--save") + 1] == "" and "--appendonly" in command
    assert "ping" in " ".join(redis["healthcheck"]["test"])


def test_the_dockerfile_is_slim_non_root_healthchecked_and_installs_like_the_readme() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^USER portvakt$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    readme = (ROOT / "README.md").read_text()
    steps = re.search(r"### Installing without make\n\n```sh\n(.*?)```", readme, re.S)
    assert steps is not None
    for line in steps.group(1).splitlines()[:3]:  # venv, pip upgrade, install
        in_image = line.replace(".venv", "/opt/portvakt").replace(
            "python3 -m venv", "python3 -m venv"
        )
        assert in_image in dockerfile, line
    assert "/etc/portvakt/portvakt.yaml" in dockerfile


def test_the_mounted_configuration_passes_check_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "PORTVAKT_SECRET_KEY",
        "PORTVAKT_SUBJECT_SALT",
        "REDIS_PASSWORD",
        "DEMO_CLIENT_SECRET",
    ):
        monkeypatch.setenv(name, "x" * 40)
    assert main(["check-config", str(ROOT / "config" / "compose.yaml")]) == 0
    assert "OK" in capsys.readouterr().out
