"""The status machine of a policy version."""

from __future__ import annotations

from registry.errors import IllegalTransition
from registry.models.policy import VersionStatus as S

TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.IN_REVIEW, S.WITHDRAWN}),
    S.IN_REVIEW: frozenset({S.ENDORSED, S.REJECTED, S.WITHDRAWN}),
    # An endorsement permits publication; it does not compel it.
    S.ENDORSED: frozenset({S.PUBLISHED, S.WITHDRAWN}),
    S.REJECTED: frozenset({S.WITHDRAWN}),
    S.PUBLISHED: frozenset({S.SUPERSEDED}),
    S.SUPERSEDED: frozenset(),
    S.WITHDRAWN: frozenset(),
}


def check(current: str, requested: str) -> None:
    """Raise a 409 ``IllegalTransition`` unless ``current -> requested`` is allowed."""
    if requested not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition("policy version", current, requested)
