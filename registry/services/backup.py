"""Consistent, portable backups: every table as JSON lines, from one database snapshot.

The same file restores into SQLite or PostgreSQL (at the same migration), so a backup is
also a migration path between them. Restoring needs an empty, migrated database; the
audit log comes back byte for byte, so the restored registry verifies against any
checkpoint taken before the backup. A backup holds password and token hashes: the file is
owner-only (0600) from the moment it exists.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Date, Numeric, Table, func, insert, select, text
from sqlalchemy.orm import Session

from registry.db import Base, UTCDateTime, utcnow
from registry.errors import Conflict

FORMAT = "london-data-policy-registry-backup"
FORMAT_VERSION = 1
BATCH = 1000


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decoder(table: Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    parsers: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        if isinstance(column.type, UTCDateTime):
            parsers[column.name] = datetime.fromisoformat
        elif isinstance(column.type, Date):
            parsers[column.name] = date.fromisoformat
        elif isinstance(column.type, Numeric):
            parsers[column.name] = Decimal

    def decode(row: dict[str, Any]) -> dict[str, Any]:
        return {k: (parsers[k](v) if v is not None and k in parsers else v) for k, v in row.items()}

    return decode


def _snapshot(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def write(
    session: Session,
    path: Path,
    migration: str | None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write every table to ``path`` (gzip JSON lines) from one snapshot; return row counts.

    The file is created owner-only beside ``path`` and renamed into place once complete,
    so no one can read it while it is written and a failed backup leaves nothing behind.
    """
    session.rollback()
    _snapshot(session)
    counts: dict[str, int] = {}
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask says
        with os.fdopen(descriptor, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb") as out:
                header = {
                    "format": FORMAT,
                    "version": FORMAT_VERSION,
                    "migration": migration,
                    "created_at": utcnow().isoformat(),
                    "tables": [t.name for t in _tables()],
                }
                out.write((json.dumps(header) + "\n").encode())
                for table in _tables():
                    counts[table.name] = 0
                    for row in _rows(session, table):
                        item = {"t": table.name, "r": row}
                        out.write((json.dumps(item, separators=(",", ":")) + "\n").encode())
                        counts[table.name] += 1
                    if progress:
                        progress(table.name, counts[table.name])
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        session.rollback()
    return counts


def _rows(session: Session, table: Table) -> Iterator[dict[str, Any]]:
    """A table's rows in key order, in batches (every table has a one-column key)."""
    [key] = list(table.primary_key.columns)
    after: Any = None
    while True:
        statement = select(table).order_by(key).limit(BATCH)
        if after is not None:
            statement = statement.where(key > after)
        rows = session.execute(statement).mappings().all()
        if not rows:
            return
        for row in rows:
            yield {name: _encode(value) for name, value in row.items()}
        after = rows[-1][key.name]


def read_header(handle: IO[str]) -> dict[str, Any]:
    header = json.loads(handle.readline())
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise ValueError("not a registry backup (or a newer format)")
    return dict(header)


def restore(
    session: Session,
    path: Path,
    migration: str | None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Load a backup into an empty database at the same migration; return row counts."""
    by_name = {t.name: t for t in _tables()}
    for table in by_name.values():
        if session.execute(select(func.count()).select_from(table)).scalar():
            raise Conflict(
                f"The database is not empty ({table.name} has rows): restore "
                "needs a freshly migrated database."
            )
    counts: dict[str, int] = {}
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = read_header(handle)
        if header["migration"] != migration:
            raise Conflict(
                f"The backup was taken at migration {header['migration']}; this "
                f"database is at {migration}. Migrate to match, then restore."
            )
        decoders = {name: _decoder(table) for name, table in by_name.items()}
        pending: dict[str, list[dict[str, Any]]] = {}
        current: str | None = None
        for line in handle:
            item = json.loads(line)
            name = item["t"]
            if name != current and current is not None:
                _flush(session, by_name[current], pending.pop(current, []))
                if progress:
                    progress(current, counts.get(current, 0))
            current = name
            pending.setdefault(name, []).append(decoders[name](item["r"]))
            counts[name] = counts.get(name, 0) + 1
            if len(pending[name]) >= BATCH:
                _flush(session, by_name[name], pending.pop(name))
        if current is not None:
            _flush(session, by_name[current], pending.pop(current, []))
            if progress:
                progress(current, counts.get(current, 0))
    _reset_sequences(session)
    return counts


def _flush(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table), rows)


def _reset_sequences(session: Session) -> None:
    """PostgreSQL: move each serial column's sequence past the restored rows."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in _tables():
        [column] = list(table.primary_key.columns)
        sequence = session.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
        ).scalar()
        if sequence:
            # Names come from our own metadata, not from input.
            session.execute(
                text(
                    f"SELECT setval(:s, COALESCE((SELECT MAX({column.name}) "  # noqa: S608
                    f"FROM {table.name}), 0) + 1, false)"
                ),
                {"s": sequence},
            )
