"""Shapes of webhook endpoints, their messages and the delivery log."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from registry.schemas.common import MAX_SEQ, PageArgs, choice, whole_number
from registry.services import webhooks
from registry.services.webhooks import EVENT_TYPES

STATUSES = ("active", "paused", "disabled")
MESSAGE_STATES = ("pending", "delivered", "failed")
_TYPES_DESCRIPTION = "The event types to receive; none for all of them. " + " ".join(
    f"`{name}`: {text}" for name, text in EVENT_TYPES.items()
)


def _event_types(**kwargs: Any) -> fields.List[Any]:
    return fields.List(
        choice("WebhookEventType", EVENT_TYPES),
        validate=validate.Length(max=len(EVENT_TYPES)),
        metadata={"description": _TYPES_DESCRIPTION},
        **kwargs,
    )


_url = validate.Length(min=1, max=2000)
_description = validate.Length(max=500)


class WebhookSchema(Schema):
    id = fields.Integer(dump_only=True)
    organisation_id = fields.Integer(dump_only=True)
    url = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    event_types = fields.Function(
        webhooks.event_types,
        dump_only=True,
        metadata={"description": "The event types it receives; empty for all of them."},
    )
    status = choice(
        "WebhookStatus",
        STATUSES,
        dump_only=True,
        metadata={
            "description": "active; paused by its organisation; disabled by the "
            "registry when the endpoint answered 410 Gone (resume to start again)."
        },
    )
    status_reason = fields.String(dump_only=True, allow_none=True)
    sequence = fields.Integer(
        dump_only=True, metadata={"description": "The last message's sequence number."}
    )
    previous_secret_until = fields.DateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Until then, the previous secret signs beside the new one."},
    )
    created_at = fields.DateTime(dump_only=True)


class WebhookSecretSchema(WebhookSchema):
    secret = fields.String(
        dump_only=True,
        metadata={
            "description": "The signing secret (Standard Webhooks, whsec_...). Shown "
            "this once; store it where the receiver can read it."
        },
    )


class WebhookCreateSchema(Schema):
    url = fields.String(
        required=True,
        validate=_url,
        metadata={"description": "An https URL that resolves only to public addresses."},
    )
    event_types = _event_types(load_default=list)
    description = fields.String(load_default="", validate=_description)


class WebhookUpdateSchema(Schema):
    url = fields.String(validate=_url)
    event_types = _event_types()
    description = fields.String(validate=_description)


class WebhookReplaySchema(Schema):
    from_sequence = whole_number(
        required=True,
        maximum=MAX_SEQ,
        metadata={"description": "Send again every message from this number on, in order."},
    )


class WebhookQueuedSchema(Schema):
    messages = fields.Integer(dump_only=True, metadata={"description": "How many were queued."})
    sequence = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "The test message's number."}
    )


class WebhookMessageSchema(Schema):
    id = fields.Function(
        lambda m: webhooks.message_id(m.endpoint_id, m.sequence),
        dump_only=True,
        metadata={"description": "The webhook-id header (and the CloudEvent's id)."},
    )
    sequence = fields.Integer(dump_only=True)
    event_type = choice("WebhookEventType", EVENT_TYPES, dump_only=True)
    state = choice("WebhookMessageState", MESSAGE_STATES, dump_only=True)
    attempts = fields.Integer(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    next_attempt_at = fields.DateTime(dump_only=True)
    delivered_at = fields.DateTime(dump_only=True, allow_none=True)
    payload = fields.String(dump_only=True, metadata={"description": "The body, as signed."})


class WebhookAttemptSchema(Schema):
    id = fields.Integer(dump_only=True)
    sequence = fields.Integer(dump_only=True)
    attempted_at = fields.DateTime(dump_only=True)
    status_code = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "None: no answer came."}
    )
    error = fields.String(dump_only=True, allow_none=True)
    duration_ms = fields.Integer(dump_only=True)


class WebhookQuerySchema(PageArgs):
    pass
