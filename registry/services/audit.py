"""The audit service: every change in the registry is recorded here, in its transaction.

``record`` queues an event on the session; when the session commits, the queued events
are appended to the chain under a database lock (an advisory transaction lock on
PostgreSQL; the ``BEGIN IMMEDIATE`` write lock on SQLite), a checkpoint of the new size
is signed, and everything commits together or not at all. Appending at commit, after
every other lock the request takes, keeps the chain lock short and free of deadlocks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.models.audit import AuditEvent, Checkpoint
from registry.services import chain
from registry.services.context import Actor
from registry.services.merkle import Frontier

log = logging.getLogger("registry.audit")

_PENDING = "registry.audit.pending"
# An arbitrary constant naming the chain's lock among PostgreSQL advisory locks.
CHAIN_LOCK_ID = 0x5245_4749_5354_5259


@dataclass(frozen=True, slots=True)
class _Pending:
    actor: Actor
    action: str
    entity_type: str
    entity_id: str
    before: Any
    after: Any
    at: datetime


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str | int,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """Queue an audit event; it is appended when ``session`` commits, or never.

    ``before`` and ``after`` are JSON-ready snapshots of the entity.
    """
    session.info.setdefault(_PENDING, []).append(
        _Pending(actor, action, entity_type, str(entity_id), before, after, utcnow())
    )


def pending_count(session: Session) -> int:
    return len(session.info.get(_PENDING, ()))


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": CHAIN_LOCK_ID})
    # SQLite: the transaction already holds the database's write lock (BEGIN IMMEDIATE).


def _head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (row[0], row[1]) if row else (0, chain.GENESIS_HASH)


def frontier_at(session: Session, size: int) -> Frontier:
    """The Merkle frontier of the first ``size`` events, from the checkpoint if it has it."""
    if size == 0:
        return Frontier()
    checkpoint = session.get(Checkpoint, size)
    if checkpoint is not None:
        return Frontier.from_json(size, checkpoint.frontier)
    log.warning("rebuilding the Merkle frontier from the log", extra={"size": size})
    frontier = Frontier()
    rows = session.execute(
        select(AuditEvent.hash).where(AuditEvent.seq <= size).order_by(AuditEvent.seq)
    ).scalars()
    for value in rows:
        frontier.append(bytes.fromhex(value))
    return frontier


def _append(session: Session, pending: list[_Pending]) -> None:
    _lock_chain(session)
    seq, head = _head(session)
    frontier = frontier_at(session, seq)
    for item in pending:
        seq += 1
        document = chain.event_document(
            seq=seq,
            time=item.at,
            actor_type=item.actor.kind,
            actor_id=item.actor.audit_id,
            actor_label=item.actor.label,
            action=item.action,
            entity_type=item.entity_type,
            entity_id=item.entity_id,
            before=item.before,
            after=item.after,
            request_id=item.actor.request_id,
            prev_hash=head,
        )
        head = chain.event_hash(document)
        session.add(
            AuditEvent(
                seq=seq,
                occurred_at=item.at,
                actor_type=item.actor.kind,
                actor_id=item.actor.audit_id,
                actor_label=item.actor.label,
                action=item.action,
                entity_type=item.entity_type,
                entity_id=item.entity_id,
                before=item.before,
                after=item.after,
                request_id=item.actor.request_id,
                prev_hash=document["prev_hash"],
                hash=head,
            )
        )
        frontier.append(bytes.fromhex(head))
    _issue_checkpoint(session, frontier)


def _signing_key() -> Ed25519PrivateKey:
    from flask import current_app

    key: Ed25519PrivateKey = current_app.extensions["registry.signing_key"]
    return key


def _issue_checkpoint(session: Session, frontier: Frontier) -> None:
    key = _signing_key()
    issued_at = chain.format_time(utcnow())
    root_hash = frontier.root().hex()
    kid, signature = chain.sign_checkpoint(
        key, size=frontier.size, root_hash=root_hash, issued_at=issued_at
    )
    session.add(
        Checkpoint(
            size=frontier.size,
            root_hash=root_hash,
            issued_at=datetime.fromisoformat(issued_at.replace("Z", "+00:00")),
            key_id=kid,
            signature=signature,
            frontier=frontier.to_json(),
        )
    )


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.flush()
        _append(session, pending)


@event.listens_for(Session, "after_soft_rollback")
def _discard_pending(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
