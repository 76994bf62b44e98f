"""Citizen panels, their members, and their reviews of proposed versions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.db import Base, utcnow
from registry.models.identity import Role, User
from registry.models.policy import PolicyVersion


class Choice(StrEnum):
    ENDORSE = "endorse"
    ENDORSE_WITH_CHANGES = "endorse_with_changes"
    REJECT = "reject"
    ABSTAIN = "abstain"


class Outcome(StrEnum):
    ENDORSED = "endorsed"
    REJECTED = "rejected"
    NO_QUORUM = "no_quorum"
    WITHDRAWN = "withdrawn"


class Panel(Base):
    __tablename__ = "panels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Fractions, exact to four places: of eligible members who must vote, and of
    # counted non-abstaining votes that must endorse.
    quorum: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    threshold: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    default_review_days: Mapped[int] = mapped_column(default=14)
    chair_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PanelMember(Base):
    """A membership term; ending it keeps the row, because past reviews still count it."""

    __tablename__ = "panel_members"
    __table_args__ = (Index("ix_panel_members_panel_user", "panel_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    panel_id: Mapped[int] = mapped_column(ForeignKey("panels.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    term_start: Mapped[date] = mapped_column(Date)
    term_end: Mapped[date | None] = mapped_column(Date)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    # Many-to-one by primary key: loaded from the session's identity map when it is there.
    panel: Mapped[Panel] = relationship()

    def in_term(self, day: date) -> bool:
        return self.term_start <= day and (self.term_end is None or day <= self.term_end)

    def serving(self, day: date) -> bool:
        """On the panel that day: in the term, and still an active user with the panel
        role (a member demoted or deactivated mid-term no longer serves)."""
        return self.in_term(day) and self.user.active and self.user.role == Role.PANEL_MEMBER


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_status_panel", "status", "panel_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"), unique=True)
    panel_id: Mapped[int] = mapped_column(ForeignKey("panels.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closes_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    # At close: counts, and who was eligible (frozen, so the outcome can be re-derived).
    tally: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    public_benefit: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    recommendation: Mapped[str] = mapped_column(Text, default="")
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    version: Mapped[PolicyVersion] = relationship(lazy="joined", innerjoin=True)
    panel: Mapped[Panel] = relationship(lazy="joined", innerjoin=True)


class Vote(Base):
    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("review_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    choice: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    # The exact content voted on: a receipt, since the version cannot change.
    content_hash: Mapped[str] = mapped_column(String(64))
    cast_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class ConflictOfInterest(Base):
    __tablename__ = "review_conflicts"
    __table_args__ = (UniqueConstraint("review_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)
