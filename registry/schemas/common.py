"""Shapes shared by every resource."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200

# Ids, version and revision numbers are 32-bit integer columns; audit sequence numbers and
# log sizes 64-bit ones. A larger number names nothing, and must not reach the database
# (SQLite cannot bind it; PostgreSQL refuses it for the column's type).
MAX_ID = 2**31 - 1
MAX_SEQ = 2**63 - 1


def whole_number(*, minimum: int = 1, maximum: int = MAX_ID, **kwargs: Any) -> fields.Integer:
    """An integer field for ids and numbers: within what the database can hold."""
    return fields.Integer(validate=validate.Range(min=minimum, max=maximum), **kwargs)


# A day inside datetime's own range, so a time moved to UTC (or a day either side of it,
# as the registry's arithmetic may do) stays representable.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=2)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)


class Instant(fields.AwareDateTime):
    """An RFC 3339 date-time with its UTC offset, that can be moved to UTC.

    ``0001-01-01T00:00:00+12:00`` parses, but lies before the first instant Python can hold
    in UTC: it is refused as invalid instead of failing later, in a comparison.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            in_utc = moment.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("Not a representable time.") from exc
        if not _EARLIEST <= in_utc <= _LATEST:
            raise ValidationError("Not a representable time.")
        return moment


class PageArgs(Schema):
    """``limit`` and ``cursor``: keyset pagination in a stable order."""

    limit = fields.Integer(
        load_default=PAGE_SIZE_DEFAULT,
        validate=validate.Range(min=1, max=PAGE_SIZE_MAX),
        metadata={"description": f"Items per page (at most {PAGE_SIZE_MAX})."},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(max=512),
        metadata={"description": "Opaque cursor from the previous page's `Link: rel=next`."},
    )
