"""The Redis Sentinel StatefulSet's start scripts (deploy/kubernetes/redis-sentinel/), run for
real: three "pods" of redis-server + sentinel on loopback ports, each started by the scripts with
the environment the StatefulSet gives them, pointed at 127.0.0.1. The scripts must make pod 0 the
master on the first start, fail over when it dies, and bring it back as a replica of the new
master, never as a second master with an empty data set."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import yaml

from gateway.cli.main import GRACEFUL_SHUTDOWN_SECONDS
from tests.deploy.test_kubernetes import (
    KUBERNETES,
    configuration,
    environment_names,
    kubectl_kustomize,
    pod_spec,
)
from tests.harness import free_port
from tests.redis_topologies import (
    HOST,
    Address,
    distinct_free_ports,
    info_fields,
    pairs,
    redis_command,
    wait_for,
)

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "redis-sentinel"
PASSWORD = "sentinel-test-password"  # of the throwaway set this test starts
MASTER_NAME = "portvakt"
# The scripts and the sentinels know the pods by host name, as the StatefulSet's DNS names; here
# every pod is "localhost" and told apart by its ports.
NAME = "localhost"


@dataclass
class Pod:
    """One StatefulSet pod: its redis and sentinel processes, each started by its script."""

    ordinal: int
    redis_port: int
    sentinel_port: int
    directory: Path
    environment: dict[str, str]
    redis: subprocess.Popen[bytes] | None = None
    sentinel: subprocess.Popen[bytes] | None = None

    @property
    def redis_address(self) -> Address:
        return (HOST, self.redis_port)

    @property
    def named(self) -> Address:
        """The pod's redis as the sentinels name it."""
        return (NAME, self.redis_port)

    @property
    def sentinel_address(self) -> Address:
        return (HOST, self.sentinel_port)

    def _start(self, script: str, log: str) -> subprocess.Popen[bytes]:
        with (self.directory / log).open("ab") as output:
            return subprocess.Popen(
                ["sh", str(SCRIPTS / script)],
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def start_redis(self) -> None:
        self.redis = self._start("start-redis.sh", "redis.log")

    def start_sentinel(self) -> None:
        self.sentinel = self._start("start-sentinel.sh", "sentinel.log")

    def kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.send_signal(signal.SIGKILL)
        self.redis.wait(timeout=10)

    def stop(self) -> None:
        for process in (self.redis, self.sentinel):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def started_as(self) -> str:
        """The script's last decision, from its log: "master" or "a replica of HOST:PORT".
        (Not from redis.conf: the sentinels rewrite it when they convert a master.)"""
        lines = (self.directory / "redis.log").read_text().splitlines()
        decisions = [line for line in lines if line.startswith("starting as ")]
        return decisions[-1].removeprefix("starting as ")

    def log(self) -> str:
        return "\n".join(
            f"--- pod {self.ordinal} {name}\n{(self.directory / name).read_text()[-2000:]}"
            for name in ("redis.log", "sentinel.log")
            if (self.directory / name).exists()
        )

    def replication(self) -> dict[str, str]:
        reply = redis_command(self.redis_address, "INFO", "replication", password=PASSWORD)
        return info_fields(reply)

    def sentinels_master(self) -> Address | None:
        reply = redis_command(
            self.sentinel_address,
            "SENTINEL", "get-master-addr-by-name", MASTER_NAME,
            password=PASSWORD,
        )  # fmt: skip
        if not isinstance(reply, list):
            return None
        return (str(reply[0]), int(str(reply[1])))


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[list[Pod]]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("redis-server and redis-cli are needed: scripts/ensure-test-tools.sh")
    taken: set[int] = set()
    redis_ports = distinct_free_ports(3, taken)
    sentinel_ports = distinct_free_ports(3, taken)
    sentinel_hosts = " ".join(f"{NAME}:{port}" for port in sentinel_ports)
    made = []
    for ordinal in range(3):
        directory = tmp_path / f"pod-{ordinal}"
        directory.mkdir()
        environment = {
            "PATH": os.environ["PATH"],
            "REDIS_PASSWORD": PASSWORD,
            "MY_HOST": NAME,
            "BIND_ADDRESSES": f"{HOST} -::1",
            "REDIS_PORT": str(redis_ports[ordinal]),
            "SENTINEL_PORT": str(sentinel_ports[ordinal]),
            "INITIAL_MASTER": f"{NAME}:{redis_ports[0]}",
            "SENTINEL_HOSTS": sentinel_hosts,
            "DATA_DIR": str(directory),
            "DOWN_AFTER_MS": "1000",
            "FAILOVER_TIMEOUT_MS": "5000",
            "SELF_WAIT_SECONDS": "30",
        }
        made.append(
            Pod(ordinal, redis_ports[ordinal], sentinel_ports[ordinal], directory, environment)
        )
    try:
        yield made
    finally:
        for pod in made:
            pod.stop()
        print("\n".join(pod.log() for pod in made))  # pytest shows it when the test failed


def _start_in_order(pods: list[Pod]) -> None:
    """As the StatefulSet does (OrderedReady): each pod answers before the next one starts."""
    for pod in pods:
        pod.start_redis()
        pod.start_sentinel()
        wait_for(lambda pod=pod: _answers(pod), 20, f"pod {pod.ordinal} answering")


def _answers(pod: Pod) -> str | None:
    redis_command(pod.redis_address, "PING", password=PASSWORD)
    redis_command(pod.sentinel_address, "PING", password=PASSWORD)
    return None


def _role_problem(pod: Pod, master: Pod) -> str | None:
    fields = pod.replication()
    if pod is master:
        return None if fields["role"] == "master" else f"pod {pod.ordinal} is {fields['role']}"
    if fields["role"] != "slave" or fields.get("master_port") != str(master.redis_port):
        return f"pod {pod.ordinal}: {fields['role']} of port {fields.get('master_port')}"
    if fields.get("master_link_status") != "up":
        return f"pod {pod.ordinal}: link to the master {fields.get('master_link_status')}"
    return None


def _sentinels_problem(pods: list[Pod], master: Pod) -> str | None:
    for pod in pods:
        named = pod.sentinels_master()
        if named != master.named:
            return f"sentinel of pod {pod.ordinal} names {named}"
        known = redis_command(
            pod.sentinel_address, "SENTINEL", "sentinels", MASTER_NAME, password=PASSWORD
        )
        if not isinstance(known, list) or len(known) != 2:
            return f"sentinel of pod {pod.ordinal} knows {known} other sentinels"
        # Sentinels learn replicas from the master's INFO every 10 s; a failover before that
        # would find no replica to promote (or leave one behind, replicating the old master).
        replicas = redis_command(
            pod.sentinel_address, "SENTINEL", "replicas", MASTER_NAME, password=PASSWORD
        )
        ports = sorted(int(str(pairs(entry)["port"])) for entry in replicas or [])
        others = sorted(other.redis_port for other in pods if other is not master)
        if ports != others:
            return f"sentinel of pod {pod.ordinal} knows replicas on {ports}, not {others}"
    return None


def _wait_settled(pods: list[Pod], master: Pod) -> None:
    def problem() -> str | None:
        for pod in pods:
            wrong = _role_problem(pod, master)
            if wrong:
                return wrong
        return _sentinels_problem(pods, master)

    wait_for(problem, 40, f"pod {master.ordinal} master, the others its replicas")


def _wait_failed_over(pods: list[Pod], former: Pod) -> Pod:
    """The pod the sentinels promoted once they agree and it has both others as replicas.
    (Two sentinels can each run a failover within seconds; the higher epoch wins, so the
    first name a sentinel gives is not yet the answer.)"""
    settled: list[Pod] = []

    def problem() -> str | None:
        named = {pod.sentinels_master() for pod in pods}
        if len(named) != 1 or former.named in named or None in named:
            return f"sentinels name {named}"
        master = next(pod for pod in pods if pod.named in named)
        for pod in pods:
            wrong = _role_problem(pod, master)
            if wrong:
                return wrong
        wrong = _sentinels_problem(pods, master)
        if wrong:
            return wrong
        settled[:] = [master]
        return None

    wait_for(problem, 60, f"a failover away from pod {former.ordinal}, settled")
    return settled[0]


def _write_everywhere(pods: list[Pod]) -> None:
    redis_command(pods[0].redis_address, "SET", "kept", "yes", password=PASSWORD)

    def missing() -> str | None:
        without = [
            pod.ordinal
            for pod in pods
            if redis_command(pod.redis_address, "GET", "kept", password=PASSWORD) != "yes"
        ]
        return f"not on pods {without}" if without else None

    wait_for(missing, 10, "a write on pod 0 reaching every replica")


def _masters(pods: list[Pod]) -> list[int]:
    return [pod.ordinal for pod in pods if pod.replication()["role"] == "master"]


def test_first_start_makes_pod_0_master_and_pod_0_restarted_after_a_failover_a_replica(
    pods: list[Pod],
) -> None:
    """One set for both (each start waits some 10 s for the sentinels to settle)."""
    _start_in_order(pods)
    _wait_settled(pods, pods[0])
    assert [pod.started_as() for pod in pods] == [
        "master",
        *[f"a replica of {NAME}:{pods[0].redis_port}"] * 2,
    ]
    _write_everywhere(pods)

    pods[0].kill_redis()

    def promoted() -> str | None:
        named = {pods[1].sentinels_master(), pods[2].sentinels_master()}
        return None if pods[0].named not in named | {None} else f"still {named}"

    wait_for(promoted, 30, "the sentinels' failover")
    pods[0].start_redis()
    new_master = _wait_failed_over(pods, pods[0])
    # The script's own choice, from its first moment: a replica of a promoted pod (the sentinels
    # would also convert a stray master later, after it had served as one).
    assert pods[0].started_as() in {f"a replica of {NAME}:{pod.redis_port}" for pod in pods[1:]}
    assert _masters(pods) == [new_master.ordinal]
    assert redis_command(pods[0].redis_address, "GET", "kept", password=PASSWORD) == "yes"


def test_pod_0_back_before_the_failover_waits_for_it_instead_of_starting_empty_as_master(
    pods: list[Pod],
) -> None:
    _start_in_order(pods)
    _wait_settled(pods, pods[0])
    _write_everywhere(pods)

    pods[0].kill_redis()
    pods[0].start_redis()  # at once: the sentinels still name pod 0

    new_master = _wait_failed_over(pods, pods[0])
    assert "waiting for their failover" in (pods[0].directory / "redis.log").read_text()
    assert pods[0].started_as() in {f"a replica of {NAME}:{pod.redis_port}" for pod in pods[1:]}
    assert _masters(pods) == [new_master.ordinal]
    assert redis_command(new_master.redis_address, "GET", "kept", password=PASSWORD) == "yes"


def test_the_master_hands_over_before_it_stops(pods: list[Pod]) -> None:
    """stop-redis.sh, the redis container's preStop: a master asks for a failover and returns
    once the sentinels name another; a replica returns at once."""
    _start_in_order(pods)
    _wait_settled(pods, pods[0])
    _write_everywhere(pods)

    replica = subprocess.run(
        ["sh", str(SCRIPTS / "stop-redis.sh")],
        env=pods[1].environment, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert replica.returncode == 0 and pods[1].sentinels_master() == pods[0].named

    handover = subprocess.run(
        ["sh", str(SCRIPTS / "stop-redis.sh")],
        env=pods[0].environment, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert handover.returncode == 0, handover.stderr
    assert pods[0].sentinels_master() not in (None, pods[0].named)
    pods[0].kill_redis()  # what the kubelet does after preStop
    pods[0].start_redis()
    new_master = _wait_failed_over(pods, pods[0])
    assert _masters(pods) == [new_master.ordinal]
    assert redis_command(new_master.redis_address, "GET", "kept", password=PASSWORD) == "yes"


def test_the_gateway_as_deployed_is_ready_on_these_sentinels_and_follows_a_failover(
    pods: list[Pod], tmp_path: Path
) -> None:
    """`portvakt serve` with the production Deployment's arguments (two workers) and the test
    overlay's configuration, its sentinel hosts pointed at these pods: ready, its store up, and
    ready again after the master dies, without a restart."""
    _start_in_order(pods)
    _wait_settled(pods, pods[0])
    source, config = configuration(kubectl_kustomize(KUBERNETES / "overlays/test"))
    config["store"]["sentinel"]["hosts"] = [f"{NAME}:{pod.sentinel_port}" for pod in pods]
    config["keys"]["dir"] = str(tmp_path / "keys")
    (tmp_path / "portvakt.yaml").write_text(yaml.safe_dump(config))
    production = kubectl_kustomize(KUBERNETES / "overlays/production")
    args = list(pod_spec(production, "Deployment", "portvakt")["containers"][0]["args"])
    port = free_port()
    args[args.index("--config") + 1] = str(tmp_path / "portvakt.yaml")
    args[args.index("--port") + 1] = str(port)
    args[args.index("--host") + 1] = HOST
    assert args[args.index("--workers") + 1] == "2"
    environment = dict(os.environ)
    environment.update((name, "placeholder-" + "x" * 40) for name in environment_names(source))
    environment["REDIS_PASSWORD"] = PASSWORD
    portvakt = shutil.which("portvakt", path=str(Path(sys.executable).parent))
    assert portvakt is not None
    keys = subprocess.run(
        [portvakt, "keys", "generate", "--config", str(tmp_path / "portvakt.yaml")],
        env=environment, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert keys.returncode == 0, keys.stderr
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen([portvakt, *args], env=environment, stdout=log, stderr=log)
    try:
        base = f"http://{HOST}:{port}"

        def ready() -> str | None:
            try:
                answer = httpx2.get(f"{base}/readyz", timeout=2)
            except httpx2.HTTPError as error:
                return repr(error)
            return None if answer.status_code == 200 else answer.text

        wait_for(ready, 30, "/readyz of the gateway")
        assert httpx2.get(f"{base}/healthz", timeout=2).status_code == 200
        assert "portvakt_store_up 1.0" in httpx2.get(f"{base}/metrics", timeout=2).text

        pods[0].kill_redis()

        def failed_over() -> str | None:
            named = pods[1].sentinels_master()
            return None if named not in (None, pods[0].named) else f"still {named}"

        wait_for(failed_over, 30, "the sentinels' failover")
        # /readyz pings the master the sentinels name now: the gateway followed them
        wait_for(ready, 30, "/readyz after the failover")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 10)
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
