"""The database going away under load, with the real app under gunicorn: quick 503s with
Retry-After, nothing half-written, and service again soon after it returns."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from registry.db import db
from registry.models.audit import AuditEvent
from registry.models.identity import Organisation
from registry.services import audit
from tests import factories as f
from tests.support.proxy import Proxy
from tests.support.server import call, gunicorn

pytestmark = pytest.mark.slow
API = "/api/v1"


class Load:
    """Readers and writers hammering the service until told to stop; answers recorded."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.answers: list[tuple[float, str, int, dict[str, str]]] = []
        self.longest = 0.0  # the longest any request took, from sent to answered
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._reader) for _ in range(2)]
        self.threads += [threading.Thread(target=self._writer, args=(n,)) for n in range(2)]

    def _record(self, kind: str, status: int, headers: dict[str, str], sent: float) -> None:
        now = time.monotonic()
        with self.lock:
            self.answers.append((now, kind, status, headers))
            self.longest = max(self.longest, now - sent)

    def _send(self, kind: str, method: str, body: Any = None) -> None:
        sent = time.monotonic()
        try:
            status, headers, _ = call(
                self.base, method, f"{API}/organisations", token=self.token, timeout=30, body=body
            )
        except OSError:
            # No answer at all (the connection dropped or the client gave up): status 0,
            # which no check accepts.
            status, headers = 0, {}
        self._record(kind, status, dict(headers), sent)

    def _reader(self) -> None:
        while not self.stop.is_set():
            self._send("read", "GET")

    def _writer(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            self._send("write", "POST", {"name": f"Writer {n} trust {i}", "kind": "icb"})

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def since(self, moment: float) -> list[tuple[float, str, int, dict[str, str]]]:
        with self.lock:
            return [a for a in self.answers if a[0] >= moment]


def _check_outage(load: Load, cut: float) -> None:
    """During the outage: only 503s (with Retry-After) or successes, and a 503 soon."""
    during = load.since(cut)
    assert all(status in (200, 201, 503) for _, _, status, _ in during), {
        status for _, _, status, _ in during
    }
    first_503 = [t for t, _, status, _ in during if status == 503]
    assert first_503, "no request was told the service is unavailable"
    assert first_503[0] - cut < 15
    assert all(int(h["Retry-After"]) > 0 for _, _, s, h in during if s == 503)


def _check_recovery(load: Load, back: float) -> float:
    """Wait for a read and a write to succeed after ``back``; return how long it took."""
    deadline = back + 30
    while time.monotonic() < deadline:
        since = load.since(back)
        reads = [t for t, kind, status, _ in since if kind == "read" and status == 200]
        writes = [t for t, kind, status, _ in since if kind == "write" and status == 201]
        if reads and writes:
            return max(reads[0], writes[0]) - back
        time.sleep(0.2)
    raise AssertionError("the service did not serve reads and writes within 30 s")


def _first_503(load: Load, since: float, within: float) -> float:
    """Seconds from ``since`` to the first 503 (with Retry-After), waiting up to ``within``."""
    deadline = since + within
    while time.monotonic() < deadline:
        told = [t for t, _, s, h in load.since(since) if s == 503 and "Retry-After" in h]
        if told:
            return told[0] - since
        time.sleep(0.1)
    raise AssertionError(f"no request was told the service is unavailable within {within} s")


def _no_worker_killed(log: Path, workers: int) -> None:
    text = log.read_text(errors="replace")
    assert "WORKER TIMEOUT" not in text, text[-3000:]
    assert text.count("Booting worker") == workers, text[-3000:]


def _nothing_half_written() -> None:
    db.session.remove()
    organisations = db.session.execute(select(func.count()).select_from(Organisation)).scalar_one()
    recorded = db.session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "organisation.created")
    ).scalar_one()
    assert organisations == recorded
    report = audit.verify(db.session())
    assert report.ok, report.reason


def test_postgres_going_away_mid_load(
    app: Flask, database: Any, signing_key_file: Path, tmp_path: Path
) -> None:
    if database.backend != "postgresql":
        pytest.skip("a connection to cut exists only with PostgreSQL")
    token = f.token(f.user("admin"))
    parts = urlsplit(database.url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    config = database.app_config(
        signing_key_file,
        SQLALCHEMY_DATABASE_URI=proxy.url_for(database.url),
        DB_CONNECT_TIMEOUT_S=2,
    )
    try:
        with gunicorn(config, tmp_path, workers=3) as base, Load(base, token) as load:
            time.sleep(2)
            cut = time.monotonic()
            proxy.stop()
            time.sleep(6)
            _check_outage(load, cut)
            proxy.start()
            _check_recovery(load, time.monotonic())
    finally:
        proxy.stop()
    _nothing_half_written()


def test_sqlite_locked_away_mid_load(
    app: Flask, database: Any, signing_key_file: Path, tmp_path: Path
) -> None:
    if database.backend != "sqlite":
        pytest.skip("SQLite's file lock")
    token = f.token(f.user("admin"))
    config = database.app_config(signing_key_file, DB_LOCK_TIMEOUT_MS=2000)
    with gunicorn(config, tmp_path, workers=3) as base, Load(base, token) as load:
        time.sleep(2)
        holder = sqlite3.connect(database.path, timeout=10, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        cut = time.monotonic()
        time.sleep(6)
        _check_outage(load, cut)
        holder.execute("ROLLBACK")
        holder.close()
        _check_recovery(load, time.monotonic())
    _nothing_half_written()


def _hang_config(database: Any, signing_key_file: Path, proxy: Proxy) -> dict[str, Any]:
    return database.app_config(
        signing_key_file,
        SQLALCHEMY_DATABASE_URI=proxy.url_for(database.url),
        DB_CONNECT_TIMEOUT_S=5,
    )


def test_postgres_hanging_mid_load(
    app: Flask, database: Any, signing_key_file: Path, tmp_path: Path
) -> None:
    """The database stops answering without closing anything (packets swallowed, or a
    frozen server): every request in flight and every new one is answered, the first
    503 with Retry-After comes within 15 s, no worker is killed for a timeout, and the
    service serves again by itself once the database answers."""
    if database.backend != "postgresql":
        pytest.skip("a connection to hang exists only with PostgreSQL")
    token = f.token(f.user("admin"))
    parts = urlsplit(database.url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    config = _hang_config(database, signing_key_file, proxy)
    try:
        with gunicorn(config, tmp_path, workers=3) as base, Load(base, token) as load:
            time.sleep(2)
            cut = time.monotonic()
            proxy.hang()
            first = _first_503(load, cut, within=20)
            # Long enough for every request in flight at the cut to have been answered.
            time.sleep(max(0.0, 18 - (time.monotonic() - cut)))
            _check_outage(load, cut)
            hung_longest = load.longest
            proxy.resume()
            back = time.monotonic()
            recovered = _check_recovery(load, back)
        _no_worker_killed(tmp_path / "gunicorn.log", 3)
    finally:
        proxy.stop()
    print(
        f"\nhang mid-load: first 503 after {first:.2f} s; longest request {hung_longest:.2f} s;"
        f" reads and writes again {recovered:.2f} s after the database answered"
    )
    assert first <= 15
    assert hung_longest < 30  # under gunicorn's timeout, with a request queued behind
    _nothing_half_written()


def test_postgres_hanging_before_the_first_connection(
    app: Flask, database: Any, signing_key_file: Path, tmp_path: Path
) -> None:
    """Workers that have no connection yet meet a database that accepts the connection
    and never answers: connect_timeout turns that into a 503 too."""
    if database.backend != "postgresql":
        pytest.skip("a connection to hang exists only with PostgreSQL")
    token = f.token(f.user("admin"))
    parts = urlsplit(database.url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    proxy.hang()
    config = _hang_config(database, signing_key_file, proxy)
    try:
        with gunicorn(config, tmp_path, workers=2) as base:
            started = time.monotonic()
            status, headers, _ = call(base, "GET", f"{API}/organisations", token=token)
            waited = time.monotonic() - started
            assert status == 503
            assert int(headers["Retry-After"]) > 0
            proxy.resume()
            back = time.monotonic()
            while call(base, "GET", f"{API}/organisations", token=token)[0] != 200:
                assert time.monotonic() - back < 30, "no service within 30 s of the database"
                time.sleep(0.2)
            recovered = time.monotonic() - back
        _no_worker_killed(tmp_path / "gunicorn.log", 2)
    finally:
        proxy.stop()
    print(f"\nhang before connecting: 503 after {waited:.2f} s; 200 again after {recovered:.2f} s")
    assert waited <= 15
