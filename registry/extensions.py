"""Flask extensions, created unbound and attached in the app factory."""

from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api as _Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from registry.db import db
from registry.errors import PROBLEM_MEDIA_TYPE
from registry.operations import OPERATION_IDS
from registry.schemas.common import VOCABULARY
from registry.schemas.problem import ProblemSchema
from registry.web import CONVERTERS

__all__ = ["api", "db", "login_manager", "migrate"]


INFO = (
    "The London-wide set of policies on how health and care data may be used, the "
    "conditions each sets, the citizen panel reviews every change must pass, and the "
    "tamper-evident audit trail. Operations whose `security` is empty are public: call "
    "them with no credentials. Credentials sent to them are still checked (a bad token is "
    "a 401) and widen what they show where they say so (editors see drafts). Problems are "
    "`application/problem+json` (RFC 9457); each `type` is a page that explains it."
)
_METHODS = frozenset({"get", "put", "post", "patch", "delete"})
_WRITES = frozenset({"put", "post", "patch", "delete"})
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
# Named problem responses: those any request may meet, and a few that views declare.
GENERAL_PROBLEMS: dict[str, tuple[str, dict[str, Any]]] = {
    "BadRequest": (
        "The request is malformed: a body that is not UTF-8 JSON or is nested too deeply, "
        "text with the NUL character or a lone surrogate, credentials in the URL, or a "
        "session cookie and a bearer token together.",
        {},
    ),
    "Unauthenticated": ("No valid credentials: log in or send a bearer token.", {}),
    "Forbidden": ("Your role or your relation to the object does not allow this.", {}),
    "NotFound": (
        "No such object, or none you may see: someone else's token, decision or draft is "
        "a 404, not a 403, so ids reveal nothing.",
        {},
    ),
    "Conflict": (
        "The request conflicts with the current state (a status that does not allow it, "
        "a name already taken...): `detail` says which.",
        {},
    ),
    "Changed": (
        "The version changed: If-Match names another ETag than its current one (given as "
        "`current_etag`) or is `*`, or another request changed it while this one ran. Read "
        "it again and reapply your change.",
        {},
    ),
    "IfMatchRequired": ("Send If-Match with the ETag you last read.", {}),
    "PayloadTooLarge": ("The body is larger than 1 MiB.", {}),
    "UnsupportedMediaType": ("A body that is not sent as `application/json`.", {}),
    "UnknownParameter": (
        "The request is not valid: a query parameter the operation does not take (named "
        "in `errors`), or a field that fails its schema.",
        {},
    ),
    "RateLimited": ("Too many requests: wait for `Retry-After` seconds.", _RETRY_AFTER),
    "Unavailable": (
        "The database is unavailable or busy; nothing was changed. Retry after `Retry-After`.",
        _RETRY_AFTER,
    ),
}


class ProblemResponses(BasePlugin):
    """Document on every operation the problems any request to it may meet.

    The spec has no catch-all ``default`` response: each operation lists every status it
    answers, so a client (and schemathesis's status code check) can rely on the list.
    Statuses particular to an operation (a 409, a 412...) are declared on its view.
    """

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            if method not in _METHODS:
                continue
            # The contract's list names every operation of the registry's own; a route
            # added for a test may name its own.
            operation_id = operation.get("operationId") or OPERATION_IDS.get((method, path or ""))
            if operation_id is None:
                raise LookupError(
                    f"{method.upper()} {path} has no operationId in registry/operations.py"
                )
            operation["operationId"] = operation_id
            wanted = [
                ("400", "BadRequest"),  # credentials in the URL are refused everywhere
                ("401", "Unauthenticated"),  # a bad token, even where none is needed
                ("503", "Unavailable"),
            ]
            if method in _WRITES:
                # A session write without its CSRF token; every write is rate-limited.
                wanted += [("403", "Forbidden"), ("429", "RateLimited")]
            if path is not None and "{" in path:
                wanted.append(("404", "NotFound"))
            if "requestBody" in operation:
                wanted += [("413", "PayloadTooLarge"), ("415", "UnsupportedMediaType")]
            # A query parameter the operation does not take, on every operation.
            wanted.append(("422", "UnknownParameter"))
            responses = operation.setdefault("responses", {})
            documented = {str(status) for status in responses}
            for status, name in wanted:
                if status not in documented:
                    responses[status] = name


def vocabulary_reference(
    converter: Any, field: Any, ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """A ``choice`` field refers to its vocabulary's one component schema (declared the
    first time a field names it) instead of repeating the values inline."""
    name = field.metadata.get(VOCABULARY)
    if name is None:
        return {}
    values = [value for value in ret.pop("enum") if value is not None]
    ret.pop("type", None)
    components = converter.spec.components
    if name not in components.schemas:
        components.schema(name, {"type": "string", "enum": values})
    elif components.schemas[name]["enum"] != values:
        raise ValueError(f"The vocabulary {name} is declared with two lists of values")
    reference = {"$ref": f"#/components/schemas/{name}"}
    if field.allow_none:
        return {"anyOf": [reference, {"type": "null"}]}
    return reference


class Api(_Api):  # type: ignore[misc]
    """flask-smorest's Api, with every error a problem document, in code and in the spec."""

    ERROR_SCHEMA = ProblemSchema
    # No ``default`` response: see ProblemResponses.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app: Any, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        # Path converters first: blueprints registered later need them for their rules.
        for name, converter in CONVERTERS.items():
            app.url_map.converters[name] = converter
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs.setdefault("extra_plugins", [ProblemResponses()])
        # Paths are absolute (/api/v1/...): the server is the registry's own origin.
        spec_kwargs.setdefault(
            "servers", [{"url": "/", "description": "This registry (paths start /api/v1)."}]
        )
        spec_kwargs.setdefault("info", {"description": INFO})
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.ma_plugin.converter.add_attribute_function(vocabulary_reference)

    def handle_http_exception(self, error: HTTPException) -> Any:
        from registry.errors import handle_http_exception

        return handle_http_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 400):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)
        for name, (description, headers) in GENERAL_PROBLEMS.items():
            named: dict[str, Any] = {"description": description, "schema": self.ERROR_SCHEMA}
            if headers:
                named["headers"] = headers
            prepare_response(named, self.spec, PROBLEM_MEDIA_TYPE)
            self.spec.components.response(name, named)


migrate = Migrate()
login_manager = LoginManager()
api = Api()
