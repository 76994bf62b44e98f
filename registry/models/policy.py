"""Policies, their immutable versions, attached conditions, and revisions of the whole set."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.db import Base, utcnow


class Purpose(StrEnum):
    INDIVIDUAL_CARE = "individual_care"
    PLANNING = "planning"
    RESEARCH = "research"


class DataCategory(StrEnum):
    PERSONAL = "personal"
    DEPERSONALISED = "depersonalised"
    ANONYMOUS = "anonymous"


class VersionStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    ENDORSED = "endorsed"
    REJECTED = "rejected"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"


class PolicyState(StrEnum):
    DRAFT = "draft"  # never published
    PUBLISHED = "published"
    RETIRED = "retired"


# Versions still on their way: at most one per policy at a time.
OPEN_STATUSES = (VersionStatus.DRAFT, VersionStatus.IN_REVIEW, VersionStatus.ENDORSED)


class ConditionType(Base):
    """A catalogue entry, mirrored from ``registry.services.catalogue`` by the seed."""

    __tablename__ = "condition_types"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    five_safes: Mapped[str] = mapped_column(String(16))
    duo_code: Mapped[str | None] = mapped_column(String(32))
    duo_label: Mapped[str | None] = mapped_column(String(200))
    parameters_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Policy(Base):
    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(32), index=True)
    data_category: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), default=PolicyState.DRAFT, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    versions: Mapped[list[PolicyVersion]] = relationship(
        back_populates="policy", order_by="PolicyVersion.number", lazy="raise"
    )


class PolicyVersion(Base):
    """One numbered version; its content is frozen once it leaves ``draft``."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        UniqueConstraint("policy_id", "number"),
        Index("ix_policy_versions_status", "status"),
        Index("ix_policy_versions_revision", "revision_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.DRAFT)
    is_retirement: Mapped[bool] = mapped_column(default=False)
    body: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    rationale: Mapped[str] = mapped_column(Text, default="")
    sensitive_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # When it takes effect; None means "on publication". May lie in the past (a
    # correction) or the future (a notice period).
    effective_from: Mapped[datetime | None]
    content_hash: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    # Set on publication: the set revision that brought it in, when that was recorded,
    # and when it is (or was) in force from: effective_from, or the publication time.
    revision_number: Mapped[int | None]
    published_at: Mapped[datetime | None]
    in_force_from: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    lock_version: Mapped[int] = mapped_column(default=1)

    policy: Mapped[Policy] = relationship(back_populates="versions", lazy="joined", innerjoin=True)
    conditions: Mapped[list[AttachedCondition]] = relationship(
        back_populates="version",
        order_by="AttachedCondition.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    __mapper_args__ = {"version_id_col": lock_version}


class AttachedCondition(Base):
    __tablename__ = "policy_conditions"
    __table_args__ = (UniqueConstraint("version_id", "type_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"), index=True)
    position: Mapped[int]
    type_code: Mapped[str] = mapped_column(ForeignKey("condition_types.code"))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)

    version: Mapped[PolicyVersion] = relationship(back_populates="conditions")


class SetRevision(Base):
    """One publication: the next number of the London-wide set, and what it changed."""

    __tablename__ = "policy_set_revisions"

    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(Text)
    # [{"policy": slug, "title": ..., "version": n, "change": "added|replaced|retired",
    #   "previous_version": m | None, "effective_from": iso, "summary": ...}]
    changes: Mapped[list[Any]] = mapped_column(JSON)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
