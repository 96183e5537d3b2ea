"""Log output: text for a terminal, or one JSON object per line for a log pipeline; the audit
stream (`portvakt.audit`) to its own file when one is given."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "audit_event", None)
        if event is not None:
            data["event"] = event
            data.update(getattr(record, "audit", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure_logging(level: str, log_format: LogFormat, audit_file: Path | None) -> None:
    formatter: logging.Formatter = (
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    audit = logging.getLogger("portvakt.audit")
    audit.setLevel(logging.INFO)  # audit events are kept whatever the general level
    if audit_file is not None:
        audit_handler = logging.FileHandler(audit_file, encoding="utf-8")
        audit_handler.setFormatter(JsonFormatter())
        audit.handlers[:] = [audit_handler]
        audit.propagate = False
