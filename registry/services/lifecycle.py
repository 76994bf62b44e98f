"""The life of a policy version: its status machine, its moves through it, and its
authors (who created, changed or submitted it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.errors import IllegalTransition
from registry.models.audit import AuditEvent
from registry.models.identity import ApiToken
from registry.models.policy import PolicyVersion
from registry.models.policy import VersionStatus as S
from registry.services import audit
from registry.services.content import version_snapshot
from registry.services.context import Actor

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


def transition(
    session: Session,
    actor: Actor,
    version: PolicyVersion,
    to: str,
    action: str,
    **extra: Any,
) -> None:
    """Move ``version`` to status ``to`` (409 if the machine forbids it) and record it."""
    check(version.status, to)
    before = version_snapshot(version)
    version.status = to
    version.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        action,
        "policy_version",
        f"{version.policy.slug}/{version.number}",
        before=before,
        after=version_snapshot(version) | extra,
    )


# --- authors -------------------------------------------------------------------------------

AUTHORING_ACTIONS = ("version.created", "version.updated", "version.submitted")


def authors(session: Session, version: PolicyVersion) -> frozenset[int]:
    """Everyone who created, changed or submitted ``version``: its creator, and the user
    behind each audit event of its creation, edits and submission (a token's owner for a
    token). Derived from what the registry records, so no one is left out by a list kept
    beside it. Events still queued in this session are not yet in the log; the rule is
    asked in later requests."""
    entity_id = f"{version.policy.slug}/{version.number}"
    rows = session.execute(
        select(AuditEvent.actor_type, AuditEvent.actor_id).where(
            AuditEvent.entity_type == "policy_version",
            AuditEvent.entity_id == entity_id,
            AuditEvent.action.in_(AUTHORING_ACTIONS),
            AuditEvent.actor_type.in_(("user", "token")),
        )
    ).all()
    found = {version.author_id} if version.author_id is not None else set()
    found |= {int(actor_id) for kind, actor_id in rows if kind == "user" and actor_id}
    token_ids = {int(actor_id) for kind, actor_id in rows if kind == "token" and actor_id}
    if token_ids:
        found |= set(
            session.execute(select(ApiToken.user_id).where(ApiToken.id.in_(token_ids))).scalars()
        )
    return frozenset(found)


def is_author(session: Session, version: PolicyVersion, user_id: int | None) -> bool:
    """Whether the user created, changed or submitted the version (``authors``): the one
    answer to who may not vote on it, nor count toward its review."""
    return user_id is not None and user_id in authors(session, version)
