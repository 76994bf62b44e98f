"""The starter set: loaded through the services, reviewed like any change, idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from registry.db import db
from registry.models.audit import AuditEvent
from registry.services import seed
from tests import factories as f

API = "/api/v1"


def _seed(app: Flask) -> Any:
    result = app.test_cli_runner().invoke(args=["registry", "seed"])
    assert result.exit_code == 0, result.output
    return result


def _events() -> int:
    return db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def test_the_seed_publishes_a_reviewed_set_covering_every_purpose(app: Flask) -> None:
    _seed(app)
    body = app.test_client().get(f"{API}/policy-set").get_json()
    policies = body["policies"]
    assert body["revision"] == len(policies) == 6
    assert {p["purpose"] for p in policies} == {"individual_care", "planning", "research"}
    assert set().union(*(p["version"]["sensitive_categories"] for p in policies))
    for p in policies:
        version = p["version"]
        assert version["conditions"], p["slug"]
        assert version["summary"] and version["review"]["outcome"] == "endorsed"
        assert version["review"]["recommendation"]
    log = app.test_client().get(f"{API}/policy-set/revisions").get_json()
    assert [r["number"] for r in log] == [6, 5, 4, 3, 2, 1]


def test_running_the_seed_twice_changes_nothing(app: Flask) -> None:
    _seed(app)
    events = _events()
    etag = app.test_client().get(f"{API}/policy-set").headers["ETag"]
    second = _seed(app)
    assert "already loaded" in second.output
    assert _events() == events
    assert app.test_client().get(f"{API}/policy-set").headers["ETag"] == etag


def test_the_starter_set_answers_real_questions(app: Flask) -> None:
    _seed(app)
    client, _ = f.as_role(app, "reader", org=f.organisation("Whittington Health", "nhs_trust"))
    care = client.post(
        f"{API}/decisions",
        json={
            "purpose": "individual_care",
            "data_category": "personal",
            "circumstances": {
                "direct_care_relationship": True,
                "data_minimised": True,
                "security_assured": True,
            },
        },
    ).get_json()
    assert care["outcome"] == "permitted_with_duties"
    assert [d["code"] for d in care["duties"]] == ["access_audited"]
    # The kind is the registered one: a company asks as a company.
    vendor, _ = f.as_role(app, "reader", org=f.organisation("Acme Analytics", "company"))
    company = vendor.post(
        f"{API}/decisions",
        json={"purpose": "planning", "data_category": "depersonalised"},
    ).get_json()
    assert company["outcome"] == "refused"
    research_hiv = client.post(
        f"{API}/decisions",
        json={
            "purpose": "research",
            "data_category": "depersonalised",
            "sensitive_categories": ["hiv"],
            "commercial_involvement": False,
            "circumstances": {
                "trusted_research_environment": True,
                "processing_location": "GB",
                "named_users": ["a"],
                "ethics_approval": True,
                "duration_months": 12,
                "national_data_opt_out_applied": True,
                "reidentification_intended": False,
                "onward_sharing": False,
            },
        },
    ).get_json()
    assert research_hiv["outcome"] == "referred_to_panel"


def test_the_starter_set_is_read_from_its_markdown_files(tmp_path: Path) -> None:
    """One file a policy, in file-name order: the body is the Markdown after the front
    matter, byte for byte; a file without front matter is refused, naming it."""
    specs = seed.starter_set()
    assert [s["slug"] for s in specs] == [
        p.name.split("-", 1)[1].removesuffix(".md")
        for p in sorted(seed.SEED_FOLDER.glob("*.md"), key=lambda p: int(p.name.split("-")[0]))
    ]
    for spec in specs:
        assert spec["body"].startswith("# ") and spec["body"].endswith("\n")
        assert {"slug", "title", "purpose", "data_category", "summary", "conditions"} <= set(spec)
    (tmp_path / "2-b.md").write_text("---\nslug: b\n---\n# B\n")
    (tmp_path / "10-a.md").write_text("---\nslug: a\n---\n# A\n\ntext\n")
    assert [s["slug"] for s in seed.starter_set(tmp_path)] == ["b", "a"]
    assert seed.starter_set(tmp_path)[1]["body"] == "# A\n\ntext\n"
    (tmp_path / "3-c.md").write_text("# C, with no front matter\n")
    with pytest.raises(ValueError, match=r"3-c\.md"):
        seed.starter_set(tmp_path)
