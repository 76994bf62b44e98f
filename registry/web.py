"""What HTTP asks of every route, the API's and the pages' alike: path converters that
refuse ids no column can hold, and conditional requests."""

from __future__ import annotations

from flask import request
from werkzeug.routing import IntegerConverter, Map

from registry.schemas.common import MAX_ID, MAX_SEQ


class IdConverter(IntegerConverter):
    """``<id:name>``: an id or a number, from 1 to the largest a 32-bit column holds.

    Anything else (0, a negative number, one too large for the database) matches no route
    and is a 404, like any id that names nothing.
    """

    def __init__(self, map: Map, max: int = MAX_ID) -> None:
        super().__init__(map, min=1, max=max)


class SeqConverter(IdConverter):
    """``<seq:name>``: an audit sequence number (a 64-bit column)."""

    def __init__(self, map: Map) -> None:
        super().__init__(map, max=MAX_SEQ)


CONVERTERS = {"id": IdConverter, "seq": SeqConverter}


# Where programs rather than people are: the API, and the probes load balancers call.
_API_PATHS = ("/api/", "/healthz", "/readyz", "/docs/assets/")


def is_api_path(path: str) -> bool:
    """Whether ``path`` belongs to programs (problem+json errors) rather than to people
    (HTML error pages)."""
    return path == "/api" or path.startswith(_API_PATHS)


def wants_json() -> bool:
    """Whether the request asks for JSON rather than HTML (a browser asks for HTML; a
    program that says nothing, or */*, gets what the route gives first)."""
    best = request.accept_mimetypes.best_match(
        ["text/html", "application/json", "application/problem+json"]
    )
    return best in ("application/json", "application/problem+json")


def not_modified(*etags: str) -> bool:
    """Whether a GET's ``If-None-Match`` already names one of ``etags`` (strong ETags,
    quoted: the representations of one state of the resource).

    Only a read can be "not modified": a write that changed something answers what it
    changed, whatever If-None-Match says.
    """
    supplied = request.headers.get("If-None-Match")
    if not supplied or request.method not in ("GET", "HEAD"):
        return False
    candidates = {c.strip().removeprefix("W/") for c in supplied.split(",")}
    return "*" in candidates or not candidates.isdisjoint(etags)
