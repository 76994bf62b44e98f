"""Citizen panel reviews through the API: no change without an endorsed review."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from registry.db import db, utcnow
from registry.models.identity import User
from registry.models.review import Panel, PanelMember, Review
from tests import factories as f
from tests.support.problems import assert_problem

API = "/api/v1"


@dataclass
class Setting:
    app: Flask
    editor: FlaskClient
    editor_user: User
    admin: FlaskClient
    panel_id: int
    members: list[FlaskClient] = field(default_factory=list)
    member_users: list[User] = field(default_factory=list)


@pytest.fixture
def setting(app: Flask) -> Setting:
    f.catalogue()
    editor, editor_user = f.as_role(app, "editor")
    admin, _ = f.as_role(app, "admin")
    made = admin.post(
        f"{API}/panels",
        json={
            "name": "North Central London panel",
            "quorum": 0.5,
            "threshold": 0.5,
            "default_review_days": 21,
        },
    )
    assert made.status_code == 201
    s = Setting(app, editor, editor_user, admin, made.get_json()["id"])
    for _ in range(4):
        client, member = f.as_role(app, "panel_member")
        assert (
            admin.post(
                f"{API}/panels/{s.panel_id}/members", json={"user_id": member.id}
            ).status_code
            == 201
        )
        s.members.append(client)
        s.member_users.append(member)
    created = editor.post(f"{API}/policies", json=f.policy_body())
    assert created.status_code == 201
    return s


def _submit(s: Setting, **body: Any) -> Any:
    payload = {"panel_id": s.panel_id, "public_benefit": f.ASSESSMENT, **body}
    return s.editor.post(f"{API}/policies/research-data/versions/1/submit", json=payload)


def _vote(client: FlaskClient, review_id: int, choice: str, comment: str = "") -> Any:
    return client.put(
        f"{API}/reviews/{review_id}/votes/me", json={"choice": choice, "comment": comment}
    )


def test_a_whole_change_from_draft_to_the_policy_set(setting: Setting) -> None:
    s = setting
    submitted = _submit(s)
    assert submitted.status_code == 201
    review = submitted.get_json()
    assert (review["status"], review["policy"], review["version_number"]) == (
        "open",
        "research-data",
        1,
    )
    assert (
        s.editor.get(f"{API}/policies/research-data/versions/1").get_json()["status"] == "in_review"
    )
    rid = review["id"]
    assert _vote(s.members[0], rid, "endorse").status_code == 201
    assert (
        _vote(s.members[1], rid, "endorse_with_changes", "Say more about opt-outs.").status_code
        == 201
    )
    assert _vote(s.members[2], rid, "reject", "Too loose.").status_code == 201
    closed = s.editor.post(
        f"{API}/reviews/{rid}/close", json={"recommendation": "Publish, and explain opt-outs."}
    )
    assert closed.status_code == 200
    result = closed.get_json()
    assert result["outcome"] == "endorsed"
    assert result["tally"] == {
        "eligible": 4,
        "cast": 3,
        "counted": 3,
        "not_counted": 0,
        "endorse": 1,
        "endorse_with_changes": 1,
        "reject": 1,
        "abstain": 0,
    }
    assert {v["comment"] for v in result["votes"]} == {"", "Say more about opt-outs.", "Too loose."}
    published = s.editor.post(f"{API}/policies/research-data/versions/1/publish")
    assert published.status_code == 200
    version = published.get_json()
    assert version["status"] == "published"
    assert version["review"]["recommendation"] == "Publish, and explain opt-outs."
    in_force = s.app.test_client().get(f"{API}/policy-set").get_json()["policies"]
    assert in_force[0]["version"]["review"]["outcome"] == "endorsed"
    assert in_force[0]["version"]["review"]["tally"]["endorse"] == 1
    assert all(v["content_hash"] == version["content_hash"] for v in result["votes"])


def test_open_reviews_show_counts_only(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    _vote(s.members[0], rid, "reject", "No.")
    for client in (s.members[1], s.editor, s.admin):
        body = client.get(f"{API}/reviews/{rid}").get_json()
        assert body["tally"]["reject"] == 1
        assert body["votes"] == []
        assert "No." not in str(body)
    mine = s.members[0].get(f"{API}/reviews/{rid}").get_json()["my_vote"]
    assert (mine["choice"], mine["comment"]) == ("reject", "No.")


def test_planning_and_research_changes_need_a_public_benefit_assessment(
    setting: Setting,
) -> None:
    s = setting
    problem = assert_problem(_submit(s, public_benefit=None), 422)
    assert len([k for k in problem["errors"] if k.startswith("public_benefit.")]) == 6
    partial = dict(f.ASSESSMENT, beneficiaries="  ", benefits="")
    problem = assert_problem(_submit(s, public_benefit=partial), 422)
    assert set(problem["errors"]) == {"public_benefit.beneficiaries", "public_benefit.benefits"}
    assert s.editor.get(f"{API}/policies/research-data/versions/1").get_json()["status"] == "draft"
    assert s.editor.get(f"{API}/reviews").get_json() == []


def test_individual_care_changes_need_no_assessment(setting: Setting) -> None:
    s = setting
    s.editor.post(
        f"{API}/policies",
        json=f.policy_body("care-data", purpose="individual_care", data_category="personal"),
    )
    made = s.editor.post(
        f"{API}/policies/care-data/versions/1/submit", json={"panel_id": s.panel_id}
    )
    assert made.status_code == 201
    assert made.get_json()["public_benefit"] is None


def test_submit_checks_its_input(setting: Setting) -> None:
    s = setting
    assert_problem(_submit(s, panel_id=999), 404)
    assert_problem(_submit(s, closes_at=(utcnow() - timedelta(hours=1)).isoformat()), 422)
    assert_problem(_submit(s, closes_at=(utcnow() + timedelta(days=400)).isoformat()), 422)
    assert_problem(_submit(s, surprise=True), 422)
    default = _submit(s).get_json()
    assert default["closes_at"].startswith((utcnow() + timedelta(days=21)).date().isoformat())


def test_who_may_vote(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    # A panel member of another panel.
    outsider, _ = f.as_role(s.app, "panel_member")
    assert_problem(_vote(outsider, rid, "endorse"), 403)
    # A member whose term has ended.
    db.session.execute(
        update(PanelMember)
        .where(PanelMember.user_id == s.member_users[3].id)
        .values(term_end=date.today() - timedelta(days=1))
    )
    db.session.commit()
    assert_problem(_vote(s.members[3], rid, "endorse"), 403)
    # Other roles never vote.
    for role in ("reader", "auditor", "editor", "admin"):
        client, _ = f.as_role(s.app, role)
        assert_problem(_vote(client, rid, "endorse"), 403)
    assert s.editor.get(f"{API}/reviews/{rid}").get_json()["tally"]["cast"] == 0


def test_the_author_cannot_vote(setting: Setting) -> None:
    s = setting
    author = s.member_users[0]
    db.session.execute(update(User).where(User.id == author.id).values(role="editor"))
    db.session.commit()
    # A member who is also an editor drafts a change; then acts as a panel member again.
    editor_token = f.bearer(s.app, f.token(author, role="editor"))
    made = editor_token.post(f"{API}/policies", json=f.policy_body("their-policy"))
    assert made.status_code == 201
    rid = editor_token.post(
        f"{API}/policies/their-policy/versions/1/submit",
        json={"panel_id": s.panel_id, "public_benefit": f.ASSESSMENT},
    ).get_json()["id"]
    db.session.execute(update(User).where(User.id == author.id).values(role="panel_member"))
    db.session.commit()
    member_token = f.bearer(s.app, f.token(author, role="panel_member"))
    problem = assert_problem(_vote(member_token, rid, "endorse"), 403)
    assert "author" in problem["detail"]


def test_a_vote_counts_once_however_often_it_changes(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    assert _vote(s.members[0], rid, "reject", "No.").status_code == 201
    assert _vote(s.members[0], rid, "abstain", "Unsure.").status_code == 200
    assert _vote(s.members[0], rid, "endorse").status_code == 200
    assert _vote(s.members[1], rid, "endorse").status_code == 201
    tally = s.editor.get(f"{API}/reviews/{rid}").get_json()["tally"]
    assert (tally["cast"], tally["endorse"], tally["reject"], tally["abstain"]) == (2, 2, 0, 0)
    result = s.editor.post(f"{API}/reviews/{rid}/close", json={}).get_json()
    assert result["outcome"] == "endorsed"


def test_a_comment_is_required_unless_endorsing(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    for choice in ("endorse_with_changes", "reject", "abstain"):
        problem = assert_problem(_vote(s.members[0], rid, choice, "  "), 422)
        assert "comment" in problem["errors"]
    assert_problem(_vote(s.members[0], rid, "maybe", "x"), 422)
    assert s.editor.get(f"{API}/reviews/{rid}").get_json()["tally"]["cast"] == 0


def test_conflicted_votes_are_recorded_but_not_counted(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    declared = s.members[0].post(
        f"{API}/reviews/{rid}/conflicts", json={"reason": "I advise the company involved."}
    )
    assert declared.status_code == 201
    assert_problem(s.members[0].post(f"{API}/reviews/{rid}/conflicts", json={"reason": "x"}), 409)
    vote = _vote(s.members[0], rid, "endorse")
    assert vote.status_code == 201
    assert vote.get_json()["counted"] is False
    _vote(s.members[1], rid, "reject", "No.")
    _vote(s.members[2], rid, "reject", "No.")
    result = s.editor.post(f"{API}/reviews/{rid}/close", json={}).get_json()
    assert result["outcome"] == "rejected"
    assert result["tally"]["eligible"] == 3
    assert (result["tally"]["counted"], result["tally"]["not_counted"]) == (2, 1)
    [uncounted] = [v for v in result["votes"] if not v["counted"]]
    assert uncounted["choice"] == "endorse"
    assert result["conflicts"][0]["reason"] == "I advise the company involved."


def test_votes_after_close_are_refused(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    _vote(s.members[0], rid, "endorse")
    s.editor.post(f"{API}/reviews/{rid}/close", json={})
    problem = assert_problem(_vote(s.members[1], rid, "endorse"), 409)
    assert problem["outcome"] == "no_quorum"
    assert_problem(s.members[1].post(f"{API}/reviews/{rid}/conflicts", json={"reason": "x"}), 409)
    assert_problem(s.editor.post(f"{API}/reviews/{rid}/close", json={}), 409)


def test_a_review_closes_by_itself_when_its_time_passes(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    for client in s.members[:3]:
        _vote(client, rid, "endorse")
    closing = utcnow() - timedelta(seconds=1)
    db.session.execute(update(Review).where(Review.id == rid).values(closes_at=closing))
    db.session.commit()
    listed = s.members[3].get(f"{API}/reviews?status=closed").get_json()
    assert [(r["id"], r["outcome"]) for r in listed] == [(rid, "endorsed")]
    assert_problem(_vote(s.members[3], rid, "reject", "Late."), 409)
    version = s.editor.get(f"{API}/policies/research-data/versions/1").get_json()
    assert version["status"] == "endorsed"
    review = db.session.execute(select(Review).where(Review.id == rid)).scalar_one()
    assert review.closed_at == closing


def test_reading_a_due_review_closes_it(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    db.session.execute(
        update(Review).where(Review.id == rid).values(closes_at=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()
    body = s.members[0].get(f"{API}/reviews/{rid}").get_json()
    assert (body["status"], body["outcome"]) == ("closed", "no_quorum")
    assert (
        s.editor.get(f"{API}/policies/research-data/versions/1").get_json()["status"] == "rejected"
    )


def test_publishing_needs_an_endorsed_review_of_exactly_that_version(setting: Setting) -> None:
    s = setting
    url = f"{API}/policies/research-data/versions/1/publish"
    assert_problem(s.editor.post(url), 409)  # a draft: no review at all
    rid = _submit(s).get_json()["id"]
    assert_problem(s.editor.post(url), 409)  # in review
    for client in s.members[:3]:
        _vote(client, rid, "reject", "No.")
    s.editor.post(f"{API}/reviews/{rid}/close", json={})
    problem = assert_problem(s.editor.post(url), 409)  # rejected
    assert problem["current_status"] == "rejected"
    # A new draft after a rejection: the old endorsement of nothing does not carry over.
    assert s.editor.post(f"{API}/policies/research-data/versions", json={}).status_code == 201
    problem = assert_problem(s.editor.post(f"{API}/policies/research-data/versions/2/publish"), 409)
    assert problem["current_status"] == "draft"
    assert s.app.test_client().get(f"{API}/policy-set").get_json()["policies"] == []


def test_withdrawing_a_version_in_review_ends_its_review(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    _vote(s.members[0], rid, "endorse")
    withdrawn = s.editor.post(f"{API}/policies/research-data/versions/1/withdraw")
    assert withdrawn.get_json()["status"] == "withdrawn"
    review = s.editor.get(f"{API}/reviews/{rid}").get_json()
    assert (review["status"], review["outcome"]) == ("closed", "withdrawn")
    assert_problem(_vote(s.members[1], rid, "endorse"), 409)


def test_recommendation_by_editor_or_chair_until_publication(setting: Setting) -> None:
    s = setting
    rid = _submit(s).get_json()["id"]
    for client in s.members[:2]:
        _vote(client, rid, "endorse")
    s.editor.post(f"{API}/reviews/{rid}/close", json={})
    url = f"{API}/reviews/{rid}/recommendation"
    assert_problem(s.members[0].put(url, json={"recommendation": "Mine."}), 403)
    assert s.editor.put(url, json={"recommendation": "Publish."}).status_code == 200
    s.editor.post(f"{API}/policies/research-data/versions/1/publish")
    assert_problem(s.editor.put(url, json={"recommendation": "Changed my mind."}), 409)
    in_force = s.app.test_client().get(f"{API}/policy-set").get_json()["policies"][0]
    assert in_force["version"]["review"]["recommendation"] == "Publish."


def test_panel_membership_terms(setting: Setting) -> None:
    s = setting
    reader = f.user("reader")
    problem = assert_problem(
        s.admin.post(f"{API}/panels/{s.panel_id}/members", json={"user_id": reader.id}), 422
    )
    assert "user_id" in problem["errors"]
    assert_problem(
        s.admin.post(f"{API}/panels/{s.panel_id}/members", json={"user_id": s.member_users[0].id}),
        409,
    )
    removed = s.admin.delete(f"{API}/panels/{s.panel_id}/members?user_id={s.member_users[0].id}")
    assert removed.status_code == 200
    assert removed.get_json()["current"] is False
    listed = s.editor.get(f"{API}/panels/{s.panel_id}/members").get_json()
    assert [m["current"] for m in listed] == [False, True, True, True]
    rid = _submit(s).get_json()["id"]
    assert_problem(_vote(s.members[0], rid, "endorse"), 403)
    assert_problem(
        s.admin.post(f"{API}/panels", json={"name": "x", "quorum": 1.5, "threshold": 0.5}), 422
    )


def test_the_chair_records_the_recommendation_while_in_term(setting: Setting) -> None:
    s = setting
    members_url = f"{API}/panels/{s.panel_id}/members"
    chair_client, chair = f.as_role(s.app, "panel_member")
    # Only an administrator names a chair.
    assert_problem(s.editor.post(members_url, json={"user_id": chair.id, "chair": True}), 403)
    added = s.admin.post(members_url, json={"user_id": chair.id, "chair": True})
    assert added.status_code == 201
    assert added.get_json()["chair"] is True
    assert s.admin.get(f"{API}/panels/{s.panel_id}").get_json()["chair_id"] == chair.id
    listed = s.editor.get(members_url).get_json()
    assert [m["user_id"] for m in listed if m["chair"]] == [chair.id]

    rid = _submit(s).get_json()["id"]
    for client in s.members[:2]:
        _vote(client, rid, "endorse")
    s.editor.post(f"{API}/reviews/{rid}/close", json={})
    url = f"{API}/reviews/{rid}/recommendation"
    recorded = chair_client.put(url, json={"recommendation": "Publish, and report in a year."})
    assert recorded.status_code == 200
    assert recorded.get_json()["recommendation"] == "Publish, and report in a year."
    assert_problem(s.members[0].put(url, json={"recommendation": "Not the chair."}), 403)

    # A chair whose term ends is no longer the chair, and the change is audited.
    s.admin.delete(f"{members_url}?user_id={chair.id}")
    assert s.admin.get(f"{API}/panels/{s.panel_id}").get_json()["chair_id"] is None
    assert_problem(chair_client.put(url, json={"recommendation": "Still me?"}), 403)
    auditor, _ = f.as_role(s.app, "auditor")
    actions = [e["action"] for e in auditor.get(f"{API}/audit-events?limit=200").get_json()]
    assert actions.count("panel.chair_changed") == 2


def test_a_chair_acts_only_while_serving_on_the_panel(setting: Setting) -> None:
    """Named with a term not yet begun or already over: refused. A chair whose term runs
    out by date, or who is deactivated, stays named but does not act (nor, deactivated,
    count towards quorum); an earlier term of theirs is never marked chair."""
    s = setting
    members_url = f"{API}/panels/{s.panel_id}/members"
    chair_client, chair = f.as_role(s.app, "panel_member")
    today = date.today()
    for term in (
        {"term_start": (today + timedelta(days=1)).isoformat()},
        {"term_start": "2020-01-01", "term_end": "2021-01-01"},
    ):
        refused = s.admin.post(members_url, json={"user_id": chair.id, "chair": True, **term})
        assert "chair" in assert_problem(refused, 422)["errors"]
    assert s.admin.get(f"{API}/panels/{s.panel_id}").get_json()["chair_id"] is None
    # An earlier term, then a current one as chair: only the current term is marked.
    past = {"term_start": "2020-01-01", "term_end": "2021-01-01"}
    assert s.admin.post(members_url, json={"user_id": chair.id, **past}).status_code == 201
    assert s.admin.post(members_url, json={"user_id": chair.id, "chair": True}).status_code == 201
    terms = [m for m in s.editor.get(members_url).get_json() if m["user_id"] == chair.id]
    assert [(m["term_start"], m["chair"]) for m in terms] == [
        ("2020-01-01", False),
        (today.isoformat(), True),
    ]

    rid = _submit(s).get_json()["id"]
    for client in s.members[:2]:
        _vote(client, rid, "endorse")
    s.editor.post(f"{API}/reviews/{rid}/close", json={})
    url = f"{API}/reviews/{rid}/recommendation"
    assert chair_client.put(url, json={"recommendation": "Publish."}).status_code == 200
    # The term runs out by date: no one ended it, so the chair is still named.
    db.session.execute(
        update(PanelMember)
        .where(PanelMember.user_id == chair.id, PanelMember.term_start == today)
        .values(term_end=today - timedelta(days=1))
    )
    db.session.commit()
    assert s.admin.get(f"{API}/panels/{s.panel_id}").get_json()["chair_id"] == chair.id
    assert not any(m["chair"] for m in s.editor.get(members_url).get_json())
    assert_problem(chair_client.put(url, json={"recommendation": "Still me?"}), 403)
    # Back in term, then deactivated: named, in term, but neither chair nor counted.
    db.session.execute(
        update(PanelMember)
        .where(PanelMember.user_id == chair.id, PanelMember.term_start == today)
        .values(term_end=None)
    )
    db.session.commit()
    chair_id = chair.id
    assert [m["chair"] for m in s.editor.get(members_url).get_json()].count(True) == 1
    assert s.admin.patch(f"{API}/users/{chair_id}", json={"active": False}).status_code == 200
    listed = [m for m in s.editor.get(members_url).get_json() if m["user_id"] == chair_id]
    assert [(m["current"], m["chair"]) for m in listed] == [(False, False), (False, False)]
    assert s.editor.post(f"{API}/policies", json=f.policy_body("trials")).status_code == 201
    next_review = s.editor.post(
        f"{API}/policies/trials/versions/1/submit",
        json={"panel_id": s.panel_id, "public_benefit": f.ASSESSMENT},
    )
    assert next_review.status_code == 201, next_review.get_json()
    s.editor.post(f"{API}/reviews/{next_review.get_json()['id']}/close", json={})
    closed = s.editor.get(f"{API}/reviews/{next_review.get_json()['id']}").get_json()
    assert closed["tally"]["eligible"] == len(s.member_users)  # the four, not the chair


def test_a_late_vote_is_refused_and_the_close_it_found_is_kept(setting: Setting) -> None:
    """The first request after the closing time is a vote: it is refused with 409, and
    the review stays closed, as of its closing time, without anyone reading it first."""
    s = setting
    rid = _submit(s).get_json()["id"]
    for client in s.members[:2]:
        _vote(client, rid, "endorse")
    closing = utcnow() - timedelta(seconds=1)
    db.session.execute(update(Review).where(Review.id == rid).values(closes_at=closing))
    db.session.commit()
    problem = assert_problem(_vote(s.members[2], rid, "reject", "Late."), 409)
    assert problem["outcome"] == "endorsed"
    db.session.remove()
    review = db.session.execute(select(Review).where(Review.id == rid)).scalar_one()
    assert (review.status, review.outcome, review.closed_at) == ("closed", "endorsed", closing)
    conflict = s.members[3].post(f"{API}/reviews/{rid}/conflicts", json={"reason": "Late too."})
    assert_problem(conflict, 409)


def test_a_review_past_its_time_is_counted_with_those_who_served_then(setting: Setting) -> None:
    """Reviews close when next touched. A change to who serves (deactivating or demoting
    a voter, ending a term) closes every review whose time has passed first, so the
    outcome is the one at the closing time, whatever happens before anyone reads it."""
    s = setting
    rid = _submit(s).get_json()["id"]
    for client in s.members[:2]:
        _vote(client, rid, "endorse")
    db.session.execute(
        update(Review).where(Review.id == rid).values(closes_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    voters = [user.id for user in s.member_users[:2]]
    first = s.admin.patch(f"{API}/users/{voters[0]}", json={"active": False})
    assert first.status_code == 200
    assert s.admin.patch(f"{API}/users/{voters[1]}", json={"role": "reader"}).status_code == 200
    ended = s.admin.delete(f"{API}/panels/{s.panel_id}/members?user_id={s.member_users[2].id}")
    assert ended.status_code == 200
    review = s.editor.get(f"{API}/reviews/{rid}").get_json()
    assert (review["status"], review["outcome"]) == ("closed", "endorsed")
    assert review["tally"]["eligible"] == 4
    assert s.editor.post(f"{API}/policies/research-data/versions/1/publish").status_code == 200


@pytest.mark.parametrize("value", [0, -0.5, 1.0001, 2, 0.00001, "NaN", "Infinity"])
@pytest.mark.parametrize("name", ["quorum", "threshold"])
def test_quorum_and_threshold_are_fractions_above_zero(
    setting: Setting, name: str, value: Any
) -> None:
    body = {"name": f"Panel {name} {value}", "quorum": 0.5, "threshold": 0.5, name: value}
    problem = assert_problem(setting.admin.post(f"{API}/panels", json=body), 422)
    assert name in problem["errors"]
    assert setting.admin.post(f"{API}/panels", json={**body, name: 1}).status_code == 201


def test_a_panel_stored_with_zero_never_endorses_a_lone_reject(setting: Setting) -> None:
    """Panels created before quorum and threshold were checked may hold 0."""
    s = setting
    db.session.execute(update(Panel).where(Panel.id == s.panel_id).values(quorum=0, threshold=0))
    db.session.commit()
    rid = _submit(s).get_json()["id"]
    assert _vote(s.members[0], rid, "reject", "No.").status_code == 201
    result = s.editor.post(f"{API}/reviews/{rid}/close", json={}).get_json()
    assert result["outcome"] == "rejected"
    assert_problem(s.editor.post(f"{API}/policies/research-data/versions/1/publish"), 409)


def test_a_co_author_cannot_vote_nor_count(setting: Setting) -> None:
    """A second editor edits the draft, is made a panel member and joins the panel."""
    s = setting
    co_author = f.user("editor")
    co_editor = f.bearer(s.app, f.token(co_author))
    draft = co_editor.get(f"{API}/policies/research-data/versions/1")
    edited = co_editor.patch(
        f"{API}/policies/research-data/versions/1",
        json={"summary": "Tightened by a second editor."},
        headers={"If-Match": draft.headers["ETag"]},
    )
    assert edited.status_code == 200, edited.get_json()
    rid = _submit(s).get_json()["id"]
    made_member = s.admin.patch(f"{API}/users/{co_author.id}", json={"role": "panel_member"})
    assert made_member.status_code == 200
    added = s.admin.post(f"{API}/panels/{s.panel_id}/members", json={"user_id": co_author.id})
    assert added.status_code == 201
    member = f.bearer(s.app, f.token(co_author))
    problem = assert_problem(_vote(member, rid, "endorse"), 403)
    assert "author" in problem["detail"]
    # Nor do they count toward quorum: four members eligible, as before they joined.
    assert _vote(s.members[0], rid, "endorse").status_code == 201
    assert _vote(s.members[1], rid, "endorse").status_code == 201
    result = s.editor.post(f"{API}/reviews/{rid}/close", json={}).get_json()
    assert result["tally"]["eligible"] == 4


def test_the_submitter_is_an_author_too(setting: Setting) -> None:
    s = setting
    submitter = f.user("editor")
    client = f.bearer(s.app, f.token(submitter))
    made = client.post(
        f"{API}/policies/research-data/versions/1/submit",
        json={"panel_id": s.panel_id, "public_benefit": f.ASSESSMENT},
    )
    assert made.status_code == 201
    assert (
        s.admin.patch(f"{API}/users/{submitter.id}", json={"role": "panel_member"}).status_code
        == 200
    )
    s.admin.post(f"{API}/panels/{s.panel_id}/members", json={"user_id": submitter.id})
    member = f.bearer(s.app, f.token(submitter))
    assert_problem(_vote(member, made.get_json()["id"], "endorse"), 403)
