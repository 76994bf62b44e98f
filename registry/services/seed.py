"""The starter policy set, loaded through the same services as any change.

Derived from the OneLondon Citizens' Summit (2020) and the National Data Guardian's
"Putting Good into Practice" dialogue (2021). Each starter policy is drafted, submitted to
the starter-set panel, endorsed and published, so its history reads like any other.
Running the seed again changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.models.identity import Role
from registry.models.review import Choice
from registry.services import identity, memberships, panels, policies, reviews
from registry.services.context import Actor

ORGANISATION = "London data policy registry"
EDITOR = "starter-set-editor@registry.invalid"
PANEL_ACCOUNT = "starter-set-panel@registry.invalid"
PANEL = "Starter set panel"
PANEL_DESCRIPTION = (
    "Endorsed the starter set, which transcribes the recommendations of the OneLondon "
    "Citizens' Summit (February and March 2020: 100 Londoners from all 32 boroughs). Its "
    "one member is a registry account standing for that record, not a citizen. Every later "
    "change goes to a panel of Londoners."
)
RECOMMENDATION = (
    "Publish. This policy restates conditions the OneLondon Citizens' Summit set out; the "
    "panel of Londoners should review it within its first year."
)

SEED_FOLDER = Path(__file__).resolve().parent.parent / "seed"


def starter_set(folder: Path = SEED_FOLDER) -> list[dict[str, Any]]:
    """The starter policies in file-name order: one Markdown file each, its body the
    policy's text and its YAML front matter the rest (title, summary, conditions, the
    public benefit assessment)."""
    found = []
    for path in sorted(folder.glob("*.md"), key=lambda p: int(p.name.split("-", 1)[0])):
        text = path.read_text(encoding="utf-8")
        parts = text.split("---\n", 2)
        if len(parts) != 3 or parts[0]:
            raise ValueError(f"{path.name}: a starter policy starts with its front matter")
        found.append({**yaml.safe_load(parts[1]), "body": parts[2]})
    return found


STARTER_SET: list[dict[str, Any]] = starter_set()


def _account(session: Session, actor: Actor, org_id: int, email: str, role: str, name: str) -> int:
    user = identity.find_user(session, email)
    if user is None:
        user = identity.create_user(
            session,
            actor,
            email=email,
            display_name=name,
            organisation_id=org_id,
            role=role,
            password=None,
        )
    return user.id


def load(session: Session, actor: Actor, specs: list[dict[str, Any]] | None = None) -> list[str]:
    """Load whatever of the starter set (or of ``specs``, policies in its form) is
    missing; return the slugs published now."""
    policies.sync_catalogue(session, actor)
    org = identity.find_organisation(session, ORGANISATION) or identity.create_organisation(
        session, actor, ORGANISATION, "registry"
    )
    editor_id = _account(
        session,
        actor,
        org.id,
        EDITOR,
        Role.EDITOR,
        "Starter set (transcribed from the summit report)",
    )
    member_id = _account(
        session,
        actor,
        org.id,
        PANEL_ACCOUNT,
        Role.PANEL_MEMBER,
        "Starter set panel (record of the summit)",
    )
    panel = next(
        (p for p in panels.list_panels(session, limit=1000, after=None).items if p.name == PANEL),
        None,
    ) or panels.create_panel(
        session,
        actor,
        {
            "name": PANEL,
            "description": PANEL_DESCRIPTION,
            "quorum": 1,
            "threshold": 1,
            "default_review_days": 1,
        },
    )
    if not panels.members(session, panel.id):
        memberships.add_member(session, actor, panel.id, member_id, None, None)
    editor = Actor(
        kind="system",
        user_id=editor_id,
        role=Role.EDITOR,
        label="seed",
        request_id=actor.request_id,
    )
    member = Actor(
        kind="system",
        user_id=member_id,
        role=Role.PANEL_MEMBER,
        label="seed",
        request_id=actor.request_id,
    )
    published = []
    for spec in STARTER_SET if specs is None else specs:
        if policies.find_policy(session, spec["slug"]) is not None:
            continue
        data = {k: v for k, v in spec.items() if k != "public_benefit"}
        version = policies.create_policy(session, editor, data)
        review = reviews.submit(
            session,
            editor,
            version,
            panel.id,
            utcnow() + timedelta(days=1),
            spec.get("public_benefit"),
        )
        reviews.cast_vote(session, member, review.id, Choice.ENDORSE, "")
        reviews.close(session, editor, review, RECOMMENDATION)
        policies.publish(session, editor, spec["slug"], version.number)
        published.append(spec["slug"])
    return published
