"""Every error becomes an RFC 9457 problem, here and nowhere else.

Services raise ``DomainError`` subclasses; Werkzeug raises ``HTTPException``; the
database raises SQLAlchemy errors. Each is turned into ``application/problem+json``
with a stable ``type``, the request id, and never a traceback, SQL text or secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem: the page its ``type`` names says what it means and what to do."""

    status: int
    title: str
    means: str
    todo: str


# Every problem the registry answers, by the last segment of its ``type``. A problem's
# title always comes from here, so one kind of problem has one title wherever it occurs.
PROBLEM_TYPES: dict[str, ProblemType] = {
    "bad-request": ProblemType(
        400,
        "Bad request",
        "The request could not be read: a body that is not UTF-8 JSON or is nested too "
        "deeply, a string with a lone surrogate, or a malformed header.",
        "Fix the request as `detail` says and send it again.",
    ),
    "nul-character": ProblemType(
        400,
        "NUL character in the request",
        "The path, the query, a form or a JSON string holds U+0000, which no text here may hold.",
        "Remove the character and send the request again.",
    ),
    "mixed-credentials": ProblemType(
        400,
        "Conflicting credentials",
        "The request carries both a session cookie and a bearer token, so it is not clear "
        "who is acting.",
        "Send one: the token for a program, the session for a person in a browser.",
    ),
    "credentials-in-query": ProblemType(
        400,
        "Credentials in the URL",
        "A token or password was sent in the query string, where logs and browser history keep it.",
        "Send the token in the Authorization header, and revoke the one that was exposed.",
    ),
    "unauthenticated": ProblemType(
        401,
        "Authentication required",
        "The operation needs credentials, or the ones sent are not valid (unknown, expired "
        "or revoked token; ended session).",
        "Log in (POST /api/v1/auth/login) or send `Authorization: Bearer <token>`.",
    ),
    "forbidden": ProblemType(
        403,
        "Not allowed",
        "Your role, or your relation to the object, does not allow this operation.",
        "Ask an administrator for the role `detail` names, or act through someone who has it.",
    ),
    "csrf-failed": ProblemType(
        403,
        "CSRF token missing or wrong",
        "A write made with a session cookie did not carry the session's CSRF token.",
        "Send the `csrf_token` from GET /api/v1/auth/me as the X-CSRF-Token header (a form: "
        "reload the page and submit it again).",
    ),
    "not-found": ProblemType(
        404,
        "Not found",
        "There is no such object, or none you may see: another organisation's decision or "
        "token, or a draft you may not read, is not found rather than forbidden, so an id "
        "reveals nothing.",
        "Check the address and the id; list the collection to find what exists.",
    ),
    "method-not-allowed": ProblemType(
        405,
        "Method not allowed",
        "The path exists but does not take this method.",
        "Use one of the methods the `Allow` header lists.",
    ),
    "not-acceptable": ProblemType(
        406,
        "Not acceptable",
        "None of the media types the Accept header asks for can be produced here.",
        "Accept one of the types the operation documents (usually application/json).",
    ),
    "conflict": ProblemType(
        409,
        "Conflict with the current state",
        "The request is valid but the object's state does not allow it now: a name already "
        "taken, a version still open, a review already closed.",
        "Read the object again; `detail` says what stands in the way.",
    ),
    "illegal-transition": ProblemType(
        409,
        "Illegal status transition",
        "The object's status does not allow the step asked for (`current_status` and "
        "`requested_status` name both).",
        "Follow the lifecycle: draft, in review, endorsed, published; read the object to see "
        "where it is.",
    ),
    "backup-refused": ProblemType(
        409,
        "Backup refused",
        "The backup is not one this registry wrote and signed, or it is cut short, or the "
        "database is not empty; nothing was written.",
        "Restore an untouched backup into an empty database.",
    ),
    "precondition-failed": ProblemType(
        412,
        "The resource has changed",
        "The If-Match header does not carry the object's current ETag (`current_etag`): "
        "someone changed it since you read it, or the header was `*`.",
        "Read the object again, reapply your change and send it with the new ETag.",
    ),
    "payload-too-large": ProblemType(
        413,
        "Payload too large",
        "The request body is larger than the limit of 1 MiB.",
        "Send less: a policy body or comment is far smaller than the limit.",
    ),
    "unsupported-media-type": ProblemType(
        415,
        "Unsupported media type",
        "A body was sent with a Content-Type other than application/json.",
        "Send the body as JSON with `Content-Type: application/json`.",
    ),
    "validation-error": ProblemType(
        422,
        "The request is not valid",
        "The request parses but breaks a rule: a field fails its schema, a field or query "
        "parameter is unknown, or a value contradicts what the registry records. `errors` "
        "maps each field to its messages.",
        "Correct the fields `errors` names; nothing was changed.",
    ),
    "precondition-required": ProblemType(
        428,
        "If-Match header required",
        "Changing a draft needs the ETag you last read, so that no one's change is lost.",
        "Read the object, then send its ETag in If-Match.",
    ),
    "awaiting-checkpoint": ProblemType(
        404,
        "Not yet under a checkpoint",
        "The entry is in the audit log, chained to the one before, but no signed "
        "checkpoint covers it yet: one is issued within the registry's checkpoint interval "
        "(one second unless configured otherwise), and only then is there a proof to give.",
        "Ask again after the seconds the Retry-After header gives.",
    ),
    "rate-limited": ProblemType(
        429,
        "Too many requests",
        "This client or account sent more requests than its limit allows in the window.",
        "Wait for the seconds the Retry-After header gives, then try again.",
    ),
    "internal-error": ProblemType(
        500,
        "Internal error",
        "Something failed inside the registry; nothing was changed.",
        "Try again later; if it persists, report it quoting `correlation_id`.",
    ),
    "unavailable": ProblemType(
        503,
        "Service unavailable",
        "The database is unreachable, busy or not migrated; nothing was changed.",
        "Retry after the seconds the Retry-After header gives.",
    ),
}
_GENERIC = "error"


class DomainError(Exception):
    """A rule of the registry was not met. Subclasses fix the HTTP status and the
    ``type``, one of ``PROBLEM_TYPES``, which gives the title."""

    status: int = 400
    type: str = "bad-request"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = PROBLEM_TYPES.get(cls.type)
        if known is None or known.status != cls.status:
            raise TypeError(f"{cls.__name__}: problem type {cls.type!r} is not in PROBLEM_TYPES")

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}

    @property
    def title(self) -> str:
        return PROBLEM_TYPES[self.type].title


class NulCharacter(DomainError):
    status, type = 400, "nul-character"

    def __init__(self, where: str) -> None:
        super().__init__(
            f"The {where} contains the NUL character (U+0000), which no text here may hold."
        )


class Unauthenticated(DomainError):
    status, type = 401, "unauthenticated"

    def __init__(self, detail: str = "Log in or send a bearer token.", **ext: Any) -> None:
        super().__init__(detail, **ext)
        self.headers["WWW-Authenticate"] = 'Bearer realm="registry"'


class Forbidden(DomainError):
    status, type = 403, "forbidden"


class NotFound(DomainError):
    status, type = 404, "not-found"


class Conflict(DomainError):
    status, type = 409, "conflict"


class IllegalTransition(Conflict):
    type = "illegal-transition"

    def __init__(self, entity: str, current: str, requested: str) -> None:
        super().__init__(
            f"The {entity} is {current}; it cannot become {requested}.",
            current_status=current,
            requested_status=requested,
        )


class PreconditionFailed(DomainError):
    status, type = 412, "precondition-failed"


class PreconditionRequired(DomainError):
    status, type = 428, "precondition-required"


class UnsupportedMediaType(DomainError):
    status, type = 415, "unsupported-media-type"


class InvalidInput(DomainError):
    """Input that parses but breaks a rule; ``errors`` maps field paths to messages."""

    status, type = 422, "validation-error"

    def __init__(self, detail: str, errors: Mapping[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.errors = dict(errors or {})


class TooManyRequests(DomainError):
    status, type = 429, "rate-limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(max(1, retry_after))


class Unavailable(DomainError):
    status, type = 503, "unavailable"


class AwaitingCheckpoint(DomainError):
    status, type = 404, "awaiting-checkpoint"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(max(1, retry_after))


# The type of a problem raised as a bare status (by Werkzeug, webargs or a handler below).
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


def problem_type_for(status: int) -> str:
    """The problem type of a bare status (one Werkzeug or webargs raised)."""
    return _TYPE_BY_STATUS.get(status, _GENERIC)


def problem(
    status: int,
    detail: str,
    *,
    type_: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """Build an ``application/problem+json`` response."""
    kind = type_ or problem_type_for(status)
    known = PROBLEM_TYPES.get(kind)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": known.title if known else HTTPStatus(status).phrase,
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


def problem_response(error: BaseException) -> Response:
    """The problem any error becomes: the one mapping the handlers below apply."""
    if isinstance(error, DomainError):
        return handle_domain_error(error)
    if isinstance(error, StaleDataError):
        return handle_stale_data(error)
    if isinstance(error, DBAPIError):
        return handle_db_error(error)
    if isinstance(error, PoolTimeoutError):
        return handle_pool_timeout(error)
    return handle_unexpected(error)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(PoolTimeoutError, handle_pool_timeout)
    app.register_error_handler(DBAPIError, handle_db_error)
    app.register_error_handler(Exception, handle_unexpected)
