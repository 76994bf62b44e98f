"""The database: declarative base, column types, and per-dialect connection rules.

SQLite: WAL, foreign keys, a busy timeout, and ``BEGIN IMMEDIATE`` for write
transactions. Python's sqlite3 otherwise runs reads outside the transaction and upgrades
a deferred transaction on its first write, which loses concurrent updates or fails them
with "database is locked"; taking the write lock at BEGIN serialises writers properly.
PostgreSQL: psycopg 3 with lock, statement and idle-in-transaction timeouts, so a stuck
database turns into a 503 rather than a hung worker; and bounds on the client's side for a
database that stops answering altogether (see ``install_postgres_rules``).
"""

from __future__ import annotations

import contextlib
import contextvars
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, DateTime, Engine, MetaData, Table, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

from registry.config import private_file

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The years every stored time lies in (``registry.schemas.common`` refuses the rest at the
# door, with a 422). A year below 1000 has no four-digit spelling in strftime, and one
# past 9999 none in Python; the range also keeps clear of the ends of Python's own.
EARLIEST_YEAR = 1900
LATEST_YEAR = 9999
EARLIEST_TIME = datetime(EARLIEST_YEAR, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(LATEST_YEAR, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no zone, PostgreSQL keeps one; both give back an aware UTC datetime
    with microsecond precision, so hashes over timestamps are stable across databases.
    A time outside the years 1900 to 9999 is never written: it could not be spelt, or
    read back, the way every other time is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if not EARLIEST_TIME <= value <= LATEST_TIME:
            raise ValueError(
                f"{value.isoformat()} lies outside the years {EARLIEST_YEAR} to {LATEST_YEAR}"
            )
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# On the registry, not the class: Flask-SQLAlchemy subclasses the base once more.
Base.registry.update_type_annotation_map(
    {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}
)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

# Whether the next transaction on this context will write. Views for unsafe methods
# and CLI commands set it; on SQLite it decides between BEGIN IMMEDIATE and BEGIN.
_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=False)


def set_write_intent(value: bool) -> None:
    _write_intent.set(value)


@contextmanager
def writing() -> Iterator[None]:
    """Run the enclosed transactions as writers (``BEGIN IMMEDIATE`` on SQLite)."""
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


def begin_write() -> None:
    """Switch the current session to a write transaction.

    A read that discovers it must write (a review past its closing time) ends its read
    transaction first: on SQLite a deferred transaction cannot safely become a writer.
    """
    if not _write_intent.get():
        db.session.rollback()
        _write_intent.set(True)


def utcnow() -> datetime:
    """The current time, UTC, at the microsecond precision both databases keep."""
    return datetime.now(UTC)


def table_of(model: type[Base]) -> Table:
    """A model's table, for plain Core inserts of rows the session never loads back (the
    ORM's bulk-insert path costs several times the statement itself)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def engine_options(uri: str, settings: dict[str, Any]) -> dict[str, Any]:
    """SQLAlchemy engine options for the configured database."""
    if uri.startswith("sqlite"):
        return {
            "connect_args": {
                "timeout": settings["DB_LOCK_TIMEOUT_MS"] / 1000,
                "check_same_thread": False,
            },
        }
    options = " ".join(
        [
            f"-c lock_timeout={int(settings['DB_LOCK_TIMEOUT_MS'])}",
            f"-c statement_timeout={int(settings['DB_STATEMENT_TIMEOUT_MS'])}",
            "-c idle_in_transaction_session_timeout="
            f"{int(settings['DB_IDLE_IN_TRANSACTION_TIMEOUT_MS'])}",
            "-c timezone=UTC",
        ]
    )
    return {
        "pool_pre_ping": True,
        "pool_size": int(settings["DB_POOL_SIZE"]),
        "max_overflow": 5,
        "pool_timeout": settings["DB_POOL_TIMEOUT_S"],
        "connect_args": {
            # psycopg enforces this itself, for the whole connection attempt: it holds
            # against a server that accepts the TCP connection and never answers.
            "connect_timeout": int(settings["DB_CONNECT_TIMEOUT_S"]),
            "options": options,
            "application_name": "registry",
            # A peer that vanishes (packets dropped, connections left open) is noticed by
            # the kernel: TCP_USER_TIMEOUT when bytes sent stay unacknowledged, keepalive
            # probes when the connection is idle or the server had acknowledged the query.
            "tcp_user_timeout": int(settings["DB_TCP_USER_TIMEOUT_MS"]),
            "keepalives": 1,
            "keepalives_idle": int(settings["DB_KEEPALIVES_IDLE_S"]),
            "keepalives_interval": int(settings["DB_KEEPALIVES_INTERVAL_S"]),
            "keepalives_count": int(settings["DB_KEEPALIVES_COUNT"]),
        },
    }


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits for the server no longer than ``reply_timeout``.

    The kernel cannot tell a server that is there and never answers (a frozen process, a
    proxy or firewall that keeps the connection open and forwards nothing) from a slow
    query: every byte is acknowledged, and statement_timeout never starts on a query the
    server never received. So the client gives up by itself, closes the connection (its
    state is unknown) and raises a connection error, which the pool takes as a
    disconnection and the error handler as a 503.
    """

    reply_timeout: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if timeout is not None:  # the caller's own bound (notifies): its timeout is its own
            return super().wait(gen, interval=interval, timeout=timeout)
        try:
            return super().wait(gen, interval=interval, timeout=self.reply_timeout)
        except psycopg.errors._WaitTimeout as exc:
            self.close()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.reply_timeout:g} s: connection closed"
            ) from exc


def install_postgres_rules(engine: Engine, settings: dict[str, Any]) -> None:
    """Client-side bounds on every wait for PostgreSQL.

    A connection waits at most ``DB_PING_TIMEOUT_S`` for the pool's ping on check-out
    (an empty statement answers at once from any live server), then up to
    ``DB_REPLY_TIMEOUT_S`` for each answer while a request uses it, which is set above
    statement_timeout so that the server, not the client, ends a slow statement.
    """
    reply = float(settings["DB_REPLY_TIMEOUT_S"])
    ping = float(settings["DB_PING_TIMEOUT_S"])

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        conn = BoundedConnection.connect(*cargs, **cparams)
        conn.reply_timeout = reply
        return conn

    # The pool pings before its checkout event and after checkin: the short bound is in
    # force exactly while the connection sits in the pool, through the ping.
    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.reply_timeout = reply

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            dbapi_connection.reply_timeout = ping


def install_sqlite_rules(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, foreign keys, busy timeout, and BEGIN IMMEDIATE for writers."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        raw: Any = conn.connection.dbapi_connection
        if not _write_intent.get():
            raw.execute("BEGIN")
            return
        # SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, so writers in
        # several workers hand the lock over slowly. Poll in fractions of a millisecond
        # instead, up to the same limit, then report the lock as SQLite would.
        raw.execute("PRAGMA busy_timeout = 0")
        deadline = time.monotonic() + busy_timeout_ms / 1000
        pause = 0.0001
        try:
            while True:
                try:
                    raw.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


def install_sqlite_file_modes(engine: Engine) -> None:
    """Keep the database file, and so its -wal and -shm, owner-only (0600).

    It holds password and token hashes. The mode is fixed at start, and the file is
    created owner-only before every new connection, so that SQLite, which would create it
    with the umask's mode (and the -wal and -shm with the same), never makes it first.
    """
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    # A folder that is missing or unwritable is SQLite's to report, as a 503.
    with contextlib.suppress(OSError):
        private_file(path)

    @event.listens_for(engine, "do_connect")
    def _create_owner_only(_dialect: Dialect, _record: Any, _cargs: Any, _cparams: Any) -> None:
        with contextlib.suppress(OSError):
            private_file(path)


def init_db(app: Flask) -> None:
    """Bind the database to ``app`` and install the per-dialect rules."""
    db.init_app(app)
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            install_sqlite_file_modes(engine)
            install_sqlite_rules(engine, int(app.config["DB_LOCK_TIMEOUT_MS"]))
        elif engine.dialect.name == "postgresql":
            install_postgres_rules(engine, app.config)


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def current_session() -> Session:
    """This app context's database session, typed for the services that take one."""
    return db.session()
