"""The app of one worker process under `portvakt serve --workers N`.

uvicorn starts each worker as a fresh process that imports this factory, so the settings travel
in the environment `portvakt serve` set (PORTVAKT_CONFIG and friends), not in memory.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from gateway.app import create_app
from gateway.ops.log_format import configure_logging
from gateway.settings import load_settings


def create_worker_app() -> Starlette:
    audit_log = os.environ.get("PORTVAKT_AUDIT_LOG")
    configure_logging(
        os.environ.get("PORTVAKT_LOG_LEVEL", "info"),
        "json" if os.environ.get("PORTVAKT_LOG_FORMAT") == "json" else "text",
        Path(audit_log) if audit_log else None,
    )
    issuer = os.environ.get("PORTVAKT_ISSUER")
    settings = load_settings(
        Path(os.environ["PORTVAKT_CONFIG"]), {"issuer": issuer} if issuer else None
    )
    return create_app(settings)
