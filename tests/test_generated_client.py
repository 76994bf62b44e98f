"""A client generated from openapi/openapi.yaml, by a generator nobody here wrote, does the
whole walkthrough: the README's change from draft to publication, a question and its
citation, and the audit trail's proofs, through generated functions and typed models only.

openapi-python-client is what an NHS team would reach for. It must generate with no
warning (a warning means a part of the API it dropped), and every answer must parse into
its declared model (an undeclared status or shape raises).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from flask import Flask

from registry.db import current_session
from registry.services import seed
from registry.services.context import Actor
from tests import factories as f

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "openapi.yaml"
PACKAGE = "registry_generated_client"
BASE = "http://registry.test"
PREVIOUS = ("--previous", "older.json")


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    where = tmp_path_factory.mktemp("client")
    config = where / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: the code as generated
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(SPEC),
            "--meta",
            "none",
            "--output-path",
            str(where / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


class Registry:
    """The generated package, bound to the test app through httpx's WSGI transport."""

    def __init__(self, package: ModuleType, app: Flask) -> None:
        self.package = package
        self.models = _module(package, "models")
        self.app = app

    def call(self, operation: str) -> Any:
        """The generated module for ``tag.operation_id`` (e.g. ``policies.get_version``)."""
        return _module(self.package, f"api.{operation}")

    def anonymous(self) -> Any:
        client = _module(self.package, "client")
        return client.Client(
            base_url=BASE,
            raise_on_unexpected_status=True,
            # The checkpoint is a signed note unless JSON is asked for.
            headers={"Accept": "application/json"},
            httpx_args={"transport": httpx.WSGITransport(app=self.app)},
        )

    def as_(self, token: str) -> Any:
        client = _module(self.package, "client")
        return client.AuthenticatedClient(
            base_url=BASE,
            token=token,
            raise_on_unexpected_status=True,
            # The checkpoint is a signed note unless JSON is asked for.
            headers={"Accept": "application/json"},
            httpx_args={"transport": httpx.WSGITransport(app=self.app)},
        )


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.parsed


def test_the_walkthrough_through_a_generated_client(
    app: Flask, generated: ModuleType, tmp_path: Path
) -> None:
    registry = Registry(generated, app)
    m = registry.models
    seed.load(current_session(), Actor.system(label="seed"))
    current_session().commit()
    admin = registry.as_(f.token(f.user("admin")))
    editor = registry.as_(f.token(f.user("editor")))
    member_user = f.user("panel_member")
    member = registry.as_(f.token(member_user))
    reader = registry.as_(f.token(f.user("reader", org=f.organisation("Barts Health"))))
    auditor = registry.as_(f.token(f.user("auditor")))
    public = registry.anonymous()
    slug = "research-depersonalised"

    # A signed document is kept as the bytes it came in (a parsed and re-serialised time
    # may be spelled otherwise than the signature covers).
    kept_answer = registry.call("audit.get_latest_checkpoint").sync_detailed(client=public)
    kept = _ok(kept_answer)
    assert isinstance(kept, m.Checkpoint)
    # What anyone may read, with no credentials: the set and the catalogue.
    before = _ok(registry.call("policy_set.get_policy_set").sync_detailed(client=public))
    assert {p.slug: p.version.number for p in before.policies}[slug] == 1
    catalogue = _ok(registry.call("policies.list_condition_types").sync_detailed(client=public))
    assert "time_limited" in {c.code for c in catalogue}
    assert all(isinstance(c.kind, m.ConditionKind) for c in catalogue)

    # A panel, with the member on it.
    panel = _ok(
        registry.call("reviews.create_panel").sync_detailed(
            client=admin, body=m.Panel(name="North East London panel", quorum=0.5, threshold=0.5)
        ),
        201,
    )
    me = _ok(registry.call("identity.get_me").sync_detailed(client=member))
    assert me.role is m.Role.PANEL_MEMBER
    _ok(
        registry.call("reviews.add_member").sync_detailed(
            panel.id, client=admin, body=m.MemberAdd(user_id=me.user.id)
        ),
        201,
    )

    # A new draft, changed with the ETag it was read with.
    draft = _ok(
        registry.call("policies.create_version").sync_detailed(
            slug, client=editor, body=m.VersionCreate()
        ),
        201,
    )
    assert (draft.number, draft.status) == (2, m.VersionStatus.DRAFT)
    read = registry.call("policies.get_version").sync_detailed(slug, 2, client=editor)
    etag = read.headers["ETag"]
    conditions = []
    for condition in read.parsed.conditions:
        parameters = m.ConditionInParameters.from_dict(condition.parameters.to_dict())
        if condition.code == "time_limited":
            parameters["max_months"] = 24
        conditions.append(m.ConditionIn(code=condition.code, parameters=parameters))
    change = m.VersionUpdate(
        conditions=conditions,
        body=read.parsed.body.replace("for at most 36 months", "for at most 24 months"),
        rationale="Panels asked for shorter access.",
    )
    stale = registry.call("policies.update_draft").sync_detailed(
        slug, 2, client=editor, body=change, if_match='"stale"'
    )
    problem = _ok(stale, 412)
    assert isinstance(problem, m.Problem)
    assert problem.current_etag == etag
    changed = _ok(
        registry.call("policies.update_draft").sync_detailed(
            slug, 2, client=editor, body=change, if_match=etag
        )
    )
    assert "for at most 24 months" in changed.body
    unchanged = registry.call("policies.get_version").sync_detailed(
        slug,
        2,
        client=editor,
        if_none_match=registry.call("policies.get_version")
        .sync_detailed(slug, 2, client=editor)
        .headers["ETag"],
    )
    assert unchanged.status_code == 304

    # Submitted with its public benefit assessment; the member reads, weighs and votes.
    assessment = m.PublicBenefit(
        benefits="Faster research.",
        beneficiaries="Londoners.",
        harms_and_mitigations="Shorter access lowers the risk.",
        commercial_involvement="None.",
        benefits_to_nhs_and_public="Results return to the NHS.",
        public_communication="Published in the change log.",
    )
    review = _ok(
        registry.call("policies.submit_version").sync_detailed(
            slug, 2, client=editor, body=m.Submit(panel_id=panel.id, public_benefit=assessment)
        ),
        201,
    )
    assert review.status is m.ReviewStatus.OPEN
    assert review.outcome is None
    detail = _ok(registry.call("reviews.get_review").sync_detailed(review.id, client=member))
    assert detail.proposed.number == 2
    impact = _ok(
        registry.call("decisions.get_review_impact").sync_detailed(review.id, client=member)
    )
    assert impact.proposed_version == 2
    _ok(
        registry.call("reviews.cast_vote").sync_detailed(
            review.id, client=member, body=m.Vote(choice=m.VoteChoice.ENDORSE)
        ),
        201,
    )

    # Closed, published, in force.
    closed = _ok(
        registry.call("reviews.close_review").sync_detailed(
            review.id, client=editor, body=m.Close(recommendation="Publish.")
        )
    )
    assert closed.outcome is m.ReviewOutcome.ENDORSED
    published = _ok(registry.call("policies.publish_version").sync_detailed(slug, 2, client=editor))
    assert published.status is m.VersionStatus.PUBLISHED
    in_force = _ok(registry.call("policy_set.get_policy_set").sync_detailed(client=public))
    assert {p.slug: p.version.number for p in in_force.policies}[slug] == 2

    # A question, answered and cited; read back as the same document.
    asked = m.DecisionRequest(
        purpose=m.Purpose.RESEARCH,
        data_category=m.DataCategory.DEPERSONALISED,
        commercial_involvement=False,
        circumstances=m.Circumstances.from_dict(
            {
                "trusted_research_environment": True,
                "processing_location": "GB",
                "named_users": ["analyst one", "analyst two"],
                "ethics_approval": True,
                "duration_months": 12,
                "national_data_opt_out_applied": True,
                "reidentification_intended": False,
                "onward_sharing": False,
            }
        ),
    )
    decision = _ok(
        registry.call("decisions.create_decision").sync_detailed(client=reader, body=asked), 201
    )
    assert isinstance(decision, m.Decision)
    assert decision.outcome in (
        m.DecisionOutcome.PERMITTED,
        m.DecisionOutcome.PERMITTED_WITH_DUTIES,
    )
    assert decision.request.organisation_kind is m.OrganisationKind.NHS_TRUST
    assert any((p.slug, p.version) == (slug, 2) for p in decision.policies)
    assert all(isinstance(c.status, m.ConditionStatus) for c in decision.conditions)
    again = _ok(registry.call("decisions.get_decision").sync_detailed(decision.id, client=reader))
    assert again.to_dict() == decision.to_dict()
    listed = _ok(registry.call("decisions.list_decisions").sync_detailed(client=auditor))
    assert [d.id for d in listed] == [decision.id]

    # The audit trail's proofs, for anyone.
    latest_answer = registry.call("audit.get_latest_checkpoint").sync_detailed(client=public)
    latest = _ok(latest_answer)
    assert latest.size > kept.size
    proof = _ok(
        registry.call("audit.get_consistency_proof").sync_detailed(
            client=public, from_=kept.size, to=latest.size
        )
    )
    assert (proof.from_, proof.to, proof.to_root) == (kept.size, latest.size, latest.root_hash)
    inclusion = _ok(
        registry.call("audit.get_inclusion_proof").sync_detailed(1, client=public, size=latest.size)
    )
    assert inclusion.root_hash == latest.root_hash
    report = _ok(registry.call("audit.verify_audit_trail").sync_detailed(client=public))
    assert report.ok is True
    assert report.latest_checkpoint.size == latest.size
    events = _ok(registry.call("audit.list_audit_events").sync_detailed(client=auditor))
    assert all(isinstance(e.actor.type_, m.ActorType) for e in events)

    # The auditor's export, checked offline against the checkpoints kept on the way.
    export = _ok(registry.call("audit.export_audit_events").sync_detailed(client=auditor))
    (tmp_path / "export.jsonl").write_text(export)
    (tmp_path / "older.json").write_bytes(kept_answer.content)
    (tmp_path / "latest.json").write_bytes(latest_answer.content)
    checked = subprocess.run(
        [sys.executable, "-m", "registry.verify", "export.jsonl", "latest.json", *PREVIOUS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
