"""The set in force: which version of each policy applies at a time, by a revision's lights.

A revision fixes what the registry knew (every version published up to it); a time fixes
what was in force then (by ``in_force_from``). Of each policy's versions known and in
force, the highest number applies; a retirement takes the policy out. Future versions
need no job to take effect: the answer for a later time simply includes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.errors import InvalidInput, NotFound
from registry.models.policy import PolicyVersion, SetRevision


@dataclass(frozen=True, slots=True)
class Entry:
    """What the in-force rule needs to know about one published version."""

    version_id: int
    policy_id: int
    number: int
    revision: int
    in_force_from: datetime
    is_retirement: bool


def latest_revision(session: Session) -> int:
    return int(session.execute(select(func.max(SetRevision.number))).scalar() or 0)


def get_revision(session: Session, number: int) -> SetRevision:
    revision = session.get(SetRevision, number)
    if revision is None:
        raise NotFound(f"No revision {number} of the policy set.")
    return revision


def revision_known_at(session: Session, moment: datetime) -> int:
    """The last revision recorded at or before ``moment`` (0 if none yet)."""
    number = session.execute(
        select(func.max(SetRevision.number)).where(SetRevision.recorded_at <= moment)
    ).scalar()
    return int(number or 0)


def load_timeline(session: Session, up_to_revision: int) -> list[Entry]:
    """Every version published in revisions 1..``up_to_revision``."""
    rows = session.execute(
        select(
            PolicyVersion.id,
            PolicyVersion.policy_id,
            PolicyVersion.number,
            PolicyVersion.revision_number,
            PolicyVersion.in_force_from,
            PolicyVersion.is_retirement,
        ).where(
            PolicyVersion.revision_number.is_not(None),
            PolicyVersion.revision_number <= up_to_revision,
        )
    ).all()
    return [
        Entry(version_id, policy_id, number, revision or 0, in_force_from, is_retirement)
        for version_id, policy_id, number, revision, in_force_from, is_retirement in rows
        if in_force_from is not None
    ]


def in_force(timeline: Sequence[Entry], at: datetime) -> list[Entry]:
    """The applicable version of each policy at ``at`` (retired policies left out)."""
    best: dict[int, Entry] = {}
    for entry in timeline:
        if entry.in_force_from <= at:
            current = best.get(entry.policy_id)
            if current is None or entry.number > current.number:
                best[entry.policy_id] = entry
    return sorted((e for e in best.values() if not e.is_retirement), key=lambda e: e.policy_id)


def next_change(timeline: Sequence[Entry], after: datetime) -> datetime | None:
    """When the set in force next changes by itself (a future version's time comes)."""
    upcoming = [e.in_force_from for e in timeline if e.in_force_from > after]
    return min(upcoming) if upcoming else None


def since(timeline: Sequence[Entry], at: datetime) -> datetime | None:
    """When the set in force at ``at`` took its shape (its latest in-force start)."""
    past = [e.in_force_from for e in timeline if e.in_force_from <= at]
    return max(past) if past else None


def resolve(session: Session, *, revision: int | None, known_at: datetime | None) -> int:
    """The revision a query asks about: named, as known at a time, or the latest."""
    if revision is not None and known_at is not None:
        raise InvalidInput(
            "Give revision or known_at, not both.",
            {"known_at": ["Cannot be combined with revision."]},
        )
    if revision is not None:
        get_revision(session, revision)
        return revision
    if known_at is not None:
        return revision_known_at(session, known_at)
    return latest_revision(session)
