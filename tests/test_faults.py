"""Faults: a failure at any statement of a publication leaves everything as it was; a
locked or full SQLite database answers 503 and recovers."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from registry.db import db
from registry.models.audit import AuditEvent
from registry.models.policy import PolicyVersion, SetRevision
from registry.services import audit
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"


@contextmanager
def failing_statement(k: int) -> Iterator[list[str]]:
    """Make the k-th SQL statement from now on fail as the database would."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)
        if len(seen) == k:
            raise OperationalError(statement, None, Exception("injected fault"))

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _state() -> tuple[Any, ...]:
    db.session.remove()
    version = db.session.execute(
        select(PolicyVersion.status, PolicyVersion.lock_version).where(PolicyVersion.number == 1)
    ).one()
    return (
        tuple(version),
        db.session.execute(select(func.count()).select_from(SetRevision)).scalar_one(),
        db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
    )


def _endorsed(app: Flask) -> Any:
    f.catalogue()
    editor, _ = f.as_role(app, "editor")
    member = f.user("panel_member")
    board = f.panel([member], quorum=1, threshold=1)
    editor.post(f"{API}/policies", json=f.policy_body())
    review = editor.post(
        f"{API}/policies/research-data/versions/1/submit",
        json={"panel_id": board.id, "public_benefit": f.ASSESSMENT},
    ).get_json()
    f.bearer(app, f.token(member)).put(
        f"{API}/reviews/{review['id']}/votes/me", json={"choice": "endorse"}
    )
    editor.post(f"{API}/reviews/{review['id']}/close", json={})
    return editor


def test_a_publication_is_all_or_nothing_whichever_statement_fails(
    app: Flask, database: Any
) -> None:
    url = f"{API}/policies/research-data/versions/1/publish"
    editor = _endorsed(app)
    before = _state()
    with failing_statement(10_000) as statements:
        assert editor.post(url).status_code == 200
    total = len(statements)
    assert total > 5
    for k in range(1, total + 1):
        database.reset(app)
        editor = _endorsed(app)
        before = _state()
        with failing_statement(k):
            response = editor.post(url)
        assert response.status_code >= 500, (k, response.status_code)
        assert _state() == before, f"statement {k} of {total} left a change behind"
        assert audit.verify(db.session()).ok
    database.reset(app)
    editor = _endorsed(app)
    assert editor.post(url).status_code == 200
    assert _state()[1] == 1


# --- SQLite: a lock held too long, and a full disk -------------------------------------------


@pytest.fixture
def sqlite_app(make_app: Any, database: Any) -> Flask:
    if database.backend != "sqlite":
        pytest.skip("SQLite's own faults")
    app = make_app(DB_LOCK_TIMEOUT_MS=500)
    database.reset(app)
    return app


def test_a_held_write_lock_gives_503_with_retry_after(sqlite_app: Flask, database: Any) -> None:
    with sqlite_app.test_request_context():
        admin = f.as_role(sqlite_app, "admin")[0]
    blocker = sqlite3.connect(database.path, timeout=5, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        response = admin.post(f"{API}/organisations", json={"name": "Locked out", "kind": "icb"})
        assert time.monotonic() - started < 15
        assert_problem(response, 503, "unavailable")
        assert int(response.headers["Retry-After"]) > 0
        assert admin.get(f"{API}/policy-set").status_code == 200  # reads carry on
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    again = admin.post(f"{API}/organisations", json={"name": "Locked out", "kind": "icb"})
    assert again.status_code == 201


def test_a_full_disk_gives_503_and_the_service_recovers(sqlite_app: Flask, database: Any) -> None:
    with sqlite_app.test_request_context():
        admin = f.as_role(sqlite_app, "admin")[0]
    pages = sqlite3.connect(database.path).execute("PRAGMA page_count").fetchone()[0]

    def limit(conn: Any, _record: Any) -> None:
        conn.execute(f"PRAGMA max_page_count = {pages_limit[0]}")

    pages_limit = [pages]
    with sqlite_app.app_context():
        db.engine.dispose()
        event.listen(db.engine, "connect", limit)
    try:
        failures = 0
        for i in range(40):
            response = admin.post(
                f"{API}/organisations", json={"name": f"Trust {i} " + "x" * 150, "kind": "icb"}
            )
            if response.status_code == 503:
                failures += 1
                assert int(response.headers["Retry-After"]) > 0
            else:
                assert response.status_code == 201
        assert failures > 0, "the database never filled up"
    finally:
        with sqlite_app.app_context():
            event.remove(db.engine, "connect", limit)
            db.engine.dispose()
    assert (
        admin.post(
            f"{API}/organisations", json={"name": "After the clean-up", "kind": "icb"}
        ).status_code
        == 201
    )
    with sqlite_app.app_context():
        assert audit.verify(db.session()).ok


def test_postgres_lock_wait_past_its_limit_gives_503(make_app: Any, database: Any) -> None:
    if database.backend != "postgresql":
        pytest.skip("PostgreSQL's lock_timeout")
    app = make_app(DB_LOCK_TIMEOUT_MS=500)
    database.reset(app)
    with app.test_request_context():
        admin = f.as_role(app, "admin")[0]
    holder = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": audit.CHAIN_LOCK_ID})
            holder.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holder.wait(5)
    try:
        started = time.monotonic()
        response = admin.post(f"{API}/organisations", json={"name": "Waiting", "kind": "icb"})
        assert time.monotonic() - started < 15
        assert_problem(response, 503)
    finally:
        release.set()
        thread.join()
    assert (
        admin.post(f"{API}/organisations", json={"name": "Waiting", "kind": "icb"}).status_code
        == 201
    )
