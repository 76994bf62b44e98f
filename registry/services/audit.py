"""The audit service: every change in the registry is recorded here, in its transaction.

``record`` queues an event on the session; when the session commits, the queued events
are appended to the chain under a database lock (an advisory transaction lock on
PostgreSQL; the ``BEGIN IMMEDIATE`` write lock on SQLite), a checkpoint of the new size
is signed, and everything commits together or not at all. Appending at commit, after
every other lock the request takes, keeps the chain lock short and free of deadlocks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from registry.db import table_of, utcnow
from registry.models.audit import AuditEvent, Checkpoint
from registry.services import chain, merkle
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


def _tip(session: Session) -> tuple[int, str, Frontier]:
    """The last event and the Merkle frontier at its size, in one query."""
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash, Checkpoint.frontier)
        .outerjoin(Checkpoint, Checkpoint.size == AuditEvent.seq)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, chain.GENESIS_HASH, Frontier()
    seq, head, frontier = row
    if frontier is None:
        return seq, head, frontier_at(session, seq)
    return seq, head, Frontier.from_json(seq, frontier)


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
    seq, head, frontier = _tip(session)
    rows = []
    for item in pending:
        seq += 1
        row = {
            "seq": seq,
            "occurred_at": item.at,
            "actor_type": item.actor.kind,
            "actor_id": item.actor.audit_id,
            "actor_label": item.actor.label,
            "action": item.action,
            "entity_type": item.entity_type,
            "entity_id": item.entity_id,
            "before": item.before,
            "after": item.after,
            "request_id": item.actor.request_id,
            "prev_hash": head,
        }
        row["hash"] = head = chain.event_hash(document(SimpleNamespace(**row, hash=None)))
        rows.append(row)
        frontier.append(bytes.fromhex(head))
    # Plain inserts: the log is written, never loaded back into the session.
    session.execute(insert(table_of(AuditEvent)), rows)
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
    session.execute(
        insert(table_of(Checkpoint)),
        [
            {
                "size": frontier.size,
                "root_hash": root_hash,
                "issued_at": datetime.fromisoformat(issued_at.replace("Z", "+00:00")),
                "key_id": kid,
                "signature": signature,
                "frontier": frontier.to_json(),
            }
        ],
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


# --- reading the log ---------------------------------------------------------------------


_EVENT_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.occurred_at,
    AuditEvent.actor_type,
    AuditEvent.actor_id,
    AuditEvent.actor_label,
    AuditEvent.action,
    AuditEvent.entity_type,
    AuditEvent.entity_id,
    AuditEvent.before,
    AuditEvent.after,
    AuditEvent.request_id,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def document(event: Any) -> dict[str, Any]:
    """An event (a model or a row of its columns) as it is hashed and exported."""
    return chain.event_document(
        seq=event.seq,
        time=event.occurred_at,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        entity_type=event.entity_type,
        entity_id=event.entity_id,
        before=event.before,
        after=event.after,
        request_id=event.request_id,
        prev_hash=event.prev_hash,
    ) | {"hash": event.hash}


def iter_documents(
    session: Session, *, batch: int = 1000, filters: Any = None, up_to: int | None = None
) -> Iterator[dict[str, Any]]:
    """Every event in order, read in batches of plain rows: memory stays flat however long
    the log, and nothing accumulates in the session."""
    after = 0
    while True:
        statement = select(*_EVENT_COLUMNS).where(AuditEvent.seq > after)
        if up_to is not None:
            statement = statement.where(AuditEvent.seq <= up_to)
        if filters is not None:
            statement = statement.where(*filters)
        rows = session.execute(statement.order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            yield document(row)
        after = rows[-1].seq


def checkpoint_document(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "size": checkpoint.size,
        "root_hash": checkpoint.root_hash,
        "issued_at": chain.format_time(checkpoint.issued_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def iter_checkpoints(session: Session, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every checkpoint by size, without their frontiers, in batches."""
    after = -1
    columns = (
        Checkpoint.size,
        Checkpoint.root_hash,
        Checkpoint.issued_at,
        Checkpoint.key_id,
        Checkpoint.signature,
    )
    while True:
        rows = session.execute(
            select(*columns).where(Checkpoint.size > after).order_by(Checkpoint.size).limit(batch)
        ).all()
        if not rows:
            return
        for size, root_hash, issued_at, key_id, signature in rows:
            yield {
                "size": size,
                "root_hash": root_hash,
                "issued_at": chain.format_time(issued_at),
                "key_id": key_id,
                "signature": signature,
            }
        after = rows[-1][0]


def latest_checkpoint(session: Session) -> Checkpoint | None:
    return session.execute(
        select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)
    ).scalar_one_or_none()


def public_key() -> bytes:
    return chain.public_key_bytes(_signing_key().public_key())


def verify(session: Session, key: bytes | None = None) -> chain.Report:
    """Walk the whole log and its checkpoints; name the first fault if there is one."""
    key = key if key is not None else public_key()
    report = chain.verify_log(iter_documents(session), iter_checkpoints(session), key)
    if not report.ok and report.reason and "latest checkpoint" in report.reason:
        # Only the newest signature failed: find the first forged checkpoint.
        report = chain.verify_log(
            iter_documents(session), iter_checkpoints(session), key, all_signatures=True
        )
    return report


def log_size(session: Session) -> int:
    return _head(session)[0]


def leaf_hashes(session: Session, size: int) -> list[bytes]:
    """The Merkle leaf hashes of the first ``size`` events."""
    rows = session.execute(
        select(AuditEvent.hash).where(AuditEvent.seq <= size).order_by(AuditEvent.seq)
    ).scalars()
    return [merkle.leaf_hash(bytes.fromhex(value)) for value in rows]
