"""Policies, versions, revisions and the comparison of two versions, as documents."""

from __future__ import annotations

from typing import Any

from registry.models.policy import Policy, PolicyVersion, SetRevision
from registry.models.review import Review
from registry.services import catalogue, chain, content, diff

PUBLIC_TALLY = (
    "eligible",
    "cast",
    "counted",
    "not_counted",
    "endorse",
    "endorse_with_changes",
    "reject",
    "abstain",
)


def public_tally(tally: dict[str, Any] | None) -> dict[str, int] | None:
    """The counts of a tally, without who was eligible."""
    if tally is None:
        return None
    return {key: tally[key] for key in PUBLIC_TALLY if key in tally}


def review_summary(review: Review | None) -> dict[str, Any] | None:
    if review is None:
        return None
    return {
        "id": review.id,
        "panel": review.panel.name,
        "outcome": review.outcome,
        "tally": public_tally(review.tally),
        "recommendation": review.recommendation,
        "closes_at": review.closes_at,
        "closed_at": review.closed_at,
    }


def condition_out(code: str, parameters: dict[str, Any]) -> dict[str, Any]:
    entry = catalogue.get(code)
    return {
        "code": code,
        "title": entry.title if entry else code,
        "kind": str(entry.kind) if entry else "requires",
        "five_safes": entry.five_safes if entry else None,
        "duo_code": entry.duo[0] if entry and entry.duo else None,
        "parameters": parameters,
    }


def version_out(version: PolicyVersion, review: Review | None = None) -> dict[str, Any]:
    policy = version.policy
    return {
        "policy": policy.slug,
        "title": policy.title,
        "purpose": policy.purpose,
        "data_category": policy.data_category,
        "number": version.number,
        "status": version.status,
        "is_retirement": version.is_retirement,
        "body": version.body,
        "summary": version.summary,
        "rationale": version.rationale,
        "conditions": [condition_out(c.type_code, c.parameters) for c in version.conditions],
        "sensitive_categories": list(version.sensitive_categories),
        "effective_from": version.effective_from,
        "in_force_from": version.in_force_from,
        "published_at": version.published_at,
        "revision": version.revision_number,
        "content_hash": version.content_hash,
        "created_at": version.created_at,
        "updated_at": version.updated_at,
        "submitted_at": version.submitted_at,
        "review": review_summary(review),
    }


def policy_out(policy: Policy, latest: int | None) -> dict[str, Any]:
    return {
        "slug": policy.slug,
        "title": policy.title,
        "purpose": policy.purpose,
        "data_category": policy.data_category,
        "state": policy.state,
        "latest_version": latest,
        "created_at": policy.created_at,
    }


def revision_out(revision: SetRevision, reviews: dict[int, Review]) -> dict[str, Any]:
    return {
        "number": revision.number,
        "recorded_at": revision.recorded_at,
        "summary": revision.summary,
        "changes": [
            {
                **change,
                "effective_from": chain.parse_time(change["effective_from"]),
                "review": review_summary(reviews.get(change.get("review_id") or 0)),
            }
            for change in revision.changes
        ],
    }


def compare(old: Any, new: Any) -> dict[str, Any]:
    """The diff document between two versions."""
    result = diff.compare(content.content_document(old), content.content_document(new))
    return {
        "policy": new.policy.slug,
        "from": {"number": old.number, "content_hash": old.content_hash},
        "to": {"number": new.number, "content_hash": new.content_hash},
        **result,
    }
