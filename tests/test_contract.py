"""The contract as a client meets it: a body in another type is a 415, an unknown query
parameter a 422 naming it, and neither changes anything."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from registry.db import db
from registry.models.audit import AuditEvent
from registry.models.decision import Decision
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"


def _events() -> int:
    db.session.remove()
    return int(db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


@pytest.fixture
def editor(app: Flask) -> Any:
    f.catalogue()
    client, _ = f.as_role(app, "editor")
    made = client.post(f"{API}/policies", json=f.policy_body("research-data"))
    assert made.status_code == 201, made.get_json()
    return client


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_sent_as_another_type_is_a_415_and_changes_nothing(
    editor: Any, content_type: str
) -> None:
    draft = f"{API}/policies/research-data/versions/1"
    before = editor.get(draft)
    events = _events()
    answer = editor.patch(
        draft,
        data=json.dumps({"summary": "Changed."}),
        headers={"Content-Type": content_type, "If-Match": before.headers["ETag"]},
    )
    problem = assert_problem(answer, 415, "unsupported-media-type")
    assert "application/json" in problem["detail"]
    after = editor.get(draft)
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.get_json()["summary"] == before.get_json()["summary"]
    assert _events() == events


def test_a_decision_asked_in_plain_text_is_a_415_not_a_misleading_422(app: Flask) -> None:
    client, _ = f.as_role(app, "reader")
    body = {"purpose": "research", "data_category": "depersonalised"}
    answer = client.post(
        f"{API}/decisions", data=json.dumps(body), headers={"Content-Type": "text/plain"}
    )
    assert_problem(answer, 415, "unsupported-media-type")
    assert db.session.execute(select(func.count()).select_from(Decision)).scalar_one() == 0


def test_a_body_with_no_type_is_a_415_and_no_body_is_no_body(editor: Any) -> None:
    answer = editor.post(f"{API}/policies", data=json.dumps(f.policy_body("other")))
    assert_problem(answer, 415, "unsupported-media-type")
    # No body at all is not a type error: the schema says what is missing.
    assert_problem(editor.post(f"{API}/policies"), 422)


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        ("/policy-set", "revison"),
        ("/policy-set/revisions", "limt"),
        ("/policies", "purpse"),
        ("/policies/research-data", "verbose"),
        ("/conditions", "code"),
        ("/audit-events/checkpoint", "sise"),
    ],
)
def test_an_unknown_query_parameter_is_a_422_naming_it(editor: Any, path: str, typo: str) -> None:
    problem = assert_problem(editor.get(f"{API}{path}?{typo}=3"), 422, "validation-error")
    assert list(problem["errors"]) == [typo]
    assert typo in problem["detail"]


def test_known_query_parameters_still_work_and_pages_read_their_own(
    app: Flask, editor: Any
) -> None:
    assert editor.get(f"{API}/policy-set?known_at=2026-01-01T00:00:00Z").status_code == 200
    assert editor.get(f"{API}/policies?purpose=research&limit=5").status_code == 200
    assert editor.get(f"{API}/policies/research-data/versions?status=draft").status_code == 200
    # A credential in the URL is still refused first, for what it is.
    assert_problem(editor.get(f"{API}/policies?access_token=x"), 400, "credentials-in-query")
    # The pages are not API operations: a query they do not use is no error there.
    assert app.test_client().get("/?utm_source=newsletter").status_code == 200


def test_a_patch_that_changes_nothing_writes_nothing(editor: Any) -> None:
    """The same text, the same conditions in another order, the same categories twice:
    no content changes, so no event is written and the ETag stays."""
    draft = f"{API}/policies/research-data/versions/1"
    read = editor.get(draft)
    current = read.get_json()
    events = _events()
    same = {
        "summary": current["summary"],
        "body": current["body"],
        "conditions": [
            {"code": c["code"], "parameters": c["parameters"]}
            for c in reversed(current["conditions"])
        ],
        "sensitive_categories": [],
        "effective_from": None,
    }
    answer = editor.patch(draft, json=same, headers={"If-Match": read.headers["ETag"]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["ETag"] == read.headers["ETag"]
    assert answer.get_json()["content_hash"] == current["content_hash"]
    assert _events() == events
    changed = editor.patch(
        draft, json={"summary": "Changed."}, headers={"If-Match": read.headers["ETag"]}
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != read.headers["ETag"]
    assert _events() == events + 1


def test_if_match_star_is_refused_for_it_protects_no_ones_change(editor: Any) -> None:
    draft = f"{API}/policies/research-data/versions/1"
    read = editor.get(draft)
    events = _events()
    for star in ("*", '"v0.0", *'):
        problem = assert_problem(
            editor.patch(draft, json={"summary": "Blind."}, headers={"If-Match": star}), 412
        )
        assert problem["current_etag"] == read.headers["ETag"]
    assert editor.get(draft).get_json()["summary"] == read.get_json()["summary"]
    assert _events() == events


def test_a_write_is_never_answered_not_modified(editor: Any) -> None:
    """If-None-Match concerns reads: a change that was made answers what it made, not a
    304 with no body that says nothing changed."""
    draft = f"{API}/policies/research-data/versions/1"
    read = editor.get(draft)
    changed = editor.patch(
        draft,
        json={"summary": "Changed."},
        headers={"If-Match": read.headers["ETag"], "If-None-Match": "*"},
    )
    assert changed.status_code == 200
    assert changed.get_json()["summary"] == "Changed."
    withdrawn = editor.post(f"{draft}/withdraw", headers={"If-None-Match": "*"})
    assert withdrawn.status_code == 200
    assert withdrawn.get_json()["status"] == "withdrawn"
    # A read with the ETag it holds is still a 304.
    again = editor.get(draft)
    assert editor.get(draft, headers={"If-None-Match": again.headers["ETag"]}).status_code == 304


def test_the_odrl_rendering_answers_304_for_the_etag_it_gave(app: Flask) -> None:
    f.catalogue()
    f.published("research-data")
    client = app.test_client()
    path = f"{API}/policies/research-data/versions/1/odrl"
    first = client.get(path)
    assert first.status_code == 200
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert (again.status_code, again.get_data()) == (304, b"")
    assert again.headers["ETag"] == first.headers["ETag"]


def test_a_decision_is_the_same_bytes_when_answered_and_when_read_back(app: Flask) -> None:
    f.catalogue()
    f.published("research-data")
    client, _ = f.as_role(app, "reader", org=f.organisation("UCL", "university"))
    use = {
        "purpose": "research",
        "data_category": "depersonalised",
        "circumstances": {"ethics_approval": True, "duration_months": 12},
    }
    answered = client.post(f"{API}/decisions", json=use)
    assert answered.status_code == 201, answered.get_json()
    read = client.get(f"{API}/decisions/{answered.get_json()['id']}")
    assert read.status_code == 200
    assert read.get_data() == answered.get_data()
    document = answered.get_json()
    assert (
        answered.get_data()
        == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_as_of_before_anything_was_in_force_says_so_plainly(app: Flask) -> None:
    client = app.test_client()
    empty = client.get(f"{API}/policy-set").get_json()
    assert empty["policies"] == []
    assert empty["nothing_in_force"] == {
        "detail": "No policy has come into force yet: the set is empty.",
        "first_in_force_at": None,
        "first_revision_recorded_at": None,
    }
    f.catalogue()
    f.published("research-data")
    now = client.get(f"{API}/policy-set").get_json()
    assert [p["slug"] for p in now["policies"]] == ["research-data"]
    assert "nothing_in_force" not in now
    [revision] = client.get(f"{API}/policy-set/revisions").get_json()
    before = client.get(f"{API}/policy-set?as_of=2000-01-01T00:00:00Z").get_json()
    assert (before["revision"], before["policies"]) == (1, [])
    said = before["nothing_in_force"]
    assert said["detail"].startswith("Nothing was in force at 2000-01-01T00:00:00")
    assert said["first_in_force_at"] == now["in_force_since"]
    assert said["first_revision_recorded_at"] == revision["recorded_at"]
