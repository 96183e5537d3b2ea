"""Real Redis topologies for the fault tests, on free loopback ports: a master with a replica
watched by three Sentinels, and a Cluster of masters. Both are built from the installed
redis-server and redis-cli, without persistence, in a directory the test gives; every wait polls a
condition under a deadline, and a start that fails half-way stops what it had started."""

from __future__ import annotations

import io
import itertools
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self, TypeAlias
from urllib.parse import quote

from tests.harness import RedisServer, free_port

HOST = "127.0.0.1"
PASSWORD = "topology-secret"  # of the sets the topology tests start
Address: TypeAlias = tuple[str, int]
Reply: TypeAlias = "str | int | list[Reply] | None"


class RedisReplyError(Exception):
    """An error reply from Redis (-ERR, -NOAUTH, -NOGOODSLAVE, ...)."""


def _encode(args: Sequence[str]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(reader: io.BufferedReader) -> Reply:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("the connection closed before the reply")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisReplyError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        return None if length < 0 else reader.read(length + 2)[:-2].decode()
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise ConnectionError(f"not a RESP2 reply: {line!r}")


def redis_command(
    address: Address, *args: str, password: str | None = None, timeout: float = 2
) -> Reply:
    """One command on a fresh connection (after AUTH when a password is given), in RESP2."""
    with (
        socket.create_connection(address, timeout=timeout) as conn,
        conn.makefile("rb") as reader,
    ):
        if password is not None:
            conn.sendall(_encode(["AUTH", password]))
            _read_reply(reader)
        conn.sendall(_encode(args))
        return _read_reply(reader)


def info_fields(text: Reply) -> dict[str, str]:
    """`INFO` or `CLUSTER INFO` as a dict of its key:value lines."""
    fields: dict[str, str] = {}
    for line in str(text).splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key] = value
    return fields


def pairs(reply: Reply) -> dict[str, str]:
    """A flat [key, value, key, value, ...] reply (SENTINEL MASTER, SENTINEL REPLICAS) as a dict."""
    assert isinstance(reply, list), reply
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


def wait_for(check: Callable[[], str | None], timeout: float, what: str) -> None:
    """Poll `check` until it returns None (done); it otherwise returns what is still missing, which
    the TimeoutError names. A connection error or an error reply counts as not done yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            missing = check()
        except (OSError, RedisReplyError) as error:
            missing = f"{type(error).__name__}: {error}"
        if missing is None:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: still {missing} after {timeout:g} s")
        time.sleep(0.05)


def _can_bind(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def distinct_free_ports(count: int, taken: set[int], bus_offset: int | None = None) -> list[int]:
    """`count` free loopback ports not in `taken` (which grows by them); with `bus_offset`, each
    port + offset (a Cluster bus port) is free too and below 65536."""
    ports: list[int] = []
    for _ in range(count * 50):
        if len(ports) == count:
            break
        port = free_port()
        wanted = [port] if bus_offset is None else [port, port + bus_offset]
        if any(p in taken or p >= 65536 for p in wanted):
            continue
        if bus_offset is not None and not _can_bind(port + bus_offset):
            continue
        taken.update(wanted)
        ports.append(port)
    if len(ports) < count:
        raise RuntimeError(f"found only {len(ports)} of {count} free loopback ports")
    return ports


class RedisNode(RedisServer):
    """A RedisServer with options of its own (password, replication, cluster mode), a log file in
    its directory, and a start that reports the log when the process dies."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        password: str | None = None,
        options: Sequence[str] = (),
        replicaof: Address | None = None,
    ) -> None:
        super().__init__(directory)
        if port is not None:
            self.port = port
        self.password = password
        self.options = list(options)
        self.replicaof = replicaof

    @property
    def address(self) -> Address:
        return (HOST, self.port)

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def argv(self) -> list[str]:
        argv = [*super().argv(), "--logfile", str(self.log_path)]
        if self.password is not None:
            argv += ["--requirepass", self.password, "--masterauth", self.password]
        if self.replicaof is not None:
            argv += ["--replicaof", self.replicaof[0], str(self.replicaof[1])]
        return argv + self.options

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self._ping, 10, f"redis-server on port {self.port} did not answer PING")

    def _ping(self) -> str | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"redis-server on port {self.port} exited with {self.process.returncode}:\n"
                + self.log_tail()
            )
        reply = self.call("PING")
        if reply != "PONG":
            return f"PING answered {reply!r}"
        # the answer must come from this process, not from a server that had taken the port
        pid = self.info("server").get("process_id")
        if pid != str(self.process.pid):
            raise RuntimeError(f"port {self.port} is served by process {pid}, not by redis-server")
        return None

    def call(self, *args: str, timeout: float = 2) -> Reply:
        """One command, authenticated when the node has a password; the parsed reply."""
        return redis_command(self.address, *args, password=self.password, timeout=timeout)

    def command(self, *args: str) -> str:
        return str(self.call(*args))

    def info(self, section: str) -> dict[str, str]:
        return info_fields(self.call("INFO", section))

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it has not gone in 10 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as when the machine dies: no shutdown, no goodbye to replicas."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def _config_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SentinelNode(RedisNode):
    """`redis-server sentinel.conf --sentinel` watching one master. The config file is written
    afresh at each start (Sentinel rewrites it as it learns replicas, peers and epochs)."""

    def __init__(  # noqa: PLR0913  sentinel.conf's settings, each with its default
        self,
        directory: Path,
        port: int,
        service_name: str,
        master: Address,
        quorum: int,
        master_password: str | None = None,
        # 3 s, not 1: on a loaded or stalled CI host a master that misses pings for one second
        # was failed over spuriously (a restarted old master promoted back, 1 run in 5 or so)
        down_after_ms: int = 3000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        super().__init__(directory, port)
        self.service_name = service_name
        self.master = master
        self.quorum = quorum
        self.master_password = master_password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def config_path(self) -> Path:
        return self.directory / "sentinel.conf"

    def argv(self) -> list[str]:
        name = self.service_name
        lines = [
            f"port {self.port}",
            f"bind {HOST}",
            f"dir {_config_value(str(self.directory))}",
            f"logfile {_config_value(str(self.log_path))}",
            f"sentinel monitor {name} {self.master[0]} {self.master[1]} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
        ]
        if self.master_password is not None:
            lines.append(f"sentinel auth-pass {name} {_config_value(self.master_password)}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("\n".join(lines) + "\n")
        return [self.binary, str(self.config_path), "--sentinel"]

    def master_address(self) -> Address:
        reply = self.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name)
        if not isinstance(reply, list) or len(reply) != 2:
            raise ConnectionError(f"Sentinel {self.port} names no master: {reply!r}")
        return (str(reply[0]), int(str(reply[1])))


class RedisSentinelSet:
    """One master, one replica of it and three Sentinels that watch it as `portvakt` (quorum 2, a
    master is down after 1 s of silence). With a password, both data nodes require it and use it
    for replication, and the Sentinels know it (`auth-pass`); the Sentinels have none of their
    own. `start()` returns once the replica is in sync and every Sentinel knows the replica and
    both of its peers: only then can a failover find a replica to promote."""

    service_name = "portvakt"
    quorum = 2

    def __init__(self, directory: Path, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        taken: set[int] = set()
        data_ports = distinct_free_ports(2, taken)
        sentinel_ports = distinct_free_ports(3, taken)
        master = (HOST, data_ports[0])
        self.data_nodes = [
            RedisNode(
                directory / f"redis-{port}",
                port,
                password,
                # a master that waits 5 s for more replicas before a diskless full sync (the
                # default) would hold every start and resync up for as long
                options=["--repl-diskless-sync-delay", "0"],
            )
            for port in data_ports
        ]
        self.data_nodes[1].replicaof = master
        self.sentinel_nodes = [
            SentinelNode(
                directory / f"sentinel-{port}",
                port,
                self.service_name,
                master,
                self.quorum,
                master_password=password,
            )
            for port in sentinel_ports
        ]
        self.nodes: list[Address] = [node.address for node in self.data_nodes]
        self.sentinels: list[Address] = [node.address for node in self.sentinel_nodes]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        master = self.data_nodes[0]
        self.data_nodes[1].replicaof = master.address
        for sentinel in self.sentinel_nodes:
            sentinel.master = master.address
        try:
            for node in [*self.data_nodes, *self.sentinel_nodes]:
                node.start()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in [*self.sentinel_nodes, *self.data_nodes]:
            node.stop()

    def node_at(self, address: Address) -> RedisNode:
        for node in self.data_nodes:
            if node.address == address:
                return node
        raise LookupError(f"no data node at {address}")

    def master_address(self) -> Address:
        """The master as the first Sentinel that answers names it."""
        errors: list[str] = []
        for sentinel in self.sentinel_nodes:
            try:
                return sentinel.master_address()
            except (OSError, RedisReplyError) as error:
                errors.append(f"{sentinel.address}: {error}")
        raise ConnectionError(f"no Sentinel named the master: {errors}")

    def _agreed_master(self) -> tuple[Address | None, str]:
        views = {sentinel.address: sentinel.master_address() for sentinel in self.sentinel_nodes}
        if len(set(views.values())) != 1:
            return None, f"Sentinels disagree on the master: {views}"
        return next(iter(views.values())), ""

    def _health_problem(self) -> str | None:
        master_address, disagreement = self._agreed_master()
        if master_address is None:
            return disagreement
        master = self.node_at(master_address)
        if not master.running:
            return f"the master {master_address} is not running"
        role = master.call("ROLE")
        if not isinstance(role, list) or role[0] != "master":
            return f"the master {master_address} says ROLE {role}"
        replicas = [node for node in self.data_nodes if node is not master and node.running]
        problems = itertools.chain(  # lazily: the first problem found is the answer
            (self._replica_problem(replica, master) for replica in replicas),
            (self._sentinel_problem(sentinel, replicas) for sentinel in self.sentinel_nodes),
        )
        return next((problem for problem in problems if problem), None)

    @staticmethod
    def _replica_problem(replica: RedisNode, master: RedisNode) -> str | None:
        info = replica.info("replication")
        if info.get("role") != "slave" or info.get("master_port") != str(master.port):
            return f"{replica.address} does not replicate {master.address}: {info}"
        if info.get("master_link_status") != "up":
            return f"{replica.address} is not in sync with {master.address}"
        return None

    def _sentinel_problem(self, sentinel: SentinelNode, replicas: list[RedisNode]) -> str | None:
        state = pairs(sentinel.call("SENTINEL", "MASTER", self.service_name))
        if state.get("flags") != "master":
            return f"Sentinel {sentinel.port} flags the master {state.get('flags')}"
        if int(state.get("num-other-sentinels", "0")) < len(self.sentinel_nodes) - 1:
            return f"Sentinel {sentinel.port} knows {state.get('num-other-sentinels')} peers"
        seen = sentinel.call("SENTINEL", "REPLICAS", self.service_name)
        assert isinstance(seen, list)
        known = {int(entry["port"]): entry for entry in map(pairs, seen)}
        for replica in replicas:
            entry = known.get(replica.port)
            if entry is None:
                return f"Sentinel {sentinel.port} does not know the replica {replica.port}"
            if entry.get("flags") != "slave":
                return f"Sentinel {sentinel.port} flags {replica.port} {entry.get('flags')}"
            # a replica whose INFO Sentinel has not read lately cannot be promoted
            if int(entry.get("info-refresh", "0")) > 25_000:
                return f"Sentinel {sentinel.port} has not refreshed {replica.port}"
        return None

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until every Sentinel names the same master, it answers as master, each running replica
        is in sync with it, and every Sentinel knows each such replica and both other Sentinels."""
        wait_for(self._health_problem, timeout, "the Sentinel set is not healthy")

    def _wait_promoted(self, former: Address, timeout: float) -> Address:
        promoted: list[Address] = []

        def check() -> str | None:
            address, disagreement = self._agreed_master()
            if address is None:
                return disagreement
            if address == former:
                return f"the Sentinels still name {former}"
            role = self.node_at(address).call("ROLE")
            if not isinstance(role, list) or role[0] != "master":
                return f"the new master {address} says ROLE {role}"
            promoted.append(address)
            return None

        wait_for(check, timeout, f"no replica of {former} was promoted")
        return promoted[-1]

    def failover(self, timeout: float = 30) -> Address:
        """`SENTINEL FAILOVER portvakt`, then wait until all Sentinels name the former replica and
        it answers as master; returns its address. The former master is demoted to a replica by
        the Sentinels later, in their own time (`wait_healthy()` waits for that)."""
        self.wait_healthy(timeout)
        former = self.master_address()

        def forced() -> str | None:
            try:
                self.sentinel_nodes[0].call("SENTINEL", "FAILOVER", self.service_name)
            except RedisReplyError as error:
                if str(error).startswith(("NOGOODSLAVE", "INPROG")):
                    return str(error)
                raise
            return None

        wait_for(forced, timeout, "Sentinel refused the failover")
        return self._wait_promoted(former, timeout)

    def kill_master(self, timeout: float = 30) -> Address:
        """SIGKILL the master and wait until the Sentinels have noticed, agreed and promoted the
        replica, and it answers as master; returns its address. `restart(address)` brings the
        killed node back as a replica."""
        self.wait_healthy(timeout)
        former = self.master_address()
        self.node_at(former).kill()
        return self._wait_promoted(former, timeout)

    def restart(self, address: Address, timeout: float = 30) -> None:
        """Start a stopped data node again as a replica of the current master, and wait until the
        set is healthy."""
        node = self.node_at(address)
        if node.running:
            raise RuntimeError(f"{address} is running")
        node.replicaof = self.master_address()
        node.start()
        self.wait_healthy(timeout)


class RedisClusterSet:
    """A Redis Cluster of `masters` nodes without replicas, made by `redis-cli --cluster create`;
    `start()` returns once every node reports `cluster_state:ok` and knows all the others. Each
    start makes a new cluster (the nodes' config files from a previous one are removed)."""

    BUS_OFFSET = 10000

    def __init__(self, directory: Path, masters: int = 3, password: str | None = None) -> None:
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed; `apt-get install redis-tools`")
        self.cli = cli
        self.directory = directory
        self.password = password
        ports = distinct_free_ports(masters, set(), bus_offset=self.BUS_OFFSET)
        self.cluster_nodes = [
            RedisNode(
                directory / f"redis-{port}",
                port,
                password,
                options=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(self.config_file(port)),
                    "--cluster-node-timeout",
                    "2000",
                ],
            )
            for port in ports
        ]
        self.nodes: list[Address] = [node.address for node in self.cluster_nodes]

    def config_file(self, port: int) -> Path:
        return self.directory / f"nodes-{port}.conf"

    @property
    def url(self) -> str:
        """The first node, with the password if any; redis-py finds the others from it."""
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}{HOST}:{self.cluster_nodes[0].port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            for node in self.cluster_nodes:
                self.config_file(node.port).unlink(missing_ok=True)
                node.start()
            self._create()
            wait_for(self._cluster_problem, 30, "the cluster is not ok")
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        command = [self.cli]
        if self.password is not None:
            command += ["-a", self.password, "--no-auth-warning"]
        command += ["--cluster", "create", *(f"{h}:{p}" for h, p in self.nodes)]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 or "[OK] All 16384 slots covered" not in done.stdout:
            raise RuntimeError(
                f"redis-cli --cluster create failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )

    def _cluster_problem(self) -> str | None:
        for node in self.cluster_nodes:
            info = info_fields(node.call("CLUSTER", "INFO"))
            if info.get("cluster_state") != "ok":
                return f"{node.address} reports cluster_state:{info.get('cluster_state')}"
            if info.get("cluster_known_nodes") != str(len(self.cluster_nodes)):
                return f"{node.address} knows {info.get('cluster_known_nodes')} nodes"
            if info.get("cluster_slots_ok") != "16384":
                return f"{node.address} has {info.get('cluster_slots_ok')} slots ok"
        return None

    def stop(self) -> None:
        for node in self.cluster_nodes:
            node.stop()
