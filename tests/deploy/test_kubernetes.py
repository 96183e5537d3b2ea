"""The Kubernetes manifests in deploy/kubernetes: every kustomization rendered by `kubectl
kustomize`, every rendered document validated against Kubernetes' own schemas (strict: an unknown
field is an error), and the Deployment held against what the image and `portvakt serve` do, as
tests/test_containers.py does for compose: probes, port, user, config and key mounts, graceful
termination, the configuration (it passes check-config), the Secret references (the Secret
docs/kubernetes.md tells the operator to create), the first-keys init container (run for real)
and the Ingress (the gateway's public routes, never /metrics).

No cluster runs here: what a cluster would do beyond the schemas (scheduling, the storage class,
the CNI enforcing the NetworkPolicy) is not tested; docs/kubernetes.md says so."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.cli.main import GRACEFUL_SHUTDOWN_SECONDS, main
from gateway.ops.health import HEALTHZ_PATH, READYZ_PATH

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
DOCS = ROOT / "docs" / "kubernetes.md"
OVERLAYS = ["overlays/test", "overlays/production", "overlays/openshift"]
# monitoring/ (Prometheus Operator objects) has its own tests: tests/deploy/test_monitoring.py
KUSTOMIZATIONS = ["base", "redis-sentinel", *OVERLAYS]
# The oldest Kubernetes the manifests are meant for (docs/kubernetes.md, the oldest schemas
# kubernetes-validate has) and the newest.
KUBERNETES_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
SECRET = "portvakt-secrets"
ENVIRONMENT_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def kubectl_kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError(
            "kubectl is not installed; run `make test` (it installs Debian's kubernetes-client)"
        )
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [document for document in yaml.safe_load_all(done.stdout) if document]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kubectl_kustomize(KUBERNETES / name) for name in KUSTOMIZATIONS}


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in documents if d["kind"] == kind and name in (None, d["metadata"]["name"])
    ]  # fmt: skip
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def dockerfile() -> tuple[str, dict[str, str]]:
    """The Dockerfile's text and its CMD's options (--port 8080 -> {"--port": "8080"})."""
    text = (ROOT / "Dockerfile").read_text()
    command = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert command is not None
    words = json.loads(command.group(1))
    return text, dict(zip(words[1::2], words[2::2], strict=False))


def configuration(documents: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    source = one(documents, "ConfigMap", _config_map_name(documents))["data"]["portvakt.yaml"]
    return source, yaml.safe_load(source)


def environment_names(source: str) -> set[str]:
    """The NAMEs of the ${NAME}s in the configuration's values (comments are not read)."""
    return {
        name
        for _, value in _leaves(yaml.safe_load(source))
        for name in ENVIRONMENT_NAME.findall(str(value))
    }


def _config_map_name(documents: list[dict[str, Any]]) -> str:
    names = [
        d["metadata"]["name"]
        for d in documents
        if d["kind"] == "ConfigMap" and "portvakt.yaml" in d.get("data", {})
    ]
    assert len(names) == 1, names
    return names[0]


def pod_spec(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    resource = one(documents, kind, name)
    if kind == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return resource["spec"]["template"]["spec"]


def mounts(container: dict[str, Any], spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume mounted there."""
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}


def documented_secret_keys() -> dict[str, set[str]]:
    """namespace -> the keys docs/kubernetes.md's `kubectl create secret generic` gives it."""
    commands = re.findall(
        r"^kubectl (?:-n \S+ )?create secret generic .*?(?<!\\)$",
        DOCS.read_text().replace("\\\n", " "),
        re.M,
    )
    keys: dict[str, set[str]] = {}
    for command in commands:
        words = shlex.split(command, posix=True)
        if SECRET not in words:
            continue
        namespace = words[words.index("-n") + 1]
        keys[namespace] = {
            word.split("=", 1)[1].split("=", 1)[0]
            for word in words
            if word.startswith("--from-literal=")
        }
    return keys


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_document_is_valid_kubernetes(
    rendered: dict[str, list[dict[str, Any]]], name: str, version: str
) -> None:
    assert rendered[name]
    for document in rendered[name]:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = f"{document['kind']} {document['metadata']['name']}"
            pytest.fail(f"{name}: {where}: {error.path}: {error.message}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_deployment_runs_the_image_as_serve_expects(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    text, cmd = dockerfile()
    spec = pod_spec(documents, "Deployment", "portvakt")
    (container,) = spec["containers"]
    args = container["args"]
    # The Dockerfile's CMD, then the workers: one per core of the CPU limit.
    assert args[: len(cmd) * 2 + 1] == json.loads(re.search(r"^CMD (.*)$", text, re.M)[1])
    workers = int(args[args.index("--workers") + 1])
    assert workers == int(container["resources"]["limits"]["cpu"])
    assert workers > 1 or overlay == "overlays/test"

    exposed = re.search(r"^EXPOSE (\d+)$", text, re.M)
    assert exposed is not None
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": int(exposed[1]), "protocol": "TCP"}
    assert port["containerPort"] == int(cmd["--port"])

    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"] == {"path": HEALTHZ_PATH, "port": "http"}
    assert probes["readinessProbe"] == {"path": READYZ_PATH, "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": HEALTHZ_PATH, "port": "http"}

    if overlay != "overlays/openshift":  # OpenShift assigns the UID (docs/kubernetes.md)
        uid = re.search(r"useradd .*--uid (\d+)", text)
        assert uid is not None
        assert spec["securityContext"]["runAsUser"] == int(uid[1])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for each in [container, *spec["initContainers"]]:
        assert each["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_keys_and_tmp_are_mounted_where_serve_looks(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    _, cmd = dockerfile()
    spec = pod_spec(documents, "Deployment", "portvakt")
    (container,) = spec["containers"]
    mounted = mounts(container, spec)
    config_path = Path(cmd["--config"])
    config_volume = mounted[str(config_path.parent)]["configMap"]
    assert config_volume["name"] == _config_map_name(documents)
    assert config_volume["items"] == [{"key": "portvakt.yaml", "path": config_path.name}]

    _, config = configuration(documents)
    keys_volume = mounted[config["keys"]["dir"]]
    assert keys_volume["persistentVolumeClaim"]["claimName"] == "portvakt-keys"
    claim = one(documents, "PersistentVolumeClaim", "portvakt-keys")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every replica, any node

    # serve --workers writes Prometheus' multiprocess files under a TemporaryDirectory
    assert "emptyDir" in mounted["/tmp"]
    # the first-keys container sees the same file and directory
    (first_keys,) = spec["initContainers"]
    assert mounts(first_keys, spec) == {
        str(config_path.parent): mounted[str(config_path.parent)],
        config["keys"]["dir"]: keys_volume,
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_lets_uvicorn_finish_after_the_pod_left_the_endpoints(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    spec = pod_spec(rendered[overlay], "Deployment", "portvakt")
    (container,) = spec["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    sleep = re.fullmatch(r"sleep (\d+)", command[-1])
    assert command[:2] == ["/bin/sh", "-c"] and sleep is not None
    assert int(sleep[1]) >= 3  # endpoints and ingress controllers need a moment
    assert spec["terminationGracePeriodSeconds"] > GRACEFUL_SHUTDOWN_SECONDS + int(sleep[1])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_configmap_passes_check_config(
    rendered: dict[str, list[dict[str, Any]]],
    overlay: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, config = configuration(rendered[overlay])
    for name in environment_names(source):
        monkeypatch.setenv(name, "placeholder-" + "x" * 40)
    path = tmp_path / "portvakt.yaml"
    path.write_text(source)
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err
    assert "OK" in capsys.readouterr().out
    assert config["store"]["sentinel"]["service_name"] == "portvakt"
    assert config["tracing"]["enabled"] is False
    assert config["environment"] == ("test" if overlay == "overlays/test" else "production")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_reference_names_the_secret_the_docs_create(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    namespace = one(documents, "Namespace")["metadata"]["name"]
    documented = documented_secret_keys()
    assert namespace in documented, f"docs/kubernetes.md creates no {SECRET} in {namespace}"
    source, _ = configuration(documents)
    # The gateway's containers take the whole Secret (envFrom): each ${NAME} must be a key of it.
    assert environment_names(source) <= documented[namespace]
    references = re.findall(
        r"'(secretRef|secretKeyRef)': \{'name': '([^']+)'(?:, 'key': '([^']+)')?",
        repr(documents),
    )
    assert references
    for kind, name, key in references:
        assert name == SECRET, (kind, name)
        assert kind == "secretRef" or key in documented[namespace]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_no_secret_value_is_rendered(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    documents = rendered[name]
    assert not [d for d in documents if d["kind"] == "Secret"]
    for document in documents:
        for value in _env_values(document):
            assert not re.search(r"(?i)secret|password|token|salt", value["name"]), value
    for document in documents:
        if document["kind"] == "ConfigMap" and "portvakt.yaml" in document.get("data", {}):
            for key, value in _leaves(yaml.safe_load(document["data"]["portvakt.yaml"])):
                if re.search(r"(secret|secret_key|password|salt)$", key):
                    assert re.fullmatch(r"\$\{[^}]+\}", str(value)), (key, value)
                if re.match(r"rediss?://:", str(value)):  # a password in a URL
                    assert re.match(r"rediss?://:\$\{[^}]+\}@", str(value)), (key, value)


def _env_values(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if set(node) == {"name", "value"} else []
        return found + [v for child in node.values() for v in _env_values(child)]
    if isinstance(node, list):
        return [v for child in node for v in _env_values(child)]
    return []


def _leaves(node: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, str(k))]
    if isinstance(node, list):
        return [leaf for v in node for leaf in _leaves(v, key)]
    return [(key, node)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rotation_cronjob_uses_the_deployments_image_volume_and_config(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    cronjob = one(documents, "CronJob", "portvakt-rotate-keys")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    job = pod_spec(documents, "CronJob", "portvakt-rotate-keys")
    deployment = pod_spec(documents, "Deployment", "portvakt")
    (rotate,) = job["containers"]
    (serve,) = deployment["containers"]
    _, cmd = dockerfile()
    assert rotate["args"] == ["keys", "rotate", "--config", cmd["--config"]]
    assert rotate["image"] == serve["image"]
    assert rotate["envFrom"] == serve["envFrom"]
    assert rotate["securityContext"] == serve["securityContext"]
    assert job["securityContext"] == deployment["securityContext"]
    serve_mounts = mounts(serve, deployment)
    del serve_mounts["/tmp"]
    assert mounts(rotate, job) == serve_mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_networkpolicy_admits_the_ingress_controller_and_prometheus_only(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    policy = one(rendered[overlay], "NetworkPolicy", "portvakt")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert all(set(source) == {"namespaceSelector"} for source in ingress["from"])
    egress_ports = {
        (port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"]
    }
    dns = {(53, "UDP"), (53, "TCP")} if overlay != "overlays/openshift" else {
        (5353, "UDP"), (5353, "TCP")
    }  # fmt: skip
    assert egress_ports == {(6379, "TCP"), (26379, "TCP"), (443, "TCP")} | dns
    (outside,) = [rule for rule in policy["egress"] if "ipBlock" in rule["to"][0]]
    assert outside["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert set(outside["to"][0]["ipBlock"]["except"]) >= {"10.0.0.0/8", "192.168.0.0/16"}


def test_the_production_overlay_pins_the_image(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    (container,) = pod_spec(rendered["overlays/production"], "Deployment", "portvakt")["containers"]
    tag = container["image"].rsplit(":", 1)[1]
    assert re.fullmatch(r"\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", tag), container["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_serves_the_issuers_host_over_tls(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    ingress = one(documents, "Ingress", "portvakt")["spec"]
    (rule,) = ingress["rules"]
    assert ingress["tls"] == [{"hosts": [rule["host"]], "secretName": "portvakt-tls"}]
    _, config = configuration(documents)
    assert config["issuer"] == f"https://{rule['host']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_every_public_path_and_not_metrics_or_probes(
    rendered: dict[str, list[dict[str, Any]]],
    overlay: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from starlette.routing import Mount

    from gateway.app import create_app
    from gateway.oidc.key_rotation import generate
    from gateway.settings import KeySettings, load_settings

    documents = rendered[overlay]
    source, _ = configuration(documents)
    for name in environment_names(source):
        monkeypatch.setenv(name, "placeholder-" + "x" * 40)
    (tmp_path / "portvakt.yaml").write_text(source)
    settings = load_settings(tmp_path / "portvakt.yaml")
    generate(tmp_path / "keys")
    settings = settings.model_copy(update={"keys": KeySettings(dir=tmp_path / "keys")})
    app = create_app(settings)
    paths = {route.path for route in app.routes}  # type: ignore[attr-defined]
    assert any(isinstance(route, Mount) for route in app.routes)

    (rule,) = one(documents, "Ingress", "portvakt")["spec"]["rules"]
    routed = [(p["path"], p["pathType"]) for p in rule["http"]["paths"]]

    def published(path: str) -> bool:
        return any(
            path == prefix
            if kind == "Exact"
            else path == prefix or path.startswith(prefix.rstrip("/") + "/")
            for prefix, kind in routed
        )

    private = {HEALTHZ_PATH, READYZ_PATH, "/metrics"}
    assert private <= paths
    assert not [path for path in private if published(path)]
    unpublished = [path for path in paths - private if not published(path)]
    assert not unpublished, f"the Ingress does not route {unpublished}"
    for path, _kind in routed:
        backend = next(p for p in rule["http"]["paths"] if p["path"] == path)["backend"]
        assert backend == {"service": {"name": "portvakt", "port": {"name": "http"}}}


def first_keys_script(documents: list[dict[str, Any]]) -> str:
    (container,) = pod_spec(documents, "Deployment", "portvakt")["initContainers"]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    return str(container["command"][2])


def test_two_replicas_starting_together_make_one_first_key_set(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The init container's script, run twice at once on one key directory, as two replicas
    on a shared volume would: one generates, the other finds its keys; both succeed."""
    documents = rendered["overlays/production"]
    _, cmd = dockerfile()
    source, config = configuration(documents)
    keys = tmp_path / "keys"
    config["keys"]["dir"] = str(keys)
    (tmp_path / "portvakt.yaml").write_text(yaml.safe_dump(config))
    portvakt = Path(shutil.which("portvakt") or ROOT / ".venv/bin/portvakt")
    script = (
        first_keys_script(documents)
        .replace("/opt/portvakt/bin/portvakt", str(portvakt))
        .replace(cmd["--config"], str(tmp_path / "portvakt.yaml"))
        .replace(config_keys_dir(source), str(keys))
    )
    environment = dict(os.environ)
    environment.update((name, "placeholder-" + "x" * 40) for name in environment_names(source))
    runs = [
        subprocess.Popen(["/bin/sh", "-c", script], env=environment, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [run.communicate(timeout=60)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    made = sorted(path.name.split("-", 1)[0] for path in keys.glob("*.pem"))
    assert made == ["next", "signing"]
    before = {path: path.stat().st_mtime_ns for path in keys.glob("*.pem")}
    again = subprocess.run(["/bin/sh", "-c", script], env=environment, check=False, timeout=60)
    assert again.returncode == 0
    assert {path: path.stat().st_mtime_ns for path in keys.glob("*.pem")} == before


def config_keys_dir(source: str) -> str:
    return str(yaml.safe_load(source)["keys"]["dir"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_asks_the_sentinels_the_statefulset_runs(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    _, config = configuration(documents)
    statefulset = one(documents, "StatefulSet", "portvakt-redis")
    service = one(documents, "Service", statefulset["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    pods = [
        f"{statefulset['metadata']['name']}-{n}.{service['metadata']['name']}"
        for n in range(statefulset["spec"]["replicas"])
    ]
    sentinel = config["store"]["sentinel"]
    assert sentinel["hosts"] == [f"{pod}:26379" for pod in pods]
    assert sentinel["service_name"] == "portvakt"  # the scripts' MASTER_NAME
    assert config["store"]["url"] == "redis://:${REDIS_PASSWORD}@/0"
    for container in statefulset["spec"]["template"]["spec"]["containers"]:
        environment = {e["name"]: e.get("value") for e in container["env"]}
        assert environment["SENTINEL_HOSTS"].split() == sentinel["hosts"]
        assert environment["INITIAL_MASTER"] == f"{pods[0]}:6379"
        assert environment["MY_HOST"] == f"$(POD_NAME).{service['metadata']['name']}"
        assert "MASTER_NAME" not in environment


# What OpenShift's restricted-v2 SCC admits (OpenShift 4.11+): no fixed IDs, no host access.
RESTRICTED_VOLUMES = {"configMap", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret", "csi"}  # fmt: skip


def test_the_openshift_overlay_fits_restricted_v2(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    documents = rendered["overlays/openshift"]
    specs = [
        pod_spec(documents, "Deployment", "portvakt"),
        pod_spec(documents, "CronJob", "portvakt-rotate-keys"),
        pod_spec(documents, "StatefulSet", "portvakt-redis"),
    ]
    for spec in specs:
        pod = spec["securityContext"]
        assert not {"runAsUser", "runAsGroup", "fsGroup", "supplementalGroups"} & set(pod)
        assert pod["runAsNonRoot"] is True
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert not {"runAsUser", "runAsGroup", "privileged"} & set(security)
            assert not [port for port in container.get("ports", []) if "hostPort" in port]
        for volume in spec["volumes"]:
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
    ingress = one(documents, "Ingress", "portvakt")["spec"]
    assert "ingressClassName" not in ingress


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruptions_and_autoscaling_keep_two_replicas_of_the_deployment(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documents = rendered[overlay]
    deployment = one(documents, "Deployment", "portvakt")
    labels = deployment["spec"]["selector"]["matchLabels"]
    # what deploy/kubernetes/monitoring's ServiceMonitor and the Redis NetworkPolicy select
    assert labels == {
        "app.kubernetes.io/name": "portvakt", "app.kubernetes.io/component": "gateway"
    }  # fmt: skip
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = one(documents, "PodDisruptionBudget", "portvakt")["spec"]
    assert budget == {"minAvailable": 1, "selector": {"matchLabels": labels}}
    autoscaler = one(documents, "HorizontalPodAutoscaler", "portvakt")["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "portvakt"
    }  # fmt: skip
    assert autoscaler["minReplicas"] == 2 < autoscaler["maxReplicas"]
    (metric,) = autoscaler["metrics"]
    assert metric["resource"]["name"] == "cpu"
    service = one(documents, "Service", "portvakt")["spec"]
    assert service["selector"] == labels
    assert service["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]  # fmt: skip


def test_both_redis_containers_run_one_pinned_official_image(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    spec = pod_spec(rendered["redis-sentinel"], "StatefulSet", "portvakt-redis")
    images = {container["image"] for container in spec["containers"]}
    (image,) = images
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+", image), image
    assert f"`{image}`" in DOCS.read_text()
