"""The database going away gives 503 problems quickly, and the service recovers alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask

from tests.conftest import TestDatabase
from tests.support.proxy import Proxy
from tests.test_errors import assert_problem


def _through(proxy: Proxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    credentials = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}"))


@pytest.fixture
def proxied_app(database: TestDatabase, make_app: Callable[..., Flask]) -> Any:
    if database.backend != "postgresql":
        pytest.skip("a network connection to cut exists only with PostgreSQL")
    parts = urlsplit(database.url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    app = make_app(SQLALCHEMY_DATABASE_URI=_through(proxy, database.url), DB_CONNECT_TIMEOUT_S=2)
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
