"""What every resource shares: the blueprint, the body parser, pagination and ETags."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

import flask
from flask import current_app, request
from flask_smorest import Blueprint as _Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs.flaskparser import FlaskParser, abort, is_json_request

from registry.errors import InvalidInput, PreconditionFailed, PreconditionRequired


class RegistryParser(FlaskParser):
    """webargs' parser, refusing JSON nested deeper than the configured limit."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return super()._raw_load_json(req)
        data = req.get_data(cache=True)
        try:
            value = json.loads(data)
        except RecursionError:
            abort(400, messages={"json": ["The JSON body is nested too deeply."]})
        except (ValueError, UnicodeDecodeError):
            abort(400, messages={"json": ["The body is not valid JSON."]})
        if _depth(value) > current_app.config["MAX_JSON_DEPTH"]:
            abort(400, messages={"json": ["The JSON body is nested too deeply."]})
        return value


def _depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


class Blueprint(_Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = RegistryParser()


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


class PageArgs(Schema):
    """``limit`` and ``cursor``: keyset pagination in a stable order."""

    limit = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1),
        metadata={"description": "Items per page (default 50, maximum 200)."},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(max=512),
        metadata={"description": "Opaque cursor from the previous page's `Link: rel=next`."},
    )

    @validates_schema
    def _limit_within_maximum(self, data: dict[str, Any], **_: Any) -> None:
        maximum = current_app.config["PAGE_SIZE_MAX"]
        if data.get("limit") is not None and data["limit"] > maximum:
            raise ValidationError(f"Must be at most {maximum}.", "limit")


def page_limit(args: dict[str, Any]) -> int:
    return int(args.get("limit") or current_app.config["PAGE_SIZE_DEFAULT"])


def set_next_link(response: flask.Response, next_cursor: str | None) -> None:
    """Add ``Link: <...>; rel="next"`` keeping the request's other query arguments."""
    if next_cursor is None:
        return
    query = request.args.to_dict(flat=False)
    query["cursor"] = [next_cursor]
    from urllib.parse import urlencode

    response.headers["Link"] = f'<{request.path}?{urlencode(query, doseq=True)}>; rel="next"'


# --- ETags ------------------------------------------------------------------------------------


def strong_etag(value: str) -> str:
    return f'"{value}"'


def require_if_match(current: str) -> None:
    """428 without ``If-Match``; 412 when it does not name ``current``."""
    supplied = request.headers.get("If-Match")
    if supplied is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag you last read, so no one's change is lost."
        )
    candidates = [c.strip() for c in supplied.split(",")]
    if strong_etag(current) not in candidates and "*" not in candidates:
        raise PreconditionFailed(
            "The resource changed since you read it: read it again and reapply your change.",
            current_etag=strong_etag(current),
        )


def not_modified(etag: str) -> bool:
    """Whether ``If-None-Match`` already names ``etag`` (a strong ETag, quoted)."""
    supplied = request.headers.get("If-None-Match")
    if not supplied:
        return False
    candidates = {c.strip().removeprefix("W/") for c in supplied.split(",")}
    return etag in candidates or "*" in candidates
