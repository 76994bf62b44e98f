"""Webhooks to the Standard Webhooks specification, with CloudEvents payloads.

An organisation registers endpoints; every change the registry announces is written to
the outbox (``webhook_messages``), one row per endpoint that wants it, in the transaction
of the change itself: no change without its messages, no message without its change.
Each endpoint numbers its messages 1, 2, 3, ... (CloudEvents' ``sequence``), so a
consumer that sees a number skipped knows it missed one and can ask for a replay.
``registry.delivery`` sends them.

Payloads are thin: what happened, and links to the resources, which the consumer reads
with its own credentials (every read of the data stays authorised and logged).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from registry.db import table_of, utcnow
from registry.errors import InvalidInput, NotFound
from registry.models.webhook import WebhookAttempt, WebhookEndpoint, WebhookMessage
from registry.services import audit, chain
from registry.services.context import Actor
from registry.services.paging import Page, keyset_page

SPEC_VERSION = "1.0"
SECRET_PREFIX = "whsec_"  # noqa: S105 -- the format's prefix, not a secret
SEQUENCE_DIGITS = 20  # CloudEvents' sequence is compared as a string: zero-padded

# The event types, each filterable per endpoint.
EVENT_TYPES: dict[str, str] = {
    "registry.policy_set.changed": "The policy set in force changed: a new revision was "
    "published, or a scheduled version came into force at its time.",
    "registry.version.submitted": "A policy version was submitted for review.",
    "registry.review.opened": "A citizen panel's review opened.",
    "registry.review.closing_soon": "A review closes within a day.",
    "registry.review.closed": "A review closed, with its outcome.",
    "registry.decision.referred": "One of your organisation's decisions was referred to a "
    "citizen panel (sent to the deciding organisation's endpoints only).",
    "registry.checkpoint.issued": "A signed checkpoint of the audit log was issued.",
    "registry.webhook.ping": "A test message, sent when asked for.",
}
PING = "registry.webhook.ping"


# --- addresses ---------------------------------------------------------------------------


class ForbiddenAddress(Exception):
    """An endpoint's host is, or resolves to, an address the registry must not call."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal address, itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # the resolver's order


def _forbidden(address: str) -> str | None:
    """Why the registry must not connect to ``address``; None if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address carried inside an IPv6 one is judged as itself.
        for inner in (ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())):
            if inner is not None and (why := _forbidden(str(inner))) is not None:
                return f"{why} (inside {ip})"
    for kind, test in (
        ("loopback", ip.is_loopback),
        ("link-local (cloud metadata lives here)", ip.is_link_local),
        ("private", ip.is_private),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
    ):
        if test:
            return kind
    if not ip.is_global:  # shared (100.64/10), documentation, benchmarking, ...
        return "not globally routable"
    return None


def allow_private() -> bool:
    return bool(current_app.config["WEBHOOK_ALLOW_PRIVATE"])


def safe_addresses(url: str, *, allow: bool) -> tuple[str, int, list[str]]:
    """The host, port and addresses to connect to for ``url``, every one checked: raises
    ``ForbiddenAddress`` unless each is public (or ``allow`` lets loopback and private
    networks through, for tests and local use)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise ForbiddenAddress(f"{host} does not resolve ({exc}).") from exc
    if not addresses:
        raise ForbiddenAddress(f"{host} does not resolve.")
    if not allow:
        for address in addresses:
            why = _forbidden(address)
            if why is not None:
                raise ForbiddenAddress(f"{host} resolves to {address}, a {why} address.")
    return host, port, addresses


def check_url(url: str) -> str:
    """``url`` if the registry may send to it, else a 422 saying why."""
    allow = allow_private()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as exc:
        raise _bad_url(f"Not a URL: {exc}.") from exc
    if parts.scheme != "https" and not (allow and parts.scheme == "http"):
        raise _bad_url("Endpoint URLs must use https.")
    if not parts.hostname:
        raise _bad_url("The URL names no host.")
    if parts.username or parts.password:
        raise _bad_url("Put no credentials in the URL; verify the signature instead.")
    if parts.fragment:
        raise _bad_url("The URL may not have a fragment.")
    if any(not " " < character <= "~" for character in url):
        raise _bad_url("Percent-encode spaces and characters outside printable ASCII.")
    try:
        safe_addresses(url, allow=allow)
    except ForbiddenAddress as exc:
        raise _bad_url(str(exc)) from exc
    return url


def _bad_url(message: str) -> InvalidInput:
    return InvalidInput(f"The endpoint URL cannot be used: {message}", {"url": [message]})


# --- endpoints ---------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _types_column(event_types: Sequence[str]) -> str:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"Unknown event type {', '.join(unknown)}.",
            {"event_types": [f"Choose from {', '.join(EVENT_TYPES)}."]},
        )
    return f" {' '.join(sorted(set(event_types)))} " if event_types else ""


def event_types(endpoint: WebhookEndpoint) -> list[str]:
    return endpoint.event_types.split()


def snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: never its secret, and of its URL (whose
    path may carry a receiver's own token) only the origin and a hash of the whole, so
    that the log, which nothing rewrites, holds no credential."""
    parts = urlsplit(endpoint.url)
    return {
        "id": endpoint.id,
        "organisation_id": endpoint.organisation_id,
        "url_origin": f"{parts.scheme}://{parts.netloc}",
        "url_sha256": chain.sha256_hex(endpoint.url.encode()),
        "event_types": event_types(endpoint),
        "status": endpoint.status,
        "description": endpoint.description,
    }


def _own(
    session: Session, actor: Actor, endpoint_id: int, *, change: bool = False
) -> WebhookEndpoint:
    """The caller's organisation's endpoint; 404 for any other (ids reveal nothing).

    To ``change`` it, the chain's lock is taken first: an append writes endpoints' rows
    (their sequence numbers) under that lock, so every other writer of them takes it
    before their row, and the two never wait on each other in a circle."""
    if change:
        audit.hold_chain(session)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.organisation_id != actor.organisation_id:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def get_endpoint(session: Session, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    return _own(session, actor, endpoint_id)


def list_endpoints(
    session: Session, actor: Actor, *, limit: int, after: int | None
) -> Page[WebhookEndpoint]:
    statement = select(WebhookEndpoint).where(
        WebhookEndpoint.organisation_id == actor.organisation_id
    )
    return keyset_page(session, statement, WebhookEndpoint.id, limit, after)


def create_endpoint(
    session: Session, actor: Actor, *, url: str, types: Sequence[str], description: str
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; its secret, shown this once."""
    if actor.organisation_id is None:
        raise InvalidInput("Only an organisation's account can register an endpoint.")
    endpoint = WebhookEndpoint(
        organisation_id=actor.organisation_id,
        url=check_url(url),
        event_types=_types_column(types),
        description=description,
        secret=new_secret(),
        created_by_id=actor.user_id,
        sequence=0,
        status="active",
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session, actor, "webhook.created", "webhook", endpoint.id, after=snapshot(endpoint)
    )
    return endpoint, endpoint.secret


def update_endpoint(
    session: Session, actor: Actor, endpoint_id: int, changes: Mapping[str, Any]
) -> WebhookEndpoint:
    url = check_url(changes["url"]) if "url" in changes else None  # before any lock is taken
    endpoint = _own(session, actor, endpoint_id, change=True)
    before = snapshot(endpoint)
    if url is not None:
        endpoint.url = url
    if "event_types" in changes:
        endpoint.event_types = _types_column(changes["event_types"])
    if "description" in changes:
        endpoint.description = changes["description"]
    session.flush()
    if snapshot(endpoint) != before:
        audit.record(
            session,
            actor,
            "webhook.updated",
            "webhook",
            endpoint.id,
            before=before,
            after=snapshot(endpoint),
        )
    return endpoint


def delete_endpoint(session: Session, actor: Actor, endpoint_id: int) -> None:
    endpoint = _own(session, actor, endpoint_id, change=True)
    before = snapshot(endpoint)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id))
    session.execute(delete(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()
    audit.record(session, actor, "webhook.deleted", "webhook", endpoint_id, before=before)


def set_status(session: Session, actor: Actor, endpoint_id: int, status: str) -> WebhookEndpoint:
    """Pause or resume deliveries (messages wait while paused; none is lost)."""
    endpoint = _own(session, actor, endpoint_id, change=True)
    change_status(session, actor, endpoint, status)
    return endpoint


def change_status(
    session: Session,
    actor: Actor,
    endpoint: WebhookEndpoint,
    status: str,
    reason: str | None = None,
) -> None:
    """Move ``endpoint`` to ``status`` (active, paused, or disabled by the worker, with the
    reason), on the record; a resume makes whatever waited due now. The caller holds the
    chain's lock (``audit.hold_chain``), as every writer of an endpoint's row does."""
    if endpoint.status == status:
        return
    before = snapshot(endpoint)
    endpoint.status, endpoint.status_reason = status, reason
    if status == "active":
        session.execute(
            update(WebhookMessage)
            .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.state == "pending")
            .values(next_attempt_at=utcnow())
        )
    session.flush()
    action = {"active": "resumed", "paused": "paused", "disabled": "disabled"}[status]
    audit.record(
        session,
        actor,
        f"webhook.{action}",
        "webhook",
        endpoint.id,
        before=before,
        after=snapshot(endpoint),
    )


def rotate_secret(session: Session, actor: Actor, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret, shown this once; the old one goes on signing beside it for
    ``WEBHOOK_SECRET_OVERLAP_S``, so the receiver can switch without missing a message."""
    endpoint = _own(session, actor, endpoint_id, change=True)
    overlap = timedelta(seconds=float(current_app.config["WEBHOOK_SECRET_OVERLAP_S"]))
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = utcnow() + overlap
    endpoint.secret = new_secret()
    session.flush()
    audit.record(
        session,
        actor,
        "webhook.secret_rotated",
        "webhook",
        endpoint.id,
        after={"previous_secret_until": chain.format_time(endpoint.previous_secret_until)},
    )
    return endpoint, endpoint.secret


def signing_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign a message now: the current one, and the previous one while
    its overlap lasts."""
    if previous is not None and previous_until is not None and previous_until > now:
        return [secret, previous]
    return [secret]


def ping(session: Session, actor: Actor, endpoint_id: int) -> int:
    """Queue a test message for one endpoint; its sequence number."""
    endpoint = _own(session, actor, endpoint_id, change=True)
    sent = publish(session, PING, {"message": "A test message, as asked."}, endpoint_id=endpoint.id)
    audit.record(session, actor, "webhook.pinged", "webhook", endpoint.id)
    return sent[0] if sent else 0


def replay(session: Session, actor: Actor, endpoint_id: int, from_sequence: int) -> int:
    """Send again every message from ``from_sequence`` on, in order, with their own ids
    and bodies; how many were queued."""
    endpoint = _own(session, actor, endpoint_id, change=True)
    if from_sequence > endpoint.sequence:
        raise InvalidInput(
            f"This endpoint's last message is number {endpoint.sequence}.",
            {"from_sequence": [f"At most {endpoint.sequence}."]},
        )
    count: int = session.execute(  # type: ignore[attr-defined]
        update(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.sequence >= from_sequence)
        .values(state="pending", attempts=0, next_attempt_at=utcnow(), leased_until=None)
    ).rowcount
    audit.record(
        session,
        actor,
        "webhook.replayed",
        "webhook",
        endpoint.id,
        after={"from_sequence": from_sequence, "messages": count},
    )
    return int(count)


def list_messages(
    session: Session, actor: Actor, endpoint_id: int, *, limit: int, after: int | None
) -> Page[WebhookMessage]:
    """The endpoint's messages, newest first."""
    endpoint = _own(session, actor, endpoint_id)
    statement = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id)
    return keyset_page(session, statement, WebhookMessage.sequence, limit, after, descending=True)


def list_attempts(
    session: Session, actor: Actor, endpoint_id: int, *, limit: int, after: int | None
) -> Page[WebhookAttempt]:
    """The endpoint's delivery log: every attempt, newest first."""
    endpoint = _own(session, actor, endpoint_id)
    statement = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id)
    return keyset_page(session, statement, WebhookAttempt.id, limit, after, descending=True)


# --- the outbox --------------------------------------------------------------------------

_E = table_of(WebhookEndpoint)
_INSERT_MESSAGES = insert(table_of(WebhookMessage))


def public_url(path: str) -> str:
    return str(current_app.config["PUBLIC_URL"]).rstrip("/") + path


def payload(
    endpoint_id: int,
    sequence: int,
    event_type: str,
    at: datetime,
    subject: str | None,
    data: Mapping[str, Any],
) -> str:
    """The message's body: a CloudEvent (structured JSON), thin."""
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": message_id(endpoint_id, sequence),
        # The sequence counts this endpoint's messages, so the endpoint is the source.
        "source": public_url(f"/api/v1/webhooks/{endpoint_id}"),
        "type": event_type,
        "time": chain.format_time(at),
        "sequence": str(sequence).zfill(SEQUENCE_DIGITS),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    if subject is not None:
        event["subject"] = subject
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def message_id(endpoint_id: int, sequence: int) -> str:
    """The ``webhook-id``: the same on every attempt and replay of a message."""
    return f"msg_{endpoint_id}_{sequence}"


def publish(
    session: Session,
    event_type: str,
    data: Mapping[str, Any],
    *,
    subject: str | None = None,
    organisation_id: int | None = None,
    endpoint_id: int | None = None,
    at: datetime | None = None,
) -> list[int]:
    """Write the message for every endpoint that wants ``event_type`` (of one
    organisation, or one endpoint, where given), in the caller's transaction: one UPDATE
    numbers them, one INSERT writes them. The sequence numbers given."""
    at = at or utcnow()
    assign = update(_E).values(sequence=_E.c.sequence + 1).returning(_E.c.id, _E.c.sequence)
    if endpoint_id is None:  # one endpoint named (a ping) gets it whatever it filters
        assign = assign.where(
            or_(_E.c.event_types == "", _E.c.event_types.like(f"% {event_type} %"))
        )
    if organisation_id is not None:
        assign = assign.where(_E.c.organisation_id == organisation_id)
    if endpoint_id is not None:
        assign = assign.where(_E.c.id == endpoint_id)
    connection = session.connection()
    numbered = connection.execute(assign).all()
    if not numbered:
        return []
    link = data.get("links", {}).get("self") if isinstance(data.get("links"), dict) else None
    connection.execute(
        _INSERT_MESSAGES,
        [
            {
                "endpoint_id": endpoint,
                "sequence": sequence,
                "event_type": event_type,
                "payload": payload(endpoint, sequence, event_type, at, subject or link, data),
                "created_at": at,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": at,
            }
            for endpoint, sequence in numbered
        ],
    )
    return sorted(sequence for _, sequence in numbered)


# --- what the audit log's events announce --------------------------------------------------


def _links(**paths: str) -> dict[str, str]:
    return {name: public_url(path) for name, path in paths.items()}


def _version_path(after: Mapping[str, Any]) -> str:
    return f"/policies/{after['policy']}/versions/{after['version']}"


def review_data(after: Mapping[str, Any]) -> dict[str, Any]:
    """A review's event: the review, its version, and the public page that shows both."""
    data = {
        "review": after["id"],
        "policy": after["policy"],
        "version": after["version"],
        "closes_at": after["closes_at"],
        "links": _links(
            self=f"/api/v1/reviews/{after['id']}",
            page=_version_path(after),
            version="/api/v1" + _version_path(after),
        ),
    }
    if after.get("outcome") is not None:
        data["outcome"] = after["outcome"]
    return data


def revision_data(number: int, reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "revision": number,
        "reason": reason,
        **extra,
        "links": _links(
            self=f"/api/v1/policy-set?revision={number}", changes="/changes", feed="/changes.atom"
        ),
    }


def announce(session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write the messages a batch of audit events announces (called by the append, in
    the same transaction and under the chain lock, so messages follow the log's order)."""
    for row in rows:
        action, after = row["action"], row["after"] or {}
        at = row["occurred_at"]
        if action == "policy_set.revised":
            publish(
                session,
                "registry.policy_set.changed",
                revision_data(after["number"], "published"),
                at=at,
            )
        elif action == "version.submitted":
            publish(
                session,
                "registry.version.submitted",
                {
                    "policy": after["policy"],
                    "version": after["version"],
                    "links": _links(
                        self="/api/v1" + _version_path(after), page=_version_path(after)
                    ),
                },
                at=at,
            )
        elif action == "review.opened":
            publish(session, "registry.review.opened", review_data(after), at=at)
        elif action == "review.closed":
            publish(session, "registry.review.closed", review_data(after), at=at)
        elif (
            action == "decision.recorded"
            and after.get("outcome") == "referred_to_panel"
            and after.get("organisation_id") is not None  # never to everyone
        ):
            publish(
                session,
                "registry.decision.referred",
                {
                    "decision": row["entity_id"],
                    "links": _links(self=f"/api/v1/decisions/{row['entity_id']}"),
                },
                organisation_id=after.get("organisation_id"),
                at=at,
            )


def announce_checkpoint(session: Session, size: int, at: datetime) -> None:
    publish(
        session,
        "registry.checkpoint.issued",
        {"size": size, "links": _links(self="/api/v1/audit-events/checkpoint")},
        at=at,
    )


audit.ON_APPEND.append(announce)
audit.ON_CHECKPOINT.append(announce_checkpoint)


# The statement a delivery's outcome is written with, built once.
RECORD_MESSAGE = (
    update(table_of(WebhookMessage))
    .where(
        table_of(WebhookMessage).c.id == bindparam("message"),
        table_of(WebhookMessage).c.leased_until == bindparam("lease"),
    )
    .values(
        state=bindparam("new_state"),
        attempts=bindparam("new_attempts"),
        next_attempt_at=bindparam("next_at"),
        leased_until=None,
        delivered_at=bindparam("delivered"),
    )
)
