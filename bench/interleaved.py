"""A/B of two checkouts of the gateway on the SAML login of bench/saml.py, their rows
interleaved: both gateways run at once (each with its own benchmark IdP and redis-server), and
the load goes to one, then the other, in short rows, the order swapped each round. The machine
drifts ±20 % over minutes (bench/README.md), so a change of a few per cent shows only between
rows that close together. Prints each round's gateway CPU per login of both and the median of
their per-round ratio. Not a test: nothing asserts.

    python bench/interleaved.py --before /tmp/before-checkout [--rounds 8] [--seconds 3]
                                [--concurrency 16] [--store redis|memory] [--workers 1]

`--before` is a checkout of the other commit (`git worktree add /tmp/before-checkout <commit>`);
its gateway runs with that directory first on PYTHONPATH. "after" is this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.login import free_port, redis_server, serve, stop
from bench.saml import (
    IDP_ENTITY,
    config_text,
    gateway_cpu_seconds,
    keys_of,
    run_clients,
    start_idp,
)
from tests.doubles.saml_idp import FakeIdP, make_key_pair


@dataclass
class Side:
    name: str
    server: subprocess.Popen[bytes]
    base_url: str
    idp_url: str

    def row(self, concurrency: int, seconds: float) -> float:
        """Gateway CPU ms per login over one row of load."""
        before = gateway_cpu_seconds(self.server.pid)
        logins = asyncio.run(run_clients(self.base_url, self.idp_url, concurrency, seconds))
        return (gateway_cpu_seconds(self.server.pid) - before) * 1000 / max(len(logins), 1)


@contextmanager
def python_path_first(directory: str | None) -> Iterator[None]:
    saved = os.environ.get("PYTHONPATH")
    if directory is not None:
        os.environ["PYTHONPATH"] = directory
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def started_side(
    stack: ExitStack, name: str, code: str | None, keys: Path, args: argparse.Namespace
) -> Side:
    """One gateway with its own IdP and (with --store redis) its own redis-server."""
    store_url = None
    if args.store == "redis":
        redis, store_url = redis_server(str(keys / f"redis-{name}"))
        stack.callback(stop, redis)
    port, idp_port = free_port(), free_port()
    idp_metadata = keys / f"idp-{name}.xml"
    idp_metadata.write_bytes(
        FakeIdP(IDP_ENTITY, f"http://127.0.0.1:{idp_port}", keys_of(keys, "idp")).metadata()
    )
    config = keys / f"{name}.yaml"
    config.write_text(config_text(port, store_url, keys, idp_metadata))
    with python_path_first(code):
        server = serve(port, config, args.workers)
    stack.callback(stop, server)
    sp_metadata = keys / f"sp-{name}.xml"
    sp_metadata.write_bytes(httpx2.get(f"http://127.0.0.1:{port}/providers/sc/metadata").content)
    idp = start_idp(idp_port, keys, sp_metadata)
    stack.callback(stop, idp)
    side = Side(name, server, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{idp_port}")
    side.row(4, 1.0)  # warm-up
    return side


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="a checkout of the other commit")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--store", choices=["redis", "memory"], default="redis")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        keys = Path(workdir)
        for name in ("sp-sign", "sp-enc", "idp"):
            make_key_pair(keys, name)
        sides = [
            started_side(stack, "before", args.before, keys, args),
            started_side(stack, "after", None, keys, args),
        ]
        print(f"gateway CPU ms per SAML login, {args.store}, {args.workers} worker(s),"
              f" {args.concurrency} concurrent, {args.seconds:g} s rows")  # fmt: skip
        ratios = []
        for number in range(args.rounds):
            ordered = sides if number % 2 == 0 else sides[::-1]
            measured = {side.name: side.row(args.concurrency, args.seconds) for side in ordered}
            ratios.append(measured["after"] / measured["before"])
            print(f"  round {number + 1}: before {measured['before']:.3f}"
                  f"  after {measured['after']:.3f}  after/before {ratios[-1]:.3f}")  # fmt: skip
        print(f"after / before, the median of {len(ratios)} rounds: {statistics.median(ratios):.3f}"
              f" (rounds {min(ratios):.3f}-{max(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
