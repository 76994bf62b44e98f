"""The live tables checked against the log, as a database ledger checks rows against history.

Every protected row must equal the after-state of its latest audit event, and every
protected row must have one: a role, a token, a membership, a vote or a published body
changed (or inserted) behind the service's back is named, with the event it disagrees
with. Rows are read in batches by primary key, and for each batch only the events of
those entities, so the walk stays linear and its memory flat however large the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models.audit import AuditEvent
from registry.models.identity import ApiToken, User
from registry.models.policy import PolicyVersion
from registry.models.review import Panel, PanelMember, Review, Vote
from registry.services import chain
from registry.services.content import compute_hash

BATCH = 500


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first live row that disagrees with the log, and the event it disagrees with."""

    entity_type: str
    entity_id: str
    field: str
    seq: int | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "field": self.field,
            "seq": self.seq,
        }


def credential_digest(lookup: str, secret_hash: str) -> str:
    """What the log keeps of a token's stored credential: a digest of it, never the hash."""
    return chain.sha256_hex(f"{lookup}:{secret_hash}".encode())


def compare(
    entity_type: str,
    entity_id: str,
    live: dict[str, Any],
    recorded: tuple[int, Any] | None,
) -> Mismatch | None:
    """Pure: the live fields against the latest event's after-state."""
    if recorded is None:
        return Mismatch(
            entity_type,
            entity_id,
            "existence",
            None,
            f"{entity_type} {entity_id} exists but no audit event records it",
        )
    seq, after = recorded
    if not isinstance(after, dict):
        return Mismatch(
            entity_type,
            entity_id,
            "existence",
            seq,
            f"event {seq} records no state for {entity_type} {entity_id}",
        )
    for field, value in live.items():
        if field not in after:
            return Mismatch(
                entity_type,
                entity_id,
                field,
                seq,
                f"event {seq} does not record the {field} of {entity_type} {entity_id}",
            )
        if after[field] != value:
            return Mismatch(
                entity_type,
                entity_id,
                field,
                seq,
                f"the {field} of {entity_type} {entity_id} is not what event {seq} recorded",
            )
    return None


def _batches(
    session: Session, model: Any, key: Any, options: Sequence[Any] = ()
) -> Iterator[list[Any]]:
    after: Any = None
    while True:
        statement = select(model).order_by(key).limit(BATCH)
        for option in options:
            statement = statement.options(option)
        if after is not None:
            statement = statement.where(key > after)
        rows = list(session.execute(statement).unique().scalars())
        if not rows:
            return
        yield rows
        after = getattr(rows[-1], key.key)


def _latest(
    session: Session,
    entity_type: str,
    entity_ids: Iterable[str],
    actions: Sequence[str],
    subkey: Callable[[Any], Any] | None = None,
) -> dict[Any, tuple[int, Any]]:
    """The latest state-bearing event of each entity (or of each part of one, by ``subkey``
    of its after-state), for one batch of entities, read in order."""
    ids = list(entity_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.entity_id, AuditEvent.after)
        .where(
            AuditEvent.entity_type == entity_type,
            AuditEvent.entity_id.in_(ids),
            AuditEvent.action.in_(list(actions)),
        )
        .order_by(AuditEvent.seq)
    )
    latest: dict[Any, tuple[int, Any]] = {}
    for seq, entity_id, after in rows:
        if subkey is None:
            latest[entity_id] = (seq, after)
        else:
            part = subkey(after) if isinstance(after, dict) else None
            latest[(entity_id, part)] = (seq, after)
    return latest


USER_ACTIONS = ("user.created", "user.updated", "user.role_changed")
TOKEN_ACTIONS = ("token.created", "token.revoked")
VERSION_ACTIONS = (
    "version.created",
    "version.updated",
    "version.submitted",
    "version.endorsed",
    "version.rejected",
    "version.published",
    "version.superseded",
    "version.withdrawn",
)
PANEL_ACTIONS = ("panel.created", "panel.chair_changed")
MEMBER_ACTIONS = ("panel.member_added", "panel.member_removed")
REVIEW_ACTIONS = ("review.opened", "review.closed", "review.recommendation_recorded")
VOTE_ACTIONS = ("review.vote_cast", "review.vote_changed")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _users(session: Session) -> Iterator[Mismatch | None]:
    for rows in _batches(session, User, User.id):
        latest = _latest(session, "user", (str(u.id) for u in rows), USER_ACTIONS)
        for user in rows:
            live = {
                "email": user.email,
                "organisation_id": user.organisation_id,
                "role": user.role,
                "active": user.active,
                "has_password": user.password_hash is not None,
            }
            yield compare("user", str(user.id), live, latest.get(str(user.id)))


def _tokens(session: Session) -> Iterator[Mismatch | None]:
    for rows in _batches(session, ApiToken, ApiToken.id):
        latest = _latest(session, "api_token", (str(t.id) for t in rows), TOKEN_ACTIONS)
        for token in rows:
            live = {
                "user_id": token.user_id,
                "role": token.role,
                "expires_at": token.expires_at.isoformat(),
                "revoked_at": _iso(token.revoked_at),
                "credential": credential_digest(token.lookup, token.secret_hash),
            }
            yield compare("api_token", str(token.id), live, latest.get(str(token.id)))


def _versions(session: Session) -> Iterator[Mismatch | None]:

    for rows in _batches(session, PolicyVersion, PolicyVersion.id):
        names = {v.id: f"{v.policy.slug}/{v.number}" for v in rows}
        latest = _latest(session, "policy_version", names.values(), VERSION_ACTIONS)
        for version in rows:
            name = names[version.id]
            recorded = latest.get(name)
            if compute_hash(version) != version.content_hash:
                seq = recorded[0] if recorded else None
                yield Mismatch(
                    "policy_version",
                    name,
                    "content",
                    seq,
                    f"the content of policy_version {name} does not hash to its content_hash",
                )
                continue
            live = {"content_hash": version.content_hash, "status": version.status}
            yield compare("policy_version", name, live, recorded)


def _panels(session: Session) -> Iterator[Mismatch | None]:
    for rows in _batches(session, Panel, Panel.id):
        ids = [str(p.id) for p in rows]
        latest = _latest(session, "panel", ids, PANEL_ACTIONS)
        terms = _latest(session, "panel", ids, MEMBER_ACTIONS, lambda a: a.get("member_id"))
        for panel in rows:
            live = {
                "name": panel.name,
                "quorum": str(panel.quorum),
                "threshold": str(panel.threshold),
                "chair_id": panel.chair_id,
            }
            yield compare("panel", str(panel.id), live, latest.get(str(panel.id)))
        members = session.execute(
            select(PanelMember)
            .where(PanelMember.panel_id.in_([p.id for p in rows]))
            .order_by(PanelMember.id)
        ).scalars()
        for member in members:
            live = {
                "user_id": member.user_id,
                "term_start": member.term_start.isoformat(),
                "term_end": _iso(member.term_end),
            }
            yield compare(
                "panel_member", str(member.id), live, terms.get((str(member.panel_id), member.id))
            )


def _reviews(session: Session) -> Iterator[Mismatch | None]:
    for rows in _batches(session, Review, Review.id):
        ids = [str(r.id) for r in rows]
        latest = _latest(session, "review", ids, REVIEW_ACTIONS)
        ballots = _latest(session, "review", ids, VOTE_ACTIONS, lambda a: a.get("user_id"))
        for review in rows:
            live = {
                "status": review.status,
                "outcome": review.outcome,
                "tally": review.tally,
                "closes_at": chain.format_time(review.closes_at),
                "panel_id": review.panel_id,
                "recommendation": review.recommendation,
            }
            yield compare("review", str(review.id), live, latest.get(str(review.id)))
        votes = session.execute(
            select(Vote).where(Vote.review_id.in_([r.id for r in rows])).order_by(Vote.id)
        ).scalars()
        for vote in votes:
            live = {
                "choice": vote.choice,
                "comment": vote.comment,
                "content_hash": vote.content_hash,
            }
            yield compare(
                "vote", str(vote.id), live, ballots.get((str(vote.review_id), vote.user_id))
            )


CHECKS: tuple[Callable[[Session], Iterator[Mismatch | None]], ...] = (
    _users,
    _tokens,
    _versions,
    _panels,
    _reviews,
)


def check(session: Session) -> Mismatch | None:
    """The first live row that disagrees with its latest audit event, or None."""
    for walk in CHECKS:
        for found in walk(session):
            if found is not None:
                return found
    return None
