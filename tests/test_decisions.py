"""Decisions through the API: recorded, citable, unchanged by later changes, replayable."""

from __future__ import annotations

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
GOOD = {
    "purpose": "research",
    "data_category": "depersonalised",
    "circumstances": {"ethics_approval": True, "duration_months": 12},
}


@pytest.fixture
def nhs(app: Flask) -> Any:
    f.catalogue()
    f.published("research-data")  # requires ethics approval and at most 24 months
    org = f.organisation("Guy's and St Thomas'")
    client, _member = f.as_role(app, "reader", org=org)
    return client


def _decide(client: Any, **changes: Any) -> Any:
    return client.post(f"{API}/decisions", json={**GOOD, **changes})


def test_a_decision_is_recorded_and_reads_back_exactly(app: Flask, nhs: Any) -> None:
    made = _decide(nhs)
    assert made.status_code == 201
    body = made.get_json()
    assert body["outcome"] == "permitted"
    assert body["revision"] == 1
    assert [(p["slug"], p["version"]) for p in body["policies"]] == [("research-data", 1)]
    assert body["request"]["organisation_kind"] == "nhs_trust"
    assert body["organisation"]["name"] == "Guy's and St Thomas'"
    again = nhs.get(f"{API}/decisions/{body['id']}")
    assert again.get_json() == body
    [event] = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "decision.recorded")
    ).scalars()
    assert event.entity_id == body["id"]
    assert event.after["outcome"] == "permitted"


def test_missing_facts_fail_closed_and_are_listed(nhs: Any) -> None:
    body = _decide(nhs, circumstances={"ethics_approval": True}).get_json()
    assert body["outcome"] == "refused"
    assert body["missing_facts"] == [
        {"name": "duration_months", "question": "For how many months will the data be used?"}
    ]


def test_a_decision_made_before_a_change_still_reads_back_and_cites_the_old_version(
    app: Flask, nhs: Any
) -> None:
    before = _decide(nhs).get_json()
    f.published(
        "research-data", conditions=[{"code": "time_limited", "parameters": {"max_months": 6}}]
    )
    assert nhs.get(f"{API}/decisions/{before['id']}").get_json() == before
    now = _decide(nhs).get_json()
    assert (now["outcome"], now["policies"][0]["version"]) == ("refused", 2)
    replay = _decide(nhs, revision=before["revision"]).get_json()
    assert replay["outcome"] == before["outcome"]
    assert replay["policies"] == before["policies"]
    assert replay["conditions"] == before["conditions"]


def test_no_applicable_policy_and_referral(nhs: Any) -> None:
    assert _decide(nhs, purpose="planning").get_json()["outcome"] == "no_applicable_policy"
    referred = _decide(nhs, sensitive_categories=["hiv"]).get_json()
    assert (referred["outcome"], referred["referred_categories"]) == ("referred_to_panel", ["hiv"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "purpose": "marketing"}, "purpose"),
        ({**GOOD, "data_category": "secret"}, "data_category"),
        ({**GOOD, "surprise": 1}, "surprise"),
        ({**GOOD, "circumstances": {"duration_months": "long"}}, "circumstances"),
        ({**GOOD, "circumstances": {"telepathy": True}}, "circumstances"),
        ({**GOOD, "sensitive_categories": ["gossip"]}, "sensitive_categories"),
        ({**GOOD, "organisation_kind": "club"}, "organisation_kind"),
        ({**GOOD, "commercial_involvement": "perhaps"}, "commercial_involvement"),
        ({**GOOD, "as_of": "2026-01-01"}, "as_of"),
        ({"data_category": "personal"}, "purpose"),
    ],
)
def test_bad_input_is_a_422_and_nothing_is_recorded(
    nhs: Any, body: dict[str, Any], field: str
) -> None:
    events = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    problem = assert_problem(nhs.post(f"{API}/decisions", json=body), 422)
    assert field in problem["errors"]
    assert db.session.execute(select(func.count()).select_from(Decision)).scalar_one() == 0
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events


def test_unknown_revision_is_404(nhs: Any) -> None:
    assert_problem(_decide(nhs, revision=99), 404)


def test_organisations_see_their_own_decisions_auditors_see_all(app: Flask, nhs: Any) -> None:
    mine = _decide(nhs).get_json()["id"]
    other, _ = f.as_role(app, "reader")
    theirs = _decide(other, purpose="planning").get_json()["id"]
    assert [d["id"] for d in nhs.get(f"{API}/decisions").get_json()] == [mine]
    assert_problem(nhs.get(f"{API}/decisions/{theirs}"), 404)
    auditor, _ = f.as_role(app, "auditor")
    assert [d["id"] for d in auditor.get(f"{API}/decisions").get_json()] == [theirs, mine]
    assert [
        d["id"] for d in auditor.get(f"{API}/decisions?outcome=no_applicable_policy").get_json()
    ] == [theirs]
    assert auditor.get(f"{API}/decisions/{theirs}").status_code == 200
    assert_problem(auditor.post(f"{API}/decisions", json=GOOD), 403)


def _propose_a_shorter_time_limit(app: Flask, members: list[Any] | None = None) -> int:
    """Version 2 of research-data, allowing 9 months instead of 24, in review; its id."""
    editor, _ = f.as_role(app, "editor")
    assert editor.post(f"{API}/policies/research-data/versions", json={}).status_code == 201
    etag = editor.get(f"{API}/policies/research-data/versions/2").headers["ETag"]
    editor.patch(
        f"{API}/policies/research-data/versions/2",
        headers={"If-Match": etag},
        json={
            "conditions": [
                {"code": "ethics_approval", "parameters": {}},
                {"code": "time_limited", "parameters": {"max_months": 9}},
            ]
        },
    )
    board = f.panel(members or [f.user("panel_member")])
    review = editor.post(
        f"{API}/policies/research-data/versions/2/submit",
        json={"panel_id": board.id, "public_benefit": f.ASSESSMENT},
    )
    assert review.status_code == 201, review.get_json()
    return int(review.get_json()["id"])


def test_impact_lists_decisions_whose_outcome_would_flip(app: Flask, nhs: Any) -> None:
    for months in (6, 12, 20):
        _decide(nhs, circumstances={"ethics_approval": True, "duration_months": months})
    _decide(nhs, circumstances={"ethics_approval": False, "duration_months": 6})
    review_id = _propose_a_shorter_time_limit(app)
    impact = nhs.get(f"{API}/reviews/{review_id}/impact").get_json()
    assert (impact["evaluated"], impact["changed"]) == (4, 2)
    assert impact["transitions"] == {"permitted -> refused": 2}
    assert (impact["in_force_version"], impact["proposed_version"]) == (1, 2)
    assert {d["recorded_outcome"] for d in impact["decisions"]} == {"permitted"}


@pytest.fixture
def company(app: Flask) -> Any:
    """A reader of a registered company, and a policy for NHS trusts only, no company."""
    f.catalogue()
    f.published(
        "trusts-only",
        conditions=[
            {
                "code": "named_institutions_only",
                "parameters": {"organisation_kinds": ["nhs_trust"]},
            },
            {"code": "non_commercial_only", "parameters": {}},
        ],
    )
    client, _member = f.as_role(app, "reader", org=f.organisation("Acme Analytics", "company"))
    return client


def test_the_callers_organisation_kind_is_the_registered_one(company: Any) -> None:
    answered = _decide(company, commercial_involvement=True).get_json()
    assert answered["outcome"] == "refused"
    assert answered["request"]["organisation_kind"] == "company"
    events = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    problem = assert_problem(
        _decide(company, organisation_kind="nhs_trust", commercial_involvement=True), 422
    )
    assert "organisation_kind" in problem["errors"]
    assert db.session.execute(select(func.count()).select_from(Decision)).scalar_one() == 1
    assert db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events
    # Naming the kind the registry holds changes nothing.
    same = _decide(company, organisation_kind="company", commercial_involvement=True).get_json()
    assert (same["outcome"], same["request"]["organisation_kind"]) == ("refused", "company")


def test_a_company_cannot_say_no_company_is_involved(company: Any) -> None:
    problem = assert_problem(_decide(company, commercial_involvement=False), 422)
    assert "commercial_involvement" in problem["errors"]
    assert db.session.execute(select(func.count()).select_from(Decision)).scalar_one() == 0
    # Left out, it is what the registry knows: a company is involved.
    answered = _decide(company).get_json()
    assert answered["request"]["commercial_involvement"] is True
    [commercial] = [c for c in answered["conditions"] if c["code"] == "non_commercial_only"]
    assert commercial["status"] == "unmet"


def test_impact_names_only_the_decisions_the_caller_may_read(app: Flask, nhs: Any) -> None:
    """Everyone sees the same counts; a decision is listed only to those who may read it
    (its own organisation, auditors, administrators), as GET /decisions/{id} decides."""
    ours = [
        _decide(nhs, circumstances={"ethics_approval": True, "duration_months": m}).get_json()
        for m in (12, 20)
    ]
    elsewhere, _ = f.as_role(app, "reader", org=f.organisation("King's College Hospital"))
    theirs = _decide(
        elsewhere, circumstances={"ethics_approval": True, "duration_months": 15}
    ).get_json()
    member = f.user("panel_member")
    review_id = _propose_a_shorter_time_limit(app, [member])
    callers = {
        "panel member": (f.bearer(app, f.token(member)), set()),
        "reader of another organisation": (f.as_role(app, "reader")[0], set()),
        "reader of the organisation that made two": (nhs, {d["id"] for d in ours}),
        "reader of the organisation that made one": (elsewhere, {theirs["id"]}),
        "auditor": (f.as_role(app, "auditor")[0], {d["id"] for d in [*ours, theirs]}),
        "admin": (f.as_role(app, "admin")[0], {d["id"] for d in [*ours, theirs]}),
    }
    counts = set()
    for who, (client, readable) in callers.items():
        response = client.get(f"{API}/reviews/{review_id}/impact")
        assert response.status_code == 200, (who, response.get_json())
        impact = response.get_json()
        counts.add((impact["evaluated"], impact["changed"], str(impact["transitions"])))
        listed = {d["decision_id"] for d in impact["decisions"]}
        assert listed == readable, who
        for decision_id in listed:
            assert client.get(f"{API}/decisions/{decision_id}").status_code == 200, who
        for decision_id in {d["id"] for d in [*ours, theirs]} - listed:
            assert_problem(client.get(f"{API}/decisions/{decision_id}"), 404)
    assert counts == {(3, 3, str({"permitted -> refused": 3}))}
