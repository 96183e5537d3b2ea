"""Times a piece of work as a login meets it: once at a time, between other work, at the minutes
of a benchmark's row. A `Sampled` process runs beside the row and times one round of its work
every 0.1 s, in its own thread's CPU time, until the row ends (about 1 % of a core).

Why beside the row, not only before it: timed in a loop, caches warm, on a quiet machine, an RSA
signature costs less than the same signature made once a login on a busy one; and this machine's
speed drifts by up to 2x from one second to the next (an RSA signature on an otherwise idle
machine: 334-606 us within 24 s).

    python bench/sampling.py rs256    # what bench/token_endpoint.py samples: one ID token's signature
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TextIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SAMPLE_INTERVAL_SECONDS = 0.1
ID_TOKEN_INPUT = b"e" * 40 + b"." + b"p" * 680  # an ID token's signing input, of its real size


class Sampled:
    """A sampling process: started before a row (it is ready when this returns), `result()`
    after it."""

    def __init__(self, command: list[str]) -> None:
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{command} did not start sampling")

    def result(self) -> tuple[dict[str, float], int]:
        """The mean milliseconds of each timed step over the row, and how many rounds."""
        out, _ = self._process.communicate(input="")  # its stdin closed: the row has ended
        found = json.loads(out)
        return found["steps"], found["samples"]


def sample_until_stdin_closes(one_round: Callable[[], dict[str, float]]) -> None:
    """The sampling process's side: `one_round` returns the milliseconds of each step."""
    print("ready", flush=True)
    rounds: list[dict[str, float]] = []
    while not _closed(sys.stdin, SAMPLE_INTERVAL_SECONDS):
        rounds.append(one_round())
    means = (
        {name: sum(r[name] for r in rounds) / len(rounds) for name in rounds[0]} if rounds else {}
    )
    print(json.dumps({"steps": means, "samples": len(rounds)}), flush=True)


def _closed(stream: TextIO, seconds: float) -> bool:
    """Waits up to `seconds` for `stream` to be closed (its writer sends nothing else)."""
    readable, _, _ = select.select([stream], [], [], seconds)
    return bool(readable) and stream.read() == ""


def rs256_sign_ms() -> Callable[[], dict[str, float]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def one_round() -> dict[str, float]:
        started = time.thread_time()
        key.sign(ID_TOKEN_INPUT, padding.PKCS1v15(), hashes.SHA256())
        return {"sign": (time.thread_time() - started) * 1000}

    return one_round


if __name__ == "__main__":
    if sys.argv[1:] != ["rs256"]:
        raise SystemExit(__doc__)
    sample_until_stdin_closes(rs256_sign_ms())
