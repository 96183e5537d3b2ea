"""The floor under bench/token_endpoint.py: a bare Starlette route on uvicorn (httptools, uvloop,
`--workers N`) that parses the same form and signs the same kind of RS256 ID token with joserfc,
with no store, client authentication, middleware, audit or metrics; driven by the same wrk script
at 16 and 64 connections, next to the raw sign rate on one core measured just before each row.
What the real endpoint loses against this row is the gateway's own per-request work.

    python bench/token_floor.py [--workers 1 2] [--seconds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.login import CLIENT, REDIRECT_URI, answering, free_port, rs256_signs_per_second
from bench.wrk_driver import redeem_with_wrk

KEY = RSAKey.generate_key(2048, parameters={"kid": "floor"})


async def token(request: Request) -> JSONResponse:
    form = await request.form()
    now = int(time.time())
    claims: dict[str, Any] = {"iss": "http://127.0.0.1", "sub": "a" * 43, "aud": "bench",
        "iat": now, "exp": now + 300, "auth_time": now, "acr": "http://id.elegnamnden.se/loa/1.0/loa3",
        "nonce": str(form.get("code"))}  # fmt: skip
    id_token = jwt.encode({"alg": "RS256", "kid": "floor"}, claims, KEY)
    return JSONResponse({"access_token": "x" * 43, "token_type": "Bearer", "id_token": id_token},
                        headers={"Cache-Control": "no-store"})  # fmt: skip


app = Starlette(routes=[Route("/token", token, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'workers':>7} {'conc':>4} {'signs/s':>8} {'tokens/s':>9} {'÷ signs/s':>9} {'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
    with tempfile.TemporaryDirectory() as workdir:
        for workers in args.workers:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "bench.token_floor:app", "--port", str(port),
                 "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
                cwd=Path(__file__).resolve().parents[1])  # fmt: skip
            answering(server, f"http://127.0.0.1:{port}/nothing", "the floor app")
            try:
                for concurrency in (16, 64):
                    signs = rs256_signs_per_second()
                    codes = [str(n) for n in range(args.seconds * 20_000)]
                    run = redeem_with_wrk(f"http://127.0.0.1:{port}", codes, concurrency,
                                          args.seconds, CLIENT, REDIRECT_URI, Path(workdir))  # fmt: skip
                    rate = run.requests / run.seconds
                    print(f"{workers:>7} {concurrency:>4} {signs:>8.0f} {rate:>9.1f} {rate / signs:>9.2f}"
                          f" {run.p50_ms:>7.1f} {run.p99_ms:>7.1f}", flush=True)  # fmt: skip
            finally:
                server.terminate()
                server.wait()


if __name__ == "__main__":
    main()
