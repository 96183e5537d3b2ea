"""One row registers a provider type: the settings, the production rules, the chooser, /readyz
and the metrics all follow from it, and they agree on which providers can log anyone in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from gateway.login.flow import AUTHN_PROVIDER_PARAMETER
from gateway.login.upstream_health import FAILURES_TO_OPEN
from gateway.settings import SettingsError, settings_from_data
from providers.registry import PROVIDER_TYPES
from tests.doubles.pigeon import PIGEON_TYPE, PigeonConfig, pigeons_registered
from tests.harness import Browser, LiveGateway, running_gateway
from tests.ops.test_metrics import samples, value

MINIMAL: dict[str, Any] = {
    "issuer": "http://127.0.0.1:8080",
    "clients": [{"client_id": "a", "client_secret": "s", "redirect_uris": ["http://x.test/cb"]}],
}


@pytest.fixture
def pigeons() -> Iterator[None]:
    with pigeons_registered():
        yield


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        settings_from_data(data)
    return raised.value.problems


def test_the_built_in_types_are_rows_in_their_order() -> None:
    assert list(PROVIDER_TYPES) == ["sandbox", "bankid", "saml", "oidc", "eudi_wallet"]


@pytest.mark.usefixtures("pigeons")
def test_a_registered_type_is_read_from_the_settings_by_its_row() -> None:
    settings = settings_from_data({**MINIMAL, "providers": {"loft": {"type": PIGEON_TYPE}}})
    assert isinstance(settings.providers["loft"], PigeonConfig)
    [problem] = problems({**MINIMAL, "providers": {"loft": {"type": PIGEON_TYPE, "wings": 2}}})
    assert problem.startswith("providers.loft.wings: Extra inputs are not permitted")


def test_an_unregistered_type_is_refused_with_the_known_ones() -> None:
    with pigeons_registered():
        [listed] = problems({**MINIMAL, "providers": {"x": {"type": "smoke-signals"}}})
    [refused] = problems({**MINIMAL, "providers": {"loft": {"type": PIGEON_TYPE}}})
    assert listed.endswith(
        f"set type to one of: sandbox, bankid, saml, oidc, eudi_wallet, {PIGEON_TYPE}"
    )
    assert refused.startswith("providers.loft: ")
    assert refused.endswith("set type to one of: sandbox, bankid, saml, oidc, eudi_wallet")


def test_a_missing_type_asks_for_one() -> None:
    [problem] = problems({**MINIMAL, "providers": {"x": {"loa": "x"}}})
    assert problem.startswith("providers.x: ")
    assert problem.endswith("add type: one of sandbox, bankid, saml, oidc, eudi_wallet")


@pytest.mark.usefixtures("pigeons")
def test_production_rules_come_from_the_config_model() -> None:
    production = {
        **MINIMAL,
        "issuer": "https://login.kommun.example",
        "environment": "production",
        "providers": {"loft": {"type": PIGEON_TYPE}},
    }
    assert problems(production) == [
        "(top level): provider 'loft' is a carrier pigeon; it refuses to load in production"
    ]


def chooser_button(live: LiveGateway, name: str) -> str:
    browser = Browser(live)
    try:
        page = browser.authorize(**browser.authorize_params("basic"))
    finally:
        browser.close()
    assert page.status_code == 200, page.text
    button = re.search(rf'<button[^>]*value="{name}"[^>]*>.*?</button>', page.text, re.DOTALL)
    assert button is not None, page.text
    return button.group(0)


def what_each_says(live: LiveGateway, name: str) -> tuple[bool, bool, bool]:
    """Whether the chooser, /readyz and portvakt_provider_up each say `name` is up."""
    on_chooser = "disabled" not in chooser_button(live, name).split(">")[0]
    ready = httpx2.get(f"{live.url}/readyz").json()
    in_readyz = f"provider {name}" not in ready["problems"]
    in_metrics = value(samples(live), "portvakt_provider_up", provider=name) == 1
    return on_chooser, in_readyz, in_metrics


@pytest.mark.usefixtures("pigeons")
def test_a_registered_type_appears_on_the_chooser_and_in_the_metrics() -> None:
    providers = {"sandbox": {"type": "sandbox"}, "loft": {"type": PIGEON_TYPE}}
    with running_gateway(None, providers=providers) as live:
        button = chooser_button(live, "loft")
        assert "Brevduva" in button and "Svar inom en vecka" in button
        assert what_each_says(live, "loft") == (True, True, True)


@pytest.mark.usefixtures("pigeons")
def test_all_agree_that_a_provider_down_by_its_own_report_is_down() -> None:
    grounded = {"type": PIGEON_TYPE, "grounded": "moulting"}
    with running_gateway(
        None, providers={"sandbox": {"type": "sandbox"}, "loft": grounded}
    ) as live:
        assert what_each_says(live, "loft") == (False, False, False)
        assert httpx2.get(f"{live.url}/readyz").json()["problems"]["provider loft"] == "moulting"


@pytest.mark.usefixtures("pigeons")
def test_all_agree_that_a_provider_whose_breaker_is_open_is_down() -> None:
    providers = {"sandbox": {"type": "sandbox"}, "loft": {"type": PIGEON_TYPE}}
    with running_gateway(None, providers=providers) as live:
        for _ in range(FAILURES_TO_OPEN):
            browser = Browser(live)
            browser.authorize(
                **browser.authorize_params("basic", **{AUTHN_PROVIDER_PARAMETER: "loft"})
            )
            browser.close()
        assert what_each_says(live, "loft") == (False, False, False)
        assert what_each_says(live, "sandbox") == (True, True, True)
