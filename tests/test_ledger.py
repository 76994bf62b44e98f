"""The live tables checked against the log: a row changed behind the service's back is named."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import text

from registry.db import current_session, db, utcnow, writing
from registry.models.review import Choice
from registry.services import audit, chain, identity, memberships, policies, reviews
from registry.services.context import Actor
from tests import factories as f
from tests.support.tamper import behind_the_back

API = "/api/v1"


@pytest.fixture
def workflow(app: Flask) -> Flask:
    """Draft, submit, votes, close, publish, tokens, memberships, a revocation by demotion."""
    f.catalogue()
    f.published("research-data")
    f.published("research-data", body="# Version two\n")
    owner = f.user("editor")
    f.token(owner)
    f.token(owner, role="reader")
    demoted = f.user("editor")
    f.token(demoted)
    db.session.commit()
    with writing():
        identity.update_user(current_session(), f.SYSTEM, demoted.id, {"role": "reader"})
        db.session.commit()
    members = [f.user("panel_member") for _ in range(3)]
    board = f.panel(members)
    with writing():
        session = current_session()
        memberships.end_membership(session, f.SYSTEM, board.id, members[2].id)
        editor = Actor(kind="user", user_id=owner.id, role="editor", label=owner.email)
        version = policies.create_policy(session, editor, f.policy_body("planning-data"))
        review = reviews.submit(
            session, editor, version, board.id, utcnow() + timedelta(days=3), f.ASSESSMENT
        )
        for member, choice in zip(members[:2], (Choice.ENDORSE, Choice.REJECT), strict=True):
            voter = Actor(kind="user", user_id=member.id, role="panel_member", label="m")
            reviews.cast_vote(session, voter, review.id, choice, "Because.")
        db.session.commit()
    return app


def _report() -> chain.Report:
    db.session.remove()
    return audit.verify(db.session())


def test_an_untampered_registry_verifies(workflow: Flask) -> None:
    report = _report()
    assert report.ok, report.reason
    assert workflow.test_client().get(f"{API}/audit-events/verify").get_json()["ok"]


TAMPERING = [
    (
        "published body",
        "policy_version",
        "content",
        "UPDATE policy_versions SET body = 'x' WHERE status = 'published'",
    ),
    (
        "content and its hash",
        "policy_version",
        "content",
        "UPDATE policy_versions SET body = 'x', content_hash = 'ab' WHERE status = 'superseded'",
    ),
    (
        "version status",
        "policy_version",
        "status",
        "UPDATE policy_versions SET status = 'endorsed' WHERE status = 'in_review'",
    ),
    (
        "role",
        "user",
        "role",
        "UPDATE users SET role = 'admin' WHERE id = (SELECT min(id) FROM users)",
    ),
    (
        "active flag",
        "user",
        "active",
        "UPDATE users SET active = false WHERE id = (SELECT min(id) FROM users)",
    ),
    (
        "token hash",
        "api_token",
        "credential",
        "UPDATE api_tokens SET secret_hash = 'ff' WHERE id = (SELECT min(id) FROM api_tokens)",
    ),
    (
        "token role",
        "api_token",
        "role",
        "UPDATE api_tokens SET role = 'admin' WHERE id = (SELECT min(id) FROM api_tokens)",
    ),
    (
        "token expiry",
        "api_token",
        "expires_at",
        "UPDATE api_tokens SET expires_at = expires_at + interval '1 day' "
        "WHERE id = (SELECT min(id) FROM api_tokens)",
    ),
    (
        "token revocation",
        "api_token",
        "revoked_at",
        "UPDATE api_tokens SET revoked_at = NULL WHERE revoked_at IS NOT NULL",
    ),
    (
        "membership term",
        "panel_member",
        "term_end",
        "UPDATE panel_members SET term_end = NULL WHERE term_end IS NOT NULL",
    ),
    ("chair", "panel", "chair_id", "UPDATE panels SET chair_id = (SELECT min(id) FROM users)"),
    ("quorum", "panel", "quorum", "UPDATE panels SET quorum = 0.01"),
    ("vote", "vote", "choice", "UPDATE votes SET choice = 'endorse' WHERE choice = 'reject'"),
    (
        "review outcome",
        "review",
        "outcome",
        "UPDATE reviews SET outcome = 'rejected' WHERE outcome = 'endorsed'",
    ),
    (
        "inserted user",
        "user",
        "existence",
        "INSERT INTO users (email, display_name, organisation_id, role, active, session_epoch, "
        "created_at) SELECT 'x@example.org', 'x', min(id), 'admin', true, 0, CURRENT_TIMESTAMP "
        "FROM organisations",
    ),
    (
        "inserted token",
        "api_token",
        "existence",
        "INSERT INTO api_tokens (user_id, name, role, lookup, secret_hash, created_at, "
        "expires_at, created_by_id) SELECT min(id), 'x', 'admin', 'deadbeefdeadbeef', 'ff', "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, min(id) FROM users",
    ),
]


@pytest.mark.parametrize(
    ("name", "entity", "field", "statement"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
def test_a_live_row_changed_behind_the_back_is_named(
    workflow: Flask, name: str, entity: str, field: str, statement: str
) -> None:
    assert _report().ok
    if db.engine.dialect.name == "sqlite":
        statement = statement.replace(
            "expires_at + interval '1 day'", "datetime(expires_at, '+1 day')"
        )
    with behind_the_back() as conn:
        assert conn.execute(text(statement)).rowcount >= 1, name
    report = _report()
    assert not report.ok, name
    assert report.mismatch is not None, report.reason
    assert (report.mismatch["entity_type"], report.mismatch["field"]) == (entity, field)
    if field == "existence":
        assert report.mismatch["seq"] is None
    else:
        assert isinstance(report.mismatch["seq"], int)
    public = workflow.test_client().get(f"{API}/audit-events/verify").get_json()
    assert public["ok"] is False
    assert public["mismatch"] == report.mismatch
    result = workflow.test_cli_runner().invoke(args=["registry", "audit", "verify"])
    assert result.exit_code == 1
    assert f"{entity} {report.mismatch['entity_id']}" in result.output
    assert field in result.output


def test_the_answer_says_what_each_check_proves_and_does_not(workflow: Flask) -> None:
    answer = workflow.test_client().get(f"{API}/audit-events/verify").get_json()
    assert answer["ok"] is True
    assert {"events", "head", "root_hash", "checkpoints_checked"} <= set(answer)
    checks = {c["name"]: c for c in answer["checks"]}
    assert list(checks) == ["chain", "checkpoints", "state"]
    assert all(c["ok"] is True and c["proves"] and c["does_not_prove"] for c in checks.values())
    assert "signing key" in checks["checkpoints"]["does_not_prove"]
    assert "outside" in checks["checkpoints"]["does_not_prove"]
    result = workflow.test_cli_runner().invoke(args=["registry", "audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "Does not prove" in result.output


def test_a_broken_chain_leaves_the_state_unchecked(workflow: Flask) -> None:
    with behind_the_back() as conn:
        conn.execute(text("UPDATE audit_events SET action = 'forged' WHERE seq = 3"))
    checks = {c["name"]: c["ok"] for c in _report().checks}
    assert checks == {"chain": False, "checkpoints": None, "state": None}


def test_the_seeded_registry_verifies(app: Flask) -> None:
    assert app.test_cli_runner().invoke(args=["registry", "seed"]).exit_code == 0
    report = _report()
    assert report.ok, report.reason
