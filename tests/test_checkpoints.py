"""Checkpoints on a cadence (registry.checkpoints): a write is answered at once with its
events' places in the log, and a signed checkpoint covers them within the interval, with
no further request; verification tells events awaiting their checkpoint from events left
uncovered; the log's head is checked against the events."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from registry.db import db
from registry.models.audit import AuditEvent, Checkpoint
from registry.services import audit, chain
from tests import factories as f
from tests.support.tamper import behind_the_back

API = "/api/v1"
SLUG = "research-data"
DECISION = {
    "purpose": "research",
    "data_category": "depersonalised",
    "commercial_involvement": False,
}


def _scalar(app: Flask, statement: Any) -> int:
    with app.app_context():
        value = db.session.execute(statement).scalar() or 0
        db.session.remove()
        return int(value)


def _latest(app: Flask) -> int:
    return _scalar(app, select(func.max(Checkpoint.size)))


def _events(app: Flask) -> int:
    return _scalar(app, select(func.max(AuditEvent.seq)))


def _wait_until(condition: Callable[[], bool], seconds: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def cadenced(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    def build(**overrides: Any) -> Flask:
        made = make_app(**{"CHECKPOINT_INTERVAL_S": 0.3, **overrides})
        with made.app_context():
            f.catalogue()
            f.published(SLUG)
            db.session.remove()
        return made

    return build


def test_a_write_is_answered_at_once_and_checkpointed_within_the_interval(
    app: Flask, cadenced: Callable[..., Flask]
) -> None:
    # An interval long enough that the checks before it ends finish first on a busy machine
    # (at 1 s, a loaded CI machine once took longer than that to ask).
    made = cadenced(CHECKPOINT_INTERVAL_S=2.0)
    client, _ = f.as_role(made, "reader")
    _wait_until(lambda: _latest(made) == _events(made), 6.0)  # the setup's interval is over
    before = _latest(made)
    answer = client.post(f"{API}/decisions", json=DECISION)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    decision = answer.get_json()
    # The answer says where its event went: the index the decision cites, and the leaf.
    index = int(answer.headers["Audit-Log-Index"])
    assert index == decision["log"]["index"]
    with made.app_context():
        stored = db.session.execute(
            select(AuditEvent.hash).where(AuditEvent.seq == index + 1)
        ).scalar_one()
        db.session.remove()
    leaf = hashlib.sha256(b"\x00" + bytes.fromhex(stored)).digest()
    assert answer.headers["Audit-Log-Leaf-Hash"] == base64.b64encode(leaf).decode()
    # Chained now; not yet signed: the proof says when to ask again, verify says it waits.
    assert _latest(made) == before
    early = client.get(f"{API}/decisions/{decision['id']}/proof")
    assert early.status_code == 404
    assert early.get_json()["type"].endswith("/awaiting-checkpoint")
    assert early.headers["Retry-After"] == "2"
    report = made.test_client().get(f"{API}/audit-events/verify").get_json()
    assert report["ok"] is True, report
    assert report["awaiting_checkpoint"] >= 1
    # Within the interval (and some scheduling slack), with no request in between.
    waited = _wait_until(lambda: _latest(made) >= index + 1, 5.0)
    assert waited < 3.0
    proof = client.get(f"{API}/decisions/{decision['id']}/proof")
    assert proof.status_code == 200
    report = made.test_client().get(f"{API}/audit-events/verify").get_json()
    assert report["ok"] is True and report["awaiting_checkpoint"] == 0
    # Once idle, the next write starts the interval again.
    time.sleep(2.2)
    later = client.post(f"{API}/decisions", json=DECISION)
    index = int(later.headers["Audit-Log-Index"])
    assert _wait_until(lambda: _latest(made) >= index + 1, 6.0) < 3.0


def test_a_burst_of_writes_shares_checkpoints(app: Flask, cadenced: Callable[..., Flask]) -> None:
    made = cadenced()
    client, _ = f.as_role(made, "reader")
    _wait_until(lambda: _latest(made) == _events(made), 3.0)
    checkpoints_before = _checkpoint_count(made)
    for _ in range(20):
        assert client.post(f"{API}/decisions", json=DECISION).status_code == 201
    _wait_until(lambda: _latest(made) == _events(made), 3.0)
    issued = _checkpoint_count(made) - checkpoints_before
    assert 1 <= issued < 20


def _checkpoint_count(app: Flask) -> int:
    return _scalar(app, select(func.count()).select_from(Checkpoint))


def test_enough_waiting_events_are_checkpointed_before_the_interval(
    app: Flask, cadenced: Callable[..., Flask]
) -> None:
    made = cadenced(CHECKPOINT_INTERVAL_S=60, CHECKPOINT_MAX_EVENTS=3)
    client, _ = f.as_role(made, "reader")
    for _ in range(3):
        assert client.post(f"{API}/decisions", json=DECISION).status_code == 201
    assert _wait_until(lambda: _latest(made) == _events(made), 5.0) < 5.0


def test_a_command_s_writes_are_checkpointed_as_they_commit(
    app: Flask, cadenced: Callable[..., Flask]
) -> None:
    made = cadenced(CHECKPOINT_INTERVAL_S=60)
    result = made.test_cli_runner().invoke(
        args=["registry", "create-user", "cli@example.org", "--role", "reader"]
    )
    assert result.exit_code == 0, result.output
    assert _latest(made) == _events(made)


def test_what_an_earlier_process_left_uncovered_is_covered(
    app: Flask, cadenced: Callable[..., Flask]
) -> None:
    made = cadenced()
    checkpointer = made.extensions["registry.checkpointer"]
    _wait_until(lambda: _latest(made) == _events(made), 3.0)
    checkpointer.close()  # its thread must not cover the log while it is tampered with
    latest = _latest(made)
    with made.app_context(), behind_the_back() as conn:  # as if killed before its checkpoint
        conn.execute(text("DELETE FROM audit_checkpoints WHERE size = :s"), {"s": latest})
    assert _latest(made) < _events(made)
    checkpointer.flush()  # what its thread does as it starts
    assert _latest(made) == _events(made)
    assert checkpointer.flush() is None  # nothing left to sign


def _documents(count: int, times: list[str]) -> list[dict[str, Any]]:
    documents, head = [], chain.GENESIS_HASH
    for seq in range(1, count + 1):
        doc = chain.event_document(
            seq=seq,
            time=times[seq - 1],
            actor_type="system",
            actor_id=None,
            actor_label=None,
            action="test.event",
            entity_type="test",
            entity_id=str(seq),
            before=None,
            after=None,
            request_id=None,
            prev_hash=head,
        )
        doc["hash"] = head = chain.event_hash(doc)
        documents.append(doc)
    return documents


def test_verification_tells_events_awaiting_a_checkpoint_from_events_left_uncovered(
    app: Flask,
) -> None:
    times = [f"2026-12-03T10:00:0{n}.000000Z" for n in range(5)]
    events = _documents(5, times)
    with app.app_context():
        from registry.services.merkle import Frontier

        frontier = Frontier()
        for event in events[:3]:
            frontier.append(bytes.fromhex(event["hash"]))
        key = audit._signing_key()
        kid, signature = chain.sign_checkpoint(
            key, size=3, root_hash=frontier.root().hex(), issued_at=times[2]
        )
        checkpoint = {
            "size": 3,
            "root_hash": frontier.root().hex(),
            "issued_at": times[2],
            "key_id": kid,
            "signature": signature,
        }
        public = audit.public_key()
    # Events 4 and 5 occurred at 10:00:03 and later.
    waiting = chain.verify_log(events, [checkpoint], public, pending_since=times[3])
    assert waiting.ok and waiting.awaiting_checkpoint == 2
    late = chain.verify_log(events, [checkpoint], public, pending_since=times[4])
    assert not late.ok and late.first_bad_seq == 4
    assert "not covered by a signed checkpoint" in (late.reason or "")
    strict = chain.verify_log(events, [checkpoint], public)
    assert not strict.ok and strict.first_bad_seq == 4


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ("UPDATE audit_head SET hash = :other", "the head was edited"),
        ("UPDATE audit_head SET size = size + 1", "events were removed, or the head was edited"),
        ("UPDATE audit_head SET size = size - 1", "events were removed, or the head was edited"),
    ],
)
def test_a_head_edited_by_hand_is_found(app: Flask, edit: str, reason: str) -> None:
    with app.app_context():
        f.organisation()
        with behind_the_back() as conn:
            conn.execute(text(edit), {"other": "ab" * 32})
    report = app.test_client().get(f"{API}/audit-events/verify").get_json()
    assert report["ok"] is False
    assert reason in report["reason"]
