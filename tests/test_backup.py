"""Backups: signed, owner-only, and refused whole when anything in them was changed."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select, text

from registry.config import normalise_database_url
from registry.db import db
from registry.keys import load_signing_key
from registry.services import backup, chain, identity
from tests import factories as f
from tests.conftest import POSTGRES_SERVER, TestDatabase, _with_database

AS_JSON = {"Accept": "application/json"}
API = "/api/v1"
Lines = list[bytes]


@pytest.fixture
def source(app: Flask) -> Flask:
    """A registry with a published policy, a reader and the reader's token."""
    f.catalogue()
    f.published("research-data")
    reader = f.user("reader", email="reader@example.org")
    f.token(reader)
    return app


@pytest.fixture
def taken(source: Flask, tmp_path: Path) -> Path:
    path = tmp_path / "registry.backup.gz"
    result = source.test_cli_runner().invoke(args=["registry", "backup", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def target(make_app: Callable[..., Flask], fresh_database: str) -> Iterator[Flask]:
    """An empty, migrated registry with the same signing key, its app context pushed (the
    CLI runs in the current app context if there is one)."""
    made = make_app(SQLALCHEMY_DATABASE_URI=fresh_database)
    with made.app_context():
        upgrade()
        yield made


@pytest.fixture
def signing_key(signing_key_file: Path) -> Ed25519PrivateKey:
    return load_signing_key(str(signing_key_file))


def _restore(app: Flask, path: Path, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["registry", "restore", str(path), *args])


def _counts(app: Flask) -> dict[str, int]:
    with app.app_context(), db.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in db.metadata.sorted_tables
        }


def _assert_empty(app: Flask) -> None:
    """Nothing written: every table empty but the log's head, still at size 0."""
    counts = _counts(app)
    assert counts.pop("audit_head") == 1
    assert set(counts.values()) == {0}
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("SELECT size FROM audit_head")).scalar_one() == 0


def _lines(path: Path) -> Lines:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def _rewrite(
    path: Path,
    edit: Callable[[Lines], Lines],
    *,
    sign_with: Ed25519PrivateKey | None = None,
    name: str = "edited.backup.gz",
) -> Path:
    """A copy of the backup with its rows edited; its manifest kept, or made again and
    signed with ``sign_with`` (what a bug, not an attacker, could produce)."""
    lines = _lines(path)
    header, rows, last = lines[0], edit(lines[1:-1]), lines[-1]
    if sign_with is not None:
        manifest = json.loads(last)["manifest"]
        del manifest["key_id"]
        for entry in manifest["tables"]:
            mine = [line for line in rows if json.loads(line)["t"] == entry["name"]]
            entry["rows"] = len(mine)
            entry["sha256"] = hashlib.sha256(b"".join(mine)).hexdigest()
        last = backup.manifest_line(sign_with, manifest)
    edited = path.with_name(name)
    edited.write_bytes(gzip.compress(header + b"".join(rows) + last))
    return edited


def _change(table: str, change: Callable[[dict[str, Any]], bool]) -> Callable[[Lines], Lines]:
    """Edit the first row of ``table`` for which ``change`` (editing it) returns True."""

    def edit(rows: Lines) -> Lines:
        for i, line in enumerate(rows):
            item = json.loads(line)
            if item["t"] == table and change(item["r"]):
                rows[i] = json.dumps(item, separators=(",", ":")).encode() + b"\n"
                return rows
        raise AssertionError(f"no row of {table} to change")

    return edit


def _make_admin(row: dict[str, Any]) -> bool:
    if row["email"] != "reader@example.org":
        return False
    row["role"] = "admin"
    return True


def _change_published_body(row: dict[str, Any]) -> bool:
    if row["status"] != "published":
        return False
    row["body"] += "\n\nData may also be sold to any buyer."
    return True


def _plant_token_hash(row: dict[str, Any]) -> bool:
    row["secret_hash"] = identity.hash_secret("the attacker's own secret")
    return True


HAND_EDITS = [
    ("a reader made admin", "users", _make_admin),
    ("a published body changed", "policy_versions", _change_published_body),
    ("a token hash planted", "api_tokens", _plant_token_hash),
]


def test_a_backup_is_owner_only_from_creation_and_signed(
    source: Flask, tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "registry.backup.gz"
    seen: list[int] = []

    def while_writing(_table: str, _rows: int) -> None:
        for entry in tmp_path.iterdir():
            seen.append(stat.S_IMODE(entry.stat().st_mode))

    migration = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    saved = os.umask(0)  # the most open umask: the mode must not depend on it
    try:
        backup.write(db.session(), path, migration, signing_key, progress=while_writing)
    finally:
        os.umask(saved)
    assert seen and set(seen) == {0o600}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    last = json.loads(_lines(path)[-1])
    public = chain.public_key_bytes(signing_key.public_key())
    assert last["manifest"]["key_id"] == chain.key_id(public)
    assert base64.b64decode(last["public_key"]) == public
    by_name = {t["name"]: t for t in last["manifest"]["tables"]}
    assert by_name["users"]["rows"] >= 3 and len(by_name["users"]["sha256"]) == 64


def test_the_backup_command_writes_owner_only(taken: Path) -> None:
    assert stat.S_IMODE(taken.stat().st_mode) == 0o600


@pytest.mark.parametrize(("name", "table", "change"), HAND_EDITS, ids=[e[0] for e in HAND_EDITS])
def test_a_backup_edited_by_hand_is_refused_and_nothing_is_written(
    taken: Path, target: Flask, name: str, table: str, change: Callable[[dict[str, Any]], bool]
) -> None:
    edited = _rewrite(taken, _change(table, change))
    result = _restore(target, edited)
    assert result.exit_code != 0, name
    assert f"Table {table}: its lines do not match the signed manifest" in result.output
    _assert_empty(target)


def test_a_manifest_made_again_without_the_key_is_refused(taken: Path, target: Flask) -> None:
    forger = Ed25519PrivateKey.generate()
    edited = _rewrite(taken, _change("users", _make_admin), sign_with=forger)
    lines = _lines(edited)
    # The forger keeps the registry's key id and public key, and only the digests are theirs.
    forged, original = json.loads(lines[-1]), json.loads(_lines(taken)[-1])
    forged["manifest"]["key_id"] = original["manifest"]["key_id"]
    forged["public_key"] = original["public_key"]
    edited.write_bytes(gzip.compress(b"".join(lines[:-1]) + json.dumps(forged).encode() + b"\n"))
    result = _restore(target, edited)
    assert result.exit_code != 0
    assert "does not carry a valid signature" in result.output
    _assert_empty(target)


def _cut_the_gzip_stream(path: Path) -> Path:
    cut = path.with_name("cut.backup.gz")
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return cut


def _drop_the_last_lines(path: Path) -> Path:
    lines = _lines(path)
    cut = path.with_name("short.backup.gz")
    cut.write_bytes(gzip.compress(b"".join(lines[: len(lines) // 2])))
    return cut


@pytest.mark.parametrize("cut", [_cut_the_gzip_stream, _drop_the_last_lines])
def test_a_truncated_backup_is_refused(
    taken: Path, target: Flask, cut: Callable[[Path], Path]
) -> None:
    result = _restore(target, cut(taken))
    assert result.exit_code != 0
    assert "truncated" in result.output
    _assert_empty(target)


def test_a_reordered_line_is_refused(taken: Path, target: Flask) -> None:
    def swap(rows: Lines) -> Lines:
        events = [i for i, line in enumerate(rows) if json.loads(line)["t"] == "audit_events"]
        a, b = events[2], events[3]
        rows[a], rows[b] = rows[b], rows[a]
        return rows

    result = _restore(target, _rewrite(taken, swap))
    assert result.exit_code != 0
    assert "Table audit_events: its lines do not match" in result.output
    _assert_empty(target)


def test_a_backup_signed_by_another_key_is_refused(
    taken: Path, make_app: Callable[..., Flask], fresh_database: str, tmp_path: Path
) -> None:
    other = make_app(
        SQLALCHEMY_DATABASE_URI=fresh_database, SIGNING_KEY_FILE=str(tmp_path / "other.pem")
    )
    signed_by = json.loads(_lines(taken)[-1])["manifest"]["key_id"]
    with other.app_context():
        upgrade()
        ours = chain.key_id(
            chain.public_key_bytes(other.extensions["registry.signing_key"].public_key())
        )
        result = _restore(other, taken)
        assert result.exit_code != 0
        assert f"signed by key {signed_by}, not by this registry's key {ours}" in result.output
        _assert_empty(other)


def test_a_failure_mid_restore_leaves_the_target_empty(
    taken: Path, target: Flask, signing_key: Ed25519PrivateKey
) -> None:
    """A backup that passes every check but that the database refuses part-way (here a
    duplicated row, signed as if a bug had written it): the rows before it go too."""

    def duplicate(rows: Lines) -> Lines:
        last = max(i for i, line in enumerate(rows) if json.loads(line)["t"] == "policy_versions")
        return [*rows[: last + 1], rows[last], *rows[last + 1 :]]

    result = _restore(target, _rewrite(taken, duplicate, sign_with=signing_key))
    assert result.exit_code != 0
    assert "Table policy_versions, lines" in result.output
    assert "the database refused the rows" in result.output
    _assert_empty(target)


def test_a_restore_whose_audit_trail_does_not_verify_is_undone(
    taken: Path, target: Flask, signing_key: Ed25519PrivateKey
) -> None:
    def forge(row: dict[str, Any]) -> bool:
        if row["seq"] != 3:
            return False
        row["entity_id"] = "forged"
        return True

    edited = _rewrite(taken, _change("audit_events", forge), sign_with=signing_key)
    result = _restore(target, edited)
    assert result.exit_code != 0
    assert "does not verify (first bad sequence number 3" in result.output
    _assert_empty(target)


def _version_1(path: Path) -> Path:
    lines = _lines(path)
    header = json.loads(lines[0]) | {"version": 1}
    old = path.with_name("version-1.backup.gz")
    old.write_bytes(gzip.compress(json.dumps(header).encode() + b"\n" + b"".join(lines[1:-1])))
    return old


def test_a_version_1_backup_is_restored_only_with_unsigned(taken: Path, target: Flask) -> None:
    old = _version_1(taken)
    refused = _restore(target, old)
    assert refused.exit_code != 0
    assert "version 1 backup: it is not signed" in refused.output
    assert "--unsigned" in refused.output
    _assert_empty(target)
    accepted = _restore(target, old, "--unsigned")
    assert accepted.exit_code == 0, accepted.output
    assert "audit trail verifies" in accepted.output
    assert target.test_client().get(f"{API}/audit-events/verify").get_json()["ok"]


def test_a_signed_backup_restores_and_keeps_working(
    taken: Path, target: Flask, source: Flask
) -> None:
    with source.app_context():
        expected = _counts(source)
    result = _restore(target, taken)
    assert result.exit_code == 0, result.output
    assert _counts(target) == expected
    assert target.test_client().get(f"{API}/policy-set").get_json()["revision"] == 1
    again = target.test_cli_runner().invoke(
        args=["registry", "create-user", "new@example.org", "--role", "reader"]
    )
    assert again.exit_code == 0, again.output
    assert target.test_client().get(f"{API}/audit-events/verify").get_json()["ok"]


@pytest.fixture
def other_database(database: TestDatabase, tmp_path: Path) -> Iterator[str]:
    """An empty database of the other kind: SQLite from a PostgreSQL run, and PostgreSQL
    (when it can be reached) from a SQLite run."""
    if database.backend == "postgresql":
        yield f"sqlite:///{tmp_path / 'other.sqlite3'}"
        return
    name = f"registry_other_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    try:
        yield normalise_database_url(_with_database(POSTGRES_SERVER, name))
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_restores_into_the_other_database(
    taken: Path, source: Flask, make_app: Callable[..., Flask], other_database: str
) -> None:
    with source.app_context():
        expected = _counts(source)
        checkpoint = (
            source.test_client().get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
        )
    other = make_app(SQLALCHEMY_DATABASE_URI=other_database)
    with other.app_context():
        upgrade()
        result = _restore(other, taken)
        assert result.exit_code == 0, result.output
        assert _counts(other) == expected
        after = (
            other.test_client().get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
        )
        assert (after["size"], after["root_hash"]) == (checkpoint["size"], checkpoint["root_hash"])
        assert other.test_client().get(f"{API}/audit-events/verify").get_json()["ok"]


def test_tables_keyed_on_two_columns_are_backed_up_batch_after_batch(
    source: Flask, target: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Witnesses' cosignatures are keyed on (size, witness): a backup pages them on the
    whole key, so none is lost or repeated across batches (two rows a batch here)."""
    from datetime import UTC, datetime

    from registry.models.audit import Cosignature, WitnessProgress

    with source.app_context():
        when = datetime(2026, 12, 3, tzinfo=UTC)
        for size in (1, 2, 3):
            for witness in ("w1.example/w", "w2.example/w"):
                db.session.add(
                    Cosignature(
                        size=size, witness=witness, line=f"{size} {witness}\n", cosigned_at=when
                    )
                )
        db.session.add(WitnessProgress(witness="w1.example/w", size=3, checked_at=when))
        db.session.commit()
        expected = _counts(source)
    monkeypatch.setattr(backup, "BATCH", 2)
    path = tmp_path / "keyed.backup.gz"
    with source.app_context():
        made = source.test_cli_runner().invoke(args=["registry", "backup", str(path)])
    assert made.exit_code == 0, made.output
    result = _restore(target, path)
    assert result.exit_code == 0, result.output
    assert _counts(target) == expected
    with target.app_context():
        kept = db.session.query(Cosignature.size, Cosignature.witness).order_by(
            Cosignature.size, Cosignature.witness
        )
        assert [tuple(row) for row in kept] == [
            (size, witness) for size in (1, 2, 3) for witness in ("w1.example/w", "w2.example/w")
        ]
