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


def not_modified(etag: str) -> bool:
    """Whether ``If-None-Match`` already names ``etag`` (a strong ETag, quoted)."""
    supplied = request.headers.get("If-None-Match")
    if not supplied:
        return False
    candidates = {c.strip().removeprefix("W/") for c in supplied.split(",")}
    return etag in candidates or "*" in candidates
