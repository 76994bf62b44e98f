"""Rate limits counted in a store every worker shares.

``RATELIMIT_STORAGE_URI`` names the store. By default it is a small SQLite file in the
instance folder (``sqlite:///instance/ratelimits.sqlite3``), which every gunicorn worker
on the host opens, so a documented limit holds however many workers serve, with nothing
to install. ``redis://`` shares the count between hosts too. ``memory://`` counts per
process: a limit then holds per worker, and that is only right for one process.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import Any

import limits
from flask import Flask, current_app
from limits.errors import StorageError
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from registry.config import private_file
from registry.errors import TooManyRequests, Unavailable

_EXT = "registry.ratelimiter"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_hits_key_at ON hits (key, at);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID;
"""


class SQLiteStorage(Storage, MovingWindowSupport):
    """A ``limits`` store in one SQLite file that every process on the host shares.

    Each hit is one short write transaction (``BEGIN IMMEDIATE``, so that two workers
    counting the same key at once cannot both see room for one more) in WAL mode, which
    keeps the file's readers and writers out of each other's way and, with
    ``synchronous = NORMAL``, needs no fsync per commit. A key's expired hits are deleted
    as it is counted; every few minutes a process sweeps the rest.
    """

    STORAGE_SCHEME = ["sqlite"]
    SWEEP_INTERVAL_S = 300.0
    BUSY_TIMEOUT_MS = 5000

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        if not uri.startswith("sqlite:///") or uri in ("sqlite:///", "sqlite:///:memory:"):
            raise ValueError(f"the rate-limit store needs a file: sqlite:///PATH, not {uri!r}")
        self.path = uri[len("sqlite:///") :]
        self._local = threading.local()
        self._swept = time.monotonic()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._connection()  # the file exists, owner-only, from the start

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (sqlite3.Error, OSError)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection; a new one after a fork (workers never share one)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            private_file(self.path)
            conn = sqlite3.connect(
                self.path,
                timeout=self.BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {self.BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            local.conn, local.pid = conn, os.getpid()
        connection: sqlite3.Connection = local.conn
        return connection

    def _write(self, work: Any) -> Any:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            result = work(conn, now)
            if time.monotonic() - self._swept > self.SWEEP_INTERVAL_S:
                self._swept = time.monotonic()
                conn.execute("DELETE FROM hits WHERE expires <= ?", (now,))
                conn.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    # The moving window, which the registry's limiter uses.

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False

        def acquire(conn: sqlite3.Connection, now: float) -> bool:
            conn.execute("DELETE FROM hits WHERE key = ? AND at <= ?", (key, now - expiry))
            (count,) = conn.execute("SELECT count(*) FROM hits WHERE key = ?", (key,)).fetchone()
            if count + amount > limit:
                return False
            conn.executemany(
                "INSERT INTO hits (key, at, expires) VALUES (?, ?, ?)",
                [(key, now, now + expiry)] * amount,
            )
            return True

        granted: bool = self._write(acquire)
        return granted

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        oldest, count = (
            self._connection()
            .execute(
                "SELECT min(at), count(*) FROM hits WHERE key = ? AND at > ?", (key, now - expiry)
            )
            .fetchone()
        )
        return (oldest if oldest is not None else now), int(count)

    # Fixed-window counters, for the rest of the ``limits`` interface.

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        def increment(conn: sqlite3.Connection, now: float) -> int:
            (value,) = conn.execute(
                "INSERT INTO counters (key, value, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "value = CASE WHEN expires <= ? THEN excluded.value "
                "ELSE value + excluded.value END, "
                "expires = CASE WHEN expires <= ? THEN excluded.expires ELSE expires END "
                "RETURNING value",
                (key, amount, now + expiry, now, now),
            ).fetchone()
            return int(value)

        value: int = self._write(increment)
        return value

    def get(self, key: str) -> int:
        row = (
            self._connection()
            .execute("SELECT value FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        row = (
            self._connection()
            .execute("SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, now))
            .fetchone()
        )
        return float(row[0]) if row else now

    def check(self) -> bool:
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        def empty(conn: sqlite3.Connection, _now: float) -> int:
            removed = conn.execute("DELETE FROM hits").rowcount
            return removed + conn.execute("DELETE FROM counters").rowcount

        removed: int = self._write(empty)
        return removed

    def clear(self, key: str) -> None:
        def forget(conn: sqlite3.Connection, _now: float) -> None:
            conn.execute("DELETE FROM hits WHERE key = ?", (key,))
            conn.execute("DELETE FROM counters WHERE key = ?", (key,))

        self._write(forget)


def init_rate_limits(app: Flask) -> None:
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"], wrap_exceptions=True)
    app.extensions[_EXT] = MovingWindowRateLimiter(storage)


def hit(setting: str, *identifiers: str) -> None:
    """Count one request against the limit named by config key ``setting``.

    Raises ``TooManyRequests`` (429 with ``Retry-After``) once the limit is reached, and
    ``Unavailable`` (503) when the store cannot be reached: a limit that cannot be
    counted is not waived.
    """
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    limiter: MovingWindowRateLimiter = current_app.extensions[_EXT]
    item = limits.parse(current_app.config[setting])
    try:
        if limiter.hit(item, setting, *identifiers):
            return
        reset_at, _remaining = limiter.get_window_stats(item, setting, *identifiers)
    except StorageError as exc:
        raise Unavailable("The rate-limit store is unavailable; try again shortly.") from exc
    raise TooManyRequests(
        "Too many requests: wait before trying again.",
        retry_after=int(reset_at - time.time()) + 1,
    )
