"""Consistent, portable, signed backups: every table as JSON lines, from one snapshot.

The same file restores into SQLite or PostgreSQL (at the same migration), so a backup is
also a migration path between them. Restoring needs an empty, migrated database; the
audit log comes back byte for byte, so the restored registry verifies against any
checkpoint taken before the backup.

A backup holds password and token hashes and decides who may do what, so it must not be
edited in passing. Its last line is a manifest: the SHA-256 and row count of every
table's lines and of the header, signed with the registry's Ed25519 key (the key that
signs the audit checkpoints). Restore reads the whole file and checks the manifest, its
signature and every line before it writes a row, then reads the file again as it loads,
holding it to the same digests; anything that disagrees is refused, naming the table.
The file is written owner-only (0600) from the moment it exists.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Date, Numeric, Table, func, insert, select, text, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.db import Base, UTCDateTime, utcnow
from registry.errors import Conflict
from registry.services import audit, chain

FORMAT = "london-data-policy-registry-backup"
FORMAT_VERSION = 2
UNSIGNED_VERSION = 1
ORIGIN = "london-health-and-care-data-policy-registry/backup"
BATCH = 1000


class BackupRefused(Conflict):
    """The backup cannot be trusted or cannot be loaded; nothing was written."""

    type = "backup-refused"


# Tables the others determine: not written to a backup, rebuilt on restore.
DERIVED = frozenset({"audit_tree_nodes", "audit_head"})


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in DERIVED]


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
    names = {column.name for column in table.columns}

    def decode(row: dict[str, Any]) -> dict[str, Any]:
        unknown = set(row) - names
        if unknown:
            raise ValueError(f"{table.name} has no column {sorted(unknown)[0]!r}")
        return {k: (parsers[k](v) if v is not None and k in parsers else v) for k, v in row.items()}

    return decode


def _snapshot(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def _line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def manifest_message(manifest: dict[str, Any]) -> bytes:
    """The bytes a manifest's signature covers: its canonical JSON, with the backup origin,
    so that no checkpoint signature can pass for a backup's or the other way round."""
    return chain.canonical({**manifest, "origin": ORIGIN})


def manifest_line(signing_key: Ed25519PrivateKey, manifest: dict[str, Any]) -> bytes:
    """The signed manifest, as the backup's last line."""
    public = chain.public_key_bytes(signing_key.public_key())
    signed = {**manifest, "key_id": chain.key_id(public)}
    return _line(
        {
            "manifest": signed,
            "public_key": base64.b64encode(public).decode(),
            "signature": base64.b64encode(signing_key.sign(manifest_message(signed))).decode(),
        }
    )


def write(
    session: Session,
    path: Path,
    migration: str | None,
    signing_key: Ed25519PrivateKey,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write every table to ``path`` (gzip JSON lines, signed manifest last) from one
    snapshot; return row counts.

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
                created_at = utcnow().isoformat()
                header = _line(
                    {
                        "format": FORMAT,
                        "version": FORMAT_VERSION,
                        "migration": migration,
                        "created_at": created_at,
                        "tables": [t.name for t in _tables()],
                    }
                )
                out.write(header)
                tables = []
                for table in _tables():
                    digest = hashlib.sha256()
                    counts[table.name] = 0
                    for row in _rows(session, table):
                        line = _line({"t": table.name, "r": row})
                        digest.update(line)
                        out.write(line)
                        counts[table.name] += 1
                    tables.append(
                        {
                            "name": table.name,
                            "rows": counts[table.name],
                            "sha256": digest.hexdigest(),
                        }
                    )
                    if progress:
                        progress(table.name, counts[table.name])
                manifest = {
                    "format": FORMAT,
                    "version": FORMAT_VERSION,
                    "migration": migration,
                    "created_at": created_at,
                    "header_sha256": hashlib.sha256(header).hexdigest(),
                    "tables": tables,
                }
                out.write(manifest_line(signing_key, manifest))
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
    """A table's rows in key order, in batches (keyset pagination on the whole key)."""
    keys = list(table.primary_key.columns)
    after: tuple[Any, ...] | None = None
    while True:
        statement = select(table).order_by(*keys).limit(BATCH)
        if after is not None:
            statement = statement.where(tuple_(*keys) > tuple_(*after))
        rows = session.execute(statement).mappings().all()
        if not rows:
            return
        for row in rows:
            yield {name: _encode(value) for name, value in row.items()}
        after = tuple(rows[-1][key.name] for key in keys)


# --- reading and checking ------------------------------------------------------------------


@dataclass
class _Scan:
    """What one pass over a backup file found."""

    header: dict[str, Any] = field(default_factory=dict)
    header_sha256: str = ""
    digests: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    manifest_public_key: str | None = None
    signature: str | None = None

    @property
    def version(self) -> Any:
        return self.header.get("version")


Loader = Callable[[Table, list[dict[str, Any]], int], None]


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file's lines, numbered from 1; a damaged or cut gzip stream is refused."""
    try:
        with gzip.open(path, "rb") as handle:
            yield from enumerate(handle, 1)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BackupRefused(
            f"{path} is truncated or damaged (the gzip stream does not read to its end: "
            f"{exc}): nothing was restored."
        ) from exc


def _json(number: int, line: bytes, where: str) -> Any:
    if not line.endswith(b"\n"):
        raise BackupRefused(f"line {number} ({where}) is cut short: the backup is truncated.")
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise BackupRefused(f"line {number} ({where}) is not JSON: {exc}") from exc


def _scan(path: Path, load: Loader | None = None) -> _Scan:
    """Read the whole file, hashing each table's lines; with ``load``, hand it the rows."""
    by_name = {t.name: t for t in _tables()}
    order = list(by_name)
    decoders = {name: _decoder(table) for name, table in by_name.items()}
    scan = _Scan()
    digests: dict[str, Any] = {}
    position = -1  # the index in ``order`` of the table whose section is being read
    pending: list[dict[str, Any]] = []
    first_pending = 0

    def flush() -> None:
        nonlocal pending
        if load is not None and pending:
            load(by_name[order[position]], pending, first_pending)
        pending = []

    for number, line in _lines(path):
        if number == 1:
            header = _json(number, line, "the header")
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise BackupRefused(f"{path} is not a registry backup.")
            scan.header = header
            scan.header_sha256 = hashlib.sha256(line).hexdigest()
            if header.get("version") not in (FORMAT_VERSION, UNSIGNED_VERSION):
                raise BackupRefused(
                    f"{path} is a backup of format version {header.get('version')!r}; this "
                    f"registry reads versions {UNSIGNED_VERSION} and {FORMAT_VERSION}."
                )
            continue
        if scan.manifest is not None:
            raise BackupRefused(f"line {number} follows the manifest: the backup was edited.")
        item = _json(number, line, "a row" if number > 1 else "the header")
        if not isinstance(item, dict):
            raise BackupRefused(f"line {number} is not a row of the backup.")
        if "manifest" in item and scan.version == FORMAT_VERSION:
            scan.manifest = item["manifest"] if isinstance(item["manifest"], dict) else {}
            scan.manifest_public_key = item.get("public_key")
            scan.signature = item.get("signature")
            continue
        name = item.get("t")
        if name not in by_name:
            raise BackupRefused(f"line {number} names no table of this registry ({name!r}).")
        index = order.index(name)
        if index < position:
            raise BackupRefused(
                f"line {number} is a row of table {name} out of its place (after rows of "
                f"{order[position]}): the backup was edited."
            )
        if index > position:
            flush()
            position = index
            first_pending = number
        try:
            row = decoders[name](item["r"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupRefused(
                f"line {number} (table {name}) cannot be read as a row: {exc}"
            ) from exc
        digests.setdefault(name, hashlib.sha256()).update(line)
        scan.counts[name] = scan.counts.get(name, 0) + 1
        if not pending:
            first_pending = number
        pending.append(row)
        if len(pending) >= BATCH:
            flush()
    flush()
    if not scan.header:
        raise BackupRefused(f"{path} is empty: it is not a registry backup.")
    scan.digests = {name: digest.hexdigest() for name, digest in digests.items()}
    return scan


def _check_signed(scan: _Scan, public_key: bytes, path: Path) -> None:
    """The manifest must be signed by ``public_key`` and agree with every line."""
    manifest = scan.manifest
    if manifest is None:
        where = f"table {list(scan.counts)[-1]}" if scan.counts else "the header"
        raise BackupRefused(
            f"{path} has no signed manifest: the file is truncated (it ends in {where}) "
            "or was edited."
        )
    expected = chain.key_id(public_key)
    signed_by = manifest.get("key_id")
    if signed_by != expected:
        raise BackupRefused(
            f"The backup is signed by key {signed_by}, not by this registry's key {expected}. "
            "A backup restores only where the key that signed it is (its audit checkpoints "
            "are signed by that key too): restore with the registry's signing key file "
            "(REGISTRY_SIGNING_KEY_FILE) it was taken with."
        )
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            base64.b64decode(str(scan.signature), validate=True), manifest_message(manifest)
        )
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise BackupRefused(
            f"The backup's manifest does not carry a valid signature by key {expected}: "
            "the manifest was edited."
        ) from exc
    if manifest.get("header_sha256") != scan.header_sha256:
        raise BackupRefused("The backup's header does not match its signed manifest.")
    signed_tables = manifest.get("tables")
    if not isinstance(signed_tables, list) or [t.get("name") for t in signed_tables] != [
        t.name for t in _tables()
    ]:
        raise BackupRefused(
            "The backup's tables are not this registry's: it was taken at another migration."
        )
    for entry in signed_tables:
        name = entry["name"]
        rows = scan.counts.get(name, 0)
        digest = scan.digests.get(name, hashlib.sha256().hexdigest())
        if rows != entry.get("rows") or digest != entry.get("sha256"):
            raise BackupRefused(
                f"Table {name}: its lines do not match the signed manifest ({rows} rows in "
                f"the file, {entry.get('rows')} signed; SHA-256 {digest}, "
                f"{entry.get('sha256')} signed): the backup was edited or truncated."
            )


def _check_scan(scan: _Scan, public_key: bytes, path: Path, *, unsigned: bool) -> None:
    if scan.version == UNSIGNED_VERSION:
        if not unsigned:
            raise BackupRefused(
                f"{path} is a version 1 backup: it is not signed, so an edit to it cannot be "
                "detected. Restore it only if it has been kept where no one could change it, "
                "with --unsigned."
            )
        return
    _check_signed(scan, public_key, path)


def restore(
    session: Session,
    path: Path,
    migration: str | None,
    public_key: bytes,
    *,
    unsigned: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Check a backup whole, then load it into this empty database at the same migration,
    in the session's transaction; return row counts. Raise ``BackupRefused`` (or
    ``Conflict``) at the first thing wrong: the caller rolls back, so nothing stays.

    The caller verifies the audit trail before it commits, and then calls
    ``reset_sequences``.
    """
    by_name = {t.name: t for t in _tables()}
    for table in by_name.values():
        if session.execute(select(func.count()).select_from(table)).scalar():
            raise Conflict(
                f"The database is not empty ({table.name} has rows): restore "
                "needs a freshly migrated database."
            )
    checked = _scan(path)
    _check_scan(checked, public_key, path, unsigned=unsigned)
    if checked.header.get("migration") != migration:
        raise Conflict(
            f"The backup was taken at migration {checked.header.get('migration')}; this "
            f"database is at {migration}. Migrate to match, then restore."
        )
    loaded_rows: dict[str, int] = {}

    def load(table: Table, rows: list[dict[str, Any]], first_line: int) -> None:
        try:
            session.execute(insert(table), rows)
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise BackupRefused(
                f"Table {table.name}, lines {first_line} to {first_line + len(rows) - 1}: the "
                f"database refused the rows ({reason}); nothing was restored."
            ) from exc
        loaded_rows[table.name] = loaded_rows.get(table.name, 0) + len(rows)
        if progress and loaded_rows[table.name] == checked.counts.get(table.name):
            progress(table.name, loaded_rows[table.name])

    loaded = _scan(path, load)
    # The file was checked whole before the first row went in; hold the second reading to
    # the same digests, in case it changed in between.
    if loaded.digests != checked.digests or loaded.header_sha256 != checked.header_sha256:
        raise BackupRefused(f"{path} changed while it was being restored; nothing was restored.")
    audit.rebuild_tree(session)
    return {name: checked.counts.get(name, 0) for name in by_name}


def reset_sequences(session: Session) -> None:
    """PostgreSQL: move each serial column's sequence past the restored rows."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in _tables():
        columns = list(table.primary_key.columns)
        if len(columns) != 1:
            continue  # a composite key is never a serial column
        [column] = columns
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
