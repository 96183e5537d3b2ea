"""What a BankID order requires (`requirement`, bankid-2026-and-ciba.md §1.6) and what the login
then rests on. BankID enforces `pinCode`, `cardReader` and `certificatePolicies` itself and its
completionData shows none of them: the gateway sends them and the simulator takes only what
BankID takes. What completionData does show is checked: `stepUp.mrtd` (test_provider.py and
below) and the person. `device.uhi` and `bankIdIssueDate` reach the audit."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from providers.bankid.config import BankIDConfig
from providers.bankid.simulator import UHI, BankIDSimulator, UserBehaviour
from tests.doubles.tls import LocalPKI
from tests.harness import Browser, LiveGateway, running_gateway
from tests.ops.test_audit import authenticated_event
from tests.providers.bankid import test_provider as bankid_tests
from tests.providers.bankid.test_provider import (
    PERSON,
    Clock,
    bankid_provider,
    poll_until_done,
    start,
)
from tests.providers.bankid.test_simulator import call

pki, clock, simulator = bankid_tests.pki, bankid_tests.clock, bankid_tests.simulator
bankid, bankid_on_the_test_clock = bankid_tests.bankid, bankid_tests.bankid_on_the_test_clock


@pytest.fixture(scope="module")
def strict_gateway(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> Iterator[LiveGateway]:
    provider = bankid_provider(pki, simulator[1], pin_code=True, mrtd=True, card_reader="class2")
    with running_gateway(store_url, providers={"bankid": provider}) as live:
        yield live


def requirement_sent(sim: BankIDSimulator) -> dict[str, Any]:
    requirement: dict[str, Any] = [body for path, body in sim.calls if path == "auth"][-1][
        "requirement"
    ]
    return requirement


@pytest.mark.parametrize(("passes", "outcome"), [(True, "complete"), (False, "failed")])
def test_pin_card_reader_and_mrtd_are_required_and_the_check_shown_must_have_passed(
    strict_gateway: LiveGateway, bankid: BankIDSimulator, clock: Clock, passes: bool, outcome: str
) -> None:
    bankid.behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2, mrtd_passes=passes))
    with closing(Browser(strict_gateway)) as citizen:
        state = poll_until_done(citizen, start(citizen), clock)
    requirement = requirement_sent(bankid)
    assert (requirement["pinCode"], requirement["mrtd"], requirement["cardReader"]) == (
        True,
        True,
        "class2",
    )
    assert "risk" not in requirement  # removed from v6.0 (§0)
    assert state["status"] == outcome and ("next" in state) == passes


def test_nothing_is_required_that_was_not_configured(
    store_url: str | None, pki: LocalPKI, simulator: tuple[BankIDSimulator, str]
) -> None:
    with (
        running_gateway(
            store_url, providers={"bankid": bankid_provider(pki, simulator[1])}
        ) as live,
        closing(Browser(live)) as citizen,
    ):
        start(citizen)
    assert set(requirement_sent(simulator[0])) == {"certificatePolicies"}


@pytest.mark.parametrize("reader", ["class3", "Class1", "", True])
def test_a_card_reader_bankid_does_not_know_is_refused_at_load(reader: Any) -> None:
    config = {"type": "bankid", "url": "http://127.0.0.1/rp/v6.0", "card_reader": reader}
    with pytest.raises(ValidationError, match="card_reader"):
        BankIDConfig.model_validate(config)


@pytest.mark.parametrize(
    ("requirement", "accepted"),
    [
        ({"cardReader": "class1"}, True),
        ({"cardReader": "class2"}, True),
        ({"cardReader": "class3"}, False),
        ({"cardReader": 1}, False),
        ({"pinCode": True}, True),
        ({"pinCode": "yes"}, False),
        ({"mrtd": True}, True),
        ({"risk": "low"}, False),  # requirement.risk: gone from v6.0 (§0)
    ],
)
def test_the_simulator_takes_only_requirements_bankid_takes(
    requirement: dict[str, Any], accepted: bool
) -> None:
    with TestClient(BankIDSimulator().app, raise_server_exceptions=False) as api:
        status, _ = call(api, "auth", {"endUserIp": "192.0.2.1", "requirement": requirement})
    assert (status == 200) == accepted


def test_the_apps_hardware_id_and_the_bankid_issue_date_reach_the_audit(
    store_url: str | None,
    pki: LocalPKI,
    simulator: tuple[BankIDSimulator, str],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    simulator[0].behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    with (
        running_gateway(
            store_url, providers={"bankid": bankid_provider(pki, simulator[1])}
        ) as live,
        closing(Browser(live)) as citizen,
    ):
        state = poll_until_done(citizen, start(citizen), clock)
        citizen.follow_to_client(citizen.http.get(state["next"]))
    simulator[0].behave(UserBehaviour())
    event = authenticated_event(caplog, PERSON)
    assert event["device_uhi"] == UHI and event["certificate_issued"] == "2024-01-15"
    assert event["risk"] == "low"


@pytest.mark.parametrize(
    ("policies", "outcome"),
    [
        (["1.2.3.4.5"], "complete"),  # the simulator's test BankIDs hold 1.2.3.4.5
        (["1.2.3.4.*"], "complete"),  # a prefix
        (["1.2.3.4.25", "1.2.3.4.5"], "complete"),
        (["1.2.752.78.1.5"], "failed"),  # production Mobile BankID: not this certificate
        (["1.2.3.4.50"], "failed"),  # neither prefix nor equal
    ],
)
def test_the_certificate_a_login_was_made_with_must_hold_a_policy_asked_for(
    store_url: str | None,
    pki: LocalPKI,
    simulator: tuple[BankIDSimulator, str],
    clock: Clock,
    policies: list[str],
    outcome: str,
) -> None:
    """§2.2: BankID enforces certificatePolicies; the certificate in completionData's signature
    shows which BankID was used, and one of another policy logs nobody in (the simulator, unlike
    BankID, does not hold back such a certificate)."""
    simulator[0].behave(UserBehaviour(starts_on_collect=1, acts_on_collect=2))
    provider = bankid_provider(pki, simulator[1], certificate_policies=policies)
    with (
        running_gateway(store_url, providers={"bankid": provider}) as live,
        closing(Browser(live)) as citizen,
    ):
        state = poll_until_done(citizen, start(citizen), clock)
    simulator[0].behave(UserBehaviour())
    assert requirement_sent(simulator[0])["certificatePolicies"] == policies
    assert state["status"] == outcome and ("next" in state) == (outcome == "complete")
