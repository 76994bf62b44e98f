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
from tests.test_database_faults import _through

pytestmark = pytest.mark.slow
API = "/api/v1"


class Load:
    """Readers and writers hammering the service until told to stop; answers recorded."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.answers: list[tuple[float, str, int, dict[str, str]]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._reader) for _ in range(2)]
        self.threads += [threading.Thread(target=self._writer, args=(n,)) for n in range(2)]

    def _record(self, kind: str, status: int, headers: dict[str, str]) -> None:
        with self.lock:
            self.answers.append((time.monotonic(), kind, status, headers))

    def _reader(self) -> None:
        while not self.stop.is_set():
            status, headers, _ = call(
                self.base, "GET", f"{API}/organisations", token=self.token, timeout=30
            )
            self._record("read", status, dict(headers))

    def _writer(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            status, headers, _ = call(
                self.base,
                "POST",
                f"{API}/organisations",
                token=self.token,
                timeout=30,
                body={"name": f"Writer {n} trust {i}", "kind": "icb"},
            )
            self._record("write", status, dict(headers))

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


def _check_recovery(load: Load, back: float) -> None:
    deadline = back + 30
    while time.monotonic() < deadline:
        recent = load.since(time.monotonic() - 1)
        if any(kind == "write" and status == 201 for _, kind, status, _ in recent) and any(
            kind == "read" and status == 200 for _, kind, status, _ in recent
        ):
            return
        time.sleep(0.2)
    raise AssertionError("the service did not serve reads and writes within 30 s")


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
        SQLALCHEMY_DATABASE_URI=_through(proxy, database.url),
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
