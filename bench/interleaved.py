"""A/B of two checkouts of the gateway, their rows interleaved: both gateways run at once (each
with its own redis-server and, for SAML, its own benchmark IdP), and the load goes to one, then
the other, in short rows, the order swapped each round. The machine drifts ±20 % over minutes
(bench/README.md), so a change of a few per cent shows only between rows that close together.
Prints each round's gateway CPU of both and the median of their per-round ratio. Not a test:
nothing asserts.

    python bench/interleaved.py --before /tmp/before-checkout [--flow saml|token] [--rounds 8]
                                [--seconds 3] [--concurrency 16] [--store redis|memory]
                                [--workers 1] [--codes 5000]

`--flow saml`: bench/saml.py's login (gateway CPU per login). `--flow token`: bench/
token_endpoint.py's redemptions sent by wrk, the codes prepared before each row (gateway CPU per
token). `--before` is a checkout of the other commit (`git worktree add /tmp/before-checkout
<commit>`); its gateway runs with that directory first on PYTHONPATH. "after" is this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.login import CLIENT, REDIRECT_URI, free_port, gateway, redis_server, serve, stop
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


class Side(Protocol):
    name: str

    def row(self, args: argparse.Namespace) -> float:
        """The gateway's CPU ms per login (or token) over one row of load."""
        ...


@dataclass
class SamlSide:
    name: str
    pid: int
    base_url: str
    idp_url: str

    def row(self, args: argparse.Namespace) -> float:
        before = gateway_cpu_seconds(self.pid)
        logins = asyncio.run(
            run_clients(self.base_url, self.idp_url, args.concurrency, args.seconds)
        )
        return (gateway_cpu_seconds(self.pid) - before) * 1000 / max(len(logins), 1)


@dataclass
class TokenSide:
    name: str
    pid: int
    base_url: str
    workdir: Path

    def row(self, args: argparse.Namespace) -> float:
        codes = asyncio.run(prepare_codes(self.base_url, args.codes))
        before = gateway_cpu_seconds(self.pid)
        run = redeem_with_wrk(self.base_url, codes, args.concurrency, args.seconds, CLIENT,
                              REDIRECT_URI, self.workdir)  # fmt: skip
        if run.ran_out or run.errors:
            raise SystemExit(f"{self.name}: {run.errors} errors; more --codes are needed")
        return (gateway_cpu_seconds(self.pid) - before) * 1000 / max(run.requests, 1)


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
    stack: ExitStack, name: str, code: str | None, workdir: Path, args: argparse.Namespace
) -> Side:
    """One gateway with its own redis-server (with --store redis) and, for SAML, its own IdP."""
    store_url = None
    if args.store == "redis":
        redis, store_url = redis_server(str(workdir / f"redis-{name}"))
        stack.callback(stop, redis)
    with python_path_first(code):
        if args.flow == "token":
            served = stack.enter_context(gateway(workdir, name, store_url, args.workers))
            return TokenSide(name, served.process.pid, served.base_url, workdir)
        return saml_side(stack, name, workdir, store_url, args.workers)


def saml_side(
    stack: ExitStack, name: str, keys: Path, store_url: str | None, workers: int
) -> SamlSide:
    port, idp_port = free_port(), free_port()
    idp_metadata = keys / f"idp-{name}.xml"
    idp_metadata.write_bytes(
        FakeIdP(IDP_ENTITY, f"http://127.0.0.1:{idp_port}", keys_of(keys, "idp")).metadata()
    )
    config = keys / f"{name}.yaml"
    config.write_text(config_text(port, store_url, keys, idp_metadata))
    server = serve(port, config, workers)
    stack.callback(stop, server)
    sp_metadata = keys / f"sp-{name}.xml"
    sp_metadata.write_bytes(httpx2.get(f"http://127.0.0.1:{port}/providers/sc/metadata").content)
    stack.callback(stop, start_idp(idp_port, keys, sp_metadata))
    side = SamlSide(name, server.pid, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{idp_port}")
    asyncio.run(run_clients(side.base_url, side.idp_url, 4, 1.0))  # a fresh server is slower
    return side


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="a checkout of the other commit")
    parser.add_argument("--flow", choices=["saml", "token"], default="saml")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--store", choices=["redis", "memory"], default="redis")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--codes", type=int, default=5000, help="codes prepared per token row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        keys = Path(workdir)
        for name in ("sp-sign", "sp-enc", "idp"):
            make_key_pair(keys, name)
        sides = [
            started_side(stack, "before", args.before, keys, args),
            started_side(stack, "after", None, keys, args),
        ]
        unit = "SAML login" if args.flow == "saml" else "token"
        print(f"gateway CPU ms per {unit}, {args.store}, {args.workers} worker(s),"
              f" {args.concurrency} concurrent, {args.seconds} s rows")  # fmt: skip
        ratios = []
        for number in range(args.rounds):
            ordered = sides if number % 2 == 0 else sides[::-1]
            measured = {side.name: side.row(args) for side in ordered}
            ratios.append(measured["after"] / measured["before"])
            print(f"  round {number + 1}: before {measured['before']:.3f}"
                  f"  after {measured['after']:.3f}  after/before {ratios[-1]:.3f}")  # fmt: skip
        print(f"after / before, the median of {len(ratios)} rounds: {statistics.median(ratios):.3f}"
              f" (rounds {min(ratios):.3f}-{max(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
