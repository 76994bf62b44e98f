"""The audit service: every change in the registry is recorded here, in its transaction.

``record`` queues an event on the session; when the session commits, the queued events
are appended to the chain under a database lock (an advisory transaction lock on
PostgreSQL; the ``BEGIN IMMEDIATE`` write lock on SQLite), with the tree nodes they
complete and the log's new head, and everything commits together or not at all.
Appending at commit, after every other lock the request takes, keeps the chain lock short
and free of deadlocks. A request's events are signed into a checkpoint within
``CHECKPOINT_INTERVAL_S`` (``registry.checkpoints``); a command's, as it commits.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    String,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from registry.db import table_of, utcnow
from registry.errors import AwaitingCheckpoint
from registry.models.audit import AuditEvent, Checkpoint, LogHead, TreeNode
from registry.services import chain, ledger, merkle, note
from registry.services.context import Actor
from registry.services.merkle import Frontier

log = logging.getLogger("registry.audit")

_PENDING = "registry.audit.pending"
_HEAD = "registry.audit.head"  # the log's end, read under the chain lock this transaction
_APPENDED = "registry.audit.appended"  # what this transaction appended, until it commits
_COMMITTED = "registry.audit.committed"  # what the last commit appended
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
    seq: int | None = None  # the place reserved for it with ``next_seq``, if one was


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str | int,
    *,
    before: Any = None,
    after: Any = None,
    seq: int | None = None,
) -> None:
    """Queue an audit event; it is appended when ``session`` commits, or never.

    ``before`` and ``after`` are JSON-ready snapshots of the entity. ``seq`` is the place
    ``next_seq`` reserved for it: the append fails rather than put it elsewhere.
    """
    session.info.setdefault(_PENDING, []).append(
        _Pending(actor, action, entity_type, str(entity_id), before, after, utcnow(), seq)
    )


def next_seq(session: Session) -> int:
    """The sequence number the next event ``record``-ed in this transaction will have.

    Takes the chain's lock now (it is held to the commit, which appends under it anyway),
    so that no other transaction can append in between: a document can then cite its own
    event's place in the log before the event is written.
    """
    return _locked_head(session)[0] + len(session.info.get(_PENDING, [])) + 1


def hold_chain(session: Session) -> None:
    """Take the chain's lock now, not at commit, and hold it to the commit.

    For a transaction that writes rows the append itself writes under the lock (webhook
    endpoints' sequence numbers): taking the chain's lock first, as the append does,
    keeps one lock order on PostgreSQL, where the other order deadlocks with a
    concurrent append. (SQLite's write lock is the chain's lock already.)"""
    _locked_head(session)


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": CHAIN_LOCK_ID})
    # SQLite: the transaction already holds the database's write lock (BEGIN IMMEDIATE).


# The hot path's statements, built once and run on the session's connection (Core): the
# ORM's execution path costs several times these statements themselves.
_HEAD_COLUMNS = select(LogHead.size, LogHead.hash, LogHead.frontier).where(LogHead.id == 1)
_MOVE_HEAD = (
    update(table_of(LogHead))
    .where(table_of(LogHead).c.id == 1)
    .values(
        size=bindparam("new_size"), hash=bindparam("new_hash"), frontier=bindparam("new_frontier")
    )
)
_INSERT_EVENTS = insert(table_of(AuditEvent))
_INSERT_NODES = insert(table_of(TreeNode))


def _head(session: Session) -> tuple[int, str, Any]:
    row = session.connection().execute(_HEAD_COLUMNS).first()
    if row is None:
        raise RuntimeError("the audit log has no head row: run `flask db upgrade`")
    return row[0], row[1], row[2]


def _locked_head(session: Session) -> tuple[int, str, Frontier]:
    """The log's end (size, last hash, Merkle frontier), read under the chain lock once
    per transaction: the lock is held to the commit, so it cannot move meanwhile."""
    held: tuple[int, str, Frontier] | None = session.info.get(_HEAD)
    if held is None:
        _lock_chain(session)
        size, head, frontier = _head(session)
        held = session.info[_HEAD] = (size, head, Frontier.from_json(size, frontier))
    return held


def _append(session: Session, pending: list[_Pending]) -> None:
    seq, head, frontier = _locked_head(session)
    rows = []
    completed: list[tuple[merkle.Node, bytes]] = []  # the tree's nodes these events complete
    for item in pending:
        seq += 1
        if item.seq is not None and item.seq != seq:
            raise RuntimeError(f"event {item.action} was reserved place {item.seq}, not {seq}")
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
        frontier.append_leaf_hash(merkle.leaf_hash(bytes.fromhex(head)), completed)
    for hook in ON_APPEND:  # the outbox: written with the events, in their order
        hook(session, rows)
    # Plain inserts: the log is written, never loaded back into the session.
    connection = session.connection()
    connection.execute(_INSERT_EVENTS, rows)
    store_nodes(session, completed)
    connection.execute(
        _MOVE_HEAD, {"new_size": seq, "new_hash": head, "new_frontier": frontier.to_json()}
    )
    session.info[_HEAD] = (seq, head, frontier)
    session.info[_APPENDED] = [(row["seq"], row["hash"]) for row in rows]
    if not _batched():
        _issue_checkpoint(session, frontier)


# Called in the appending transaction, under the chain lock, with the rows of the events
# appended, and with each checkpoint's size as it is issued (registry.services.webhooks
# registers itself: what the registry announces is written with the change).
ON_APPEND: list[Callable[[Session, list[dict[str, Any]]], None]] = []
ON_CHECKPOINT: list[Callable[[Session, int, datetime], None]] = []


def _batched() -> bool:
    """Whether this append leaves its checkpoint to the cadence (``registry.checkpoints``):
    a request's, when an interval is set. A command's append is checkpointed as it
    commits: no thread of the command's outlives it to do it later."""
    from flask import current_app, has_request_context

    return has_request_context() and current_app.config["CHECKPOINT_INTERVAL_S"] > 0


def appended(session: Session) -> list[tuple[int, str]]:
    """The (sequence number, hash) of each event the session's last commit appended."""
    return list(session.info.get(_COMMITTED, ()))


def behind(session: Session) -> bool:
    """Whether the log holds events no checkpoint covers (read without the lock)."""
    latest = session.execute(select(func.max(Checkpoint.size))).scalar()
    return _head(session)[0] > (latest or 0)


def cover(session: Session) -> int | None:
    """Under the chain lock, sign a checkpoint of the whole log unless the latest already
    covers it; the size signed, or None."""
    size, _, frontier = _locked_head(session)
    latest = session.execute(select(func.max(Checkpoint.size))).scalar()
    if size == 0 or size <= (latest or 0):
        return None
    _issue_checkpoint(session, frontier)
    return size


def store_nodes(session: Session, completed: list[tuple[merkle.Node, bytes]]) -> None:
    """Insert the tree nodes an append completed (``Frontier.append_leaf_hash``)."""
    if completed:
        session.connection().execute(
            _INSERT_NODES,
            [{"level": level, "idx": idx, "hash": value} for (level, idx), value in completed],
        )


def log_verifier() -> note.Verifier:
    """The log's own verifier key: its origin, the key ID and the public key."""
    from flask import current_app

    verifier: note.Verifier = current_app.extensions["registry.log_verifier"]
    return verifier


def signed_note(checkpoint: Checkpoint) -> str | None:
    """The checkpoint as a C2SP signed note; None for one issued before notes were."""
    if checkpoint.origin is None or checkpoint.note_signature is None:
        return None
    return chain.checkpoint_note(
        checkpoint.origin, checkpoint.size, checkpoint.root_hash, checkpoint.note_signature
    )


def _signing_key() -> Ed25519PrivateKey:
    from flask import current_app

    key: Ed25519PrivateKey = current_app.extensions["registry.signing_key"]
    return key


def _issue_checkpoint(session: Session, frontier: Frontier) -> None:
    key = _signing_key()
    issued_at = chain.format_time(utcnow())
    root = frontier.root()
    root_hash = root.hex()
    kid, signature = chain.sign_checkpoint(
        key, size=frontier.size, root_hash=root_hash, issued_at=issued_at
    )
    verifier = log_verifier()
    origin = verifier.name
    text = note.Checkpoint(origin, frontier.size, root).text
    for hook in ON_CHECKPOINT:
        hook(session, frontier.size, utcnow())
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
                "origin": origin,
                "note_signature": note.signature_by(text, verifier, key),
            }
        ],
    )


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.flush()
        _append(session, pending)


# Called with the number of events a request's commit appended, when their checkpoint is
# left to the cadence (registry.checkpoints registers itself).
ON_APPENDED: list[Callable[[int], None]] = []


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    session.info.pop(_HEAD, None)
    entries = session.info.pop(_APPENDED, None)
    session.info[_COMMITTED] = entries or []
    if entries and _batched():
        for hook in ON_APPENDED:
            hook(len(entries))


@event.listens_for(Session, "after_soft_rollback")
def _discard_pending(session: Session, _previous: Any) -> None:
    for key in (_PENDING, _HEAD, _APPENDED):
        session.info.pop(key, None)


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


def latest_checkpoint(session: Session) -> Checkpoint | None:
    return session.execute(
        select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)
    ).scalar_one_or_none()


def public_key() -> bytes:
    return chain.public_key_bytes(_signing_key().public_key())


def _raw(column: Any) -> Any:
    """A column read as the database stores it, so one bad value cannot stop the read."""
    return type_coerce(column, String)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _text(value: Any, *, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _checked_document(row: Any) -> dict[str, Any]:
    if not isinstance(row.seq, int):
        raise TypeError(f"its sequence number is {row.seq!r}")
    return document(
        SimpleNamespace(
            seq=row.seq,
            occurred_at=_time(row.occurred_at),
            actor_type=_text(row.actor_type),
            actor_id=_text(row.actor_id, nullable=True),
            actor_label=_text(row.actor_label, nullable=True),
            action=_text(row.action),
            entity_type=_text(row.entity_type),
            entity_id=_text(row.entity_id),
            before=_json(row.before),
            after=_json(row.after),
            request_id=_text(row.request_id, nullable=True),
            prev_hash=_text(row.prev_hash),
            hash=_text(row.hash),
        )
    )


def _readable_documents(session: Session, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every event in order as the verifier reads it: each column as stored, so a row that
    cannot be read (bad JSON, a NULL, a time that is not one) is a marked fault in its place
    rather than an exception in the middle of the walk."""
    columns = [_raw(c).label(c.key) for c in _EVENT_COLUMNS if c.key != "seq"]
    after: Any = None
    while True:
        statement = select(AuditEvent.seq, *columns).order_by(AuditEvent.seq).limit(batch)
        if after is not None:
            statement = statement.where(AuditEvent.seq > after)
        rows = session.execute(statement).all()
        if not rows:
            return
        for row in rows:
            try:
                yield _checked_document(row)
            except Exception as exc:  # the row is the fault; the walk names it
                yield {chain.UNREADABLE: f"{type(exc).__name__}: {exc}", "seq": row.seq}
        after = rows[-1].seq


def _readable_checkpoints(session: Session) -> Iterator[dict[str, Any]]:
    columns = (
        Checkpoint.size,
        _raw(Checkpoint.root_hash).label("root_hash"),
        _raw(Checkpoint.issued_at).label("issued_at"),
        _raw(Checkpoint.key_id).label("key_id"),
        _raw(Checkpoint.signature).label("signature"),
        _raw(Checkpoint.origin).label("origin"),
        _raw(Checkpoint.note_signature).label("note_signature"),
    )
    after = -1
    while True:
        rows = session.execute(
            select(*columns).where(Checkpoint.size > after).order_by(Checkpoint.size).limit(5000)
        ).all()
        if not rows:
            return
        for size, root_hash, issued_at, key_id, signature, origin, note_signature in rows:
            try:
                if not isinstance(size, int):
                    raise TypeError(f"its size is {size!r}")
                yield {
                    "size": size,
                    "root_hash": _text(root_hash),
                    "issued_at": chain.format_time(_time(issued_at)),
                    "key_id": _text(key_id),
                    "signature": _text(signature),
                    "origin": None if origin is None else _text(origin),
                    "note_signature": None if note_signature is None else _text(note_signature),
                }
            except Exception as exc:  # the row is the fault; the walk names it
                yield {chain.UNREADABLE: f"{type(exc).__name__}: {exc}", "size": size}
        after = rows[-1][0]


# What each check proves, and what it cannot: the server checks itself with its own key and
# its own database, so whoever holds both can rewrite history and re-sign it, and every
# check here agrees. Only checkpoints held outside the registry catch that.
CHECKS: dict[str, tuple[str, str]] = {
    "chain": (
        "Every event links to the one before and hashes to its stored hash, from the first "
        "to the last: no event was changed, removed or inserted in the middle without "
        "rewriting every event after it.",
        "That the chain is the one first written: anyone with write access to the database "
        "can recompute every hash after a change, or drop the last events.",
    ),
    "checkpoints": (
        "Every stored checkpoint's Merkle root matches the events, the newest covers the "
        "whole log, and it is signed by the registry's key: a rewrite without the key, or "
        "events appended without a checkpoint, is found.",
        "Anything against whoever holds the signing key and the database: they can rewrite "
        "history and re-sign it, or drop the last event with its checkpoint, and this check "
        "agrees. Keep checkpoints outside the registry (witnesses, auditors) and check them "
        "with python -m registry.verify or the consistency proofs.",
    ),
    "state": (
        "Users, tokens, policy versions (their content against their hash), panels and their "
        "terms, reviews and votes in the live tables equal the after-state of their latest "
        "audit event, and none exists without one: a row changed or inserted behind the "
        "service's back is found.",
        "That the log itself is true (only as good as the two checks above), fields the log "
        "does not record (passwords, last use, descriptions), organisations, decisions and "
        "conflicts of interest, or a row deleted together with all its events.",
    ),
}


def _check(name: str, ok: bool | None, detail: str | None = None) -> dict[str, Any]:
    proves, does_not_prove = CHECKS[name]
    return {
        "name": name,
        "ok": ok,
        "proves": proves,
        "does_not_prove": does_not_prove,
        "detail": detail,
    }


def _pending_since() -> str | None:
    """Events that occurred since this time may still be waiting for their checkpoint:
    twice the interval, and a few seconds for a busy machine."""
    from flask import current_app

    interval = float(current_app.config["CHECKPOINT_INTERVAL_S"])
    if interval <= 0:
        return None
    return chain.format_time(utcnow() - timedelta(seconds=2 * interval + 5))


def _walk(session: Session, key: bytes, *, all_signatures: bool = False) -> chain.Report:
    def walk(all_signatures: bool) -> chain.Report:
        return chain.verify_log(
            _readable_documents(session),
            _readable_checkpoints(session),
            key,
            all_signatures=all_signatures,
            pending_since=_pending_since(),
        )

    report = walk(all_signatures)
    if not (all_signatures or report.ok) and "latest checkpoint" in (report.reason or ""):
        # Only the newest signature failed: find the first forged checkpoint.
        report = walk(True)
    return report


def _check_head(session: Session, report: chain.Report) -> None:
    """The head row must be where the walk ended (or at an event appended since)."""
    size, head, _ = _head(session)
    if size == report.events and head == report.head:
        return
    if size > report.events:
        last = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == size)).scalar()
        if last == head:
            return  # appended while the walk went on
    report.ok, report.first_bad_seq = False, min(size, report.events) + 1
    report.reason = (
        f"the log's head says it ends at event {size}, but its events end at "
        f"{report.events}: events were removed, or the head was edited"
        if size != report.events
        else f"the log's head names a hash event {size} does not have: the head was edited"
    )


def verify(
    session: Session, key: bytes | None = None, *, all_signatures: bool = False
) -> chain.Report:
    """Walk the whole log and its checkpoints, then check the live tables against it;
    name the first fault if there is one. Nothing it reads can make it raise."""
    key = key if key is not None else public_key()
    try:
        report = _walk(session, key, all_signatures=all_signatures)
        if report.ok:
            _check_head(session, report)
    except Exception as exc:  # a fault no reader foresaw is still a failed check
        log.exception("the audit log could not be walked")
        report = chain.Report(ok=False, first_bad_seq=None, reason=f"the log cannot be read: {exc}")
    chain_fault = not report.ok and "checkpoint" not in (report.reason or "")
    report.checks = [
        _check("chain", not chain_fault, report.reason if chain_fault else None),
        _check(
            "checkpoints",
            None if chain_fault else report.ok,
            None if report.ok or chain_fault else report.reason,
        ),
    ]
    if not report.ok:
        report.checks.append(_check("state", None, "not checked: the log does not hold"))
        return report
    try:
        mismatch = ledger.check(session)
    except Exception as exc:  # a row that cannot be read is a failed check, not a crash
        log.exception("the live tables could not be checked against the log")
        report.ok, report.first_bad_seq = False, None
        report.reason = f"the live tables cannot be read: {type(exc).__name__}: {exc}"
        report.checks.append(_check("state", False, report.reason))
        return report
    if mismatch is not None:
        report.ok, report.first_bad_seq, report.reason = False, mismatch.seq, mismatch.reason
        report.mismatch = mismatch.as_dict()
        report.checks.append(_check("state", False, mismatch.reason))
    else:
        report.checks.append(_check("state", True))
    return report


def log_size(session: Session) -> int:
    return _head(session)[0]


# --- the tree's stored nodes: roots, proofs and tiles in O(log n) reads ----------------------


def node_hashes(session: Session, nodes: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """The stored hashes of ``nodes``, in one query. A node that should exist and does not
    is a fault of the store, never silently a different proof."""
    wanted: dict[int, set[int]] = {}
    for level, idx in nodes:
        wanted.setdefault(level, set()).add(idx)
    if not wanted:
        return {}
    condition = or_(
        *(
            and_(TreeNode.level == level, TreeNode.idx.in_(sorted(indexes)))
            for level, indexes in wanted.items()
        )
    )
    found = {
        (level, idx): bytes(value)
        for level, idx, value in session.execute(
            select(TreeNode.level, TreeNode.idx, TreeNode.hash).where(condition)
        )
    }
    missing = {(level, idx) for level, indexes in wanted.items() for idx in indexes} - set(found)
    if missing:
        raise LookupError(f"the Merkle tree's stored nodes lack {sorted(missing)[:3]}")
    return found


def _roots(session: Session, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    per_range = [merkle.range_nodes(lo, hi) for lo, hi in ranges]
    hashes = node_hashes(session, (node for nodes in per_range for node in nodes))
    return [merkle.range_hash(nodes, hashes) for nodes in per_range]


def inclusion(session: Session, index: int, size: int) -> tuple[bytes, bytes, list[bytes]]:
    """The leaf hash of entry ``index``, the root at ``size`` and the audit path between."""
    ranges = [(index, index + 1), (0, size), *merkle.inclusion_ranges(index, size)]
    leaf, root, *path = _roots(session, ranges)
    return leaf, root, path


def consistency(session: Session, first: int, second: int) -> tuple[bytes, bytes, list[bytes]]:
    """The roots at ``first`` and ``second`` and the consistency proof between."""
    ranges = [(0, first), (0, second), *merkle.consistency_ranges(first, second)]
    old, new, *proof = _roots(session, ranges)
    return old, new, proof


def rebuild_tree(session: Session, *, batch: int = 5000) -> int:
    """Store the tree's nodes and the log's head from the events (after a restore, which
    carries neither: the events determine them). Returns the number of events."""
    session.execute(delete(TreeNode))
    frontier = Frontier()
    completed: list[tuple[merkle.Node, bytes]] = []
    after, last = 0, chain.GENESIS_HASH
    while True:
        rows = session.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for _, value in rows:
            frontier.append_leaf_hash(merkle.leaf_hash(bytes.fromhex(value)), completed)
        store_nodes(session, completed)
        completed.clear()
        after, last = rows[-1][0], rows[-1][1]
    session.execute(delete(LogHead))
    session.execute(
        insert(table_of(LogHead)),
        [{"id": 1, "size": frontier.size, "hash": last, "frontier": frontier.to_json()}],
    )
    return frontier.size


def proof_of(session: Session, entity_type: str, entity_id: str, action: str) -> note.Proof | None:
    """A c2sp.org/tlog-proof that the latest ``action`` event of the entity is in the log:
    its index, the inclusion path to the latest checkpoint, that checkpoint's signed note,
    and (as the proof's extra data) the event itself as it is hashed, with its hash, so an
    offline check can tie the leaf to what the event says. None if there is no such event;
    ``AwaitingCheckpoint`` while no checkpoint signed as a note covers it yet."""
    row = session.execute(
        select(*_EVENT_COLUMNS)
        .where(
            AuditEvent.entity_type == entity_type,
            AuditEvent.entity_id == entity_id,
            AuditEvent.action == action,
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    checkpoint = latest_checkpoint(session)
    signed = signed_note(checkpoint) if checkpoint else None
    if checkpoint is None or signed is None or row.seq > checkpoint.size:
        from flask import current_app

        raise AwaitingCheckpoint(
            f"Event {row.seq} is in the log; the checkpoint that covers it is not issued yet.",
            retry_after=math.ceil(current_app.config["CHECKPOINT_INTERVAL_S"]),
        )
    _, _, path = inclusion(session, row.seq - 1, checkpoint.size)
    return note.Proof(row.seq - 1, tuple(path), signed, chain.canonical(document(row)))


TILE_WIDTH = 256


def tile(session: Session, level: int, index: int, width: int) -> bytes:
    """Tile ``index`` at tile level ``level`` (c2sp.org/tlog-tiles): the hashes of tree level
    ``8 * level``, entries ``index * 256`` onwards, ``width`` of them, concatenated."""
    first = index * TILE_WIDTH
    values = session.execute(
        select(TreeNode.hash)
        .where(
            TreeNode.level == 8 * level,
            TreeNode.idx >= first,
            TreeNode.idx < first + width,
        )
        .order_by(TreeNode.idx)
    ).scalars()
    return b"".join(bytes(v) for v in values)


def entry_bundle(session: Session, index: int, width: int) -> list[bytes]:
    """The entries (event hashes, 32 bytes) of the level-0 tile ``index``: leaf ``i`` is
    ``SHA-256(0x00 || entry i)``."""
    first = index * TILE_WIDTH + 1
    values = session.execute(
        select(AuditEvent.hash)
        .where(AuditEvent.seq >= first, AuditEvent.seq < first + width)
        .order_by(AuditEvent.seq)
    ).scalars()
    return [bytes.fromhex(v) for v in values]
