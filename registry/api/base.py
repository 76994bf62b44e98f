"""What every resource shares: the blueprint, the body parser, pagination and ETags."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import flask
import marshmallow as ma
from flask import current_app, request
from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser, abort, is_json_request

from registry.errors import InvalidInput, NulCharacter, UnsupportedMediaType
from registry.schemas.common import MAX_SEQ
from registry.services.paging import Page

F = TypeVar("F", bound=Callable[..., Any])


class RegistryParser(FlaskParser):
    """webargs' parser: JSON bodies are UTF-8 (RFC 8259), nested no deeper than the
    configured limit, and every key and string is text a database can store: no NUL
    character, no lone surrogate (JSON's escapes can spell both).

    A request with no query string has nothing in it to parse: its query arguments are
    each schema's defaults, loaded once (most reads of the busiest routes carry none)."""

    def parse(self, argmap: Any, req: Any = None, *, location: str | None = None, **kw: Any) -> Any:
        if (
            location == "query"
            and isinstance(argmap, ma.Schema)
            and not flask.request.environ.get("QUERY_STRING")
        ):
            defaults = _EMPTY_QUERY.get(id(argmap))
            if defaults is None:
                parsed = super().parse(argmap, req, location=location, **kw)
                defaults = _EMPTY_QUERY[id(argmap)] = (argmap, parsed)
            return dict(defaults[1])
        return super().parse(argmap, req, location=location, **kw)

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            # A body sent as anything else is refused, not read as no body: a change that
            # silently changed nothing would look like success.
            if req.mimetype or req.get_data(cache=True):
                raise UnsupportedMediaType(
                    f"Send the body as application/json (it came as {req.mimetype or 'no type'})."
                )
            return super()._raw_load_json(req)
        data = req.get_data(cache=True)
        encoding = json.detect_encoding(data)  # what json.loads would otherwise accept
        if encoding not in ("utf-8", "utf-8-sig"):
            abort(400, messages={"json": [f"The JSON body is {encoding.upper()}, not UTF-8."]})
        try:
            value = json.loads(data.decode(encoding))
        except RecursionError:
            abort(400, messages={"json": ["The JSON body is nested too deeply."]})
        except ValueError:  # UnicodeDecodeError included
            abort(400, messages={"json": ["The body is not valid JSON."]})
        _inspect(value, current_app.config["MAX_JSON_DEPTH"])
        return value


# Each query schema's arguments for an empty query string, by the schema object (held with
# it, so that its id is never another's).
_EMPTY_QUERY: dict[int, tuple[Any, dict[str, Any]]] = {}

_LONE_SURROGATE = (
    "A string holds a lone surrogate (an escape from \\ud800 to \\udfff without its pair), "
    "which is not text."
)


def _inspect(value: Any, max_depth: int) -> None:
    """Walk a parsed JSON value once: refuse nesting beyond ``max_depth``, U+0000 and
    lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise NulCharacter("JSON body")
            if not item.isascii() and not _encodable(item):
                abort(400, messages={"json": [_LONE_SURROGATE]})
        elif isinstance(item, dict | list):
            if depth > max_depth:
                abort(400, messages={"json": ["The JSON body is nested too deeply."]})
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _holds_nul(pairs: Iterable[tuple[str, str]]) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in pairs)


def refuse_nul_characters(req: flask.Request) -> None:
    """Refuse U+0000 in the path, the query or a form, before any query runs.

    PostgreSQL cannot store it in text (it fails the statement), SQLite would store it,
    and no slug, name, email or comment needs it: one rule for both databases. Forms are
    searched once decoded, however they were sent; JSON bodies when they are parsed
    (``RegistryParser``), which is before any view reads them.
    """
    if "\x00" in req.path:
        raise NulCharacter("path")
    query = req.environ.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:  # the only ways a decoded argument holds one
        raise NulCharacter("query string")
    if req.mimetype in _FORMS and (
        _holds_nul(req.form.items(multi=True))
        or any("\x00" in (upload.filename or "") for upload in req.files.values())
    ):
        raise NulCharacter("form")


_QUERY_NAMES = "registry.query_names"


def _declared_query(view: Any, method: str) -> frozenset[str] | None:
    """The query parameters an API operation declares; None for a route that is not one
    (the pages, the spec, the docs), which reads its query itself."""
    handler = getattr(getattr(view, "view_class", None), method.lower(), None)
    apidoc = getattr(handler, "_apidoc", None)
    if apidoc is None:
        return None
    names: set[str] = set()
    for parameter in apidoc.get("arguments", {}).get("parameters", []):
        if parameter["in"] == "query":
            schema = parameter["schema"]
            schema = schema() if isinstance(schema, type) else schema
            names |= {field.data_key or name for name, field in schema.fields.items()}
    return frozenset(names)


def refuse_unknown_query_parameters(req: flask.Request) -> None:
    """A query parameter the operation does not take is a 422 naming it, never ignored:
    ``?revison=3`` answering the current set would be a wrong citation."""
    if not req.args or req.endpoint is None:
        return
    method = "GET" if req.method == "HEAD" else req.method
    known: dict[tuple[str, str], frozenset[str] | None] = current_app.extensions.setdefault(
        _QUERY_NAMES, {}
    )
    key = (req.endpoint, method)
    if key not in known:
        known[key] = _declared_query(current_app.view_functions.get(req.endpoint), method)
    allowed = known[key]
    if allowed is None:
        return
    unknown = sorted(set(req.args) - allowed)
    if unknown:
        raise InvalidInput(
            f"This operation takes no query parameter {', '.join(unknown)}"
            + (f" (it takes {', '.join(sorted(allowed))})." if allowed else "."),
            {name: ["Unknown query parameter."] for name in unknown},
        )


class Blueprint(_Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = RegistryParser()


_PROBLEMS = {
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    412: "Changed",
    428: "IfMatchRequired",
}


def problems(*statuses: int) -> Callable[[F], F]:
    """Document the problems a view answers beyond those every request may meet (those
    are documented for all operations by ``registry.extensions.ProblemResponses``)."""
    decorate: Callable[[F], F] = Blueprint.doc(
        responses={str(status): _PROBLEMS[status] for status in statuses}
    )
    return decorate


def conditional() -> Callable[[F], F]:
    """Document a GET that honours If-None-Match: the header, and the 304 it may answer."""
    decorate: Callable[[F], F] = Blueprint.doc(
        parameters=[
            {
                "in": "header",
                "name": "If-None-Match",
                "required": False,
                "schema": {"type": "string"},
                "description": "The ETag you hold: a 304 with no body if it is still current.",
            }
        ],
        responses={
            "304": {
                "description": "Not modified: the ETag you sent is still current.",
                "headers": {"ETag": {"schema": {"type": "string"}}},
            }
        },
    )
    return decorate


# Notes, proofs and keys (C2SP formats) are UTF-8 text.
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"
PROOF_RESPONSE = {
    "200": {
        "description": "A c2sp.org/tlog-proof: the index of the entry's event in the audit "
        "log, the inclusion path (base64, the leaf's sibling first), and the latest "
        "checkpoint's signed note; its extra data is the event as it is hashed (RFC 8785 "
        "JSON, with its hash). Check it offline with python -m registry.verify --proof.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def proof_response(proof: Any) -> flask.Response:
    """A tlog proof as a file to keep (``.tlog-proof``, as the spec suggests)."""
    return flask.Response(
        proof.text,
        content_type=TEXT_MEDIA_TYPE,
        headers={"Content-Disposition": 'inline; filename="entry.tlog-proof"'},
    )


# --- pagination ---------------------------------------------------------------------------


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("The cursor is not valid.", {"cursor": ["Not a valid cursor."]}) from exc
    if not isinstance(value, list):
        raise InvalidInput("The cursor is not valid.", {"cursor": ["Not a valid cursor."]})
    return value


def page_after(args: dict[str, Any]) -> Any:
    """The key to start after, from the request's ``cursor`` (None on the first page)."""
    cursor = args.get("cursor")
    if not cursor:
        return None
    key = decode_cursor(cursor)
    # Every listing is ordered by an integer key, which the database must be able to hold.
    if (
        len(key) != 1
        or not isinstance(key[0], int)
        or isinstance(key[0], bool)
        or not 0 <= key[0] <= MAX_SEQ
    ):
        raise InvalidInput("The cursor is not valid.", {"cursor": ["Not a valid cursor."]})
    return key[0]


def next_link(after: Any) -> str:
    """``<...>; rel="next"`` for the page after key ``after``, keeping the other arguments."""
    query = request.args.to_dict(flat=False)
    query["cursor"] = [encode_cursor([after])]
    return f'<{request.path}?{urlencode(query, doseq=True)}>; rel="next"'


def paged(page: Page[Any]) -> tuple[Any, int, dict[str, str]]:
    """A view's return value for one page: the items, and ``Link: rel="next"`` if more."""
    headers: dict[str, str] = {}
    if page.next_after is not None:
        headers["Link"] = next_link(page.next_after)
    return page.items, 200, headers
