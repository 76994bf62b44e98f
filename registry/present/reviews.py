"""A review as each reader may see it: counts while open, votes after, names to some."""

from __future__ import annotations

from typing import Any

from registry.db import current_session, utcnow
from registry.models.identity import Role
from registry.models.policy import PolicyVersion
from registry.models.review import Review
from registry.present.versions import compare, public_tally, version_out
from registry.services import panels, policyset, reviews
from registry.services.context import Actor


def review_out(review: Review) -> dict[str, Any]:
    """A review as anyone allowed to see it sees it: counts only while open."""
    session = current_session()
    tally = review.tally if review.status == "closed" else reviews.tally_so_far(session, review)
    return {
        "id": review.id,
        "status": review.status,
        "outcome": review.outcome,
        "panel": {"id": review.panel.id, "name": review.panel.name},
        "policy": review.version.policy.slug,
        "version_number": review.version.number,
        "content_hash": review.version.content_hash,
        "opened_at": review.opened_at,
        "closes_at": review.closes_at,
        "closed_at": review.closed_at,
        "tally": public_tally(tally) or {},
        "recommendation": review.recommendation,
        "public_benefit": review.public_benefit,
    }


def _sees_voters(actor: Actor, review: Review) -> bool:
    if actor.role in (Role.EDITOR, Role.ADMIN, Role.AUDITOR):
        return True
    return any(
        m.user_id == actor.user_id for m in panels.members(current_session(), review.panel_id)
    )


def vote_out(vote: Any, counted: bool, show_voter: bool) -> dict[str, Any]:
    return {
        "choice": vote.choice,
        "comment": vote.comment,
        "content_hash": vote.content_hash,
        "counted": counted,
        "voter": {"id": vote.user_id, "display_name": vote.user.display_name}
        if show_voter
        else None,
        "cast_at": vote.cast_at,
        "updated_at": vote.updated_at,
    }


def review_detail(review: Review, actor: Actor) -> dict[str, Any]:
    """The review with the proposal beside what is in force, and (after close) the votes."""
    session = current_session()
    out = review_out(review)
    version = review.version
    out["proposed"] = version_out(version, review)
    in_force = [
        e
        for e in policyset.in_force(
            policyset.load_timeline(session, policyset.latest_revision(session)), utcnow()
        )
        if e.policy_id == version.policy_id
    ]
    out["in_force"] = in_force[0].number if in_force else None
    out["diff"] = None
    if in_force:
        current = session.get(PolicyVersion, in_force[0].version_id)
        if current is not None:
            out["diff"] = compare(current, version)
    all_votes = reviews.votes(session, review.id)
    mine = [v for v in all_votes if v.user_id == actor.user_id]
    counted_ids = set((review.tally or {}).get("eligible_members", []))
    conflicts = reviews.conflicts(session, review.id)
    if review.status == "closed":
        show = _sees_voters(actor, review)
        out["votes"] = [vote_out(v, v.user_id in counted_ids, show) for v in all_votes]
        out["conflicts"] = [
            {
                "user_id": c.user_id if show else None,
                "reason": c.reason,
                "declared_at": c.declared_at,
            }
            for c in conflicts
        ]
    else:
        eligible = reviews.eligible_ids(session, review, utcnow())
        out["votes"], out["conflicts"] = [], []
        counted_ids = eligible
    out["my_vote"] = vote_out(mine[0], mine[0].user_id in counted_ids, True) if mine else None
    my_conflict = [c for c in conflicts if c.user_id == actor.user_id]
    out["my_conflict"] = (
        {
            "user_id": my_conflict[0].user_id,
            "reason": my_conflict[0].reason,
            "declared_at": my_conflict[0].declared_at,
        }
        if my_conflict
        else None
    )
    return out
