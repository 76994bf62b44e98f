"""The condition catalogue: what each condition type means, asks and does.

Everything that is per condition type is one entry of ``registry/seed/conditions.yaml``:
the parameters it takes (a JSON Schema, checked when a condition is attached), the facts
of a proposed use it asks about, how it evaluates against them (met, unmet or unknown,
with a reason in plain English), and whether a change of its parameters tightens or
loosens access. A yes/no condition or a duty is data alone; the few that need more name
an evaluator here. Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from registry.vocabulary import USER_ORGANISATION_KINDS, SensitiveCategory


class Kind(StrEnum):
    REQUIRES = "requires"
    PROHIBITS = "prohibits"
    DUTY = "duty"


class Status(StrEnum):
    MET = "met"
    UNMET = "unmet"
    UNKNOWN = "unknown"


class Direction(StrEnum):
    TIGHTENS = "tightens"
    LOOSENS = "loosens"
    MIXED = "mixed"
    UNCHANGED = "unchanged"


FIVE_SAFES = ("projects", "people", "settings", "data", "outputs")
ORGANISATION_KINDS = tuple(str(k) for k in USER_ORGANISATION_KINDS)
SENSITIVE_CATEGORIES = tuple(str(c) for c in SensitiveCategory)

Facts = Mapping[str, Any]
Params = Mapping[str, Any]
Outcome = tuple[Status, str]


@dataclass(frozen=True)
class Fact:
    """A question a condition asks of a proposed use."""

    name: str
    schema: dict[str, Any]
    question: str


@dataclass(frozen=True)
class ConditionType:
    code: str
    title: str
    description: str
    kind: Kind
    five_safes: str
    duo: tuple[str, str] | None
    parameters: dict[str, Any]
    facts: tuple[Fact, ...]
    evaluate: Callable[[Params, Facts], Outcome]
    compare: Callable[[Params, Params], Direction] = field(
        default=lambda old, new: Direction.UNCHANGED if old == new else Direction.MIXED
    )

    def validate(self, parameters: Any) -> dict[str, list[str]]:
        """Errors by parameter path (empty when ``parameters`` is valid)."""
        validator = jsonschema.Draft202012Validator(self.parameters)
        errors: dict[str, list[str]] = {}
        for error in validator.iter_errors(parameters):
            path = ".".join(str(p) for p in error.absolute_path)
            errors.setdefault(path or "_", []).append(error.message)
        return errors


def _no_parameters() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "additionalProperties": False}


def _flag(
    fact: str, *, want: bool, met: str, unmet: str, unknown: str
) -> Callable[[Params, Facts], Outcome]:
    """Evaluate a yes/no fact: met when it is ``want``."""

    def evaluate(_params: Params, facts: Facts) -> Outcome:
        value = facts.get(fact)
        if value is None:
            return Status.UNKNOWN, unknown
        return (Status.MET, met) if value is want else (Status.UNMET, unmet)

    return evaluate


def _lower_is_tighter(name: str) -> Callable[[Params, Params], Direction]:
    """For a limit: lower tightens, higher loosens, adding one tightens, removing loosens."""

    def compare(old: Params, new: Params) -> Direction:
        a, b = old.get(name), new.get(name)
        if a == b:
            return Direction.UNCHANGED
        if a is None:
            return Direction.TIGHTENS
        if b is None:
            return Direction.LOOSENS
        return Direction.TIGHTENS if b < a else Direction.LOOSENS

    return compare


def _fewer_is_tighter(name: str) -> Callable[[Params, Params], Direction]:
    """For an allow-list: a subset tightens, a superset loosens, anything else is mixed."""

    def compare(old: Params, new: Params) -> Direction:
        a, b = set(old.get(name, ())), set(new.get(name, ()))
        if a == b:
            return Direction.UNCHANGED
        if b < a:
            return Direction.TIGHTENS
        if b > a:
            return Direction.LOOSENS
        return Direction.MIXED

    return compare


# --- the evaluations that need more than a flag --------------------------------------------


def _named_users(params: Params, facts: Facts) -> Outcome:
    users = facts.get("named_users")
    if users is None:
        return Status.UNKNOWN, "The request does not name the people who will have access."
    if not users:
        return Status.UNMET, "Access must be limited to named people, and none were named."
    limit = params.get("max_users")
    if limit is not None and len(users) > limit:
        return Status.UNMET, f"{len(users)} people were named; at most {limit} may have access."
    return Status.MET, f"Access is limited to {len(users)} named people."


def _one_of(
    fact: str, parameter: str, *, met: str, unmet: str, unknown: str
) -> Callable[[Params, Facts], Outcome]:
    """Met when the fact is one of the values the parameter allows. The reasons may name
    ``{value}`` and ``{allowed}`` (the allowed values, comma-separated)."""

    def evaluate(params: Params, facts: Facts) -> Outcome:
        value = facts.get(fact)
        if value is None:
            return Status.UNKNOWN, unknown
        allowed = params[parameter]
        words = {"value": value, "allowed": ", ".join(allowed)}
        return (
            (Status.MET, met.format(**words))
            if value in allowed
            else (
                Status.UNMET,
                unmet.format(**words),
            )
        )

    return evaluate


def _at_most(
    fact: str, parameter: str, *, met: str, unmet: str, unknown: str
) -> Callable[[Params, Facts], Outcome]:
    """Met when the fact is at most the parameter's limit. The reasons may name
    ``{value}`` and ``{limit}``."""

    def evaluate(params: Params, facts: Facts) -> Outcome:
        value = facts.get(fact)
        if value is None:
            return Status.UNKNOWN, unknown
        words = {"value": value, "limit": params[parameter]}
        if value <= params[parameter]:
            return Status.MET, met.format(**words)
        return Status.UNMET, unmet.format(**words)

    return evaluate


def _benefit_sharing(params: Params, facts: Facts) -> Outcome:
    applies_to = params.get("applies_to", "commercial_involvement")
    if applies_to == "commercial_involvement":
        commercial = facts.get("commercial_involvement")
        if commercial is None:
            return Status.UNKNOWN, "The request does not say whether a company is involved."
        if commercial is False:
            return Status.MET, "No company is involved, so no benefit-sharing agreement is needed."
    agreed = facts.get("benefit_sharing_agreement")
    if agreed is None:
        return Status.UNKNOWN, "The request does not say whether benefits will be shared."
    if agreed:
        return Status.MET, "A benefit-sharing agreement with the NHS is in place."
    return Status.UNMET, "The use needs an agreement to share its benefits with the NHS."


def _benefit_sharing_compare(old: Params, new: Params) -> Direction:
    a = old.get("applies_to", "commercial_involvement")
    b = new.get("applies_to", "commercial_involvement")
    if a == b:
        return Direction.UNCHANGED
    return Direction.TIGHTENS if b == "all" else Direction.LOOSENS


def _public_benefit(_params: Params, facts: Facts) -> Outcome:
    commercial = facts.get("commercial_involvement")
    if commercial is None:
        return Status.UNKNOWN, "The request does not say whether a company is involved."
    if commercial is False:
        return Status.MET, "No company is involved, so there is no profit to weigh."
    outweighs = facts.get("public_benefit_outweighs_profit")
    if outweighs is None:
        return (
            Status.UNKNOWN,
            "A company is involved and the request does not say that public benefit "
            "outweighs its profit.",
        )
    if outweighs:
        return Status.MET, "A company is involved and the public benefit outweighs its profit."
    return Status.UNMET, "Use for purely commercial gain is not allowed."


def _duty(fact: str, title: str) -> Callable[[Params, Facts], Outcome]:
    """A duty is taken on unless the request declines it (then the use is refused)."""

    def evaluate(_params: Params, facts: Facts) -> Outcome:
        value = facts.get(fact)
        if value is None:
            return Status.UNKNOWN, f"You take on this duty by relying on the answer: {title}."
        if value:
            return Status.MET, f"You have undertaken to do this: {title}."
        return Status.UNMET, f"The request declines a duty the policy sets: {title}."

    return evaluate


# --- the catalogue, read from its data file ---------------------------------------------------

CATALOGUE_FILE = Path(__file__).resolve().parent.parent / "seed" / "conditions.yaml"
# Word lists a condition's schemas may name as ``{vocabulary: name}``.
VOCABULARIES: dict[str, list[str]] = {
    "organisation_kinds": list(ORGANISATION_KINDS),
    "sensitive_categories": list(SENSITIVE_CATEGORIES),
}
EVALUATORS: dict[str, Callable[[Params, Facts], Outcome]] = {
    "named_users": _named_users,
    "benefit_sharing": _benefit_sharing,
    "public_benefit": _public_benefit,
}
COMPARISONS: dict[str, Callable[[str], Callable[[Params, Params], Direction]]] = {
    "lower_is_tighter": _lower_is_tighter,
    "fewer_is_tighter": _fewer_is_tighter,
}
CUSTOM_COMPARISONS: dict[str, Callable[[Params, Params], Direction]] = {
    "benefit_sharing": _benefit_sharing_compare,
}


def _with_words(value: Any) -> Any:
    """``value`` with every ``{vocabulary: name}`` replaced by that word list."""
    if isinstance(value, dict):
        if set(value) == {"vocabulary"}:
            return list(VOCABULARIES[value["vocabulary"]])
        return {k: _with_words(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_words(v) for v in value]
    return value


def _evaluator(entry: Mapping[str, Any]) -> Callable[[Params, Facts], Outcome]:
    ways = [w for w in ("flag", "one_of", "at_most", "duty", "evaluate") if w in entry]
    if len(ways) != 1:
        raise ValueError(
            f"{entry['code']}: give exactly one of flag, one_of, at_most, duty or evaluate"
        )
    for way, make in (("one_of", _one_of), ("at_most", _at_most)):
        if way in entry:
            rule = entry[way]
            return make(
                rule["fact"],
                rule["parameter"],
                met=rule["met"],
                unmet=rule["unmet"],
                unknown=rule["unknown"],
            )
    if "flag" in entry:
        flag = entry["flag"]
        return _flag(
            flag["fact"],
            want=bool(flag["want"]),
            met=flag["met"],
            unmet=flag["unmet"],
            unknown=flag["unknown"],
        )
    if "duty" in entry:
        return _duty(entry["duty"]["fact"], entry["duty"]["title"])
    if entry["evaluate"] not in EVALUATORS:
        raise ValueError(f"{entry['code']}: no evaluator named {entry['evaluate']!r}")
    return EVALUATORS[entry["evaluate"]]


def _comparison(entry: Mapping[str, Any]) -> dict[str, Callable[[Params, Params], Direction]]:
    """The ``compare`` argument, when the entry names one (else the default)."""
    compare = entry.get("compare")
    if compare is None:
        return {}
    [(how, name)] = compare.items()
    if how == "custom":
        return {"compare": CUSTOM_COMPARISONS[name]}
    return {"compare": COMPARISONS[how](name)}


def load(path: Path = CATALOGUE_FILE) -> tuple[ConditionType, ...]:
    """The condition catalogue, in the file's order."""
    entries = _with_words(yaml.safe_load(path.read_text(encoding="utf-8")))
    found = []
    for entry in entries:
        duo = entry.get("duo")
        found.append(
            ConditionType(
                code=entry["code"],
                title=entry["title"],
                description=entry["description"],
                kind=Kind(entry["kind"]),
                five_safes=entry["five_safes"],
                duo=(duo["code"], duo["label"]) if duo else None,
                parameters=entry.get("parameters", _no_parameters()),
                facts=tuple(Fact(f["name"], f["schema"], f["question"]) for f in entry["facts"]),
                evaluate=_evaluator(entry),
                **_comparison(entry),
            )
        )
    return tuple(found)


CATALOGUE: tuple[ConditionType, ...] = load()

BY_CODE: dict[str, ConditionType] = {entry.code: entry for entry in CATALOGUE}


def get(code: str) -> ConditionType | None:
    return BY_CODE.get(code)


def all_facts() -> dict[str, Fact]:
    """Every fact any condition asks about, by name (one schema per name)."""
    facts: dict[str, Fact] = {}
    for entry in CATALOGUE:
        for fact in entry.facts:
            facts.setdefault(fact.name, fact)
    return facts


def addition_direction() -> Direction:
    """Adding a condition of any kind narrows access (or adds an obligation)."""
    return Direction.TIGHTENS


def removal_direction() -> Direction:
    """Removing one widens access (or lifts an obligation)."""
    return Direction.LOOSENS


def combine(directions: Sequence[Direction]) -> Direction:
    """The overall direction of several changes."""
    moving = {d for d in directions if d is not Direction.UNCHANGED}
    if not moving:
        return Direction.UNCHANGED
    if len(moving) == 1:
        return moving.pop()
    return Direction.MIXED
