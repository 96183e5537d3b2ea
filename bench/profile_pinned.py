"""Where one gateway worker's CPU goes, profiled so that wall time is CPU time.

py-spy samples wall time: on two shared cores, a worker that the load generator or redis-server
preempted is sampled as if it were running. Here the worker (1 process) has core 0 to itself;
everything else (wrk or the SAML load generator, the benchmark's IdP, redis-server) shares
core 1. The worker then runs whenever it has work, and py-spy's samples are its CPU. Prints the
gateway's CPU per token (`--flow token`: /token alone, driven by wrk) or per SAML login
(`--flow saml`: bench/saml.py's logins, 16 at a time) and, with py-spy installed
(`pip install py-spy`), the share of samples by package (the frame that was running), and
writes the collapsed stacks. Linux only (sched_setaffinity); needs redis-server, and wrk for
/token. Not a test.

    python bench/profile_pinned.py [--flow token|saml] [--store redis|memory] [--seconds 6]
                                   [--out stacks.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.login import (
    CLIENT,
    REDIRECT_URI,
    Cpu,
    descendants,
    free_port,
    gateway,
    redis_server,
    serve,
    warm_up,
)
from bench.saml import (
    IDP_ENTITY,
    config_text,
    gateway_cpu_seconds,
    keys_of,
    run_clients,
    start_idp,
)
from bench.token_endpoint import prepare_codes
from bench.wrk_driver import redeem_with_wrk
from tests.doubles.saml_idp import FakeIdP, make_key_pair

SAMPLES_PER_SECOND = 400


def py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    binary = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if binary is None:
        print("py-spy is not installed: CPU per token only")
        return None
    command = [binary, "record", "--pid", str(pid), "--rate", str(SAMPLES_PER_SECOND), "--format",
               "raw", "-o", str(out), "--duration", str(seconds), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def shares_by_package(stacks: Path) -> list[tuple[str, float]]:
    """Samples by the package of the running (innermost) frame; RSA signing on its own."""
    counts: collections.Counter[str] = collections.Counter()
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        where = re.search(r"\(([^):]*)", leaf)
        path = where.group(1) if where else "?"
        package = "RSA sign" if "jws_algs" in path else path.split("/")[0]
        counts[package] += int(count)
    total = sum(counts.values()) or 1
    return [(package, count / total) for package, count in counts.most_common(15)]


def pin(gateway_pid: int) -> int:
    """The gateway and its workers on core 0, this process (and what it starts) on core 1;
    the worker to profile."""
    processes = [gateway_pid, *descendants(gateway_pid)]
    for pid in processes:
        os.sched_setaffinity(pid, {0})
    os.sched_setaffinity(0, {1})
    return processes[-1]


def profile_token(workdir: Path, redis_url: str | None, redis_pid: int, args: Any) -> None:
    with gateway(workdir, "pinned", redis_url, 1) as served:
        worker = pin(served.process.pid)
        warm_up(served.base_url)
        codes = asyncio.run(prepare_codes(served.base_url, args.codes))
        spy = py_spy(worker, args.seconds, args.out)
        before = Cpu.now(served.process.pid, redis_pid)
        run = redeem_with_wrk(served.base_url, codes, 16, args.seconds, CLIENT, REDIRECT_URI,
                              workdir)  # fmt: skip
        cpu = Cpu.now(served.process.pid, redis_pid) - before
        if spy is not None:
            spy.wait()
    print(f"{args.store}: {run.requests / run.seconds:.0f} tokens/s, gateway CPU "
          f"{cpu.server_total * 1000 / run.requests:.3f} ms per token, errors {run.errors}")  # fmt: skip
    report(spy, args.out)


def profile_saml(workdir: Path, redis_url: str | None, args: Any) -> None:
    for name in ("sp-sign", "sp-enc", "idp"):
        make_key_pair(workdir, name)
    idp_port, port = free_port(), free_port()
    idp_url, base_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{port}"
    metadata = workdir / "idp.xml"
    metadata.write_bytes(FakeIdP(IDP_ENTITY, idp_url, keys_of(workdir, "idp")).metadata())
    config = workdir / "pinned-saml.yaml"
    config.write_text(config_text(port, redis_url, workdir, metadata))
    server = serve(port, config, 1)
    idp = None
    try:
        worker = pin(server.pid)
        sp_metadata = workdir / "sp.xml"
        sp_metadata.write_bytes(httpx2.get(f"{base_url}/providers/sc/metadata").content)
        idp = start_idp(idp_port, workdir, sp_metadata)
        asyncio.run(run_clients(base_url, idp_url, 4, 1.0))  # warm-up
        spy = py_spy(worker, args.seconds, args.out)
        before = gateway_cpu_seconds(server.pid)
        logins = len(asyncio.run(run_clients(base_url, idp_url, 16, args.seconds)))
        used = gateway_cpu_seconds(server.pid) - before
        if spy is not None:
            spy.wait()
    finally:
        for process in (server, idp):
            if process is not None:
                process.terminate()
                process.wait()
    print(f"{args.store}: {logins / args.seconds:.0f} SAML logins/s, gateway CPU "
          f"{used * 1000 / max(logins, 1):.2f} ms per login")  # fmt: skip
    report(spy, args.out)


def report(spy: subprocess.Popen[bytes] | None, stacks: Path) -> None:
    if spy is None:
        return
    print(f"samples by the running frame's package (stacks in {stacks}):")
    for package, share in shares_by_package(stacks):
        print(f"  {share:6.1%} {package}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", choices=["token", "saml"], default="token")
    parser.add_argument("--store", choices=["redis", "memory"], default="redis")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--codes", type=int, default=12000, help="codes prepared (token)")
    parser.add_argument("--out", type=Path, default=Path("stacks.txt"))
    args = parser.parse_args()
    args.out = args.out.resolve()
    with tempfile.TemporaryDirectory() as workdir:
        redis, redis_url = redis_server(workdir)
        os.sched_setaffinity(redis.pid, {1})
        url = redis_url if args.store == "redis" else None
        try:
            if args.flow == "token":
                profile_token(Path(workdir), url, redis.pid, args)
            else:
                profile_saml(Path(workdir), url, args)
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
