"""What a proposed change would do to the answers already given."""

from __future__ import annotations

from typing import Any

from registry.db import current_session
from registry.models.review import Review
from registry.present.policyset import evaluation_set
from registry.services import decisions
from registry.services.context import Actor


def review_impact(review: Review, reader: Actor) -> dict[str, Any] | None:
    """Every recorded decision for the policy's purpose and category, replayed against the
    set in force and against it with the review's proposal, listing only the decisions
    ``reader`` may read; None when there is no longer a proposal (the version was
    published or withdrawn)."""
    version = review.version
    if version.status in ("published", "superseded", "withdrawn"):
        return None
    current = evaluation_set()
    in_force = [p for p in current.policies if p.slug == version.policy.slug]
    proposed = decisions.with_proposal(
        current, decisions.cited_policy(version), version.is_retirement
    )
    recorded = decisions.decisions_for_use(
        current_session(), version.policy.purpose, version.policy.data_category
    )
    return {
        "review_id": review.id,
        "policy": version.policy.slug,
        "proposed_version": version.number,
        "in_force_version": in_force[0].version if in_force else None,
        **decisions.impact(recorded, current, proposed, reader),
    }
