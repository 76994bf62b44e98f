"""Test fixtures: a migrated database per run (SQLite or PostgreSQL), reset per test.

``REGISTRY_TEST_DB=postgresql`` runs the suite on PostgreSQL (``REGISTRY_TEST_POSTGRES_URL``
or ``DATABASE_URL``, default the local server); each run creates its own database and
drops it at the end. The schema always comes from the migrations.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from registry import create_app
from registry.config import normalise_database_url
from registry.db import db
from registry.present.policyset import init_policy_set_cache
from tests.support import watch

BACKEND = os.environ.get("REGISTRY_TEST_DB", "sqlite")
POSTGRES_SERVER = os.environ.get(
    "REGISTRY_TEST_POSTGRES_URL",
    os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)


class TestDatabase:
    """One database for the run: migrated once, emptied before every test."""

    __test__ = False

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        if backend == "sqlite":
            self.path = workdir / "registry.sqlite3"
            self.template = workdir / "template.sqlite3"
            self.url = f"sqlite:///{self.path}"
        elif backend == "postgresql":
            self.name = f"registry_test_{uuid.uuid4().hex[:12]}"
            self.server = POSTGRES_SERVER
            self.url = normalise_database_url(_with_database(self.server, self.name))
        else:
            raise ValueError(f"unknown REGISTRY_TEST_DB {backend!r}")

    def create(self, signing_key_file: Path) -> None:
        if self.backend == "postgresql":
            with psycopg.connect(self.server, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
        app = create_app(self.app_config(signing_key_file))
        with app.app_context():
            upgrade()
            db.session.remove()
            db.engine.dispose()
        if self.backend == "sqlite":
            _checkpoint_wal(self.path)
            shutil.copyfile(self.path, self.template)

    def drop(self) -> None:
        if self.backend == "postgresql":
            with psycopg.connect(self.server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def app_config(self, signing_key_file: Path, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": self.url,
            "SECRET_KEY": "test-secret-key-not-for-production",
            "SIGNING_KEY_FILE": str(signing_key_file),
            "SESSION_COOKIE_SECURE": False,
            "RATELIMIT_ENABLED": False,
            # Checkpoints signed as each write commits; tests/test_checkpoints.py runs
            # the cadence.
            "CHECKPOINT_INTERVAL_S": 0,
            # A store of the default kind for each app, as memory:// gave each before:
            # no count carries over from one test's app to the next.
            "RATELIMIT_STORAGE_URI": f"sqlite:///{self.workdir}/ratelimits-{uuid.uuid4().hex}.db",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 1024,
            "POLICY_SET_CHECK_INTERVAL_S": 0,
            "AUDIT_VERIFY_CACHE_S": 0,
            "LOG_LEVEL": "INFO",
        }
        config.update(overrides)
        return config

    def reset(self, app: Flask) -> None:
        """Empty every table (SQLite: restore the migrated file) and every cache."""
        init_policy_set_cache(app)
        if has_app_context():
            db.session.remove()  # the test's own session must not hold a transaction open
        with app.app_context():
            db.session.remove()
            if self.backend == "sqlite":
                # The backup API rewrites the live file under SQLite's own locks, so
                # connections other apps keep open stay valid.
                source = sqlite3.connect(self.template)
                target = sqlite3.connect(self.path)
                try:
                    source.backup(target)
                finally:
                    source.close()
                    target.close()
                return
            tables = [t.name for t in db.metadata.sorted_tables]
            with psycopg.connect(self.server, autocommit=True) as admin:
                # A test that stopped half-way through a read (a streamed export, a walk
                # that met a fault) may leave its session's transaction for pytest-flask to
                # end later; no transaction of the last test may block this one's start.
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND state LIKE 'idle in transaction%%'",
                    (self.name,),
                )
            with db.engine.begin() as conn:
                # Tests start empty, ids from 1. The audit tables refuse deletes except in
                # replica mode (which also sets foreign keys aside). DELETE, not TRUNCATE:
                # on tables this small TRUNCATE costs about thirty times as much (new files
                # for every table, at every test), which was most of a test's setup.
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for table in tables:
                    conn.execute(text(f'DELETE FROM "{table}"'))
                # The empty log's head, as the migration leaves it.
                conn.execute(
                    text("INSERT INTO audit_head VALUES (1, 0, :genesis, '[]')"),
                    {"genesis": "0" * 64},
                )
                conn.execute(
                    text(
                        "SELECT setval(c.oid, 1, false) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
                    )
                )


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _checkpoint_wal(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "audit-signing-key.pem"


@pytest.fixture(scope="session")
def database(
    tmp_path_factory: pytest.TempPathFactory, signing_key_file: Path
) -> Iterator[TestDatabase]:
    database = TestDatabase(BACKEND, tmp_path_factory.mktemp("db"))
    try:
        database.create(signing_key_file)
    except psycopg.OperationalError as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield database
    database.drop()


class RegistryClient(FlaskClient):
    """A test client whose requests start as fresh as a real server's.

    pytest-flask keeps one app context for the whole test, so ``g`` and the database
    session would otherwise outlive a request (a login after an anonymous request
    would still look anonymous; an object read before would be served from memory).
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            for key in ("_login_user", "actor", "actor_label", "request_id"):
                g.pop(key, None)
            db.session.remove()
        response = super().open(*args, **kwargs)
        environ = self.environ_base or {}
        headers = kwargs.get("headers") or {}
        bearer = bool(environ.get("HTTP_AUTHORIZATION") or "Authorization" in headers)
        authenticated = bool(
            bearer or self.get_cookie(self.application.config["SESSION_COOKIE_NAME"])
        ) and response.status_code not in (401, 400)
        watch.check_response(response, authenticated, bearer)
        return response


@pytest.fixture(scope="session", autouse=True)
def _watch_the_logs() -> Iterator[None]:
    handler = watch.capture_logs()
    yield
    logging.getLogger().removeHandler(handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No token or password the suite made may appear in any log line it produced."""
    leaked = watch.leaked_secrets()
    if leaked:
        session.config.get_terminal_writer().line(
            f"SECRETS IN THE LOGS: {leaked}", red=True, bold=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _build_app(database: TestDatabase, signing_key_file: Path, **overrides: Any) -> Flask:
    app = create_app(database.app_config(signing_key_file, **overrides))
    app.test_client_class = RegistryClient
    return app


def _dispose(app: Flask) -> None:
    app.extensions["registry.checkpointer"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(database: TestDatabase, signing_key_file: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database with extra configuration; closed after the test."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = _build_app(database, signing_key_file, **overrides)
        made.append(app)
        return app

    yield make
    for app in made:
        _dispose(app)


@pytest.fixture(scope="session")
def _shared_app(database: TestDatabase, signing_key_file: Path) -> Iterator[Flask]:
    app = _build_app(database, signing_key_file)
    yield app
    _dispose(app)


@pytest.fixture
def app(_shared_app: Flask, database: TestDatabase) -> Iterator[Flask]:
    database.reset(_shared_app)
    yield _shared_app
    with _shared_app.app_context():
        db.session.remove()


@pytest.fixture
def fresh_database(database: TestDatabase, tmp_path: Path) -> Iterator[str]:
    """An empty database of the run's kind, for tests that migrate or break it."""
    if database.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"registry_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database.server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield normalise_database_url(_with_database(database.server, name))
    finally:
        with psycopg.connect(database.server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
