from __future__ import annotations

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "Always `ok` on 200."})
    migration = fields.String(metadata={"description": "The database's migration revision."})
