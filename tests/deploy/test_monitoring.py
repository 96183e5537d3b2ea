"""The Prometheus alert rules, the Grafana dashboard and the Prometheus Operator objects:
checked by promtool and `kubectl kustomize`, and held against the metric names a real gateway
exposes on /metrics after real logins.

`python -m tests.deploy.test_monitoring` writes the two copies in deploy/kubernetes/monitoring
(kustomize reads no file outside its folder) from deploy/prometheus and deploy/grafana."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.login.flow import AUTHN_PROVIDER_PARAMETER
from tests.doubles.saml_idp import make_key_pair
from tests.harness import Browser, RedisServer, free_port, hidden_field, running_gateway
from tests.providers.saml.test_metadata import aggregate_sp_config

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/portvakt-alerts.yaml"
RULE_TESTS = ROOT / "deploy/prometheus/portvakt-alerts.test.yaml"
DASHBOARD = ROOT / "deploy/grafana/portvakt-dashboard.json"
MONITORING = ROOT / "deploy/kubernetes/monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD_COPY = MONITORING / "portvakt-dashboard.json"
# Prometheus's own series about each scrape, not the gateway's
SCRAPE_SERIES = {"up"}
# What a Grafana variable stands for when its expression is checked as PromQL
GRAFANA_VARIABLES = {
    "$__rate_interval": "2m",
    "$__range": "6h",
    "$job": "portvakt",
    "$instance": ".*",
    "$provider": ".*",
}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        raise RuntimeError(
            "promtool is not installed; run `make test` (it installs Debian's prometheus) or "
            "`apt-get install prometheus`"
        )
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def prometheus_rule_text() -> str:
    rules = RULES.read_text()
    groups = rules[rules.index("groups:") :]
    return (
        "# Generated from deploy/prometheus/portvakt-alerts.yaml by\n"
        "# `python -m tests.deploy.test_monitoring`: edit that file, not this one.\n"
        "apiVersion: monitoring.coreos.com/v1\n"
        "kind: PrometheusRule\n"
        "metadata:\n"
        "  name: portvakt\n"
        "  labels:\n"
        "    app.kubernetes.io/name: portvakt\n"
        "    app.kubernetes.io/component: monitoring\n"
        "spec:\n" + "".join(f"  {line}\n" if line else "\n" for line in groups.splitlines())
    )


def write_copies() -> None:
    PROMETHEUS_RULE.write_text(prometheus_rule_text())
    shutil.copyfile(DASHBOARD, DASHBOARD_COPY)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_expressions() -> dict[str, str]:
    """Every PromQL expression of the dashboard, by where it is: panels' targets and the
    selectors of its `label_values(...)` variables."""
    found = {
        f"panel {panel['id']} {target['refId']}": target["expr"]
        for panel in dashboard_panels()
        for target in panel["targets"]
    }
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            selector = re.fullmatch(r"label_values\((.*), *\w+\)", query)
            assert selector is not None, query
            found[f"variable {variable['name']}"] = selector.group(1)
    return found


def with_grafana_variables(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, range and label lists are taken out, and what is not a function or keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", text))
    return names - PROMQL_WORDS


def test_metric_names_are_found_in_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(a_bucket{route!~"x|y"}[5m]))) > 1'
        " and on (job) sum without (le) (increase(b_total[1h])) / 86400 > bool c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_the_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_fires_on_trouble_and_stays_quiet_when_healthy() -> None:
    """The unit tests (promtool test rules) name every alert of the rules file."""
    tested = promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in cases
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for group in rule_groups() for rule in group["rules"]}
    assert fired == alerts


def test_every_alert_waits_and_says_how_severe_it_is_and_why() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            assert rule["for"], rule["alert"]
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]


def test_the_alerts_are_explained_in_the_readme() -> None:
    readme = (ROOT / "deploy/prometheus/README.md").read_text()
    for group in rule_groups():
        for rule in group["rules"]:
            assert f"`{rule['alert']}`" in readme, rule["alert"]


def test_every_dashboard_expression_parses_as_promql(tmp_path: Path) -> None:
    recorded = [
        {"record": f"portvakt_dashboard:expr_{number}", "expr": with_grafana_variables(expr)}
        for number, expr in enumerate(dashboard_expressions().values())
    ]
    rules = tmp_path / "dashboard.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    checked = promtool("check", "rules", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_is_a_grafana_dashboard_on_a_chosen_prometheus() -> None:
    board = dashboard()
    assert board["uid"] and len(board["uid"]) <= 40 and board["title"]
    assert isinstance(board["schemaVersion"], int)
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance", "provider"} <= set(variables)
    chosen = {"type": "prometheus", "uid": "${datasource}"}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for cell in itertools.product(
            range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        ):
            assert cell not in taken, f"{panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]
    for panel in dashboard_panels():
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == chosen, panel["title"]
        assert all(target["datasource"] == chosen for target in panel["targets"]), panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == chosen
    assert '"uid": "${datasource}"' in DASHBOARD.read_text()
    assert not re.search(r'"uid": "(?!\$\{datasource\}|portvakt-overview)', DASHBOARD.read_text())


def test_the_dashboard_filters_every_gateway_series_by_job_and_instance() -> None:
    for where, expr in dashboard_expressions().items():
        if where.startswith("panel"):
            selectors = re.findall(r"\b(\w+)\{([^}]*)\}", expr)
            assert selectors, where
            for name, matchers in selectors:
                assert 'job=~"$job"' in matchers and 'instance=~"$instance"' in matchers, (
                    where,
                    name,
                )


def test_the_panels_show_what_the_issue_asks_for() -> None:
    used = set().union(*(metric_names(expr) for expr in dashboard_expressions().values()))
    assert {
        "portvakt_logins_started_total",
        "portvakt_logins_completed_total",
        "portvakt_logins_failed_total",
        "portvakt_http_request_duration_seconds_bucket",
        "portvakt_provider_up",
        "portvakt_upstream_request_duration_seconds_bucket",
        "portvakt_upstream_request_duration_seconds_count",
        "portvakt_store_errors_total",
        "portvakt_store_up",
        "portvakt_certificate_expiry_timestamp_seconds",
        "portvakt_metadata_age_seconds",
        "portvakt_metadata_valid_until_timestamp_seconds",
    } <= used
    quantiles = {
        quantile
        for panel in dashboard_panels()
        for target in panel["targets"]
        if "portvakt_http_request_duration_seconds_bucket" in target["expr"]
        for quantile in re.findall(r"histogram_quantile\((0\.\d+)", target["expr"])
    }
    assert quantiles == {"0.5", "0.95", "0.99"}


@pytest.fixture(scope="module")
def exposed_names(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[set[str]]:
    """The sample names a running gateway exposes after a sandbox login, a cancelled one, a
    failing BankID call and a readiness check, with a SAML provider on a federation aggregate."""
    tmp_path = tmp_path_factory.mktemp("exposed")
    keys = {name: make_key_pair(tmp_path, name) for name in ("idp", "fed", "sign", "enc")}
    saml = aggregate_sp_config(keys, tmp_path, dt.timedelta(days=3))
    providers = {
        "sandbox": {"type": "sandbox"},
        "sc": saml,
        "bankid": {"type": "bankid", "url": f"http://127.0.0.1:{free_port()}/rp/v6.0"},
    }
    redis_server.command("FLUSHALL")
    with running_gateway(redis_server.url, providers=providers) as live:
        sandbox = {AUTHN_PROVIDER_PARAMETER: "sandbox"}
        citizen = Browser(live)
        citizen.login("basic", **sandbox)
        page, _ = citizen.sandbox_page("basic", prompt="login", **sandbox)
        form = {"login": hidden_field(page.text, "login"), "csrf": hidden_field(page.text, "csrf")}
        citizen.http.post("/providers/sandbox/login", data={**form, "cancel": "1"})
        citizen.authorize(
            **citizen.authorize_params("basic", **{AUTHN_PROVIDER_PARAMETER: "bankid"})
        )
        citizen.close()
        assert httpx2.get(f"{live.url}/readyz").status_code == 200
        text = httpx2.get(f"{live.url}/metrics").text
    yield {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_every_metric_the_rules_and_dashboard_use_is_exposed(exposed_names: set[str]) -> None:
    expressions = {
        f"alert {rule['alert']}": rule["expr"] for group in rule_groups() for rule in group["rules"]
    }
    expressions.update(dashboard_expressions())
    for where, expr in expressions.items():
        names = metric_names(expr)
        assert names, where
        missing = names - exposed_names - SCRAPE_SERIES
        assert not missing, f"{where} uses {missing}, which the gateway does not expose"


def test_the_prometheus_rule_holds_exactly_the_rules_file_s_groups() -> None:
    assert PROMETHEUS_RULE.read_text() == prometheus_rule_text(), (
        "run `python -m tests.deploy.test_monitoring`"
    )
    assert yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]["groups"] == rule_groups()


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl (with kustomize) is needed to render the manifests"
    output = subprocess.run(
        [kubectl, "kustomize", str(MONITORING)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {doc["kind"]: doc for doc in yaml.safe_load_all(output)}


def test_the_kustomization_renders_the_monitoring_objects(
    rendered: dict[str, dict[str, Any]],
) -> None:
    assert set(rendered) == {"ServiceMonitor", "PrometheusRule", "ConfigMap", "NetworkPolicy"}
    assert all("namespace" not in doc["metadata"] for doc in rendered.values())
    for doc in rendered.values():
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "portvakt"


def test_the_service_monitor_scrapes_the_portvakt_service_s_http_port(
    rendered: dict[str, dict[str, Any]],
) -> None:
    monitor = rendered["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "portvakt"}}
    assert spec["jobLabel"] == "app.kubernetes.io/name"  # job="portvakt", as the rules expect
    assert [(e["port"], e["path"]) for e in spec["endpoints"]] == [("http", "/metrics")]
    scrape_rules = [r["expr"] for g in rule_groups() for r in g["rules"] if "up{" in r["expr"]]
    assert scrape_rules and all('up{job="portvakt"}' in expr for expr in scrape_rules)


def test_the_prometheus_rule_renders_with_the_rules_file_s_groups(
    rendered: dict[str, dict[str, Any]],
) -> None:
    rule = rendered["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == {"groups": rule_groups()}


def test_the_dashboard_config_map_is_the_dashboard_for_grafana_s_sidecar(
    rendered: dict[str, dict[str, Any]],
) -> None:
    config_map = rendered["ConfigMap"]
    assert config_map["metadata"]["name"] == "portvakt-dashboard"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["portvakt-dashboard.json"]) == dashboard()
    assert DASHBOARD_COPY.read_bytes() == DASHBOARD.read_bytes(), (
        "run `python -m tests.deploy.test_monitoring`"
    )


def test_prometheus_may_reach_the_metrics_port(rendered: dict[str, dict[str, Any]]) -> None:
    policy = rendered["NetworkPolicy"]
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "portvakt"}}
    assert spec["policyTypes"] == ["Ingress"]
    assert [port["port"] for rule in spec["ingress"] for port in rule["ports"]] == [8080]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^EXPOSE 8080$", dockerfile, re.M)


def test_the_built_in_kinds_are_valid_for_a_current_kubernetes(
    rendered: dict[str, dict[str, Any]],
) -> None:
    version = kubernetes_validate.latest_version()
    for kind in ("ConfigMap", "NetworkPolicy"):
        kubernetes_validate.validate(rendered[kind], version, strict=True)


if __name__ == "__main__":
    write_copies()
