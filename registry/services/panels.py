"""Citizen panels: their quorum and threshold, their members' terms, and their chair."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.errors import Conflict, InvalidInput, NotFound
from registry.models.review import Panel, PanelMember
from registry.services import audit
from registry.services.context import Actor
from registry.services.paging import Page, keyset_page


def panel_snapshot(panel: Panel) -> dict[str, Any]:
    return {
        "id": panel.id,
        "name": panel.name,
        "quorum": str(panel.quorum),
        "threshold": str(panel.threshold),
        "default_review_days": panel.default_review_days,
        "chair_id": panel.chair_id,
    }


def _fraction(value: Any, field: str) -> Decimal:
    """A fraction in (0, 1], exact to four places: 0 would let a panel decide with no
    one voting, or endorse with no one endorsing."""
    refused = InvalidInput(
        "Not a fraction above zero.",
        {field: ["Must be more than 0 and at most 1, to four decimal places."]},
    )
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise refused from exc
    if not number.is_finite() or not Decimal(0) < number <= Decimal(1):
        raise refused
    number = number.quantize(Decimal("0.0001"))
    if number == 0:
        raise refused
    return number


def create_panel(session: Session, actor: Actor, data: Mapping[str, Any]) -> Panel:
    """Create a citizen panel with its quorum, threshold and default review period."""
    if session.execute(select(Panel.id).where(Panel.name == data["name"])).first():
        raise Conflict(f"A panel named {data['name']!r} already exists.")
    panel = Panel(
        name=data["name"],
        description=data.get("description", ""),
        quorum=_fraction(data["quorum"], "quorum"),
        threshold=_fraction(data["threshold"], "threshold"),
        default_review_days=data.get("default_review_days", 14),
    )
    session.add(panel)
    session.flush()
    audit.record(session, actor, "panel.created", "panel", panel.id, after=panel_snapshot(panel))
    return panel


def get_panel(session: Session, panel_id: int) -> Panel:
    panel = session.get(Panel, panel_id)
    if panel is None:
        raise NotFound(f"No panel {panel_id}.")
    return panel


def list_panels(session: Session, *, limit: int, after: int | None) -> Page[Panel]:
    return keyset_page(session, select(Panel), Panel.id, limit, after)


def members(session: Session, panel_id: int, *, current_only: bool = False) -> list[PanelMember]:
    rows = (
        session.execute(
            select(PanelMember).where(PanelMember.panel_id == panel_id).order_by(PanelMember.id)
        )
        .scalars()
        .all()
    )
    if current_only:
        today = utcnow().date()
        return [m for m in rows if m.serving(today)]
    return list(rows)


def serves(session: Session, panel_id: int, user_id: int | None, day: date) -> bool:
    """Whether the user serves on the panel that day (``PanelMember.serving``)."""
    if user_id is None:
        return False
    terms = session.execute(
        select(PanelMember).where(PanelMember.panel_id == panel_id, PanelMember.user_id == user_id)
    ).scalars()
    return any(term.serving(day) for term in terms)


def acts_as_chair(session: Session, panel: Panel, user_id: int | None, day: date) -> bool:
    """Whether the user is the panel's chair and serves on it that day. A chair whose term
    has run out, or who was demoted or deactivated, stays named (until replaced) but does
    not act."""
    return user_id == panel.chair_id and serves(session, panel.id, user_id, day)


def set_chair(session: Session, actor: Actor, panel: Panel, user_id: int | None) -> None:
    before = panel_snapshot(panel)
    panel.chair_id = user_id
    session.flush()
    audit.record(
        session,
        actor,
        "panel.chair_changed",
        "panel",
        panel.id,
        before=before,
        after=panel_snapshot(panel),
    )


def memberships(session: Session, user_id: int | None) -> list[PanelMember]:
    """A user's terms on every panel, past ones included, by panel and start."""
    rows = session.execute(
        select(PanelMember)
        .where(PanelMember.user_id == user_id)
        .order_by(PanelMember.panel_id, PanelMember.term_start)
    )
    return list(rows.scalars())
