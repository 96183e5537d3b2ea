"""Where one /token worker's CPU goes, profiled so that wall time is CPU time.

py-spy samples wall time: on two shared cores, a worker that the load generator or redis-server
preempted is sampled as if it were running. Here the worker (1 process) has core 0 to itself;
wrk and redis-server share core 1. The worker then runs whenever it has work, and py-spy's
samples are its CPU. Prints the server CPU per token and, with py-spy installed
(`pip install py-spy`), the share of samples by package (the frame that was running) and writes
the collapsed stacks. Linux only (sched_setaffinity); needs wrk and redis-server. Not a test.

    python bench/profile_pinned.py [--store redis|memory] [--seconds 6] [--out stacks.txt]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.login import CLIENT, REDIRECT_URI, Cpu, descendants, gateway, redis_server, warm_up
from bench.token_endpoint import prepare_codes
from bench.wrk_driver import redeem_with_wrk

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["redis", "memory"], default="redis")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--codes", type=int, default=12000)
    parser.add_argument("--out", type=Path, default=Path("token-stacks.txt"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        redis, redis_url = redis_server(workdir)
        os.sched_setaffinity(redis.pid, {1})
        url = redis_url if args.store == "redis" else None
        try:
            with gateway(Path(workdir), "pinned", url, 1) as served:
                workers = [served.process.pid, *descendants(served.process.pid)]
                for pid in workers:
                    os.sched_setaffinity(pid, {0})
                os.sched_setaffinity(0, {1})  # this process and the wrk it starts
                warm_up(served.base_url)
                codes = asyncio.run(prepare_codes(served.base_url, args.codes))
                spy = py_spy(workers[-1], args.seconds, args.out)
                before = Cpu.now(served.process.pid, redis.pid)
                run = redeem_with_wrk(served.base_url, codes, 16, args.seconds, CLIENT,
                                      REDIRECT_URI, Path(workdir))  # fmt: skip
                cpu = Cpu.now(served.process.pid, redis.pid) - before
                if spy is not None:
                    spy.wait()
        finally:
            redis.terminate()
            redis.wait()
    print(f"{args.store}: {run.requests / run.seconds:.0f} tokens/s, server CPU "
          f"{cpu.server_total * 1000 / run.requests:.3f} ms per token, errors {run.errors}")  # fmt: skip
    if spy is not None:
        print(f"samples by the running frame's package (stacks in {args.out}):")
        for package, share in shares_by_package(args.out):
            print(f"  {share:6.1%} {package}")


if __name__ == "__main__":
    main()
