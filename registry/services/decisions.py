"""Decisions: evaluate a proposed use against the set, record the answer, replay them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from registry.db import table_of, utcnow
from registry.errors import InvalidInput, NotFound, Unauthenticated
from registry.models.decision import Decision
from registry.models.identity import Organisation, Role
from registry.models.policy import PolicyVersion
from registry.services import audit, chain, evaluation
from registry.services.context import Actor
from registry.services.evaluation import CitedPolicy, Clause, PolicySet, Proposal
from registry.services.paging import Page, keyset_page
from registry.vocabulary import OrganisationKind

TOP_LEVEL_FACTS = ("organisation_kind", "commercial_involvement")
_INSERT = insert(table_of(Decision))


def cited_policy(version: PolicyVersion) -> CitedPolicy:
    """What evaluation needs of a published version (immutable, so cacheable)."""
    policy = version.policy
    return CitedPolicy(
        slug=policy.slug,
        title=policy.title,
        version=version.number,
        content_hash=version.content_hash,
        purpose=policy.purpose,
        data_category=policy.data_category,
        sensitive_categories=frozenset(version.sensitive_categories),
        clauses=tuple(Clause(c.type_code, dict(c.parameters)) for c in version.conditions),
    )


def proposal(request: Mapping[str, Any]) -> Proposal:
    """The proposal a normalised request describes."""
    facts = dict(request.get("circumstances") or {})
    for name in TOP_LEVEL_FACTS:
        if request.get(name) is not None:
            facts[name] = request[name]
    return Proposal(
        purpose=request["purpose"],
        data_category=request["data_category"],
        sensitive_categories=frozenset(request.get("sensitive_categories") or ()),
        facts=facts,
    )


def known_facts(body: Mapping[str, Any], organisation: Organisation) -> dict[str, Any]:
    """The facts the registry holds about the caller, which a body may repeat but never
    contradict: the organisation's registered kind, and (for a company) that a company
    is involved. A body that says otherwise is refused, not corrected, so that no one
    believes the answer rests on what they claimed."""
    known: dict[str, Any] = {"organisation_kind": organisation.kind}
    if organisation.kind == OrganisationKind.COMPANY:
        known["commercial_involvement"] = True
    errors = {
        name: [f"The registry records this as {value!r} for your organisation."]
        for name, value in known.items()
        if body.get(name) is not None and body[name] != value
    }
    if errors:
        raise InvalidInput(
            "The request contradicts what the registry records about your organisation.",
            errors,
        )
    return known


def normalise(body: Mapping[str, Any], organisation: Organisation) -> dict[str, Any]:
    """The request as recorded: JSON-ready, with the facts the registry holds about the
    caller's organisation (``known_facts``) in place of anything the body said."""
    known = known_facts(body, organisation)
    as_of = body.get("as_of")
    return {
        "purpose": body["purpose"],
        "data_category": body["data_category"],
        "organisation_kind": known["organisation_kind"],
        "commercial_involvement": known.get(
            "commercial_involvement", body.get("commercial_involvement")
        ),
        "sensitive_categories": sorted(set(body.get("sensitive_categories") or ())),
        "circumstances": {
            k: v for k, v in (body.get("circumstances") or {}).items() if v is not None
        },
        "description": body.get("description") or "",
        "reference": body.get("reference") or "",
        "revision": body.get("revision"),
        "as_of": chain.format_time(as_of) if isinstance(as_of, datetime) else as_of,
    }


def decide(
    session: Session, actor: Actor, body: Mapping[str, Any], policy_set: PolicySet
) -> tuple[Decision, bytes]:
    """Answer a proposed use for the caller's organisation, as the registry records it,
    against ``policy_set``, and record the answer; the decision, and its document as
    cited (RFC 8785 canonical JSON, the bytes its ``result_hash`` is over)."""
    organisation = session.get(Organisation, actor.organisation_id)
    if organisation is None:  # the caller's organisation vanished mid-request
        raise Unauthenticated()
    return record(session, actor, organisation, normalise(body, organisation), policy_set)


def record(
    session: Session,
    actor: Actor,
    organisation: Organisation,
    request: dict[str, Any],
    policy_set: PolicySet,
) -> tuple[Decision, bytes]:
    """Evaluate and record a decision, with its audit event, in the caller's transaction;
    the decision and its document's canonical bytes (encoded once: hashed and answered)."""
    answer = evaluation.evaluate(policy_set, proposal(request))
    now = utcnow()
    public_id = str(uuid.uuid4())
    seq = audit.next_seq(session)  # the decision cites its own event's place in the log
    document = {
        "id": public_id,
        "decided_at": chain.format_time(now),
        "organisation": {
            "id": organisation.id,
            "name": organisation.name,
            "kind": organisation.kind,
        },
        "request": request,
        **answer,
        "log": {"origin": audit.log_verifier().name, "index": seq - 1},
    }
    cited = chain.canonical(document)
    result_hash = chain.sha256_hex(cited)
    row = {
        "id": public_id,
        "created_at": now,
        "organisation_id": organisation.id,
        "user_id": actor.user_id,
        "purpose": request["purpose"],
        "data_category": request["data_category"],
        "revision": policy_set.revision,
        "outcome": answer["outcome"],
        "request": request,
        "result": document,
        "result_hash": result_hash,
    }
    # A plain insert: the decision is answered from ``document``, not read back.
    session.connection().execute(_INSERT, [row])
    decision = Decision(**row)
    audit.record(
        session,
        actor,
        "decision.recorded",
        "decision",
        public_id,
        after={
            "outcome": answer["outcome"],
            "revision": policy_set.revision,
            "organisation_id": organisation.id,
            "result_hash": result_hash,
            "policies": [(p["slug"], p["version"], p["content_hash"]) for p in answer["policies"]],
        },
        seq=seq,
    )
    return decision, cited


def can_read_all(actor: Actor) -> bool:
    return actor.role in (Role.AUDITOR, Role.ADMIN)


def may_read(actor: Actor, decision: Decision) -> bool:
    """Who may see a decision: its own organisation, auditors and administrators."""
    return can_read_all(actor) or (
        actor.organisation_id is not None and decision.organisation_id == actor.organisation_id
    )


def get(session: Session, actor: Actor, decision_id: str) -> Decision:
    """A decision, for those who may read it; for anyone else it does not exist."""
    decision = session.execute(
        select(Decision).where(Decision.id == decision_id)
    ).scalar_one_or_none()
    if decision is None or not may_read(actor, decision):
        raise NotFound(f"No decision {decision_id}.")
    return decision


def list_decisions(
    session: Session,
    actor: Actor,
    *,
    filters: Mapping[str, Any],
    limit: int,
    after: int | None,
) -> Page[Decision]:
    """Decisions newest first; an organisation sees its own, auditors everyone's."""
    statement = select(Decision)
    if not can_read_all(actor):
        statement = statement.where(Decision.organisation_id == actor.organisation_id)
    elif filters.get("organisation_id") is not None:
        statement = statement.where(Decision.organisation_id == filters["organisation_id"])
    for name in ("purpose", "data_category", "outcome", "revision"):
        if filters.get(name) is not None:
            statement = statement.where(getattr(Decision, name) == filters[name])
    if filters.get("since") is not None:
        statement = statement.where(Decision.created_at >= filters["since"])
    if filters.get("until") is not None:
        statement = statement.where(Decision.created_at < filters["until"])
    return keyset_page(session, statement, Decision.seq, limit, after, descending=True)


def with_proposal(current: PolicySet, version: CitedPolicy, retirement: bool) -> PolicySet:
    """The set as it would be if the proposed version were published now."""
    others = tuple(p for p in current.policies if p.slug != version.slug)
    return PolicySet(
        revision=current.revision,
        as_of=current.as_of,
        policies=others if retirement else (*others, version),
    )


def impact(
    decisions: Iterable[Decision],
    current: PolicySet,
    proposed: PolicySet,
    reader: Actor,
    *,
    show: int = 100,
) -> dict[str, Any]:
    """Replay recorded decisions against the set now and with the proposal.

    The counts cover every decision, whoever asks; the flips are listed one by one only
    where ``reader`` may read the decision, so that an impact report never names another
    organisation's decision, its time or its outcome.
    """
    changed: list[dict[str, Any]] = []
    transitions: Counter[str] = Counter()
    evaluated = 0
    for decision in decisions:
        evaluated += 1
        use = proposal(decision.request)
        before = evaluation.evaluate(current, use)["outcome"]
        after = evaluation.evaluate(proposed, use)["outcome"]
        if before != after:
            transitions[f"{before} -> {after}"] += 1
            if len(changed) < show and may_read(reader, decision):
                changed.append(
                    {
                        "decision_id": decision.id,
                        "decided_at": decision.created_at,
                        "recorded_outcome": decision.outcome,
                        "from": before,
                        "to": after,
                    }
                )
    return {
        "evaluated": evaluated,
        "changed": sum(transitions.values()),
        "transitions": dict(sorted(transitions.items())),
        "decisions": changed,
    }


def decisions_for_use(session: Session, purpose: str, data_category: str) -> Sequence[Decision]:
    return (
        session.execute(
            select(Decision)
            .where(Decision.purpose == purpose, Decision.data_category == data_category)
            .order_by(Decision.seq)
        )
        .scalars()
        .all()
    )
