"""The RFC 9457 problem document, for the OpenAPI spec."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class ProblemSchema(Schema):
    """An RFC 9457 problem. ``type`` is a page explaining the problem and what to do
    (HTML, or JSON when asked); the members below ``correlation_id`` appear on the
    problems that say so. RFC 9457 lets a problem carry more members than these."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(
        required=True, metadata={"description": "URI reference naming the kind of problem."}
    )
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": "Validation errors by field (422 only)."},
    )
    correlation_id = fields.String(metadata={"description": "Present on 500: quote it."})
    current_status = fields.String(
        metadata={"description": "409: the status the object is in (an illegal transition)."}
    )
    requested_status = fields.String(
        metadata={"description": "409: the status asked for (an illegal transition)."}
    )
    current_etag = fields.String(
        metadata={"description": "412: the version's current ETag, to read it again by."}
    )
    open_version = fields.Integer(
        metadata={"description": "409: the version still open, when a new draft is refused."}
    )
    database_revision = fields.String(
        allow_none=True,
        metadata={"description": "503 from /readyz: the migration the database is at."},
    )
    code_revision = fields.String(
        metadata={"description": "503 from /readyz: the migration this code needs."}
    )
