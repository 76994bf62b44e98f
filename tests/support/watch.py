"""What the whole suite watches: every response's headers and error bodies, and every
secret that must never reach a log line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

SECRETS: set[str] = set()
LOG_FILES: list[Path] = []
_LINES: list[str] = []

LEAKS = (
    "Traceback (most recent call last)",
    "SELECT ",
    "INSERT INTO",
    "UPDATE ",
    "sqlalchemy",
    "psycopg",
    "sqlite3.",
    'File "',
)


def secret(value: str) -> str:
    """Remember a secret the suite made (a token, a password) and return it."""
    SECRETS.add(value)
    return value


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _LINES.append(self.format(record))
        except Exception:
            _LINES.append(record.getMessage())


def capture_logs() -> logging.Handler:
    """Keep every log line of the run, formatted as the registry writes it."""
    from registry.logs import JsonFormatter

    handler = _Capture(level=logging.DEBUG)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    return handler


def leaked_secrets() -> list[str]:
    """Secrets found in any captured line or any server log file."""
    texts = list(_LINES)
    texts += [p.read_text(errors="replace") for p in LOG_FILES if p.exists()]
    found = []
    for value in SECRETS:
        if any(value in text for text in texts):
            found.append(value[:12] + "...")
    return found


def check_response(response: Any, authenticated: bool, bearer: bool = False) -> None:
    """Headers every answer carries; no cookie for a bearer request; no internals in any
    error body."""
    headers = response.headers
    if bearer:
        assert "Set-Cookie" not in headers, "a bearer request was given a cookie"
    assert headers.get("X-Request-ID"), "no X-Request-ID"
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy") == "no-referrer"
    policy = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy
    if response.mimetype == "text/html" and response.status_code != 304:
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
    else:
        assert policy.startswith("default-src 'none'")
    if authenticated and response.status_code < 300:
        assert headers.get("Cache-Control") == "no-store", "an authenticated answer may be cached"
    if response.status_code >= 400 and not response.is_streamed:
        body = response.get_data(as_text=True)
        for leak in LEAKS:
            assert leak not in body, f"error body leaks {leak!r}: {body[:300]}"
