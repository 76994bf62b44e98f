"""Configuration: defaults, then the environment, then the mapping; secrets made safely."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from registry import config
from registry.logs import JsonFormatter


def test_environment_overrides_defaults_and_the_mapping_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_DB_LOCK_TIMEOUT_MS", "2500")
    monkeypatch.setenv("REGISTRY_SESSION_COOKIE_SECURE", "false")
    monkeypatch.setenv("REGISTRY_POLICY_SET_CHECK_INTERVAL_S", "0.25")
    monkeypatch.setenv("DATABASE_URL", "postgres://someone@db.example/registry")
    settings = config.load(str(tmp_path), {"DB_LOCK_TIMEOUT_MS": 3000})
    assert settings["DB_LOCK_TIMEOUT_MS"] == 3000
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert settings["POLICY_SET_CHECK_INTERVAL_S"] == 0.25
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://someone@db.example/registry"
    assert settings["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_a_malformed_environment_value_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_SESSION_COOKIE_SECURE", "perhaps")
    with pytest.raises(ValueError, match="not a boolean"):
        config.load(str(tmp_path), None)


def test_the_default_database_is_sqlite_in_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = config.load(str(tmp_path), None)
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'registry.sqlite3'}"


def test_secrets_are_generated_once_owner_only_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGISTRY_SECRET_KEY", raising=False)
    first = config.load(str(tmp_path), None)
    second = config.load(str(tmp_path), None)
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert len(first["SECRET_KEY"]) == 64
    key_file = tmp_path / "secret-key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    from registry.keys import load_signing_key

    key = load_signing_key(first["SIGNING_KEY_FILE"])
    assert (
        load_signing_key(first["SIGNING_KEY_FILE"]).public_key().public_bytes_raw()
        == key.public_key().public_bytes_raw()
    )
    assert stat.S_IMODE(os.stat(first["SIGNING_KEY_FILE"]).st_mode) == 0o600
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_logs_are_json_lines_with_the_request_id(client: Any) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("registry.access")
    access.addHandler(handler)
    try:
        response = client.get("/healthz", headers={"X-Request-ID": "trace-me-7"})
        client.get("/nowhere")
    finally:
        access.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert len(entries) == 2
    assert entries[0]["request_id"] == response.headers["X-Request-ID"] == "trace-me-7"
    assert (entries[0]["method"], entries[0]["path"], entries[0]["status"]) == (
        "GET",
        "/healthz",
        200,
    )
    assert entries[1]["status"] == 404
    assert entries[1]["request_id"] and entries[1]["request_id"] != "trace-me-7"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _default_app(instance: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from registry import create_app

    for name in ("DATABASE_URL", "RATELIMIT_STORAGE_URI"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("REGISTRY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REGISTRY_INSTANCE_PATH", str(instance))
    return create_app({"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024})


def _owner_only_throughout(instance: Path) -> None:
    assert _mode(instance) == 0o700
    for name in ("registry.sqlite3", "ratelimits.sqlite3"):
        for suffix in ("", "-wal", "-shm"):
            path = instance / f"{name}{suffix}"
            if suffix == "" or path.exists():
                assert _mode(path) == 0o600, (path.name, oct(_mode(path)))


def test_the_database_files_and_instance_folder_are_owner_only_from_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded database holds password and token hashes: the file, its -wal and
    -shm, the rate-limit store and the instance folder are the owner's alone, under the
    usual umask, from the moment they exist."""
    from flask_migrate import upgrade

    from registry.db import db
    from registry.ratelimit import hit

    previous = os.umask(0o022)
    try:
        instance = tmp_path / "instance"
        app = _default_app(instance, monkeypatch)
        _owner_only_throughout(instance)
        with app.app_context():
            upgrade()  # the first write: SQLite makes its -wal and -shm now
            assert (instance / "registry.sqlite3-wal").exists()
            _owner_only_throughout(instance)
            db.session.remove()
            db.engine.dispose()
        with app.test_request_context():
            hit("RATELIMIT_LOGIN_PER_ACCOUNT", "someone@example.org")
        assert (instance / "ratelimits.sqlite3-wal").exists()
        _owner_only_throughout(instance)
    finally:
        os.umask(previous)


def test_files_left_readable_by_others_are_made_owner_only_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    for name in ("registry.sqlite3", "ratelimits.sqlite3"):
        sqlite3.connect(instance / name).execute("PRAGMA journal_mode = WAL").close()
        for suffix in ("", "-wal", "-shm"):
            (instance / f"{name}{suffix}").touch()
            os.chmod(instance / f"{name}{suffix}", 0o644)
    os.chmod(instance, 0o755)  # noqa: S103 - left open to others, as the start must fix
    _default_app(instance, monkeypatch)
    _owner_only_throughout(instance)
