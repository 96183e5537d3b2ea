"""The audit stream and the JSON log format."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gateway.ops.log_format import JsonFormatter, configure_logging
from tests.harness import TEST_PERSON, Browser, LiveGateway, code_form, token_request


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    return [
        {"event": record.audit_event, **record.audit}  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "portvakt.audit" and hasattr(record, "audit_event")
    ]


def authenticated_event(caplog: pytest.LogCaptureFixture, *secrets: str) -> dict[str, str]:
    """The one `authenticated` event of a login, after checking that the audit stream holds
    nothing but gateway/ops/audit.py's events (a provider's own line has no `audit_event`)
    and none of `secrets` (the full identity number, the raw prid)."""
    records = [record for record in caplog.records if record.name == "portvakt.audit"]
    assert all(hasattr(record, "audit_event") for record in records), [
        record.getMessage() for record in records if not hasattr(record, "audit_event")
    ]
    everything = json.dumps(audit_events(caplog)) + "".join(r.getMessage() for r in records)
    for secret in secrets:
        assert secret not in everything
    found = [event for event in audit_events(caplog) if event["event"] == "authenticated"]
    assert len(found) == 1, found
    return found[0]


def test_a_login_leaves_its_trail_in_the_audit_log(
    gateway: LiveGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="portvakt.audit")
    citizen = Browser(gateway)
    result = citizen.login("basic")
    tokens = token_request(gateway, code_form(result), auth=("basic", "basic-secret")).json()
    citizen.http.get("/logout", params={"id_token_hint": tokens["id_token"]})
    page, _ = citizen.sandbox_page("basic")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    login = page.text.split('name="login" value="')[1].split('"')[0]
    citizen.http.post(
        "/providers/sandbox/login", data={"login": login, "csrf": csrf, "cancel": "1"}
    )
    citizen.close()

    events = audit_events(caplog)
    names = [e["event"] for e in events]
    expected = [
        "login_started",
        "provider_chosen",
        "login_completed",
        "code_issued",
        "token_issued",
        "logout",
    ]
    assert names[: len(expected)] == expected
    assert names[-1] == "login_failed"
    completed = events[2]
    assert completed["client"] == "basic" and completed["provider"] == "sandbox"
    assert completed["loa"].endswith("loa3")
    assert completed["person"] == TEST_PERSON[:8] + "****"
    token_issued = events[4]
    assert token_issued["sub"] == completed["sub"] and len(completed["sub"]) > 20
    assert events[-1]["reason"] == "cancelled" and events[-1]["client"] == "basic"
    everything = json.dumps(events) + "".join(r.getMessage() for r in caplog.records)
    for secret in (TEST_PERSON, "basic-secret", result.callback["code"], tokens["access_token"]):
        assert secret not in everything


def test_json_lines_carry_the_audit_fields() -> None:
    record = logging.LogRecord(
        "portvakt.audit", logging.INFO, __file__, 1, "%s %s", ("logout", "client=x"), None
    )
    record.audit_event = "logout"
    record.audit = {"client": "x", "by": "e-service"}
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "logout" and line["client"] == "x" and line["level"] == "info"
    assert line["logger"] == "portvakt.audit" and line["time"].endswith("+00:00")


def test_the_audit_stream_can_go_to_its_own_file(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    audit = logging.getLogger("portvakt.audit")
    saved = (
        audit.handlers[:],
        audit.propagate,
        logging.getLogger().handlers[:],
        logging.getLogger().level,
    )
    try:
        configure_logging("warning", "json", audit_file)
        audit.info(
            "%s", "login_started", extra={"audit_event": "login_started", "audit": {"client": "c"}}
        )
        for handler in audit.handlers:
            handler.flush()
        line = json.loads(audit_file.read_text().splitlines()[-1])
        assert line["event"] == "login_started" and line["client"] == "c"
    finally:
        for handler in audit.handlers:
            handler.close()
        audit.handlers[:], audit.propagate = saved[0], saved[1]
        logging.getLogger().handlers[:] = saved[2]
        logging.getLogger().setLevel(saved[3])
