"""EXPERIMENT, not the product: with PORTVAKT_EXPERIMENT_RESP=1 and this folder on PYTHONPATH,
every Python process started (the benchmark, `portvakt serve` and its workers) opens its store
through bench/resp.py instead of redis-py, so the benchmarks show what a store client cheaper
than redis-py would give end to end:

    PORTVAKT_EXPERIMENT_RESP=1 PYTHONPATH=bench/resp_experiment python bench/token_endpoint.py
"""

import os
import sys
from pathlib import Path

if os.environ.get("PORTVAKT_EXPERIMENT_RESP"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import gateway.app
    from bench.resp import open_resp_store

    gateway.app.open_store = open_resp_store  # type: ignore[assignment]
