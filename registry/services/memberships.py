"""Terms on a panel begin and end. Before anyone's term changes, every review past its
closing time closes, so that it is counted with the members who served when it closed."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.errors import Conflict, InvalidInput, NotFound
from registry.models.identity import Role, User
from registry.models.review import PanelMember
from registry.services import audit, panels, reviews
from registry.services.context import Actor


def add_member(
    session: Session,
    actor: Actor,
    panel_id: int,
    user_id: int,
    term_start: date | None,
    term_end: date | None,
    chair: bool = False,
) -> PanelMember:
    """Give a panel member a term on a panel (one current term per person and panel), and
    with ``chair`` make them its chair (who may record the panel's recommendation)."""
    panel = panels.get_panel(session, panel_id)
    reviews.close_all_due(session)
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise InvalidInput("No such active user.", {"user_id": [f"No active user {user_id}."]})
    if user.role != Role.PANEL_MEMBER:
        raise InvalidInput(
            "Not a panel member.", {"user_id": ["The user's role must be panel_member."]}
        )
    today = utcnow().date()
    start = term_start or today
    if term_end is not None and term_end < start:
        raise InvalidInput("The term ends before it starts.", {"term_end": ["Before term_start."]})
    member = PanelMember(panel_id=panel.id, user_id=user_id, term_start=start, term_end=term_end)
    if chair and not member.in_term(today):
        raise InvalidInput(
            "Only a member serving now can be chair.",
            {"chair": ["The term must have started and not ended."]},
        )
    for existing in panels.members(session, panel.id):
        if existing.user_id == user_id and (
            existing.term_end is None or existing.term_end >= start
        ):
            raise Conflict("The user already has a term on this panel.")
    session.add(member)
    session.flush()
    audit.record(
        session,
        actor,
        "panel.member_added",
        "panel",
        panel.id,
        after={
            "member_id": member.id,
            "user_id": user_id,
            "term_start": start.isoformat(),
            "term_end": term_end.isoformat() if term_end else None,
        },
    )
    if chair:
        panels.set_chair(session, actor, panel, user_id)
    return member


def _day_before(day: date) -> date:
    """The day before ``day``; the first day Python knows has none, so it is its own."""
    return day - timedelta(days=1) if day > date.min else day


def end_membership(session: Session, actor: Actor, panel_id: int, user_id: int) -> PanelMember:
    """End a member's current (or future) term; past reviews keep counting them. A chair
    whose term ends is no longer the chair."""
    panel = panels.get_panel(session, panel_id)
    reviews.close_all_due(session)
    today = utcnow().date()
    current = [
        m
        for m in panels.members(session, panel_id)
        if m.user_id == user_id and (m.term_end is None or m.term_end >= today)
    ]
    if not current:
        raise NotFound(f"User {user_id} has no current term on panel {panel_id}.")
    member = current[0]
    before = member.term_end
    # The term ends yesterday (a term not yet started ends before it starts): from today
    # the member is no longer eligible.
    member.term_end = _day_before(min(today, member.term_start))
    session.flush()
    audit.record(
        session,
        actor,
        "panel.member_removed",
        "panel",
        panel_id,
        before={"user_id": user_id, "term_end": before.isoformat() if before else None},
        after={
            "member_id": member.id,
            "user_id": user_id,
            "term_start": member.term_start.isoformat(),
            "term_end": member.term_end.isoformat(),
        },
    )
    if panel.chair_id == user_id:
        panels.set_chair(session, actor, panel, None)
    return member
