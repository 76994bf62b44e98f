"""Every error becomes an RFC 9457 problem, here and nowhere else.

Services raise ``DomainError`` subclasses; Werkzeug raises ``HTTPException``; the
database raises SQLAlchemy errors. Each is turned into ``application/problem+json``
with a stable ``type``, the request id, and never a traceback, SQL text or secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, json, request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("registry.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"


class DomainError(Exception):
    """A rule of the registry was not met. Subclasses fix the HTTP status and type."""

    status: int = 400
    type: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}


class NulCharacter(DomainError):
    status, type, title = 400, "nul-character", "NUL character in the request"

    def __init__(self, where: str) -> None:
        super().__init__(
            f"The {where} contains the NUL character (U+0000), which no text here may hold."
        )


class Unauthenticated(DomainError):
    status, type, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str = "Log in or send a bearer token.", **ext: Any) -> None:
        super().__init__(detail, **ext)
        self.headers["WWW-Authenticate"] = 'Bearer realm="registry"'


class Forbidden(DomainError):
    status, type, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, type, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, type, title = 409, "conflict", "Conflict with the current state"


class IllegalTransition(Conflict):
    type, title = "illegal-transition", "Illegal status transition"

    def __init__(self, entity: str, current: str, requested: str) -> None:
        super().__init__(
            f"The {entity} is {current}; it cannot become {requested}.",
            current_status=current,
            requested_status=requested,
        )


class PreconditionFailed(DomainError):
    status, type, title = 412, "precondition-failed", "The resource has changed"


class PreconditionRequired(DomainError):
    status, type, title = 428, "precondition-required", "If-Match header required"


class UnsupportedMediaType(DomainError):
    status, type, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidInput(DomainError):
    """Input that parses but breaks a rule; ``errors`` maps field paths to messages."""

    status, type, title = 422, "validation-error", "The request is not valid"

    def __init__(self, detail: str, errors: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.errors = dict(errors or {})


class TooManyRequests(DomainError):
    status, type, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(max(1, retry_after))


class Unavailable(DomainError):
    status, type, title = 503, "unavailable", "Service unavailable"


_TYPE_BY_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    428: "precondition-required",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    type_: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """Build an ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (type_ or _TYPE_BY_STATUS.get(status, "error")),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
        "request_id": g.get("request_id"),
    }
    body.update(extensions)
    return Response(
        json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE, headers=dict(headers or {})
    )


def _field_errors(messages: Any) -> dict[str, Any]:
    """Flatten webargs' ``{"json": {...}, "query": {...}}`` into ``{"field": [...]}``."""
    if not isinstance(messages, Mapping):
        return {"_request": messages}
    flat: dict[str, Any] = {}
    for location, errors in messages.items():
        if isinstance(errors, Mapping):
            for field, msgs in errors.items():
                flat[str(field)] = msgs
        else:
            flat[str(location)] = errors
    return flat


def handle_domain_error(error: DomainError) -> Response:
    extensions = dict(error.extensions)
    if isinstance(error, InvalidInput):
        extensions["errors"] = error.errors
    headers = dict(error.headers)
    if error.status == 503:
        headers.setdefault("Retry-After", _retry_after())
    return problem(
        error.status,
        error.detail,
        type_=error.type,
        title=error.title,
        headers=headers,
        **extensions,
    )


def _retry_after() -> str:
    from flask import current_app

    return str(current_app.config["RETRY_AFTER_S"])


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    headers: dict[str, str] = {}
    if status == 405:
        allow = [h for h in error.get_headers() if h[0] == "Allow"]
        headers.update(allow)
    data = getattr(error, "data", None) or {}
    extensions: dict[str, Any] = {}
    detail = error.description or HTTPStatus(status).phrase
    if status == 422 and "messages" in data:
        extensions["errors"] = _field_errors(data["messages"])
        detail = "The request has invalid or unknown fields: " + ", ".join(
            sorted(extensions["errors"])
        )
    elif "messages" in data:
        extensions["errors"] = _field_errors(data["messages"])
        detail = "; ".join(str(m) for msgs in extensions["errors"].values() for m in _as_list(msgs))
    if status == 413:
        detail = "The request body is larger than the limit of 1 MiB."
    if status == 429:
        retry = getattr(error, "retry_after", None)
        headers["Retry-After"] = str(max(1, int(retry or 60)))
        detail = "Too many requests: wait before trying again."
    headers.update(data.get("headers") or {})
    return problem(status, detail, headers=headers, **extensions)


# SQLite's ways of saying "not now": locks, I/O, a full disk, a missing or unmigrated file.
_SQLITE_UNAVAILABLE = (
    "locked",
    "busy",
    "disk",
    "full",
    "unable to open",
    "readonly",
    "no such table",
)


def _is_unavailable(error: DBAPIError) -> bool:
    """Whether a database error means "try again later" rather than a bug."""
    if error.connection_invalidated:
        return True
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        # 08: connection exceptions; 57: operator intervention (shutdown, statement
        # timeout); 55P03 lock_not_available; 53: insufficient resources;
        # 40001/40P01 serialisation failure and deadlock.
        return sqlstate[:2] in {"08", "57", "53"} or sqlstate in {"55P03", "40001", "40P01"}
    if not isinstance(error, OperationalError):
        return False
    if sqlstate is None and type(orig).__module__.startswith("psycopg"):
        return True  # connection failures carry no SQLSTATE
    message = str(orig).lower()
    return any(sign in message for sign in _SQLITE_UNAVAILABLE)


def handle_db_error(error: DBAPIError) -> Response:
    if isinstance(error, IntegrityError):
        log.warning("integrity error", extra={"error": type(error.orig).__name__})
        return problem(409, "The change conflicts with data already recorded.", type_="conflict")
    if _is_unavailable(error):
        log.warning(
            "database unavailable",
            extra={"error": type(error.orig).__name__, "reason": str(error.orig)[:200]},
        )
        return problem(
            503,
            "The database is unavailable or busy; nothing was changed. Try again shortly.",
            headers={"Retry-After": _retry_after()},
        )
    return handle_unexpected(error)


def handle_pool_timeout(error: PoolTimeoutError) -> Response:
    log.warning("database pool exhausted")
    return problem(
        503,
        "The service is busy; nothing was changed. Try again shortly.",
        headers={"Retry-After": _retry_after()},
    )


def handle_unexpected(error: BaseException) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.error(
        "unhandled exception",
        exc_info=(type(error), error, error.__traceback__),
    )
    return problem(
        500,
        "An unexpected error occurred. Quote the request id when reporting it.",
        correlation_id=g.get("request_id"),
    )


def handle_stale_data(error: StaleDataError) -> Response:
    # Another request changed the row between our read and our write (version_id_col).
    return problem(
        412,
        "The resource changed while your request was being handled: read it again.",
        type_="precondition-failed",
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(PoolTimeoutError, handle_pool_timeout)
    app.register_error_handler(DBAPIError, handle_db_error)
    app.register_error_handler(Exception, handle_unexpected)
