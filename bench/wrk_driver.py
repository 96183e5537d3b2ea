"""Drive the token endpoint with wrk (C, from Debian's `wrk` package) instead of a Python
client: on 2 shared cores, the lean Python client's ~0.15 ms per request is CPU the server
does not get. wrk runs for a fixed time, so the caller prepares more codes than it can
redeem in that time; `ran_out` says when it did not."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SCRIPT = Path(__file__).with_name("redeem.lua")
THREADS = 2
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


@dataclass(frozen=True)
class WrkRun:
    requests: int
    errors: int  # non-2xx responses and socket errors
    seconds: float
    p50_ms: float
    p99_ms: float
    ran_out: bool


def redeem_with_wrk(
    base_url: str, codes: list[str], concurrency: int, seconds: int, client: tuple[str, str],
    redirect_uri: str, workdir: Path,
) -> WrkRun:  # fmt: skip
    codes_file = workdir / "codes.txt"
    codes_file.write_text("\n".join(codes) + "\n")
    credentials = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
    env = {**os.environ, "CODES_FILE": str(codes_file), "THREADS": str(THREADS),
           "REDIRECT_URI": quote(redirect_uri, safe=""), "AUTHORIZATION": f"Basic {credentials}"}  # fmt: skip
    command = ["wrk", f"-t{THREADS}", f"-c{concurrency}", f"-d{seconds}s", "--latency",
               "-s", str(SCRIPT), base_url]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return parse(out, len(codes))


def parse(out: str, codes: int) -> WrkRun:
    requests = int(_search(r"(\d+) requests in", out))
    took, unit = re.search(r"requests in ([\d.]+)(ms|s|m),", out).groups()  # type: ignore[union-attr]
    elapsed = float(took) * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)  # fmt: skip
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in socket_errors.groups()) if socket_errors else 0)  # fmt: skip
    return WrkRun(requests, errors, elapsed, _percentile(out, "50%"),
                  _percentile(out, "99%"), ran_out=requests >= codes - THREADS)  # fmt: skip


def _percentile(out: str, label: str) -> float:
    value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
    return float(value) * UNITS[unit]


def _search(pattern: str, out: str) -> str:
    found = re.search(pattern, out)
    if found is None:
        raise RuntimeError(f"wrk printed no {pattern!r}:\n{out}")
    return found.group(1)
