"""The RFC 9457 problem document, for the OpenAPI spec."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class ProblemSchema(Schema):
    """RFC 9457 allows extension members: a problem may carry more than these (for
    example ``current_etag`` on a 412, ``current_status`` on an illegal transition)."""

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
