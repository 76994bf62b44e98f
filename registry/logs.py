"""One JSON object per log line, each carrying the request id; and the access log."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response, g, has_request_context, request

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object, with any ``extra=`` fields and the request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Send the registry's logs to stderr as JSON lines (once per process)."""
    root = logging.getLogger("registry")
    root.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.propagate = True


access_log = logging.getLogger("registry.access")


def assign_request_id(environ: dict[str, Any], context: Any) -> str:
    """The request id: the caller's when it is sane, otherwise a new one."""
    supplied = environ.get("HTTP_X_REQUEST_ID", "")
    context.request_id = rid = supplied if _SANE_REQUEST_ID.match(supplied) else uuid.uuid4().hex
    context.started = time.perf_counter()
    return rid


def log_access(response: Response, context: Any) -> None:
    """One JSON line per request (at INFO), with its request id, status and duration."""
    if access_log.isEnabledFor(logging.INFO):
        started = context.get("started")
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2)
                if started
                else None,
                "actor": context.get("actor_label"),
            },
        )
