"""The condition catalogue: what each condition type means, asks and does.

Everything that is per condition type lives here, in one entry per type: the parameters
it takes (a JSON Schema, checked when a condition is attached), the facts of a proposed
use it asks about, how it evaluates against them (met, unmet or unknown, with a reason in
plain English), and whether a change of its parameters tightens or loosens access.
Pure: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jsonschema

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


def _bool(question: str, name: str) -> Fact:
    return Fact(name, {"type": "boolean"}, question)


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


def _institutions(params: Params, facts: Facts) -> Outcome:
    kind = facts.get("organisation_kind")
    allowed = params["organisation_kinds"]
    if kind is None:
        return Status.UNKNOWN, "The request does not say what kind of organisation is asking."
    if kind in allowed:
        return Status.MET, f"Organisations of this kind ({kind}) may have access."
    return (
        Status.UNMET,
        f"Only these kinds of organisation may have access: {', '.join(allowed)}; "
        f"this one is a {kind}.",
    )


def _time_limit(params: Params, facts: Facts) -> Outcome:
    months = facts.get("duration_months")
    limit = params["max_months"]
    if months is None:
        return Status.UNKNOWN, "The request does not say how long the data will be used for."
    if months <= limit:
        return Status.MET, f"{months} months is within the limit of {limit} months."
    return Status.UNMET, f"{months} months is longer than the limit of {limit} months."


def _location(params: Params, facts: Facts) -> Outcome:
    where = facts.get("processing_location")
    allowed = params["allowed_countries"]
    if where is None:
        return Status.UNKNOWN, "The request does not say where the data will be processed."
    if where in allowed:
        return Status.MET, f"Processing in {where} is allowed."
    return (
        Status.UNMET,
        f"Data may be processed only in {', '.join(allowed)}; the request says {where}.",
    )


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


# --- the catalogue -----------------------------------------------------------------------------

CATALOGUE: tuple[ConditionType, ...] = (
    ConditionType(
        code="trusted_research_environment",
        title="Trusted research environment only",
        description="Data may be analysed only inside an accredited trusted research "
        "environment (a secure data environment): it is never sent out to the user.",
        kind=Kind.REQUIRES,
        five_safes="settings",
        duo=None,
        parameters=_no_parameters(),
        facts=(
            _bool(
                "Will the data be used only inside a trusted research environment?",
                "trusted_research_environment",
            ),
        ),
        evaluate=_flag(
            "trusted_research_environment",
            want=True,
            met="The data stays inside a trusted research environment.",
            unmet="The data must stay inside a trusted research environment.",
            unknown="The request does not say whether a trusted research environment is used.",
        ),
    ),
    ConditionType(
        code="national_data_opt_out",
        title="National data opt-out applied",
        description="Records of people who have registered a national data opt-out are "
        "removed before the data is used.",
        kind=Kind.REQUIRES,
        five_safes="data",
        duo=None,
        parameters=_no_parameters(),
        facts=(_bool("Is the national data opt-out applied?", "national_data_opt_out_applied"),),
        evaluate=_flag(
            "national_data_opt_out_applied",
            want=True,
            met="The national data opt-out is applied.",
            unmet="People who opted out must be removed first.",
            unknown="The request does not say whether the national data opt-out is applied.",
        ),
    ),
    ConditionType(
        code="no_reidentification",
        title="No re-identification",
        description="No one may try to work out who a person in de-personalised data is, "
        "or link it with other data to do so.",
        kind=Kind.PROHIBITS,
        five_safes="data",
        duo=None,
        parameters=_no_parameters(),
        facts=(
            _bool(
                "Is re-identifying anyone intended or possible by linkage?",
                "reidentification_intended",
            ),
        ),
        evaluate=_flag(
            "reidentification_intended",
            want=False,
            met="No re-identification is intended.",
            unmet="Re-identifying people is prohibited.",
            unknown="The request does not say whether re-identification is intended.",
        ),
    ),
    ConditionType(
        code="named_users_only",
        title="Named users only",
        description="Only people named in the application may access the data.",
        kind=Kind.REQUIRES,
        five_safes="people",
        duo=("DUO:0000026", "user specific restriction"),
        parameters={
            "type": "object",
            "properties": {"max_users": {"type": "integer", "minimum": 1, "maximum": 1000}},
            "additionalProperties": False,
        },
        facts=(
            Fact(
                "named_users",
                {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 1000},
                "Who, by name or role, will access the data?",
            ),
        ),
        evaluate=_named_users,
        compare=_lower_is_tighter("max_users"),
    ),
    ConditionType(
        code="named_institutions_only",
        title="Named kinds of institution only",
        description="Only organisations of the listed kinds may access the data.",
        kind=Kind.REQUIRES,
        five_safes="people",
        duo=("DUO:0000028", "institution specific restriction"),
        parameters={
            "type": "object",
            "properties": {
                "organisation_kinds": {
                    "type": "array",
                    "items": {"enum": list(ORGANISATION_KINDS)},
                    "minItems": 1,
                    "uniqueItems": True,
                }
            },
            "required": ["organisation_kinds"],
            "additionalProperties": False,
        },
        facts=(
            Fact(
                "organisation_kind",
                {"enum": list(ORGANISATION_KINDS)},
                "What kind of organisation is asking?",
            ),
        ),
        evaluate=_institutions,
        compare=_fewer_is_tighter("organisation_kinds"),
    ),
    ConditionType(
        code="time_limited",
        title="Time-limited access",
        description="Access ends after a set number of months; the data is then deleted.",
        kind=Kind.REQUIRES,
        five_safes="projects",
        duo=("DUO:0000025", "time limit on use"),
        parameters={
            "type": "object",
            "properties": {"max_months": {"type": "integer", "minimum": 1, "maximum": 120}},
            "required": ["max_months"],
            "additionalProperties": False,
        },
        facts=(
            Fact(
                "duration_months",
                {"type": "integer", "minimum": 0, "maximum": 1200},
                "For how many months will the data be used?",
            ),
        ),
        evaluate=_time_limit,
        compare=_lower_is_tighter("max_months"),
    ),
    ConditionType(
        code="ethics_approval",
        title="Ethics approval",
        description="The project has approval from a recognised research ethics committee.",
        kind=Kind.REQUIRES,
        five_safes="projects",
        duo=("DUO:0000021", "ethics approval required"),
        parameters=_no_parameters(),
        facts=(_bool("Has a research ethics committee approved the project?", "ethics_approval"),),
        evaluate=_flag(
            "ethics_approval",
            want=True,
            met="The project has ethics approval.",
            unmet="The project needs ethics approval first.",
            unknown="The request does not say whether the project has ethics approval.",
        ),
    ),
    ConditionType(
        code="data_uses_register",
        title="Published in a data uses register",
        description="The use is published in a public register of data uses: who has the "
        "data, why, and on what terms.",
        kind=Kind.DUTY,
        five_safes="projects",
        duo=None,
        parameters={
            "type": "object",
            "properties": {"within_days": {"type": "integer", "minimum": 1, "maximum": 365}},
            "additionalProperties": False,
        },
        facts=(
            _bool(
                "Will the use be published in the data uses register?", "will_publish_in_register"
            ),
        ),
        evaluate=_duty("will_publish_in_register", "publish the use in the data uses register"),
        compare=_lower_is_tighter("within_days"),
    ),
    ConditionType(
        code="benefit_sharing_agreement",
        title="Benefit-sharing agreement with the NHS",
        description="Where a company is involved (or always, if the policy says so), an "
        "agreement returns a fair share of the benefits to the NHS.",
        kind=Kind.REQUIRES,
        five_safes="projects",
        duo=None,
        parameters={
            "type": "object",
            "properties": {"applies_to": {"enum": ["commercial_involvement", "all"]}},
            "additionalProperties": False,
        },
        facts=(
            _bool("Is a company involved?", "commercial_involvement"),
            _bool(
                "Is there a benefit-sharing agreement with the NHS?", "benefit_sharing_agreement"
            ),
        ),
        evaluate=_benefit_sharing,
        compare=_benefit_sharing_compare,
    ),
    ConditionType(
        code="public_benefit_over_profit",
        title="Public benefit outweighs profit",
        description="Data may not be used for purely commercial gain: where a company is "
        "involved, the public benefit must outweigh its profit.",
        kind=Kind.PROHIBITS,
        five_safes="projects",
        duo=None,
        parameters=_no_parameters(),
        facts=(
            _bool("Is a company involved?", "commercial_involvement"),
            _bool(
                "Does the public benefit outweigh the profit?", "public_benefit_outweighs_profit"
            ),
        ),
        evaluate=_public_benefit,
    ),
    ConditionType(
        code="non_commercial_only",
        title="Non-commercial use only",
        description="No company may be involved in the use.",
        kind=Kind.PROHIBITS,
        five_safes="projects",
        duo=("DUO:0000046", "non-commercial use only"),
        parameters=_no_parameters(),
        facts=(_bool("Is a company involved?", "commercial_involvement"),),
        evaluate=_flag(
            "commercial_involvement",
            want=False,
            met="No company is involved.",
            unmet="Commercial involvement is not allowed.",
            unknown="The request does not say whether a company is involved.",
        ),
    ),
    ConditionType(
        code="processing_location",
        title="Processing only in named countries",
        description="Data may be stored and processed only in the listed countries "
        "(ISO 3166 codes; GB for the United Kingdom).",
        kind=Kind.REQUIRES,
        five_safes="settings",
        duo=("DUO:0000022", "geographical restriction"),
        parameters={
            "type": "object",
            "properties": {
                "allowed_countries": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[A-Z]{2}$"},
                    "minItems": 1,
                    "uniqueItems": True,
                }
            },
            "required": ["allowed_countries"],
            "additionalProperties": False,
        },
        facts=(
            Fact(
                "processing_location",
                {"type": "string", "pattern": "^[A-Z]{2}$"},
                "In which country will the data be processed (ISO 3166 code)?",
            ),
        ),
        evaluate=_location,
        compare=_fewer_is_tighter("allowed_countries"),
    ),
    ConditionType(
        code="return_of_results",
        title="Return of results and derived data",
        description="Results and derived data are returned to the NHS so others can "
        "benefit from them.",
        kind=Kind.DUTY,
        five_safes="outputs",
        duo=("DUO:0000029", "return to database or resource"),
        parameters={
            "type": "object",
            "properties": {"within_months": {"type": "integer", "minimum": 1, "maximum": 60}},
            "additionalProperties": False,
        },
        facts=(
            _bool("Will results and derived data be returned to the NHS?", "will_return_results"),
        ),
        evaluate=_duty("will_return_results", "return results and derived data to the NHS"),
        compare=_lower_is_tighter("within_months"),
    ),
    ConditionType(
        code="no_onward_sharing",
        title="No onward sharing",
        description="The data may not be passed on to anyone else.",
        kind=Kind.PROHIBITS,
        five_safes="outputs",
        duo=None,
        parameters=_no_parameters(),
        facts=(_bool("Will the data be passed on to anyone else?", "onward_sharing"),),
        evaluate=_flag(
            "onward_sharing",
            want=False,
            met="The data will not be passed on.",
            unmet="Passing the data on to others is prohibited.",
            unknown="The request does not say whether the data will be passed on.",
        ),
    ),
    ConditionType(
        code="direct_care_relationship",
        title="Role-based access for people caring for the patient",
        description="Only health and care professionals with a role in the person's care "
        "may see their record, and only what that role needs.",
        kind=Kind.REQUIRES,
        five_safes="people",
        duo=None,
        parameters=_no_parameters(),
        facts=(
            _bool(
                "Does the person accessing the record have a role in the patient's care?",
                "direct_care_relationship",
            ),
        ),
        evaluate=_flag(
            "direct_care_relationship",
            want=True,
            met="Access is by someone with a role in the person's care.",
            unmet="Only people with a role in the person's care may have access.",
            unknown="The request does not say whether there is a care relationship.",
        ),
    ),
    ConditionType(
        code="access_audited",
        title="Every access recorded and accountable",
        description="Every access is logged, can be audited, and people can ask who has "
        "looked at their record.",
        kind=Kind.DUTY,
        five_safes="settings",
        duo=None,
        parameters=_no_parameters(),
        facts=(_bool("Will every access be logged and open to audit?", "access_logged"),),
        evaluate=_duty("access_logged", "log every access and make it open to audit"),
    ),
    ConditionType(
        code="security_assured",
        title="Security assured",
        description="The organisation meets the NHS Data Security and Protection Toolkit "
        "standards.",
        kind=Kind.REQUIRES,
        five_safes="settings",
        duo=None,
        parameters=_no_parameters(),
        facts=(
            _bool(
                "Does the organisation meet the Data Security and Protection Toolkit standards?",
                "security_assured",
            ),
        ),
        evaluate=_flag(
            "security_assured",
            want=True,
            met="The organisation meets the security standards.",
            unmet="The organisation must meet the security standards first.",
            unknown="The request does not say whether the security standards are met.",
        ),
    ),
    ConditionType(
        code="data_minimised",
        title="Minimum necessary data",
        description="Only the data items the purpose needs are used, and no more.",
        kind=Kind.REQUIRES,
        five_safes="data",
        duo=None,
        parameters=_no_parameters(),
        facts=(_bool("Is the data limited to what the purpose needs?", "data_minimised"),),
        evaluate=_flag(
            "data_minimised",
            want=True,
            met="Only the data the purpose needs is used.",
            unmet="Only the data the purpose needs may be used.",
            unknown="The request does not say whether the data is limited to what is needed.",
        ),
    ),
)

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


def addition_direction(kind: Kind) -> Direction:
    """Adding a condition of any kind narrows access (or adds an obligation)."""
    return Direction.TIGHTENS


def removal_direction(kind: Kind) -> Direction:
    return Direction.LOOSENS


def combine(directions: Sequence[Direction]) -> Direction:
    """The overall direction of several changes."""
    moving = {d for d in directions if d is not Direction.UNCHANGED}
    if not moving:
        return Direction.UNCHANGED
    if len(moving) == 1:
        return moving.pop()
    return Direction.MIXED
