"""Webhook endpoints: an organisation's own, managed by its editors and administrators."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask.views import MethodView

from registry.api.base import Blueprint, page_after, paged, problems
from registry.db import current_session
from registry.schemas.webhook import (
    WebhookAttemptSchema,
    WebhookCreateSchema,
    WebhookMessageSchema,
    WebhookQuerySchema,
    WebhookQueuedSchema,
    WebhookReplaySchema,
    WebhookSchema,
    WebhookSecretSchema,
    WebhookUpdateSchema,
)
from registry.security import Permission, current_actor, requires
from registry.services import webhooks

blp = Blueprint(
    "webhooks",
    __name__,
    description="Signed webhooks (Standard Webhooks; CloudEvents payloads) to your "
    "organisation's endpoints. Every message carries webhook-id, webhook-timestamp and "
    "webhook-signature headers; its body is a CloudEvent whose `sequence` counts that "
    "endpoint's messages, so a gap shows a message missed (replay from it). Payloads link "
    "to what changed; read it with your own credentials.",
)


def _with_secret(endpoint: Any, secret: str) -> Any:
    """The endpoint as shown, with its secret this once."""
    shown = {name: getattr(endpoint, name) for name in WebhookSchema().fields}
    return SimpleNamespace(**shown, secret=secret)


@blp.route("/webhooks")
class Webhooks(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.arguments(WebhookQuerySchema(), location="query")
    @blp.response(200, WebhookSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List your organisation's webhook endpoints"""
        return paged(
            webhooks.list_endpoints(
                current_session(), current_actor(), limit=args["limit"], after=page_after(args)
            )
        )

    @requires(Permission.WEBHOOK_MANAGE)
    @blp.arguments(WebhookCreateSchema())
    @blp.response(201, WebhookSecretSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Register an endpoint; the response shows its signing secret once"""
        endpoint, secret = webhooks.create_endpoint(
            current_session(),
            current_actor(),
            url=body["url"],
            types=body["event_types"],
            description=body["description"],
        )
        return _with_secret(endpoint, secret)


@blp.route("/webhooks/<id:endpoint_id>")
class WebhookItem(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.response(200, WebhookSchema)
    @problems(404)
    def get(self, endpoint_id: int) -> Any:
        """Show one of your endpoints (never its secret)"""
        return webhooks.get_endpoint(current_session(), current_actor(), endpoint_id)

    @requires(Permission.WEBHOOK_MANAGE)
    @blp.arguments(WebhookUpdateSchema())
    @blp.response(200, WebhookSchema)
    @problems(404)
    def patch(self, body: dict[str, Any], endpoint_id: int) -> Any:
        """Change an endpoint's URL, event types or description"""
        return webhooks.update_endpoint(current_session(), current_actor(), endpoint_id, body)

    @requires(Permission.WEBHOOK_MANAGE)
    @blp.response(204)
    @problems(404)
    def delete(self, endpoint_id: int) -> None:
        """Remove an endpoint, with its messages and delivery log"""
        webhooks.delete_endpoint(current_session(), current_actor(), endpoint_id)


@blp.route("/webhooks/<id:endpoint_id>/pause")
class WebhookPause(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.response(200, WebhookSchema)
    @problems(404)
    def post(self, endpoint_id: int) -> Any:
        """Hold deliveries; messages wait, in order, until you resume"""
        return webhooks.set_status(current_session(), current_actor(), endpoint_id, "paused")


@blp.route("/webhooks/<id:endpoint_id>/resume")
class WebhookResume(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.response(200, WebhookSchema)
    @problems(404)
    def post(self, endpoint_id: int) -> Any:
        """Deliver again (after a pause, or after the endpoint answered 410 Gone)"""
        return webhooks.set_status(current_session(), current_actor(), endpoint_id, "active")


@blp.route("/webhooks/<id:endpoint_id>/test")
class WebhookTest(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.response(202, WebhookQueuedSchema)
    @problems(404)
    def post(self, endpoint_id: int) -> Any:
        """Queue a ping message (registry.webhook.ping) for this endpoint"""
        sequence = webhooks.ping(current_session(), current_actor(), endpoint_id)
        return {"messages": 1, "sequence": sequence}


@blp.route("/webhooks/<id:endpoint_id>/replay")
class WebhookReplay(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.arguments(WebhookReplaySchema())
    @blp.response(202, WebhookQueuedSchema)
    @problems(404)
    def post(self, body: dict[str, Any], endpoint_id: int) -> Any:
        """Send again every message from a sequence number on, with the same ids"""
        count = webhooks.replay(
            current_session(), current_actor(), endpoint_id, body["from_sequence"]
        )
        return {"messages": count, "sequence": None}


@blp.route("/webhooks/<id:endpoint_id>/rotate-secret")
class WebhookRotate(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.response(200, WebhookSecretSchema)
    @problems(404)
    def post(self, endpoint_id: int) -> Any:
        """A new signing secret, shown once; the old one signs beside it for a day"""
        endpoint, secret = webhooks.rotate_secret(current_session(), current_actor(), endpoint_id)
        return _with_secret(endpoint, secret)


@blp.route("/webhooks/<id:endpoint_id>/messages")
class WebhookMessages(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.arguments(WebhookQuerySchema(), location="query")
    @blp.response(200, WebhookMessageSchema(many=True))
    @problems(404)
    def get(self, args: dict[str, Any], endpoint_id: int) -> Any:
        """The endpoint's messages, newest first, with their delivery state"""
        return paged(
            webhooks.list_messages(
                current_session(),
                current_actor(),
                endpoint_id,
                limit=args["limit"],
                after=page_after(args),
            )
        )


@blp.route("/webhooks/<id:endpoint_id>/deliveries")
class WebhookDeliveries(MethodView):
    @requires(Permission.WEBHOOK_MANAGE)
    @blp.arguments(WebhookQuerySchema(), location="query")
    @blp.response(200, WebhookAttemptSchema(many=True))
    @problems(404)
    def get(self, args: dict[str, Any], endpoint_id: int) -> Any:
        """The delivery log: every attempt, newest first, with the answer it got"""
        return paged(
            webhooks.list_attempts(
                current_session(),
                current_actor(),
                endpoint_id,
                limit=args["limit"],
                after=page_after(args),
            )
        )
