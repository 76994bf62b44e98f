"""The London-wide policy set: policies, immutable versions, publication and revisions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from registry.models.identity import Role
from registry.models.policy import (
    OPEN_STATUSES,
    AttachedCondition,
    ConditionType,
    Policy,
    PolicyState,
    PolicyVersion,
    SetRevision,
    VersionStatus,
)
from registry.models.review import Review
from registry.services import audit, catalogue, chain, lifecycle, reviews
from registry.services.content import compute_hash, content_document, version_snapshot
from registry.services.context import Actor
from registry.services.paging import Page, keyset_page

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The audit trail names a version "slug/number" in a 64-character column; numbers run to
# ten digits, which leaves 53 characters for the slug.
SLUG_MAX_LENGTH = 53
# An arbitrary constant naming the lock that serialises set revisions on PostgreSQL.
SET_LOCK_ID = 0x5345_5452_4556_4953
EDITABLE_FIELDS = frozenset(
    {"body", "summary", "rationale", "conditions", "effective_from", "sensitive_categories"}
)


def can_read_drafts(actor: Actor) -> bool:
    return actor.role in (Role.EDITOR, Role.ADMIN)


# --- visibility: one rule --------------------------------------------------------------------
# Drafts are for editors. A version that has been submitted is public from then on, with its
# review, whatever becomes of it (endorsed, rejected, published, superseded or withdrawn):
# citizens see what is proposed, not only what passed. A draft withdrawn before it was ever
# submitted stays private. A policy is public once any of its versions is.


def is_public(version: PolicyVersion) -> bool:
    return version.submitted_at is not None


def _visible(actor: Actor) -> Any:
    """The rule as a condition on versions, for ``actor``."""
    if can_read_drafts(actor):
        return True
    return PolicyVersion.submitted_at.is_not(None)


def _policy_visible(actor: Actor) -> Any:
    """The rule as a condition on policies, for ``actor``."""
    if can_read_drafts(actor):
        return True
    return (
        select(PolicyVersion.id)
        .where(PolicyVersion.policy_id == Policy.id, PolicyVersion.submitted_at.is_not(None))
        .exists()
    )


# --- content and its hash -----------------------------------------------------------------


# --- the catalogue in the database ------------------------------------------------------------


def _type_row(entry: catalogue.ConditionType) -> dict[str, Any]:
    return {
        "title": entry.title,
        "description": entry.description,
        "kind": str(entry.kind),
        "five_safes": entry.five_safes,
        "duo_code": entry.duo[0] if entry.duo else None,
        "duo_label": entry.duo[1] if entry.duo else None,
        "parameters_schema": entry.parameters,
    }


def sync_catalogue(session: Session, actor: Actor) -> int:
    """Bring the condition types table in line with the code's catalogue; return changes."""
    existing = {row.code: row for row in session.execute(select(ConditionType)).scalars()}
    changes = 0
    for entry in catalogue.CATALOGUE:
        wanted = _type_row(entry)
        row = existing.get(entry.code)
        if row is None:
            session.add(ConditionType(code=entry.code, **wanted))
            audit.record(
                session, actor, "condition_type.created", "condition_type", entry.code, after=wanted
            )
            changes += 1
            continue
        before = {key: getattr(row, key) for key in wanted}
        if before != wanted:
            for key, value in wanted.items():
                setattr(row, key, value)
            audit.record(
                session,
                actor,
                "condition_type.updated",
                "condition_type",
                entry.code,
                before=before,
                after=wanted,
            )
            changes += 1
    session.flush()
    return changes


def list_condition_types(session: Session) -> Sequence[ConditionType]:
    return session.execute(select(ConditionType).order_by(ConditionType.code)).scalars().all()


# --- reading -----------------------------------------------------------------------------------


def get_policy(session: Session, actor: Actor, slug: str) -> Policy:
    policy = session.execute(
        select(Policy).where(Policy.slug == slug, _policy_visible(actor))
    ).scalar_one_or_none()
    if policy is None:
        raise NotFound(f"No policy {slug!r}.")
    return policy


def list_policies(
    session: Session,
    actor: Actor,
    *,
    purpose: str | None,
    data_category: str | None,
    state: str | None,
    q: str | None,
    limit: int,
    after: int | None,
) -> Page[Policy]:
    """Policies in a stable order, filtered; the public sees those with a submitted version."""
    statement = select(Policy).where(_policy_visible(actor))
    if purpose:
        statement = statement.where(Policy.purpose == purpose)
    if data_category:
        statement = statement.where(Policy.data_category == data_category)
    if state:
        statement = statement.where(Policy.state == state)
    if q:
        needle = f"%{q.lower()}%"
        in_summary = (
            select(PolicyVersion.id)
            .where(PolicyVersion.policy_id == Policy.id, _visible(actor))
            .where(func.lower(PolicyVersion.summary).like(needle))
            .exists()
        )
        statement = statement.where(or_(func.lower(Policy.title).like(needle), in_summary))
    return keyset_page(session, statement, Policy.id, limit, after)


def latest_numbers(session: Session, policy_ids: Iterable[int], actor: Actor) -> dict[int, int]:
    """The highest version number each policy has that ``actor`` may see."""
    ids = list(policy_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(PolicyVersion.policy_id, func.max(PolicyVersion.number))
        .where(PolicyVersion.policy_id.in_(ids), _visible(actor))
        .group_by(PolicyVersion.policy_id)
    ).all()
    return dict(rows)


def list_versions(
    session: Session,
    actor: Actor,
    slug: str,
    *,
    status: str | None,
    limit: int,
    after: int | None,
) -> Page[PolicyVersion]:
    policy = get_policy(session, actor, slug)
    statement = select(PolicyVersion).where(PolicyVersion.policy_id == policy.id, _visible(actor))
    if status:
        statement = statement.where(PolicyVersion.status == status)
    return keyset_page(session, statement, PolicyVersion.number, limit, after)


def get_version(
    session: Session, actor: Actor, slug: str, number: int, *, for_update: bool = False
) -> PolicyVersion:
    """One version; drafts only for those who edit."""
    statement = (
        select(PolicyVersion)
        .join(Policy)
        .where(Policy.slug == slug, PolicyVersion.number == number)
    )
    if for_update:
        statement = statement.with_for_update(of=PolicyVersion)
    version = session.execute(statement).unique().scalar_one_or_none()
    if version is None or not (is_public(version) or can_read_drafts(actor)):
        raise NotFound(f"No version {number} of policy {slug!r}.")
    return version


# --- writing -----------------------------------------------------------------------------------


def _check_conditions(session: Session, conditions: Sequence[Mapping[str, Any]]) -> None:
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    known = set(session.execute(select(ConditionType.code)).scalars())
    for index, condition in enumerate(conditions):
        code = condition["code"]
        entry = catalogue.get(code)
        if entry is None or code not in known:
            errors[f"conditions.{index}.code"] = [f"Unknown condition type {code!r}."]
            continue
        if code in seen:
            errors[f"conditions.{index}.code"] = [f"{code!r} is attached twice."]
        seen.add(code)
        for path, messages in entry.validate(condition.get("parameters", {})).items():
            field = f"conditions.{index}.parameters" + ("" if path == "_" else f".{path}")
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise InvalidInput("Some conditions are not valid.", errors)


def _set_conditions(version: PolicyVersion, conditions: Sequence[Mapping[str, Any]]) -> None:
    """Replace the attached conditions, keeping the row of any type that stays attached
    (inserting a new row for it before the old one is deleted would break uniqueness)."""
    existing = {c.type_code: c for c in version.conditions}
    attached = []
    for position, condition in enumerate(conditions):
        row = existing.pop(condition["code"], None) or AttachedCondition(
            type_code=condition["code"]
        )
        row.position = position
        row.parameters = dict(condition.get("parameters", {}))
        attached.append(row)
    version.conditions = attached


def _rehash(version: PolicyVersion) -> None:
    version.content_hash = compute_hash(version)


def create_policy(session: Session, actor: Actor, data: Mapping[str, Any]) -> PolicyVersion:
    """Create a policy with its first version, a draft."""
    slug = data["slug"]
    if not SLUG.match(slug):
        raise InvalidInput("Bad slug.", {"slug": ["Use lower-case letters, digits and hyphens."]})
    if len(slug) > SLUG_MAX_LENGTH:
        raise InvalidInput("Bad slug.", {"slug": [f"At most {SLUG_MAX_LENGTH} characters."]})
    if session.execute(select(Policy.id).where(Policy.slug == slug)).first():
        raise Conflict(f"A policy with the slug {slug!r} already exists.")
    _check_conditions(session, data.get("conditions", []))
    policy = Policy(
        slug=slug,
        title=data["title"],
        purpose=data["purpose"],
        data_category=data["data_category"],
        state=PolicyState.DRAFT,
        created_by_id=actor.user_id,
    )
    session.add(policy)
    version = PolicyVersion(
        policy=policy,
        number=1,
        status=VersionStatus.DRAFT,
        is_retirement=False,
        body=data["body"],
        summary=data["summary"],
        rationale=data.get("rationale", ""),
        sensitive_categories=sorted(set(data.get("sensitive_categories", []))),
        effective_from=data.get("effective_from"),
        author_id=actor.user_id,
        content_hash="",
    )
    _set_conditions(version, data.get("conditions", []))
    _rehash(version)
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor,
        "policy.created",
        "policy",
        slug,
        after={
            "slug": slug,
            "title": policy.title,
            "purpose": policy.purpose,
            "data_category": policy.data_category,
        },
    )
    audit.record(
        session,
        actor,
        "version.created",
        "policy_version",
        f"{slug}/1",
        after=version_snapshot(version) | {"content": content_document(version)},
    )
    return version


def _lock_policy(session: Session, slug: str) -> Policy:
    policy = session.execute(
        select(Policy).where(Policy.slug == slug).with_for_update()
    ).scalar_one_or_none()
    if policy is None:
        raise NotFound(f"No policy {slug!r}.")
    return policy


def new_version(
    session: Session,
    actor: Actor,
    slug: str,
    *,
    retire: bool = False,
    based_on: int | None = None,
) -> PolicyVersion:
    """Start the next draft of a policy, copied from its latest (or a named) version.

    ``retire`` makes it a retirement: publishing it takes the policy out of the set.
    A policy has at most one version on its way (draft, in review or endorsed) at a time.
    """
    policy = _lock_policy(session, slug)
    versions = (
        session.execute(
            select(PolicyVersion)
            .where(PolicyVersion.policy_id == policy.id)
            .order_by(PolicyVersion.number)
        )
        .scalars()
        .all()
    )
    open_ = [v for v in versions if v.status in OPEN_STATUSES]
    if open_:
        raise Conflict(
            f"Version {open_[0].number} is still {open_[0].status}: finish or withdraw it "
            "before starting another.",
            open_version=open_[0].number,
        )
    if policy.state == PolicyState.RETIRED:
        raise Conflict("The policy is retired.")
    if retire and policy.state != PolicyState.PUBLISHED:
        raise Conflict("Only a published policy can be retired.")
    source = versions[-1]
    if based_on is not None:
        matches = [v for v in versions if v.number == based_on]
        if not matches:
            raise InvalidInput("No such version.", {"based_on": [f"No version {based_on}."]})
        source = matches[0]
    version = PolicyVersion(
        policy=policy,
        number=versions[-1].number + 1,
        status=VersionStatus.DRAFT,
        is_retirement=retire,
        body=(
            f"This policy is retired. {policy.title} no longer applies." if retire else source.body
        ),
        summary=(f"Retires {policy.title}." if retire else source.summary),
        rationale="",
        sensitive_categories=[] if retire else list(source.sensitive_categories),
        effective_from=None,
        author_id=actor.user_id,
        content_hash="",
    )
    kept = [{"code": c.type_code, "parameters": c.parameters} for c in source.conditions]
    _set_conditions(version, [] if retire else kept)
    _rehash(version)
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor,
        "version.created",
        "policy_version",
        f"{slug}/{version.number}",
        after=version_snapshot(version)
        | {"content": content_document(version), "based_on": source.number},
    )
    return version


def check_if_match(if_match: str | None, version: PolicyVersion) -> None:
    """428 without ``If-Match``; 412 unless it names the version's current ETag. ``*``
    names no version in particular, so it protects no one's change: it is a 412 too."""
    if if_match is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag you last read, so no one's change is lost."
        )
    candidates = {c.strip() for c in if_match.split(",")}
    if etag(version) not in candidates:
        raise PreconditionFailed(
            "The version changed since you read it: read it again and reapply your change.",
            current_etag=etag(version),
        )


def update_draft(
    session: Session,
    actor: Actor,
    slug: str,
    number: int,
    if_match: str | None,
    changes: Mapping[str, Any],
) -> PolicyVersion:
    """Change a draft's content, if it is still the one the editor last read."""
    version = get_version(session, actor, slug, number, for_update=True)
    check_if_match(if_match, version)
    if version.status != VersionStatus.DRAFT:
        raise Conflict(
            f"Version {number} is {version.status}: its content is frozen. Start a new "
            "draft to change it.",
            current_status=version.status,
        )
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInput("Unknown fields.", {f: ["Cannot be changed."] for f in unknown})
    content = content_document(version)
    before = {"content_hash": version.content_hash, "content": content}
    if version.is_retirement and changes.get("conditions"):
        raise InvalidInput("A retirement has no conditions.", {"conditions": ["Must be empty."]})
    if "conditions" in changes:
        _check_conditions(session, changes["conditions"])
    if _content_with(content, changes) == content:
        return version  # nothing changes: no event, and the ETag stays
    if "conditions" in changes:
        _set_conditions(version, changes["conditions"])
    for field in ("body", "summary", "rationale", "effective_from"):
        if field in changes:
            setattr(version, field, changes[field])
    if "sensitive_categories" in changes:
        version.sensitive_categories = sorted(set(changes["sensitive_categories"]))
    _rehash(version)
    version.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "version.updated",
        "policy_version",
        f"{slug}/{number}",
        before=before,
        after=version_snapshot(version) | {"content": content_document(version)},
    )
    return version


def _content_with(content: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The content document ``content`` would be with ``changes`` applied."""
    after = dict(content)
    for field in ("body", "summary", "rationale"):
        if field in changes:
            after[field] = changes[field]
    if "effective_from" in changes:
        when = changes["effective_from"]
        after["effective_from"] = chain.format_time(when) if when is not None else None
    if "sensitive_categories" in changes:
        after["sensitive_categories"] = sorted(set(changes["sensitive_categories"]))
    if "conditions" in changes:
        after["conditions"] = sorted(
            (
                {"code": c["code"], "parameters": dict(c.get("parameters") or {})}
                for c in changes["conditions"]
            ),
            key=lambda c: c["code"],
        )
    return after


def etag(version: PolicyVersion) -> str:
    return f'"v{version.id}.{version.lock_version}"'


def submit(
    session: Session,
    actor: Actor,
    slug: str,
    number: int,
    panel_id: int,
    closes_at: datetime | None,
    public_benefit: Mapping[str, Any] | None,
) -> Review:
    """Send version ``number`` of ``slug`` to a citizen panel (``reviews.submit``)."""
    version = get_version(session, actor, slug, number, for_update=True)
    return reviews.submit(session, actor, version, panel_id, closes_at, public_benefit)


def withdraw(session: Session, actor: Actor, slug: str, number: int) -> PolicyVersion:
    """Withdraw a version that is not (and will not be) published; an open review ends."""
    version = get_version(session, actor, slug, number, for_update=True)
    lifecycle.check(version.status, VersionStatus.WITHDRAWN)
    reviews.end_for_withdrawal(session, actor, version)
    version.withdrawn_at = utcnow()
    lifecycle.transition(session, actor, version, VersionStatus.WITHDRAWN, "version.withdrawn")
    return version


def _lock_set(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SET_LOCK_ID})


def publish(session: Session, actor: Actor, slug: str, number: int) -> PolicyVersion:
    """Publish an endorsed version: the set's next revision (``version.revision_number``),
    replacing the version before.

    The review gate: without an endorsed review of exactly this version, a 409.
    """
    version = get_version(session, actor, slug, number, for_update=True)
    lifecycle.check(version.status, VersionStatus.PUBLISHED)
    review = reviews.require_endorsement(session, version)
    _lock_set(session)
    policy = version.policy
    previous = session.execute(
        select(PolicyVersion)
        .where(
            PolicyVersion.policy_id == policy.id,
            PolicyVersion.status == VersionStatus.PUBLISHED,
        )
        .with_for_update()
    ).scalar_one_or_none()
    last = session.execute(select(func.max(SetRevision.number))).scalar() or 0
    now = utcnow()
    revision_number = last + 1
    change = "retired" if version.is_retirement else ("replaced" if previous else "added")
    version.revision_number = revision_number
    version.published_at = now
    version.in_force_from = version.effective_from or now
    if previous is not None:
        lifecycle.transition(
            session,
            actor,
            previous,
            VersionStatus.SUPERSEDED,
            "version.superseded",
            superseded_by=number,
        )
    policy.state = PolicyState.RETIRED if version.is_retirement else PolicyState.PUBLISHED
    lifecycle.transition(
        session, actor, version, VersionStatus.PUBLISHED, "version.published", review_id=review.id
    )
    entry = {
        "policy": slug,
        "title": policy.title,
        "version": number,
        "change": change,
        "previous_version": previous.number if previous else None,
        "content_hash": version.content_hash,
        "effective_from": chain.format_time(version.in_force_from),
        "summary": version.summary,
        "review_id": review.id,
    }
    revision = SetRevision(
        number=revision_number,
        recorded_at=now,
        summary=f"{policy.title}: version {number} {change}.",
        changes=[entry],
        published_by_id=actor.user_id,
    )
    session.add(revision)
    session.flush()
    audit.record(
        session,
        actor,
        "policy_set.revised",
        "policy_set_revision",
        revision_number,
        after={
            "number": revision_number,
            "recorded_at": chain.format_time(now),
            "changes": [entry],
        },
    )
    return version


def find_policy(session: Session, slug: str) -> Policy | None:
    return session.execute(select(Policy).where(Policy.slug == slug)).scalar_one_or_none()
