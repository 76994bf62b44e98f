"""May data be used this way? The answer, as a pure function of a policy set and a request.

No database, no Flask: the same revision and request always give the same answer.

- The applicable policies are those in force for the request's purpose and data category.
  A policy that names sensitive categories applies only to uses that touch one of them
  (it adds safeguards for them and covers them); a policy naming none applies to all.
- Each condition of each applicable policy is ``met``, ``unmet`` or ``unknown`` (the
  request did not say), with a reason in a sentence.
- Precedence: no applicable policy -> ``no_applicable_policy``; any unmet condition (a
  duty explicitly declined included) -> ``refused``; any unknown ``requires`` or
  ``prohibits`` -> ``refused``, listing the facts to supply (fail closed); a sensitive
  category no applicable policy covers -> ``referred_to_panel``; duties -> ``permitted_with_
  duties``; otherwise ``permitted``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.services import catalogue
from registry.services.catalogue import Kind, Status

PERMITTED = "permitted"
PERMITTED_WITH_DUTIES = "permitted_with_duties"
REFUSED = "refused"
REFERRED = "referred_to_panel"
NO_POLICY = "no_applicable_policy"
OUTCOMES = (PERMITTED, PERMITTED_WITH_DUTIES, REFUSED, REFERRED, NO_POLICY)


@dataclass(frozen=True, slots=True)
class Clause:
    code: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CitedPolicy:
    slug: str
    title: str
    version: int
    content_hash: str
    purpose: str
    data_category: str
    sensitive_categories: frozenset[str]
    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class PolicySet:
    revision: int
    as_of: str
    policies: tuple[CitedPolicy, ...]


@dataclass(frozen=True, slots=True)
class Proposal:
    purpose: str
    data_category: str
    sensitive_categories: frozenset[str] = frozenset()
    facts: Mapping[str, Any] = field(default_factory=dict)


def applicable(policy_set: PolicySet, proposal: Proposal) -> list[CitedPolicy]:
    """The policies that govern the proposal, in a stable order."""
    return sorted(
        (
            p
            for p in policy_set.policies
            if p.purpose == proposal.purpose
            and p.data_category == proposal.data_category
            and (
                not p.sensitive_categories or p.sensitive_categories & proposal.sensitive_categories
            )
        ),
        key=lambda p: p.slug,
    )


def _missing(entry: catalogue.ConditionType, facts: Mapping[str, Any]) -> list[catalogue.Fact]:
    return [fact for fact in entry.facts if facts.get(fact.name) is None]


def evaluate(policy_set: PolicySet, proposal: Proposal) -> dict[str, Any]:
    """The decision document: outcome, citations, each condition and why, duties, gaps."""
    policies = applicable(policy_set, proposal)
    cited = [
        {"slug": p.slug, "title": p.title, "version": p.version, "content_hash": p.content_hash}
        for p in policies
    ]
    conditions: list[dict[str, Any]] = []
    duties: list[dict[str, Any]] = []
    missing: dict[str, str] = {}
    blocked = unknown = False
    for policy in policies:
        for clause in policy.clauses:
            entry = catalogue.BY_CODE[clause.code]
            status, reason = entry.evaluate(clause.parameters, proposal.facts)
            conditions.append(
                {
                    "policy": policy.slug,
                    "version": policy.version,
                    "code": clause.code,
                    "title": entry.title,
                    "kind": str(entry.kind),
                    "status": str(status),
                    "reason": reason,
                }
            )
            if status is Status.UNMET:
                blocked = True
            elif entry.kind is Kind.DUTY:
                duties.append(
                    {
                        "policy": policy.slug,
                        "code": clause.code,
                        "title": entry.title,
                        "description": entry.description,
                        "parameters": dict(clause.parameters),
                    }
                )
            elif status is Status.UNKNOWN:
                unknown = True
                for fact in _missing(entry, proposal.facts):
                    missing.setdefault(fact.name, fact.question)
    covered = (
        frozenset().union(*(p.sensitive_categories for p in policies)) if policies else frozenset()
    )
    uncovered = sorted(proposal.sensitive_categories - covered)
    if not policies:
        outcome = NO_POLICY
    elif blocked or unknown:
        outcome = REFUSED
    elif uncovered:
        outcome = REFERRED
    elif duties:
        outcome = PERMITTED_WITH_DUTIES
    else:
        outcome = PERMITTED
    return {
        "outcome": outcome,
        "explanation": _explain(outcome, blocked, missing, uncovered, len(duties)),
        "revision": policy_set.revision,
        "as_of": policy_set.as_of,
        "policies": cited,
        "conditions": conditions,
        "missing_facts": [{"name": k, "question": q} for k, q in sorted(missing.items())],
        "duties": duties if outcome == PERMITTED_WITH_DUTIES else [],
        "referred_categories": uncovered if outcome == REFERRED else [],
    }


def _explain(
    outcome: str,
    blocked: bool,
    missing: Mapping[str, str],
    uncovered: Sequence[str],
    duties: int,
) -> str:
    if outcome == NO_POLICY:
        return (
            "No policy in the London set covers this purpose and kind of data, so the "
            "registry cannot permit it."
        )
    if outcome == REFUSED and blocked:
        return "Refused: at least one condition is not met; each condition says why."
    if outcome == REFUSED:
        return (
            "Refused for now: the request does not say enough to check every condition. "
            "Ask again with the missing facts: " + ", ".join(sorted(missing)) + "."
        )
    if outcome == REFERRED:
        return (
            "Referred to a citizen panel: the use touches sensitive categories no policy "
            "covers explicitly (" + ", ".join(uncovered) + ")."
        )
    if outcome == PERMITTED_WITH_DUTIES:
        return (
            f"Permitted, with {duties} dut{'y' if duties == 1 else 'ies'} you take on by "
            "relying on this answer."
        )
    return "Permitted: every condition of the applicable policies is met."
