"""Shapes shared by every resource."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from registry.db import EARLIEST_TIME, EARLIEST_YEAR, LATEST_TIME, LATEST_YEAR

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200

# Ids, version and revision numbers are 32-bit integer columns; audit sequence numbers and
# log sizes 64-bit ones. A larger number names nothing, and must not reach the database
# (SQLite cannot bind it; PostgreSQL refuses it for the column's type).
MAX_ID = 2**31 - 1
MAX_SEQ = 2**63 - 1

# Every time the registry accepts lies in the years the database keeps (``registry.db``).
EARLIEST = EARLIEST_TIME
LATEST = LATEST_TIME
OUT_OF_RANGE = f"Must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR} (UTC)."


# The metadata key naming the vocabulary a ``choice`` field draws from.
VOCABULARY = "vocabulary"


def choice(name: str, values: Iterable[object], **kwargs: Any) -> fields.String:
    """A string from one of the registry's named vocabularies (purposes, roles...).

    The spec declares each vocabulary once, as the component schema ``name``, and every
    field drawing from it refers to that schema (``$ref``, or ``anyOf`` with null when the
    field may be null), so a generated client has one enum per vocabulary.
    """
    metadata = {**kwargs.pop("metadata", {}), VOCABULARY: name}
    allowed = [str(value) for value in values]
    return fields.String(validate=validate.OneOf(allowed), metadata=metadata, **kwargs)


# A number in a query string: ASCII digits, as many as the largest (MAX_SEQ) has. int()
# alone would also take signs, spaces, underscores and digits of other scripts.
_DIGITS = re.compile(r"[0-9]{1,19}")


class QueryArgs(Schema):
    """Arguments from the query string, where every value is text."""

    numbers_as_text = True


class WholeNumber(fields.Integer):
    """An integer, and only an integer.

    In a JSON body: a JSON number with no fraction (``1``, and ``1.0`` or ``1e0``, which JSON
    does not tell apart from it); ``1.9``, ``true`` and ``"1"`` are refused. In a query
    string (a ``QueryArgs`` schema): ASCII digits only.
    """

    default_error_messages = {"invalid": "Not a whole number."}

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise self.make_error("invalid", input=value)
            return int(value)
        if isinstance(value, str) and getattr(self.root, "numbers_as_text", False):
            if not _DIGITS.fullmatch(value):
                raise self.make_error("invalid", input=value)
            return int(value)
        raise self.make_error("invalid", input=value)


def whole_number(*, minimum: int = 1, maximum: int = MAX_ID, **kwargs: Any) -> WholeNumber:
    """An integer field for ids and numbers: within what the database can hold."""
    return WholeNumber(validate=validate.Range(min=minimum, max=maximum), **kwargs)


class Instant(fields.AwareDateTime):
    """An RFC 3339 date-time with its UTC offset, in the years 1900 to 9999 once in UTC.

    The range is checked on the instant, not on the digits: ``1900-01-01T00:30:00+01:00``
    is 1899 in UTC and refused; ``9999-12-31T23:30:00-01:00`` would be the year 10000.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            in_utc = moment.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError(OUT_OF_RANGE) from exc
        if not EARLIEST <= in_utc <= LATEST:
            raise ValidationError(OUT_OF_RANGE)
        return moment


class Day(fields.Date):
    """An ISO 8601 calendar date in the years 1900 to 9999."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        day: date = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
            raise ValidationError(f"Must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}.")
        return day


class PageArgs(QueryArgs):
    """``limit`` and ``cursor``: keyset pagination in a stable order."""

    limit = whole_number(
        load_default=PAGE_SIZE_DEFAULT,
        maximum=PAGE_SIZE_MAX,
        metadata={"description": f"Items per page (at most {PAGE_SIZE_MAX})."},
    )
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(max=512),
        metadata={"description": "Opaque cursor from the previous page's `Link: rel=next`."},
    )
