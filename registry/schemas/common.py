"""Shapes shared by every resource."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200


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
