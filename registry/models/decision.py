"""Recorded decisions: each answer exactly as given, citable by its id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, utcnow


class Decision(Base):
    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_org", "organisation_id", "seq"),
        Index("ix_decisions_use", "purpose", "data_category"),
    )

    # Internal order; the public id is a UUID, so ids reveal nothing about volume.
    seq: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    data_category: Mapped[str] = mapped_column(String(32))
    revision: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(32), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    # SHA-256 of the canonical request and result: what the audit log vouches for.
    result_hash: Mapped[str] = mapped_column(String(64))
