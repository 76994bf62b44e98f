"""The audit trail: written with every change, refuses edits, and shows any tampering."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from registry.db import db
from registry.models.audit import AuditEvent, Checkpoint
from registry.models.identity import Organisation
from registry.services import audit, chain, merkle
from tests import factories as f
from tests.support.problems import assert_problem
from tests.support.tamper import behind_the_back, rehash_from, rows

AS_JSON = {"Accept": "application/json"}
API = "/api/v1"
N = 12


@pytest.fixture
def log(app: Flask) -> Flask:
    for i in range(N):
        f.organisation(f"Trust {i}")  # one write, one event, one checkpoint each
    return app


def _verify() -> chain.Report:
    db.session.remove()
    return audit.verify(db.session())


def test_every_change_is_recorded_with_a_checkpoint(log: Flask) -> None:
    events = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert [e.seq for e in events] == list(range(1, N + 1))
    assert {e.action for e in events} == {"organisation.created"}
    assert events[0].prev_hash == chain.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    sizes = db.session.execute(select(Checkpoint.size).order_by(Checkpoint.size)).scalars()
    assert list(sizes) == list(range(1, N + 1))
    report = _verify()
    assert report.ok and report.events == N


def test_a_failed_audit_write_fails_the_request_and_changes_nothing(
    log: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _ = f.as_role(log, "admin")
    before = db.session.execute(select(func.count()).select_from(Organisation)).scalar_one()
    events = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()

    def broken(*_args: Any) -> None:
        raise RuntimeError("the audit store is broken")

    monkeypatch.setattr(audit, "_append", broken)
    response = admin.post(f"{API}/organisations", json={"name": "New Trust", "kind": "icb"})
    assert_problem(response, 500)
    monkeypatch.undo()
    db.session.remove()
    assert db.session.execute(select(func.count()).select_from(Organisation)).scalar_one() == before
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events
    assert _verify().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'nothing.happened' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 12",
        "UPDATE audit_checkpoints SET root_hash = 'x' WHERE size = 3",
        "DELETE FROM audit_checkpoints WHERE size = 12",
        "TRUNCATE audit_events",
        "TRUNCATE audit_checkpoints",
    ],
)
def test_the_database_refuses_to_change_the_audit_tables(log: Flask, statement: str) -> None:
    if statement.startswith("TRUNCATE") and db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert _verify().ok


# --- the tamper matrix: each change behind the service's back is found, and where -----------


def _change_a_field(conn: Any) -> None:
    conn.execute(text("UPDATE audit_events SET entity_id = 'forged' WHERE seq = 5"))


def _delete_one(conn: Any) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE seq = 5"))


def _insert_one(conn: Any) -> None:
    events = rows(conn)
    for event in reversed(events[4:]):
        conn.execute(
            text("UPDATE audit_events SET seq = seq + 1 WHERE seq = :s"), {"s": event["seq"]}
        )
    forged = dict(events[4], seq=5, entity_id="forged", hash="f" * 64)
    columns = ", ".join(forged)
    conn.execute(
        text(f"INSERT INTO audit_events ({columns}) VALUES ({', '.join(':' + c for c in forged)})"),
        {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in forged.items()},
    )
    rehash_from(conn, 5, fix_checkpoint_roots=False)


def _swap_two(conn: Any) -> None:
    events = {e["seq"]: e for e in rows(conn)}
    move = text(
        "UPDATE audit_events SET entity_id = :e, prev_hash = :p, hash = :h, "
        "occurred_at = :o WHERE seq = :s"
    )
    conn.execute(text("UPDATE audit_events SET hash = 'moving' WHERE seq = 5"))
    for seq, source in ((8, events[5]), (5, events[8])):
        conn.execute(
            move,
            {
                "e": source["entity_id"],
                "p": source["prev_hash"],
                "h": source["hash"],
                "o": source["occurred_at"],
                "s": seq,
            },
        )


def _truncate_tail(conn: Any) -> None:
    conn.execute(text("DELETE FROM audit_events WHERE seq >= 5"))


def _rewrite_from(conn: Any) -> None:
    conn.execute(text("UPDATE audit_events SET entity_id = 'forged' WHERE seq = 5"))
    rehash_from(conn, 5, fix_checkpoint_roots=True)


def _rewrite_and_drop_checkpoints(conn: Any) -> None:
    conn.execute(text("UPDATE audit_events SET entity_id = 'forged' WHERE seq = 5"))
    rehash_from(conn, 5, fix_checkpoint_roots=False)
    conn.execute(text("DELETE FROM audit_checkpoints WHERE size >= 5"))


def _append_a_forgery(conn: Any) -> None:
    last = rows(conn)[-1]
    forged = dict(last, seq=N + 1, entity_id="forged", hash="e" * 64)
    columns = ", ".join(forged)
    conn.execute(
        text(f"INSERT INTO audit_events ({columns}) VALUES ({', '.join(':' + c for c in forged)})"),
        {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in forged.items()},
    )
    rehash_from(conn, N + 1, fix_checkpoint_roots=False)


TAMPERING: list[tuple[str, Callable[[Any], None], int]] = [
    ("change a field", _change_a_field, 5),
    ("delete an event", _delete_one, 5),
    ("insert an event", _insert_one, 5),
    ("swap two events", _swap_two, 5),
    ("truncate the tail", _truncate_tail, 5),
    ("rewrite the chain from an event", _rewrite_from, 5),
    ("rewrite and drop the later checkpoints", _rewrite_and_drop_checkpoints, 5),
    ("append a forged event", _append_a_forgery, N + 1),
]


@pytest.mark.parametrize(("name", "tamper", "first_bad"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_is_detected_and_located(
    log: Flask, name: str, tamper: Callable[[Any], None], first_bad: int
) -> None:
    assert _verify().ok
    with behind_the_back() as conn:
        tamper(conn)
    report = _verify()
    assert not report.ok, name
    assert report.first_bad_seq == first_bad, report.reason
    public = log.test_client().get(f"{API}/audit-events/verify").get_json()
    assert (public["ok"], public["first_bad_seq"]) == (False, first_bad)
    result = log.test_cli_runner().invoke(args=["registry", "audit", "verify"])
    assert result.exit_code == 1
    assert f"first bad sequence number: {first_bad}" in result.output


def test_a_consistent_rewrite_with_its_checkpoints_dropped_is_caught_by_an_older_checkpoint(
    log: Flask, tmp_path: Path
) -> None:
    """Someone rewrote the tail and deleted every checkpoint after it: only a checkpoint kept
    outside the registry shows it. The verifier checks the export against it."""
    client, _ = f.as_role(log, "auditor")
    kept = client.get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
    with behind_the_back() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= 9"))
        conn.execute(text("UPDATE audit_events SET entity_id = 'forged' WHERE seq = 7"))
        rehash_from(conn, 7, fix_checkpoint_roots=False)
        conn.execute(text("DELETE FROM audit_checkpoints WHERE size >= 7"))
    assert _verify().reason is not None  # the registry's own verify sees the uncovered tail
    export = tmp_path / "export.jsonl"
    export.write_bytes(_export(client))
    (tmp_path / "kept.json").write_text(json.dumps(kept))
    (tmp_path / "now.json").write_text(
        json.dumps(
            log.test_client().get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
        )
    )
    result = _run_verifier(export, tmp_path / "now.json", "--previous", tmp_path / "kept.json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["first_bad_seq"] == 7


# --- reading, exporting, proving -----------------------------------------------------------


def test_events_are_listed_with_filters_and_cursors(log: Flask) -> None:
    auditor, _ = f.as_role(log, "auditor")
    page = auditor.get(f"{API}/audit-events?limit=5")
    assert [e["seq"] for e in page.get_json()] == [1, 2, 3, 4, 5]
    link = page.headers["Link"]
    following = auditor.get(link[1 : link.index(">")]).get_json()
    assert [e["seq"] for e in following] == [6, 7, 8, 9, 10]
    tokens = auditor.get(f"{API}/audit-events?action=token.created").get_json()
    assert len(tokens) == 1
    assert tokens[0]["actor"]["label"] == "tests"
    one = auditor.get(f"{API}/audit-events?entity_type=organisation&entity_id=3").get_json()
    assert [e["seq"] for e in one] == [3]
    assert_problem(auditor.get(f"{API}/audit-events?since=yesterday"), 422)


def _export(client: Any, query: str = "") -> bytes:
    # A streamed response keeps its request (and transaction) open until it is closed.
    with client.get(f"{API}/audit-events/export{query}") as response:
        assert response.status_code == 200
        return bytes(response.get_data())


def test_the_export_streams_jsonl_and_csv(log: Flask) -> None:
    auditor, _ = f.as_role(log, "auditor")
    with auditor.get(f"{API}/audit-events/export") as response:
        assert response.mimetype == "application/x-ndjson"
        assert response.is_streamed
        text_body = response.get_data(as_text=True)
    lines = [json.loads(line) for line in text_body.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert all(chain.event_hash(e) == e["hash"] for e in lines)
    as_csv = _export(auditor, "?format=csv").decode()
    assert as_csv.splitlines()[0].startswith("seq,time,actor_type")
    assert len(as_csv.splitlines()) == len(lines) + 1
    assert_problem(auditor.get(f"{API}/audit-events/export?format=xml"), 422)


def test_proofs_check_out_against_the_signed_checkpoint(log: Flask) -> None:
    client = log.test_client()
    checkpoint = client.get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
    key = base64.b64decode(checkpoint["public_key"])
    assert chain.checkpoint_signature_valid(key, checkpoint)
    size = checkpoint["size"]
    for seq in (1, 4, size):
        proof = client.get(f"{API}/audit-events/{seq}/inclusion?size={size}").get_json()
        assert proof["root_hash"] == checkpoint["root_hash"]
        assert merkle.verify_inclusion(
            merkle.leaf_hash(bytes.fromhex(proof["event_hash"])),
            seq - 1,
            size,
            [bytes.fromhex(n) for n in proof["proof"]],
            bytes.fromhex(checkpoint["root_hash"]),
        )
    older = client.get(f"{API}/audit-events/5/inclusion?size=5").get_json()["checkpoint"]
    consistency = client.get(f"{API}/audit-events/consistency?from=5&to={size}").get_json()
    assert consistency["from_root"] == older["root_hash"]
    assert merkle.verify_consistency(
        5,
        size,
        bytes.fromhex(older["root_hash"]),
        bytes.fromhex(checkpoint["root_hash"]),
        [bytes.fromhex(n) for n in consistency["proof"]],
    )
    assert_problem(client.get(f"{API}/audit-events/{size + 5}/inclusion"), 404)
    assert_problem(client.get(f"{API}/audit-events/1/inclusion?size={size + 100}"), 422)
    assert_problem(client.get(f"{API}/audit-events/consistency?from=9&to=3"), 422)
    assert_problem(client.get(f"{API}/audit-events/consistency"), 422)


def _run_verifier(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry.verify", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_the_standalone_verifier(log: Flask, tmp_path: Path) -> None:
    auditor, _ = f.as_role(log, "auditor")
    older = auditor.get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
    f.organisation("Later Trust")
    newer = auditor.get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
    export = tmp_path / "export.jsonl"
    export.write_bytes(_export(auditor))
    (tmp_path / "older.json").write_text(json.dumps(older))
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    good = _run_verifier(
        export,
        tmp_path / "newer.json",
        "--previous",
        tmp_path / "older.json",
        "--public-key",
        newer["public_key"],
    )
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] and report["extends"]["holds"] and report["key_pinned"]
    lines = export.read_text().splitlines()
    altered = json.loads(lines[3])
    altered["entity"]["id"] = "forged"
    lines[3] = json.dumps(altered)
    export.write_text("\n".join(lines) + "\n")
    bad = _run_verifier(export, tmp_path / "newer.json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["first_bad_seq"] == 4
    wrong_key = base64.b64encode(b"\x01" * 32).decode()
    forged = _run_verifier(export, tmp_path / "newer.json", "--public-key", wrong_key)
    assert forged.returncode == 1
    assert _run_verifier(tmp_path / "missing.jsonl", tmp_path / "newer.json").returncode == 2


def test_the_verifier_loads_neither_flask_nor_a_database_driver() -> None:
    probe = (
        "import sys, registry.verify; "
        "bad = [m for m in ('flask', 'sqlalchemy', 'psycopg', 'sqlite3') if m in sys.modules];"
        " print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- backup and restore ------------------------------------------------------------------------


def test_backup_and_restore_keep_the_log_and_its_root(
    log: Flask, make_app: Callable[..., Flask], fresh_database: str, tmp_path: Path
) -> None:
    f.catalogue()
    f.published("research-data")
    checkpoint = log.test_client().get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
    backup = tmp_path / "registry.backup.gz"
    assert log.test_cli_runner().invoke(args=["registry", "backup", str(backup)]).exit_code == 0
    target = make_app(SQLALCHEMY_DATABASE_URI=fresh_database)
    runner = target.test_cli_runner()
    client = target.test_client()
    # The CLI runs in the current app context if there is one: give it the target's.
    with target.app_context():
        from flask_migrate import upgrade

        upgrade()
        restored = runner.invoke(args=["registry", "restore", str(backup)])
        assert restored.exit_code == 0, restored.output
        assert "verifies" in restored.output
        after = client.get(f"{API}/audit-events/checkpoint", headers=AS_JSON).get_json()
        assert (after["size"], after["root_hash"]) == (checkpoint["size"], checkpoint["root_hash"])
        assert client.get(f"{API}/audit-events/verify").get_json()["ok"]
        assert client.get(f"{API}/policy-set").get_json()["revision"] == 1
        # The restored registry keeps working: a new write extends the same chain.
        again = runner.invoke(
            args=["registry", "create-user", "new@example.org", "--role", "reader"]
        )
        assert again.exit_code == 0, again.output
        assert client.get(f"{API}/audit-events/verify").get_json()["ok"]
        twice = runner.invoke(args=["registry", "restore", str(backup)])
        assert twice.exit_code != 0
        assert "not empty" in twice.output


# --- rows the verifier cannot read: a clean failure at their sequence number ---------------

UNREADABLE: list[tuple[str, str, str]] = [
    # (name, statement, which database can hold it)
    ("after is not JSON", "UPDATE audit_events SET after = '{not json' WHERE seq = 5", "sqlite"),
    ("time is not a time", "UPDATE audit_events SET occurred_at = 'soon' WHERE seq = 5", "sqlite"),
    ("seq is not a number", "UPDATE audit_events SET seq = 'five' WHERE seq = 5", "sqlite"),
    (
        "a number JSON cannot hold",
        "UPDATE audit_events SET after = '{\"a\": 1e999}' WHERE seq = 5",
        "any",
    ),
    ("hash is not hex", "UPDATE audit_events SET hash = 'not hex' WHERE seq = 5", "any"),
    ("seq out of order", "UPDATE audit_events SET seq = 500 WHERE seq = 5", "any"),
    (
        "checkpoint time",
        "UPDATE audit_checkpoints SET issued_at = 'later' WHERE size = 5",
        "sqlite",
    ),
    ("checkpoint root", "UPDATE audit_checkpoints SET root_hash = 5 WHERE size = 5", "sqlite"),
]


@pytest.mark.parametrize(("name", "statement", "where"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_a_row_that_cannot_be_read_is_a_clean_failure(
    log: Flask, name: str, statement: str, where: str
) -> None:
    if where != "any" and db.engine.dialect.name != where:
        pytest.skip(f"only {where} can hold this")
    with behind_the_back() as conn:
        conn.execute(text(statement))
    report = _verify()
    assert not report.ok, name
    assert report.first_bad_seq == 5, report.reason
    public = log.test_client().get(f"{API}/audit-events/verify")
    assert public.status_code == 200
    assert (public.get_json()["ok"], public.get_json()["first_bad_seq"]) == (False, 5)
    result = log.test_cli_runner().invoke(args=["registry", "audit", "verify"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "first bad sequence number: 5" in result.output
