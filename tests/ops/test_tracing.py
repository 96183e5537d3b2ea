"""OpenTelemetry traces over real logins: the gateway on Redis, an upstream OpenID Provider on
its own port, spans read with the SDK's in-memory exporter beside the configured OTLP exporter,
which sends to a loopback collector (tests/doubles/otlp_collector.py)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.login.flow import AUTHN_PROVIDER_PARAMETER
from gateway.ops.log_format import JsonFormatter
from gateway.ops.tracing import TRACE_COOKIE
from gateway.settings import SettingsError, settings_from_data
from tests.cli.test_main import choose_sandbox
from tests.doubles.oidc_op import UpstreamOP
from tests.doubles.otlp_collector import Collector
from tests.harness import (
    REDIRECT_URI,
    TEST_PERSON,
    Browser,
    LiveGateway,
    RedisServer,
    ServedApp,
    free_port,
    hidden_field,
    running_gateway,
    token_request,
)
from tests.properties.profiles import QUICK
from tests.properties.strategies import header_value, sendable
from tests.providers.oidc.test_provider import oidc_provider

UPSTREAM_PERSON = "199908072391"  # the upstream OP's test person


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, str]]:
    port = free_port()
    received = Collector()
    with ServedApp(received.app, port):
        yield received, f"http://127.0.0.1:{port}/v1/traces"


def tracing(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "endpoint": endpoint, "service_name": "portvakt-test", **extra}


@pytest.fixture(scope="module")
def gateway(
    redis_server: RedisServer, upstream: UpstreamOP, collector: tuple[Collector, str]
) -> Iterator[LiveGateway]:
    providers = {"sandbox": {"type": "sandbox"}, "freja": oidc_provider(upstream)}
    with running_gateway(
        redis_server.url, providers=providers, tracing=tracing(collector[1])
    ) as live:
        yield live


@pytest.fixture
def spans(gateway: LiveGateway) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    gateway.app.state.tracing.provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


@pytest.fixture
def browser(gateway: LiveGateway) -> Iterator[Browser]:
    with closing(Browser(gateway)) as citizen:
        yield citizen


@pytest.fixture
def log_lines() -> Iterator[list[dict[str, Any]]]:
    """JSON log lines as `serve --log-format json` writes them, formatted when written."""
    lines: list[dict[str, Any]] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Kept()
    handler.setFormatter(JsonFormatter())
    portvakt = logging.getLogger("portvakt")
    portvakt.addHandler(handler)
    level = portvakt.level
    portvakt.setLevel(logging.INFO)
    yield lines
    portvakt.setLevel(level)
    portvakt.removeHandler(handler)


def upstream_login(browser: Browser) -> dict[str, str]:
    """/authorize → the upstream OP (approves at once) → our callback → the e-service."""
    sent = browser.authorize(
        **browser.authorize_params("basic", prompt="login", **{AUTHN_PROVIDER_PARAMETER: "freja"})
    )
    assert sent.status_code == 303, sent.text
    at_upstream = browser.http.get(sent.headers["location"])
    return browser.follow_to_client(browser.http.get(at_upstream.headers["location"]))


def trace_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def test_one_login_is_one_trace_from_authorize_to_the_code(
    browser: Browser, spans: InMemorySpanExporter
) -> None:
    upstream_login(browser)
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind is SpanKind.SERVER]
    assert {s.name for s in server} >= {"GET /authorize", "GET /providers/freja/callback"}
    assert len({trace_of(s) for s in finished}) == 1, "every span of the login in one trace"
    names = {s.name for s in finished}
    assert {"provider start", "provider finish", "freja token", "freja userinfo"} <= names
    redis_round_trips = [
        s for s in finished if s.attributes and s.attributes.get("db.system.name") == "redis"
    ]
    operations = {s.attributes["db.operation.name"] for s in redis_round_trips if s.attributes}
    assert {"put", "get", "put_many_then_take"} <= operations
    assert "put_many" not in operations, "the SSO session is written in the code's round trip"
    upstream_calls = [s for s in finished if s.name in ("freja token", "freja userinfo")]
    finish = next(s for s in finished if s.name == "provider finish")
    assert all(call.parent is not None for call in upstream_calls)
    assert {call.parent.span_id for call in upstream_calls if call.parent} == {
        finish.context.span_id if finish.context else 0
    }
    started = next(s for s in finished if s.name == "provider start")
    assert started.attributes == {"portvakt.provider": "freja", "portvakt.client_id": "basic"}


def test_the_code_ends_the_login_s_trace_and_the_next_login_starts_another(
    browser: Browser, spans: InMemorySpanExporter
) -> None:
    upstream_login(browser)
    assert TRACE_COOKIE not in browser.http.cookies
    first = {trace_of(s) for s in spans.get_finished_spans()}
    spans.clear()
    upstream_login(browser)
    second = {trace_of(s) for s in spans.get_finished_spans()}
    assert len(first) == len(second) == 1 and first != second


def test_no_span_holds_an_identity_number_a_code_a_state_or_a_token(
    gateway: LiveGateway, browser: Browser, spans: InMemorySpanExporter
) -> None:
    """A sandbox login by the chooser with the person named in login_hint (a query string), then
    the e-service's token and userinfo requests; an upstream login besides."""
    params = browser.authorize_params("basic", login_hint=TEST_PERSON)
    chooser = browser.authorize(**params)
    action = re.search(r'action="[^"]*/login/([^"]+)"', chooser.text)
    assert action is not None, chooser.text
    login_id = action.group(1)
    csrf = hidden_field(chooser.text, "csrf")
    page = choose_sandbox(browser.http, chooser)
    submitted = browser.submit_sandbox(page)
    callback = browser.follow_to_client(submitted)
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": REDIRECT_URI,
    }
    tokens = token_request(gateway, form, auth=("basic", "basic-secret")).json()
    httpx2.get(
        f"{gateway.url}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    upstream_login(browser)
    secrets = {
        TEST_PERSON, TEST_PERSON[2:], UPSTREAM_PERSON, login_id, csrf, callback["code"],
        params["state"], params["nonce"], tokens["access_token"], tokens["id_token"],
    }  # fmt: skip
    finished = spans.get_finished_spans()
    assert len(finished) > 20
    assert any(s.name == "GET /login/{login_id}" or "/login/" in s.name for s in finished)
    for span in finished:
        text = span.to_json()
        for secret in secrets:
            assert secret not in text, (span.name, secret[:4])


def test_the_access_log_and_the_audit_name_the_login_s_trace(
    browser: Browser, spans: InMemorySpanExporter, log_lines: list[dict[str, Any]]
) -> None:
    upstream_login(browser)
    (trace_id,) = {trace_of(s) for s in spans.get_finished_spans()}
    access = [line for line in log_lines if line["logger"] == "portvakt.access"]
    audit = [line for line in log_lines if line.get("event")]
    paths = {line["message"].split()[1] for line in access}
    assert paths == {"/authorize", "/providers/freja/callback"}
    assert all(line.get("trace_id") == trace_id for line in access)
    events = {line["event"] for line in audit}
    assert {"login_started", "authenticated", "login_completed", "code_issued"} <= events
    assert all(line.get("trace_id") == trace_id for line in audit)


def test_a_caller_s_traceparent_wins_over_the_cookie_and_a_bent_cookie_is_ignored(
    gateway: LiveGateway, spans: InMemorySpanExporter
) -> None:
    callers = "0af7651916cd43dd8448eb211c80319c"
    cookie = {TRACE_COOKIE: "00-11111111111111111111111111111111-2222222222222222-01"}
    with httpx2.Client(base_url=gateway.url, cookies=cookie) as http:
        http.get("/healthz", headers={"traceparent": f"00-{callers}-b7ad6b7169203331-01"})
        http.get("/healthz")
    with httpx2.Client(base_url=gateway.url, cookies={TRACE_COOKIE: "00-bent-01"}) as http:
        assert http.get("/healthz").status_code == 200
    traces = [trace_of(s) for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert traces[:2] == [callers, "1" * 32]
    assert traces[2] not in (callers, "1" * 32)


def test_spans_reach_the_configured_collector_over_otlp(
    redis_server: RedisServer, collector: tuple[Collector, str]
) -> None:
    received, endpoint = collector
    received.spans.clear()
    settings = tracing(endpoint, headers={"authorization": "Bearer collector-token"})
    with (
        running_gateway(redis_server.url, tracing=settings) as live,
        closing(Browser(live)) as citizen,
    ):
        citizen.login()
    # the batch is sent when the gateway stops, if not before
    assert received.authorizations and set(received.authorizations) == {"Bearer collector-token"}
    names = {span.name for span in received.spans}
    assert {"GET /authorize", "provider start", "provider finish", "store get"} <= names
    assert {span.service_name for span in received.spans} == {"portvakt-test"}
    assert all(TEST_PERSON not in str(span.attributes) for span in received.spans)


def test_tracing_is_off_unless_configured(redis_server: RedisServer) -> None:
    with running_gateway(redis_server.url) as live, closing(Browser(live)) as citizen:
        assert live.app.state.tracing.provider is None
        page, _ = citizen.sandbox_page()
        assert page.status_code == 200
        assert TRACE_COOKIE not in citizen.http.cookies


@pytest.mark.parametrize(
    ("tracing_settings", "problem"),
    [
        ({"enabled": True, "endpoint": "grpc://collector:4317"}, "tracing.endpoint"),
        ({"enabled": True, "sample_ratio": 1.5}, "tracing.sample_ratio"),
        ({"enabled": True, "exporter": "zipkin"}, "tracing.exporter"),
    ],
)
def test_tracing_settings_are_checked(tracing_settings: dict[str, Any], problem: str) -> None:
    data = {
        "issuer": "http://127.0.0.1:8080",
        "providers": {"sandbox": {"type": "sandbox"}},
        "clients": [{"client_id": "spa", "redirect_uris": [REDIRECT_URI]}],
        "tracing": tracing_settings,
    }
    with pytest.raises(SettingsError) as refused:
        settings_from_data(data)
    assert any(problem in line for line in refused.value.problems), refused.value.problems


@QUICK
@given(
    path=st.sampled_from(["/healthz", "/authorize", "/login/x", "/providers/freja/callback"]),
    cookie=header_value(f"{TRACE_COOKIE}=00-{'1' * 32}-{'2' * 16}-01"),
    parent=header_value(f"00-{'3' * 32}-{'4' * 16}-01", ""),
    state=header_value("vendor=value"),
)
def test_no_trace_header_or_cookie_yields_a_server_error(
    gateway: LiveGateway, path: str, cookie: bytes, parent: bytes, state: bytes
) -> None:
    headers = {"cookie": sendable(cookie), "tracestate": sendable(state)}
    if parent:
        headers["traceparent"] = sendable(parent)
    answer = httpx2.get(f"{gateway.url}{path}", headers=headers)
    assert answer.status_code < 500, answer.text
