"""Reviews by citizen panels: no change to the set without an endorsed review."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry.models.identity import Role
from registry.models.policy import Policy, PolicyVersion, VersionStatus
from registry.models.review import (
    Choice,
    ConflictOfInterest,
    Outcome,
    Review,
    Vote,
)
from registry.services import audit, chain, lifecycle, panels
from registry.services.context import Actor
from registry.services.paging import Page, keyset_page
from registry.vocabulary import PUBLIC_BENEFIT_QUESTIONS

CLOCK = Actor.system(label="review-clock")
MAX_REVIEW_DAYS = 365
NEEDS_ASSESSMENT = ("planning", "research")


# --- the arithmetic -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ballot:
    choice: str
    counted: bool


def decide(
    quorum: Decimal, threshold: Decimal, eligible: int, ballots: Sequence[Ballot]
) -> tuple[str, dict[str, int]]:
    """The outcome of a review, and its tally.

    Quorum: counted votes (abstentions included) are at least ``quorum`` of the eligible
    members. Endorsement: at least one counted endorsement (with or without changes), and
    endorsements at least ``threshold`` of the counted votes that are not abstentions.
    Exact decimal arithmetic.
    """
    counted = [b.choice for b in ballots if b.counted]
    tally = {
        "eligible": eligible,
        "cast": len(ballots),
        "counted": len(counted),
        "not_counted": len(ballots) - len(counted),
        "endorse": counted.count(Choice.ENDORSE),
        "endorse_with_changes": counted.count(Choice.ENDORSE_WITH_CHANGES),
        "reject": counted.count(Choice.REJECT),
        "abstain": counted.count(Choice.ABSTAIN),
    }
    if eligible == 0 or Decimal(len(counted)) < quorum * eligible:
        return Outcome.NO_QUORUM, tally
    decisive = len(counted) - tally["abstain"]
    endorsements = tally["endorse"] + tally["endorse_with_changes"]
    # Whatever the panel's settings (a panel stored with 0 before they were checked
    # included), no review is endorsed without a counted vote that endorses.
    if endorsements > 0 and Decimal(endorsements) >= threshold * decisive:
        return Outcome.ENDORSED, tally
    return Outcome.REJECTED, tally


# --- reviews --------------------------------------------------------------------------------


def review_snapshot(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "policy": review.version.policy.slug,
        "version": review.version.number,
        "content_hash": review.version.content_hash,
        "panel_id": review.panel_id,
        "status": review.status,
        "closes_at": chain.format_time(review.closes_at),
        "outcome": review.outcome,
        "tally": review.tally,
    }


def _check_assessment(policy: Policy, assessment: Mapping[str, Any] | None) -> dict[str, str]:
    if policy.purpose not in NEEDS_ASSESSMENT:
        return {k: str(v).strip() for k, v in (assessment or {}).items()}
    answers = assessment or {}
    missing = {
        key: ["Answer this question: " + question]
        for key, question in PUBLIC_BENEFIT_QUESTIONS.items()
        if not str(answers.get(key) or "").strip()
    }
    if missing:
        raise InvalidInput(
            "A change to a planning or research policy needs a complete public benefit assessment.",
            {f"public_benefit.{key}": messages for key, messages in missing.items()},
        )
    return {key: str(answers[key]).strip() for key in PUBLIC_BENEFIT_QUESTIONS}


def submit(
    session: Session,
    actor: Actor,
    version: PolicyVersion,
    panel_id: int,
    closes_at: datetime | None,
    public_benefit: Mapping[str, Any] | None,
) -> Review:
    """Send a draft to a panel: it becomes ``in_review`` and immutable, and a review opens."""
    lifecycle.check(version.status, VersionStatus.IN_REVIEW)
    panel = panels.get_panel(session, panel_id)
    assessment = _check_assessment(version.policy, public_benefit)
    now = utcnow()
    closes = closes_at or now + timedelta(days=panel.default_review_days)
    if closes <= now:
        raise InvalidInput(
            "The closing time has passed.", {"closes_at": ["Must be in the future."]}
        )
    if closes > now + timedelta(days=MAX_REVIEW_DAYS):
        raise InvalidInput(
            "The review is too long.", {"closes_at": [f"At most {MAX_REVIEW_DAYS} days ahead."]}
        )
    version.submitted_at = now
    lifecycle.transition(
        session, actor, version, VersionStatus.IN_REVIEW, "version.submitted", panel_id=panel.id
    )
    review = Review(
        version=version,
        panel=panel,
        status="open",
        opened_at=now,
        closes_at=closes,
        public_benefit=assessment or None,
        opened_by_id=actor.user_id,
    )
    session.add(review)
    session.flush()
    audit.record(
        session,
        actor,
        "review.opened",
        "review",
        review.id,
        after=review_snapshot(review)
        | {"public_benefit": assessment or None, "recommendation": review.recommendation},
    )
    return review


def get_review(session: Session, review_id: int, *, for_update: bool = False) -> Review:
    statement = select(Review).where(Review.id == review_id)
    if for_update:
        statement = statement.with_for_update(of=Review)
    review = session.execute(statement).unique().scalar_one_or_none()
    if review is None:
        raise NotFound(f"No review {review_id}.")
    return review


def due(review: Review, now: datetime | None = None) -> bool:
    return review.status == "open" and review.closes_at <= (now or utcnow())


def list_reviews(
    session: Session, *, status: str | None, panel_id: int | None, limit: int, after: int | None
) -> Page[Review]:
    statement = select(Review)
    if status:
        statement = statement.where(Review.status == status)
    if panel_id is not None:
        statement = statement.where(Review.panel_id == panel_id)
    return keyset_page(session, statement, Review.id, limit, after)


def due_review_ids(session: Session) -> list[int]:
    return list(
        session.execute(
            select(Review.id).where(Review.status == "open", Review.closes_at <= utcnow())
        ).scalars()
    )


def votes(session: Session, review_id: int) -> list[Vote]:
    return list(
        session.execute(select(Vote).where(Vote.review_id == review_id).order_by(Vote.id)).scalars()
    )


def conflicts(session: Session, review_id: int) -> list[ConflictOfInterest]:
    return list(
        session.execute(
            select(ConflictOfInterest)
            .where(ConflictOfInterest.review_id == review_id)
            .order_by(ConflictOfInterest.id)
        ).scalars()
    )


def eligible_ids(session: Session, review: Review, at: datetime) -> set[int]:
    """Members whose vote counts at ``at``: in their term, not an author of the version
    (``lifecycle.authors``), not conflicted."""
    day = at.date()
    conflicted = {c.user_id for c in conflicts(session, review.id)}
    authors = lifecycle.authors(session, review.version)
    return {
        m.user_id
        for m in panels.members(session, review.panel_id)
        if m.serving(day) and m.user_id not in authors and m.user_id not in conflicted
    }


def tally_so_far(session: Session, review: Review) -> dict[str, Any]:
    """Counts only, while the review is open: no one sees who voted what until close."""
    return _count(session, review, review.closed_at or utcnow())[1]


def _require_open(session: Session, review: Review) -> None:
    if due(review):
        close(session, CLOCK, review, recommendation=None)
    if review.status != "open":
        raise Conflict(
            f"Review {review.id} is closed ({review.outcome}).",
            review_status=review.status,
            outcome=review.outcome,
        )


@dataclass(frozen=True, slots=True)
class CastVote:
    """A vote just cast: whether it is the member's first, and whether it counts now."""

    vote: Vote
    created: bool
    counted: bool


def cast_vote(
    session: Session, actor: Actor, review_id: int, choice: str, comment: str
) -> CastVote:
    """Record (or change) the caller's vote."""
    review = get_review(session, review_id, for_update=True)
    _require_open(session, review)
    now = utcnow()
    user_id = actor.user_id
    if not panels.serves(session, review.panel_id, user_id, now.date()):
        raise Forbidden("Only members of this review's panel, within their term, can vote.")
    if lifecycle.is_author(session, review.version, user_id):
        raise Forbidden(
            "An author of a change (who created, changed or submitted it) cannot vote on it."
        )
    if choice != Choice.ENDORSE and not comment.strip():
        raise InvalidInput("Say why.", {"comment": ["A comment is required unless you endorse."]})
    vote = session.execute(
        select(Vote).where(Vote.review_id == review.id, Vote.user_id == user_id)
    ).scalar_one_or_none()
    created = vote is None
    before = None if vote is None else {"choice": vote.choice, "comment": vote.comment}
    if vote is None:
        vote = Vote(
            review_id=review.id,
            user_id=user_id,
            choice=choice,
            comment=comment.strip(),
            content_hash=review.version.content_hash,
            cast_at=now,
            updated_at=now,
        )
        session.add(vote)
    else:
        vote.choice, vote.comment, vote.updated_at = choice, comment.strip(), now
        vote.content_hash = review.version.content_hash
    session.flush()
    audit.record(
        session,
        actor,
        "review.vote_cast" if created else "review.vote_changed",
        "review",
        review.id,
        before=before,
        after={
            "user_id": user_id,
            "choice": choice,
            "comment": comment.strip(),
            "content_hash": vote.content_hash,
        },
    )
    return CastVote(vote, created, user_id in eligible_ids(session, review, now))


def declare_conflict(
    session: Session, actor: Actor, review_id: int, reason: str
) -> ConflictOfInterest:
    """A member declares a conflict: their vote is still recorded, but never counted."""
    review = get_review(session, review_id, for_update=True)
    _require_open(session, review)
    if not panels.serves(session, review.panel_id, actor.user_id, utcnow().date()):
        raise Forbidden("Only members of this review's panel can declare a conflict on it.")
    if not reason.strip():
        raise InvalidInput("Say why.", {"reason": ["Give the reason for the conflict."]})
    existing = session.execute(
        select(ConflictOfInterest).where(
            ConflictOfInterest.review_id == review.id, ConflictOfInterest.user_id == actor.user_id
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict("You have already declared a conflict on this review.")
    declared = ConflictOfInterest(review_id=review.id, user_id=actor.user_id, reason=reason.strip())
    session.add(declared)
    session.flush()
    audit.record(
        session,
        actor,
        "review.conflict_declared",
        "review",
        review.id,
        after={"user_id": actor.user_id, "reason": reason.strip()},
    )
    return declared


def _count(session: Session, review: Review, at: datetime) -> tuple[str, dict[str, Any]]:
    """The outcome and tally the votes give at ``at`` (with who was eligible, for the record)."""
    eligible = eligible_ids(session, review, at)
    ballots = [Ballot(v.choice, v.user_id in eligible) for v in votes(session, review.id)]
    outcome, counts = decide(review.panel.quorum, review.panel.threshold, len(eligible), ballots)
    return outcome, {**counts, "eligible_members": sorted(eligible)}


def _conclude(
    session: Session,
    actor: Actor,
    review: Review,
    outcome: str,
    tally: dict[str, Any],
    closed_at: datetime,
) -> None:
    before = review_snapshot(review)
    review.status, review.outcome, review.tally = "closed", outcome, tally
    review.closed_at = closed_at
    session.flush()
    audit.record(
        session,
        actor,
        "review.closed",
        "review",
        review.id,
        before=before,
        after=review_snapshot(review) | {"recommendation": review.recommendation},
    )


def close(session: Session, actor: Actor, review: Review, recommendation: str | None) -> Review:
    """Close a review: freeze the tally, decide the outcome, and endorse or reject."""
    if review.status != "open":
        raise Conflict(
            f"Review {review.id} is already closed ({review.outcome}).",
            review_status=review.status,
            outcome=review.outcome,
        )
    # A review closed by the clock closes as of its closing time, not of when it was noticed.
    closed_at = min(utcnow(), review.closes_at)
    outcome, tally = _count(session, review, closed_at)
    if recommendation is not None:
        review.recommendation = recommendation.strip()
    to = VersionStatus.ENDORSED if outcome == Outcome.ENDORSED else VersionStatus.REJECTED
    lifecycle.transition(session, actor, review.version, to, f"version.{to}", review_id=review.id)
    _conclude(session, actor, review, outcome, tally, closed_at)
    return review


def close_by_request(
    session: Session, actor: Actor, review_id: int, recommendation: str | None
) -> Review:
    review = get_review(session, review_id, for_update=True)
    if due(review):
        return close(session, CLOCK, review, recommendation)
    return close(session, actor, review, recommendation)


def close_due(session: Session, review_ids: Iterable[int]) -> None:
    """Close reviews whose time has passed (no scheduler: called when they are next read)."""
    for review_id in review_ids:
        review = get_review(session, review_id, for_update=True)
        if due(review):
            close(session, CLOCK, review, recommendation=None)


def close_all_due(session: Session) -> None:
    """Before a change to who serves (a term, a user's role or active flag): a review
    whose time has passed is counted with the members who served when it closed."""
    close_due(session, due_review_ids(session))


def record_recommendation(session: Session, actor: Actor, review_id: int, text: str) -> Review:
    """The panel's written recommendation: by an editor, an administrator or the chair."""
    review = get_review(session, review_id, for_update=True)
    if actor.role not in (Role.EDITOR, Role.ADMIN) and not (
        actor.role == Role.PANEL_MEMBER
        and panels.acts_as_chair(session, review.panel, actor.user_id, utcnow().date())
    ):
        raise Forbidden(
            "Only editors, administrators or the panel's chair record the recommendation."
        )
    if review.version.status in (VersionStatus.PUBLISHED, VersionStatus.SUPERSEDED):
        raise Conflict("The version is published: its review is part of the record now.")
    before = review.recommendation
    review.recommendation = text.strip()
    session.flush()
    audit.record(
        session,
        actor,
        "review.recommendation_recorded",
        "review",
        review.id,
        before={"recommendation": before},
        after=review_snapshot(review) | {"recommendation": review.recommendation},
    )
    return review


def require_endorsement(session: Session, version: PolicyVersion) -> Review:
    """The review gate of publication: an endorsed review of exactly this version."""
    review = (
        session.execute(select(Review).where(Review.version_id == version.id))
        .unique()
        .scalar_one_or_none()
    )
    if review is not None and due(review):
        close(session, CLOCK, review, recommendation=None)
    if review is None or review.outcome != Outcome.ENDORSED:
        raise Conflict(
            "Only a version endorsed by a citizen panel review can be published.",
            review_id=review.id if review else None,
            review_outcome=review.outcome if review else None,
        )
    return review


def end_for_withdrawal(session: Session, actor: Actor, version: PolicyVersion) -> None:
    """A version withdrawn while in review ends its review, with nothing decided."""
    review = (
        session.execute(
            select(Review)
            .where(Review.version_id == version.id, Review.status == "open")
            .with_for_update(of=Review)
        )
        .unique()
        .scalar_one_or_none()
    )
    if review is None:
        return
    now = utcnow()
    _conclude(session, actor, review, Outcome.WITHDRAWN, _count(session, review, now)[1], now)


def reviews_for_versions(session: Session, version_ids: Sequence[int]) -> dict[int, Review]:
    if not version_ids:
        return {}
    rows = (
        session.execute(select(Review).where(Review.version_id.in_(list(version_ids))))
        .unique()
        .scalars()
    )
    return {r.version_id: r for r in rows}


def reviews_by_id(session: Session, review_ids: Sequence[int]) -> list[Review]:
    if not review_ids:
        return []
    return list(
        session.execute(select(Review).where(Review.id.in_(list(review_ids)))).unique().scalars()
    )
