"""Webhook endpoints, their outbox of messages, every attempt to deliver one; and mail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, utcnow


class WebhookEndpoint(Base):
    """Where an organisation wants to be told, and of what.

    ``sequence`` is the last sequence number given to a message for this endpoint: every
    message takes the next one, in the transaction of the change it announces, so a
    consumer that sees a number skipped knows it missed something."""

    __tablename__ = "webhook_endpoints"
    # Ids are never reused (SQLite too): a message's id is its endpoint's id and number.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    # The event types it receives, space-separated with a space at each end so that one
    # LIKE finds a type; "" for every type.
    event_types: Mapped[str] = mapped_column(String(1000), default="")
    # "active", "paused" (by its organisation) or "disabled" (it answered 410 Gone).
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # Standard Webhooks secrets ("whsec_" and base64). The previous one still signs until
    # ``previous_secret_until``, so a receiver can change secrets without missing a beat.
    secret: Mapped[str] = mapped_column(String(64))
    previous_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    previous_secret_until: Mapped[datetime | None] = mapped_column(default=None)
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class WebhookMessage(Base):
    """One event for one endpoint: the outbox row, written with the change it announces,
    and its delivery state. ``payload`` is the exact body sent (and signed), every time."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "sequence"),
        Index("ix_webhook_messages_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # "pending" until it is "delivered" (a 2xx) or "failed" (retries ran out).
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    # A worker that takes a message holds it until then; one killed mid-delivery loses it
    # to the next worker when the lease ends (the receiver may see it twice, same id).
    leased_until: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAttempt(Base):
    """One try at delivering a message, whatever came of it: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int] = mapped_column(BigInteger)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    duration_ms: Mapped[int] = mapped_column(default=0)


class Notice(Base):
    """A time-driven announcement already made (a scheduled version in force, a review
    closing soon), so that however many workers look, it is made once."""

    __tablename__ = "notices"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    made_at: Mapped[datetime]


class MailMessage(Base):
    """A message to a person, written in the transaction of what it tells them, and sent
    by the delivery worker (SMTP, or a file in the instance folder when none is set)."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    to_address: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(32))  # review_opened, review_closing, ...
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # "pending" until "sent", or "failed" once retries run out.
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
