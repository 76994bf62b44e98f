"""Changing the append-only tables behind the registry's back, as someone with database access."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from registry.db import db
from registry.services import chain, merkle

SQLITE_TRIGGERS = [
    f"{table}_no_{op}"
    for table in ("audit_events", "audit_checkpoints", "decisions", "policy_set_revisions")
    for op in ("update", "delete", "replace")
]


@contextmanager
def behind_the_back() -> Iterator[Connection]:
    """A connection on which the append-only triggers do not fire."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            yield conn
            return
        saved = [
            conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}
            ).scalar()
            for name in SQLITE_TRIGGERS
        ]
        for name in SQLITE_TRIGGERS:
            conn.execute(text(f"DROP TRIGGER {name}"))
        yield conn
        for statement in saved:
            conn.execute(text(str(statement)))


def rows(conn: Connection) -> list[dict[str, Any]]:
    result = conn.execute(text("SELECT * FROM audit_events ORDER BY seq")).mappings().all()
    return [dict(r) for r in result]


def _document(row: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """The event document from a raw row (SQLite gives text, PostgreSQL objects)."""
    when = row["occurred_at"]
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    loaded = {
        k: json.loads(row[k]) if isinstance(row[k], str) else row[k] for k in ("before", "after")
    }
    return chain.event_document(
        seq=row["seq"],
        time=when,
        actor_type=row["actor_type"],
        actor_id=row["actor_id"],
        actor_label=row["actor_label"],
        action=row["action"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"],
        before=loaded["before"],
        after=loaded["after"],
        request_id=row["request_id"],
        prev_hash=prev_hash,
    )


def rehash_from(conn: Connection, start: int, *, fix_checkpoint_roots: bool) -> None:
    """Recompute every hash from ``start`` on, consistently, as a forger would; optionally
    recompute the checkpoints' roots too (a forger cannot re-sign them)."""
    head = chain.GENESIS_HASH
    frontier = merkle.Frontier()
    for row in rows(conn):
        if row["seq"] >= start:
            new_hash = chain.event_hash(_document(row, head))
            conn.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": head, "h": new_hash, "s": row["seq"]},
            )
            head = new_hash
        else:
            head = row["hash"]
        frontier.append(bytes.fromhex(head))
        if fix_checkpoint_roots and row["seq"] >= start:
            conn.execute(
                text("UPDATE audit_checkpoints SET root_hash = :r WHERE size = :s"),
                {"r": frontier.root().hex(), "s": row["seq"]},
            )
