"""Scenes the page tests and the browser tests share: the seeded set, a change to it in
review before a panel, and the ways a browser logs in and reads a form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from registry.db import db
from registry.models.audit import AuditEvent
from registry.models.identity import User
from registry.models.review import Vote
from tests import factories as f

API = "/api/v1"
SLUG = "research-depersonalised"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["registry", "seed"])
    assert result.exit_code == 0, result.output


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    return str(response.get_data(as_text=True))


def form_token(page: str) -> str:
    match = _TOKEN.search(page)
    assert match, "no CSRF token in the form"
    return match.group(1)


def form_login(app: Flask, account: User, password: str = f.PASSWORD) -> FlaskClient:
    """A browser's way in: read the form, send it back with its token."""
    client = app.test_client()
    token = form_token(html(client.get("/login")))
    response = client.post(
        "/login", data={"email": account.email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith("/panel")
    return client


def votes(review_id: int) -> list[Vote]:
    db.session.remove()
    return list(
        db.session.execute(
            select(Vote).where(Vote.review_id == review_id).order_by(Vote.id)
        ).scalars()
    )


def events() -> int:
    db.session.remove()
    return int(db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


@dataclass
class Proposal:
    app: Flask
    editor: FlaskClient
    members: list[User]
    review_id: int


RESEARCH_USE: dict[str, Any] = {
    "purpose": "research",
    "data_category": "depersonalised",
    "commercial_involvement": False,
    "circumstances": {
        "trusted_research_environment": True,
        "processing_location": "GB",
        "named_users": ["A researcher", "Another researcher"],
        "ethics_approval": True,
        "national_data_opt_out_applied": True,
        "reidentification_intended": False,
        "onward_sharing": False,
        "will_return_results": True,
        "will_publish_in_register": True,
    },
}


def record_decisions(app: Flask) -> None:
    """Two recorded answers about research: one for 30 months, one for 12."""
    reader, _ = f.as_role(
        app, "reader", org=f.organisation("University College London", "university")
    )
    for months in (30, 12):
        use = {**RESEARCH_USE}
        use["circumstances"] = {**RESEARCH_USE["circumstances"], "duration_months": months}
        answered = reader.post(f"{API}/decisions", json=use)
        assert answered.status_code == 201, answered.get_json()
        assert answered.get_json()["outcome"] in ("permitted", "permitted_with_duties")


def make_proposal(app: Flask) -> Proposal:
    """The seeded set, and a change to the research policy (36 -> 24 months) in review."""
    seed(app)
    editor, _ = f.as_role(app, "editor")
    members = [f.user("panel_member"), f.user("panel_member")]
    board = f.panel(members, name="North East London panel")
    made = editor.post(f"{API}/policies/{SLUG}/versions", json={})
    assert made.status_code == 201, made.get_json()
    conditions = [
        c if c["code"] != "time_limited" else {**c, "parameters": {"max_months": 24}}
        for c in made.get_json()["conditions"]
    ]
    changed = editor.patch(
        f"{API}/policies/{SLUG}/versions/2",
        json={
            "conditions": [{"code": c["code"], "parameters": c["parameters"]} for c in conditions],
            "body": made.get_json()["body"].replace("at most 36 months", "at most 24 months"),
            "summary": made.get_json()["summary"].replace("limited time", "shorter time"),
            "rationale": "Shorter access, as members asked.",
        },
        headers={"If-Match": made.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.get_json()
    record_decisions(app)
    submitted = editor.post(
        f"{API}/policies/{SLUG}/versions/2/submit",
        json={"panel_id": board.id, "public_benefit": f.ASSESSMENT},
    )
    assert submitted.status_code == 201, submitted.get_json()
    return Proposal(app, editor, members, submitted.get_json()["id"])
