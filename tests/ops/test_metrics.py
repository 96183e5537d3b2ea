"""Prometheus metrics at /metrics after real logins over HTTP."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.login.flow import AUTHN_PROVIDER_PARAMETER
from gateway.login.upstream_health import FAILURES_TO_OPEN
from tests.doubles.saml_idp import make_key_pair
from tests.harness import (
    TEST_PERSON,
    Browser,
    LiveGateway,
    RedisServer,
    free_port,
    running_gateway,
)
from tests.providers.saml.test_metadata import aggregate_sp_config, sp_config


def samples(gateway: LiveGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx2.get(f"{gateway.url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_logins_and_latency_are_counted(gateway: LiveGateway, browser: Browser) -> None:
    before = samples(gateway)
    browser.login("basic")
    page, _ = browser.sandbox_page("basic", prompt="login")
    login = re.search(r'name="login" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    browser.http.post(
        "/providers/sandbox/login", data={"login": login, "csrf": csrf, "cancel": "1"}
    )
    after = samples(gateway)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    loa3 = "http://id.elegnamnden.se/loa/1.0/loa3"
    assert grew("portvakt_logins_started_total", provider="sandbox") == 2
    assert grew("portvakt_logins_completed_total", provider="sandbox", loa=loa3) == 1
    assert grew("portvakt_logins_failed_total", provider="sandbox", reason="cancelled") == 1
    assert (
        grew("portvakt_http_request_duration_seconds_count", route="/authorize", method="GET") == 2
    )
    routes = {dict(labels).get("route") for _, labels in after}
    assert "/login/{login_id}/resume" in routes or "/providers/sandbox/login" in routes
    assert not any(r and login in r for r in routes)  # templates, never ids
    assert value(after, "portvakt_provider_up", provider="sandbox") == 1
    assert TEST_PERSON not in httpx2.get(f"{gateway.url}/metrics").text


def test_saml_certificates_and_metadata_age_are_exposed(tmp_path: Path) -> None:
    keys = {name: make_key_pair(tmp_path, name) for name in ("idp", "fed", "sign", "enc")}
    with running_gateway(None, providers={"sc": sp_config(keys, tmp_path)}) as live:
        found = samples(live)
    expiry = value(
        found, "portvakt_certificate_expiry_timestamp_seconds", provider="sc", certificate="signing"
    )
    assert expiry > 0
    assert value(found, "portvakt_metadata_age_seconds", provider="sc") >= 0
    assert ("portvakt_metadata_age_seconds", (("provider", "sc"),)) in found
    assert value(found, "portvakt_provider_up", provider="sc") == 1


def test_a_federation_aggregate_s_valid_until_is_exposed(tmp_path: Path) -> None:
    keys = {name: make_key_pair(tmp_path, name) for name in ("idp", "fed", "sign", "enc")}
    config = aggregate_sp_config(keys, tmp_path, dt.timedelta(days=3))
    with running_gateway(None, providers={"sc": config}) as live:
        found = samples(live)
    valid_until = value(found, "portvakt_metadata_valid_until_timestamp_seconds", provider="sc")
    assert abs(valid_until - (time.time() + 3 * 86400)) < 120


def test_the_store_s_answer_to_readyz_is_a_gauge(own_redis: RedisServer) -> None:
    """Set by the orchestrator's probe, so it says the store is down while no citizen comes."""
    with running_gateway(own_redis.url) as live:
        assert httpx2.get(f"{live.url}/readyz").status_code == 200
        assert value(samples(live), "portvakt_store_up") == 1
        own_redis.stop()
        assert httpx2.get(f"{live.url}/readyz").status_code == 503
        assert value(samples(live), "portvakt_store_up") == 0
        own_redis.start()
        assert httpx2.get(f"{live.url}/readyz").status_code == 200
        assert value(samples(live), "portvakt_store_up") == 1


@pytest.fixture
def gateway(store_url: str | None):  # type: ignore[no-untyped-def]
    with running_gateway(store_url) as live:
        yield live


def test_a_provider_whose_breaker_is_open_is_not_up(store_url: str | None) -> None:
    """portvakt_provider_up says what the chooser and /readyz say: here, the upstream fails."""
    unreachable = {"type": "bankid", "url": f"http://127.0.0.1:{free_port()}/rp/v6.0"}
    providers = {"sandbox": {"type": "sandbox"}, "bankid": unreachable}
    with running_gateway(store_url, providers=providers) as live:
        for _ in range(FAILURES_TO_OPEN):
            browser = Browser(live)
            browser.authorize(
                **browser.authorize_params("basic", **{AUTHN_PROVIDER_PARAMETER: "bankid"})
            )
            browser.close()
        assert "provider bankid" in httpx2.get(f"{live.url}/readyz").json()["problems"]
        assert value(samples(live), "portvakt_provider_up", provider="bankid") == 0
        assert value(samples(live), "portvakt_provider_up", provider="sandbox") == 1
