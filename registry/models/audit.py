"""The append-only audit log and its signed checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base


class AuditEvent(Base):
    """One change, chained to the one before by ``prev_hash``."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity", "entity_type", "entity_id", "seq"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        Index("ix_audit_events_action", "action", "seq"),
        Index("ix_audit_events_actor", "actor_type", "actor_id", "seq"),
    )

    # Assigned under the chain lock, never by a sequence: the log has no gaps.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime]
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    # registry.services.context.LABEL_MAX_LENGTH: the label is cut there, on purpose.
    actor_label: Mapped[str | None] = mapped_column(String(400))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Checkpoint(Base):
    """A signed statement of the log's size and Merkle root."""

    __tablename__ = "audit_checkpoints"

    # Never two roots for one size.
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    # The roots of the perfect subtrees at this size (hex, largest first): the next
    # append computes the new root from these without reading the log.
    frontier: Mapped[list[Any]] = mapped_column(JSON)
    # The checkpoint as a C2SP signed note (c2sp.org/tlog-checkpoint): the log's origin
    # when it was issued, and the base64 signature of the origin's Ed25519 key (key ID
    # and signature) over "origin\nsize\nbase64(root)\n". None for checkpoints issued
    # before notes were signed, which stay verifiable by their JSON signature.
    origin: Mapped[str | None] = mapped_column(String(255))
    note_signature: Mapped[str | None] = mapped_column(String(128))


class LogHead(Base):
    """Where the log ends: the last event's number and hash, and the Merkle frontier at
    that size (the roots of its perfect subtrees, hex, largest first). One row, rewritten
    by every append under the chain lock, so an append reads one row rather than search
    the log for its end. Derived from the events, like the tree's nodes (a restore
    rebuilds it): a head edited by hand makes the next append break the chain or the
    tree, which verification finds, and verification compares it with the log's end."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    frontier: Mapped[list[Any]] = mapped_column(JSON)


class TreeNode(Base):
    """A complete node of the log's Merkle tree, stored when the append that completes it
    is: level 0 holds the leaf hashes, level ``l`` index ``i`` the root of entries
    ``i * 2**l`` to ``(i + 1) * 2**l``. About two per event. Any root or proof reads
    O(log n) of them, and the tiles of c2sp.org/tlog-tiles are ranges of them."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class WitnessedLog(Base):
    """Another log this registry witnesses (c2sp.org/tlog-witness): the latest checkpoint
    it cosigned for the log's origin. Only ever moves forward, and only by a consistency
    proof from the size it holds."""

    __tablename__ = "witnessed_logs"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    # The checkpoint as submitted, with the log's signature (and the cosignature added).
    checkpoint: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class Cosignature(Base):
    """A witness's cosignature of one of this log's checkpoints (c2sp.org/tlog-cosignature),
    checked against the witness's key before it is kept."""

    __tablename__ = "checkpoint_cosignatures"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    line: Mapped[str] = mapped_column(Text)  # the signature line, as the witness answered it
    cosigned_at: Mapped[datetime]


class WitnessProgress(Base):
    """How far each configured witness has cosigned this log: the old size of the next
    submission, and the last thing that went wrong (a witness that is down never blocks a
    write; it catches up from here)."""

    __tablename__ = "witness_progress"

    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    checked_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(500))
