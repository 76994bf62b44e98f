"""Rate limits hold across workers in the default set-up, with nothing to install."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from registry import config
from registry.ratelimit import SQLiteStorage
from tests.support.server import call, gunicorn

API = "/api/v1"


def _login(base: str, email: str) -> tuple[int, dict[str, str]]:
    status, headers, _ = call(
        base, "POST", f"{API}/auth/login", body={"email": email, "password": "wrong password"}
    )
    return status, dict(headers)


def _in_parallel(base: str, emails: list[str]) -> list[tuple[int, dict[str, str]]]:
    """Two clients at once, so that both workers take attempts."""
    answers: list[tuple[int, dict[str, str]]] = []
    lock = threading.Lock()
    queue = list(emails)

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                email = queue.pop()
            answer = _login(base, email)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def _workers_that_answered(log: Path, path: str) -> set[str]:
    return set(re.findall(rf"^<(\d+)> POST {re.escape(path)} ", log.read_text(), re.M))


def test_login_limits_hold_across_gunicorn_workers_by_default(
    app: Flask, database: Any, signing_key_file: Path, tmp_path: Path
) -> None:
    """The documented limits (10 attempts per account, 50 per address, per 15 minutes),
    with the default store and two workers: the 11th attempt on one account and the
    51st from one address are 429 with Retry-After, whichever worker takes them."""
    config = database.app_config(
        signing_key_file, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=None
    )
    with gunicorn(config, tmp_path, workers=2) as base:
        account = f"{uuid.uuid4().hex}@example.org"
        answers = _in_parallel(base, [account] * 16)
        counted = Counter(status for status, _ in answers)
        assert counted == {401: 10, 429: 6}, counted
        assert all(int(h["Retry-After"]) > 0 for s, h in answers if s == 429)
        status, headers = _login(base, account)
        assert status == 429
        assert 800 < int(headers["Retry-After"]) <= 901

        # 17 attempts from this address so far; 33 more are allowed in the window.
        answers = _in_parallel(base, [f"{uuid.uuid4().hex}@example.org" for _ in range(40)])
        counted = Counter(status for status, _ in answers)
        assert counted == {401: 33, 429: 7}, counted
        assert all(int(h["Retry-After"]) > 0 for s, h in answers if s == 429)
    assert len(_workers_that_answered(tmp_path / "gunicorn.log", f"{API}/auth/login")) == 2
    assert (tmp_path / "ratelimits.sqlite3").exists()


def test_the_default_store_is_a_file_in_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGISTRY_RATELIMIT_STORAGE_URI", raising=False)
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    settings = config.load(str(tmp_path), None)
    assert settings["RATELIMIT_STORAGE_URI"] == f"sqlite:///{tmp_path / 'ratelimits.sqlite3'}"


def test_two_stores_on_one_file_share_one_moving_window(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'limits.sqlite3'}"
    first, second = SQLiteStorage(uri), SQLiteStorage(uri)
    assert [first.acquire_entry("k", 3, 60), second.acquire_entry("k", 3, 60)] == [True, True]
    assert first.acquire_entry("k", 3, 60)
    assert not second.acquire_entry("k", 3, 60)
    start, count = second.get_moving_window("k", 3, 60)
    assert count == 3
    assert time.time() - 5 < start <= time.time()
    assert second.acquire_entry("other", 3, 60)
    # An entry older than the window no longer counts.
    assert first.acquire_entry("short", 1, 1)
    assert not second.acquire_entry("short", 1, 1)
    time.sleep(1.1)
    assert second.acquire_entry("short", 1, 1)


def test_the_store_keeps_fixed_window_counters_too(tmp_path: Path) -> None:
    store = SQLiteStorage(f"sqlite:///{tmp_path / 'limits.sqlite3'}")
    assert [store.incr("c", 60), store.incr("c", 60, 2)] == [1, 3]
    assert store.get("c") == 3
    assert store.get_expiry("c") > time.time() + 50
    store.clear("c")
    assert store.get("c") == 0
    assert store.check()
    store.incr("d", 60)
    assert store.reset() == 1


def test_a_store_that_cannot_be_written_is_a_503(make_app: Any, tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite3"
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=f"sqlite:///{path}")
    path.unlink()
    path.mkdir()  # a directory where the file was: every connection fails
    from registry.ratelimit import _EXT

    app.extensions[_EXT].storage._local.pid = None  # reconnect, as a new worker would
    response = app.test_client().post(
        f"{API}/auth/login", json={"email": "x@example.org", "password": "y" * 12}
    )
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
