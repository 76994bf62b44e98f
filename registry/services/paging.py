"""Keyset pagination: a stable order, no offsets, no rows skipped or repeated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_after: Any | None


def keyset_page(
    session: Session,
    statement: Select[Any],
    key: InstrumentedAttribute[Any],
    limit: int,
    after: Any | None,
    *,
    descending: bool = False,
) -> Page[T]:
    """One page of ``statement`` ordered by the unique ``key``, starting after ``after``."""
    if after is not None:
        statement = statement.where(key < after if descending else key > after)
    statement = statement.order_by(key.desc() if descending else key).limit(limit + 1)
    rows = list(session.execute(statement).scalars().unique())
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, getattr(rows[-1], key.key))
    return Page(rows, None)
