"""The database going away gives 503 problems quickly, and the service recovers alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests import factories as f
from tests.conftest import TestDatabase
from tests.support.problems import assert_problem
from tests.support.proxy import Proxy


@pytest.fixture
def proxied_app(database: TestDatabase, make_app: Callable[..., Flask]) -> Any:
    if database.backend != "postgresql":
        pytest.skip("a network connection to cut exists only with PostgreSQL")
    parts = urlsplit(database.url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    app = make_app(SQLALCHEMY_DATABASE_URI=proxy.url_for(database.url), DB_CONNECT_TIMEOUT_S=2)
    database.reset(app)
    yield app, proxy
    proxy.stop()


def test_postgres_gone_gives_503_then_recovers(proxied_app: Any) -> None:
    app, proxy = proxied_app
    client = app.test_client()
    assert client.get("/readyz").status_code == 200

    proxy.stop()
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert_problem(response, 503, "unavailable")
    assert elapsed < 15
    assert int(response.headers["Retry-After"]) > 0

    proxy.start()
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover within 30 s"
        time.sleep(0.2)


def test_an_answer_survives_its_connection_dying_before_the_rollback(
    proxied_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection is cut after the answer is built and before the request's
    transaction ends: the rollback fails, and the answer still goes out (it was a 500
    with no problem document), and the next request gets a new connection."""
    app, proxy = proxied_app
    cut = {"armed": False}

    @app.after_request
    def cut_the_connection(response: Any) -> Any:
        if cut["armed"]:
            cut["armed"] = False
            proxy.stop()
        return response

    client = app.test_client()
    cut["armed"] = True
    answered = client.get("/api/v1/policies")
    assert answered.status_code == 200
    assert answered.get_json() == []
    assert "could not be rolled back" in caplog.text

    proxy.start()
    deadline = time.monotonic() + 30
    while client.get("/api/v1/policies").status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover within 30 s"
        time.sleep(0.2)


def test_postgres_hanging_gives_503_within_15_s_then_recovers(proxied_app: Any) -> None:
    """A database that keeps the connection open and never answers: the pooled
    connection's ping gives up, a new connection times out, and the answer is a 503."""
    app, proxy = proxied_app
    client = app.test_client()
    assert client.get("/readyz").status_code == 200

    proxy.hang()
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert_problem(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert elapsed <= 15

    proxy.resume()
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover within 30 s"
        time.sleep(0.2)


def test_postgres_hanging_mid_transaction_gives_503_within_15_s(proxied_app: Any) -> None:
    """The database stops answering between two statements of one request: the second
    waits no longer than the reply timeout, and the request is a 503, not a hang."""
    app, proxy = proxied_app
    hung = {"armed": False}

    @app.before_request
    def hang_after_identity() -> None:
        if hung["armed"]:
            hung["armed"] = False
            proxy.hang()

    with app.app_context():
        secret = f.token(f.user("admin"))
    client = f.bearer(app, secret)
    assert client.get("/api/v1/organisations").status_code == 200
    hung["armed"] = True  # after the token is read, in the request's one transaction
    started = time.monotonic()
    response = client.get("/api/v1/organisations")
    elapsed = time.monotonic() - started
    assert_problem(response, 503, "unavailable")
    assert elapsed <= 15
    proxy.resume()
    deadline = time.monotonic() + 30
    while client.get("/api/v1/organisations").status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover within 30 s"
        time.sleep(0.2)


def test_postgres_connections_carry_keepalives_and_a_tcp_user_timeout(
    database: TestDatabase, make_app: Callable[..., Flask]
) -> None:
    """A peer that vanishes (packets dropped) is noticed by the kernel: keepalives on an
    idle connection, TCP_USER_TIMEOUT on one with bytes unacknowledged."""
    if database.backend != "postgresql":
        pytest.skip("TCP options exist only with PostgreSQL")
    import socket

    from sqlalchemy import text

    from registry.db import db

    app = make_app(DB_TCP_USER_TIMEOUT_MS=9000, DB_KEEPALIVES_IDLE_S=4)
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        raw: Any = conn.connection.dbapi_connection
        sock = socket.socket(fileno=raw.fileno())
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 4
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) > 0
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) > 0
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 9000
        finally:
            sock.detach()
