"""Policies and versions: drafting, the status machine, immutability, ETags, lists."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from registry.db import db, utcnow
from registry.models.audit import AuditEvent
from registry.models.policy import Policy, PolicyVersion
from registry.services import chain
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"


@pytest.fixture
def editor(app: Flask) -> FlaskClient:
    f.catalogue()
    client, _ = f.as_role(app, "editor")
    return client


def _create(client: FlaskClient, slug: str = "research-data", **overrides: Any) -> Any:
    response = client.post(f"{API}/policies", json=f.policy_body(slug, **overrides))
    assert response.status_code == 201, response.get_json()
    return response


def _counts() -> tuple[int, int, int]:
    return (
        db.session.execute(select(func.count()).select_from(Policy)).scalar_one(),
        db.session.execute(select(func.count()).select_from(PolicyVersion)).scalar_one(),
        db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
    )


def test_creating_a_policy_makes_a_draft_with_a_content_hash(editor: FlaskClient) -> None:
    response = _create(editor)
    version = response.get_json()
    assert (version["number"], version["status"]) == (1, "draft")
    assert response.headers["ETag"].startswith('"v')
    document = {
        "policy": "research-data",
        "title": "Policy research-data",
        "purpose": "research",
        "data_category": "depersonalised",
        "version": 1,
        "retirement": False,
        "body": "# A policy\n\nSome rules.\n",
        "summary": "What it says, in plain English.",
        "rationale": "Why.",
        "conditions": [
            {"code": "ethics_approval", "parameters": {}},
            {"code": "time_limited", "parameters": {"max_months": 24}},
        ],
        "sensitive_categories": [],
        "effective_from": None,
    }
    assert version["content_hash"] == chain.sha256_hex(chain.canonical(document))
    assert [c["code"] for c in version["conditions"]] == ["time_limited", "ethics_approval"]


def test_drafts_are_for_editors_only(app: Flask, editor: FlaskClient) -> None:
    _create(editor)
    for role in ("anonymous", "reader", "panel_member", "auditor"):
        client = app.test_client() if role == "anonymous" else f.as_role(app, role)[0]
        assert_problem(client.get(f"{API}/policies/research-data"), 404)
        assert_problem(client.get(f"{API}/policies/research-data/versions/1"), 404)
        assert client.get(f"{API}/policies").get_json() == []
    assert editor.get(f"{API}/policies/research-data/versions/1").status_code == 200
    admin, _ = f.as_role(app, "admin")
    assert admin.get(f"{API}/policies/research-data").status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"surprise": 1}, "surprise"),
        ({"slug": "Not A Slug"}, "slug"),
        ({"slug": "ab"}, "slug"),
        ({"purpose": "marketing"}, "purpose"),
        ({"data_category": 7}, "data_category"),
        ({"title": "x" * 201}, "title"),
        ({"summary": ""}, "summary"),
        ({"body": "x" * 100_001}, "body"),
        ({"effective_from": "2027-01-01T00:00:00"}, "effective_from"),
        ({"effective_from": "next tuesday"}, "effective_from"),
        ({"sensitive_categories": ["gossip"]}, "sensitive_categories"),
        ({"conditions": [{"code": "no_such_condition", "parameters": {}}]}, "conditions.0.code"),
        (
            {"conditions": [{"code": "time_limited", "parameters": {"max_months": "long"}}]},
            "conditions.0.parameters.max_months",
        ),
        ({"conditions": [{"code": "time_limited", "parameters": {}}]}, "conditions.0.parameters"),
        (
            {"conditions": [{"code": "ethics_approval", "parameters": {"x": 1}}]},
            "conditions.0.parameters",
        ),
        (
            {"conditions": [{"code": "ethics_approval"}, {"code": "ethics_approval"}]},
            "conditions.1.code",
        ),
        ({"conditions": [{"code": "ethics_approval", "extra": True}]}, "conditions"),
        ({"conditions": "ethics_approval"}, "conditions"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    editor: FlaskClient, change: dict[str, Any], field: str
) -> None:
    before = _counts()
    response = editor.post(f"{API}/policies", json=f.policy_body(**change))
    problem = assert_problem(response, 422, "validation-error")
    assert field in problem["errors"], problem["errors"]
    assert _counts() == before


def test_a_duplicate_slug_is_a_409(editor: FlaskClient) -> None:
    _create(editor)
    assert_problem(editor.post(f"{API}/policies", json=f.policy_body()), 409)


def test_patch_needs_a_current_if_match(editor: FlaskClient) -> None:
    created = _create(editor)
    url = f"{API}/policies/research-data/versions/1"
    assert_problem(editor.patch(url, json={"summary": "New."}), 428, "precondition-required")
    stale = '"v1.0"'
    assert_problem(
        editor.patch(url, json={"summary": "New."}, headers={"If-Match": stale}),
        412,
        "precondition-failed",
    )
    ok = editor.patch(url, json={"summary": "New."}, headers={"If-Match": created.headers["ETag"]})
    assert ok.status_code == 200
    assert ok.headers["ETag"] != created.headers["ETag"]
    assert ok.get_json()["summary"] == "New."
    assert ok.get_json()["content_hash"] != created.get_json()["content_hash"]
    again = editor.patch(
        url, json={"summary": "Newer."}, headers={"If-Match": created.headers["ETag"]}
    )
    assert_problem(again, 412)
    assert editor.get(url).get_json()["summary"] == "New."


def test_get_honours_if_none_match(editor: FlaskClient) -> None:
    created = _create(editor)
    url = f"{API}/policies/research-data/versions/1"
    assert editor.get(url, headers={"If-None-Match": created.headers["ETag"]}).status_code == 304
    assert editor.get(url, headers={"If-None-Match": '"v1.99"'}).status_code == 200


def test_bad_patches_change_nothing(editor: FlaskClient) -> None:
    created = _create(editor)
    url = f"{API}/policies/research-data/versions/1"
    etag = created.headers["ETag"]
    for body in (
        {"title": "No"},
        {"conditions": [{"code": "nope"}]},
        {"summary": ""},
        {"effective_from": "2020-01-01"},
    ):
        assert_problem(editor.patch(url, json=body, headers={"If-Match": etag}), 422)
    after = editor.get(url)
    assert after.headers["ETag"] == etag
    assert after.get_json()["content_hash"] == created.get_json()["content_hash"]


def _submit(
    client: FlaskClient, panel_id: int, number: int = 1, slug: str = "research-data"
) -> Any:
    return client.post(
        f"{API}/policies/{slug}/versions/{number}/submit",
        json={"panel_id": panel_id, "public_benefit": f.ASSESSMENT},
    )


def _version_in(app: Flask, editor: FlaskClient, status: str) -> tuple[str, str]:
    """Make version 1 (or 2) of a fresh policy reach ``status``; return its URL and ETag."""
    member = f.user("panel_member")
    board = f.panel([member], quorum=1, threshold=1)
    voter = f.bearer(app, f.token(member))
    _create(editor)
    url = f"{API}/policies/research-data/versions/1"
    if status == "draft":
        return url, editor.get(url).headers["ETag"]
    if status == "withdrawn":
        assert editor.post(f"{url}/withdraw").status_code == 200
        return url, editor.get(url).headers["ETag"]
    review_id = _submit(editor, board.id).get_json()["id"]
    if status == "in_review":
        return url, editor.get(url).headers["ETag"]
    choice = "reject" if status == "rejected" else "endorse"
    assert (
        voter.put(
            f"{API}/reviews/{review_id}/votes/me", json={"choice": choice, "comment": "Because."}
        ).status_code
        == 201
    )
    assert editor.post(f"{API}/reviews/{review_id}/close", json={}).status_code == 200
    if status in ("endorsed", "rejected"):
        return url, editor.get(url).headers["ETag"]
    assert editor.post(f"{url}/publish").status_code == 200
    if status == "published":
        return url, editor.get(url).headers["ETag"]
    f.published("research-data", summary="The next one.")
    assert status == "superseded"
    return url, editor.get(url).headers["ETag"]


FROZEN = ("in_review", "endorsed", "rejected", "published", "superseded", "withdrawn")


@pytest.mark.parametrize("status", FROZEN)
def test_content_is_immutable_once_it_leaves_draft(
    app: Flask, editor: FlaskClient, status: str
) -> None:
    url, etag = _version_in(app, editor, status)
    before = editor.get(url).get_json()
    assert before["status"] == status
    patched = editor.patch(url, json={"summary": "Sneaky."}, headers={"If-Match": etag})
    problem = assert_problem(patched, 409)
    assert problem.get("current_status") == status
    submitted = _submit(editor, f.panel().id)
    assert_problem(submitted, 409)
    after = editor.get(url).get_json()
    assert after["content_hash"] == before["content_hash"]
    assert after["summary"] == before["summary"]


@pytest.mark.parametrize(
    ("status", "action", "requested"),
    [
        ("draft", "publish", "published"),
        ("in_review", "publish", "published"),
        ("rejected", "publish", "published"),
        ("published", "withdraw", "withdrawn"),
        ("superseded", "withdraw", "withdrawn"),
        ("withdrawn", "withdraw", "withdrawn"),
        ("superseded", "publish", "published"),
    ],
)
def test_illegal_transitions_are_409_naming_both_statuses(
    app: Flask, editor: FlaskClient, status: str, action: str, requested: str
) -> None:
    url, _ = _version_in(app, editor, status)
    problem = assert_problem(editor.post(f"{url}/{action}"), 409)
    if problem["type"].endswith("illegal-transition"):
        assert (problem["current_status"], problem["requested_status"]) == (status, requested)
    else:  # the review gate: publishable status, but no endorsed review
        assert action == "publish"
    assert editor.get(url).get_json()["status"] == status


def test_one_version_on_its_way_at_a_time(editor: FlaskClient) -> None:
    _create(editor)
    problem = assert_problem(editor.post(f"{API}/policies/research-data/versions", json={}), 409)
    assert problem["open_version"] == 1


def test_a_new_draft_copies_the_latest_version(app: Flask, editor: FlaskClient) -> None:
    f.published("research-data", summary="Original summary.")
    made = editor.post(f"{API}/policies/research-data/versions", json={})
    assert made.status_code == 201
    draft = made.get_json()
    assert (draft["number"], draft["status"], draft["summary"]) == (2, "draft", "Original summary.")
    assert [c["code"] for c in draft["conditions"]] == ["time_limited", "ethics_approval"]


def test_publication_supersedes_and_revises_the_set(app: Flask, editor: FlaskClient) -> None:
    f.published("research-data")
    f.published("research-data", summary="Second.")
    anonymous = app.test_client()
    versions = anonymous.get(f"{API}/policies/research-data/versions").get_json()
    assert [(v["number"], v["status"]) for v in versions] == [(1, "superseded"), (2, "published")]
    assert versions[1]["review"]["outcome"] == "endorsed"
    log = anonymous.get(f"{API}/policy-set/revisions").get_json()
    assert [(r["number"], r["changes"][0]["change"]) for r in log] == [
        (2, "replaced"),
        (1, "added"),
    ]
    current = anonymous.get(f"{API}/policy-set").get_json()
    assert current["revision"] == 2
    assert [p["version"]["number"] for p in current["policies"]] == [2]
    assert current["policies"][0]["version"]["review"]["tally"]["endorse"] == 1


def test_retirement_takes_a_policy_out_of_the_set(app: Flask) -> None:
    f.catalogue()
    f.published("research-data")
    f.published("planning-data", purpose="planning")
    f.published("research-data", retire=True)
    current = app.test_client().get(f"{API}/policy-set").get_json()
    assert [p["slug"] for p in current["policies"]] == ["planning-data"]
    policy = app.test_client().get(f"{API}/policies/research-data").get_json()
    assert policy["state"] == "retired"


def test_lists_paginate_with_link_headers_and_filter(app: Flask) -> None:
    f.catalogue()
    for i in range(5):
        f.published(
            f"policy-{i}",
            purpose="planning" if i % 2 else "research",
            title=f"Policy number {i}",
            summary=f"About topic {i}.",
        )
    client = app.test_client()
    seen, url = [], f"{API}/policies?limit=2"
    while url:
        response = client.get(url)
        seen += [p["slug"] for p in response.get_json()]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == [f"policy-{i}" for i in range(5)]
    assert [p["slug"] for p in client.get(f"{API}/policies?purpose=planning").get_json()] == [
        "policy-1",
        "policy-3",
    ]
    assert [p["slug"] for p in client.get(f"{API}/policies?q=TOPIC 4").get_json()] == ["policy-4"]
    assert_problem(client.get(f"{API}/policies?limit=201"), 422)
    assert_problem(client.get(f"{API}/policies?limit=0"), 422)
    assert_problem(client.get(f"{API}/policies?cursor=%%%"), 422)
    assert_problem(client.get(f"{API}/policies?purpose=gossip"), 422)


def test_concurrent_editors_never_lose_an_update(
    make_app: Callable[..., Flask], database: Any
) -> None:
    app = make_app()
    database.reset(app)
    with app.test_request_context():
        f.catalogue()
        author = f.user("editor")
        secret = f.token(author)
        client = f.bearer(app, secret)
        _create(client)
    url = f"{API}/policies/research-data/versions/1"
    outcomes: list[int] = []
    lock = threading.Lock()

    def edit(worker: int) -> None:
        with app.app_context():
            mine = f.bearer(app, secret)
            for attempt in range(8):
                etag = mine.get(url).headers["ETag"]
                response = mine.patch(
                    url, json={"summary": f"w{worker} a{attempt}"}, headers={"If-Match": etag}
                )
                with lock:
                    outcomes.append(response.status_code)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(outcomes) <= {200, 412}, outcomes
    with app.app_context():
        final = f.bearer(app, secret).get(url)
        lock_version = int(final.headers["ETag"].strip('"').split(".")[1])
    assert lock_version - 1 == outcomes.count(200)
    assert outcomes.count(200) >= 6


def test_future_effective_from_takes_effect_by_itself(app: Flask) -> None:
    import time

    f.catalogue()
    f.published("research-data", summary="First.")
    start = utcnow() + timedelta(seconds=1.5)
    f.published("research-data", summary="Second.", effective_from=start)
    client = app.test_client()
    before = client.get(f"{API}/policy-set")
    body = before.get_json()
    assert body["policies"][0]["version"]["summary"] == "First."
    assert body["next_change_at"] == start.isoformat()
    remaining = (start - utcnow()).total_seconds()
    if remaining > 0:
        time.sleep(remaining + 0.05)
    after = client.get(f"{API}/policy-set", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.get_json()["policies"][0]["version"]["summary"] == "Second."
    assert after.get_json()["revision"] == body["revision"]


# --- visibility ----------------------------------------------------------------------------


def test_a_version_is_public_from_its_submission_and_drafts_stay_with_editors(
    app: Flask, editor: FlaskClient
) -> None:
    """One rule, the same through every door: the version, its list, its policy, the
    policy list, its review and its pages. A draft withdrawn before it was ever submitted
    stays private; a submitted one stays public whatever becomes of it."""
    board = f.panel([f.user("panel_member")])
    submit = {"panel_id": board.id, "public_benefit": f.ASSESSMENT}
    _create(editor, "proposed")
    review = editor.post(f"{API}/policies/proposed/versions/1/submit", json=submit).get_json()
    _create(editor, "kept-private")
    _create(editor, "abandoned")
    assert editor.post(f"{API}/policies/abandoned/versions/1/withdraw").status_code == 200
    _create(editor, "pulled")
    assert editor.post(f"{API}/policies/pulled/versions/1/submit", json=submit).status_code == 201
    assert editor.post(f"{API}/policies/pulled/versions/1/withdraw").status_code == 200
    public = {"proposed": "in_review", "pulled": "withdrawn"}
    private = ("kept-private", "abandoned")
    clients = {
        "anonymous": app.test_client(),
        "reader": f.as_role(app, "reader")[0],
        "panel member": f.as_role(app, "panel_member")[0],
    }
    for who, client in clients.items():
        listed = {p["slug"] for p in client.get(f"{API}/policies").get_json()}
        assert listed == set(public), who
        for slug, status in public.items():
            version = client.get(f"{API}/policies/{slug}/versions/1")
            assert (version.status_code, version.get_json()["status"]) == (200, status), who
            assert client.get(f"{API}/policies/{slug}").status_code == 200, who
            versions = client.get(f"{API}/policies/{slug}/versions").get_json()
            assert [v["number"] for v in versions] == [1], who
            assert client.get(f"/policies/{slug}/versions/1").status_code == 200, who
        detail = client.get(f"{API}/reviews/{review['id']}")
        assert detail.status_code == 200, who
        assert detail.get_json()["proposed"]["status"] == "in_review"
        for slug in private:
            assert_problem(client.get(f"{API}/policies/{slug}/versions/1"), 404)
            assert_problem(client.get(f"{API}/policies/{slug}"), 404)
            assert client.get(f"/policies/{slug}/versions/1").status_code == 404, who
    listed = {p["slug"] for p in editor.get(f"{API}/policies").get_json()}
    assert listed == {*public, *private}
    for slug in private:
        assert editor.get(f"{API}/policies/{slug}/versions/1").status_code == 200
