"""Shapes of decision requests, decisions and their replay against a proposed change."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from registry.models.policy import DataCategory, Purpose
from registry.schemas.common import Instant, PageArgs, WholeNumber, choice, whole_number
from registry.services import catalogue, evaluation
from registry.services.decisions import TOP_LEVEL_FACTS
from registry.vocabulary import OrganisationKind


def _field_for(fact: catalogue.Fact) -> fields.Field[Any]:
    """A marshmallow field from a fact's JSON Schema (the few shapes the catalogue uses)."""
    schema = fact.schema
    options: dict[str, Any] = {
        "load_default": None,
        "allow_none": True,
        "metadata": {"description": fact.question},
    }
    if "enum" in schema:
        return fields.String(validate=validate.OneOf(schema["enum"]), **options)
    if schema["type"] == "boolean":
        return fields.Boolean(**options)
    if schema["type"] == "integer":
        return WholeNumber(
            validate=validate.Range(min=schema.get("minimum"), max=schema.get("maximum")), **options
        )
    if schema["type"] == "array":
        item = schema["items"]
        return fields.List(
            fields.String(validate=validate.Length(max=item.get("maxLength"))),
            validate=validate.Length(max=schema.get("maxItems")),
            **options,
        )
    return fields.String(validate=validate.Regexp(schema["pattern"]), **options)


CircumstancesSchema = Schema.from_dict(
    {
        name: _field_for(fact)
        for name, fact in sorted(catalogue.all_facts().items())
        if name not in TOP_LEVEL_FACTS
    },
    name="Circumstances",
)


class DecisionRequestSchema(Schema):
    purpose = choice("Purpose", Purpose, required=True)
    data_category = choice("DataCategory", DataCategory, required=True)
    organisation_kind = choice(
        "OrganisationKind",
        OrganisationKind,
        load_default=None,
        metadata={
            "description": "Always the kind the registry records for the caller's "
            "organisation. It may be left out (the usual case) or repeated; any other "
            "kind is refused with a 422, never evaluated."
        },
    )
    commercial_involvement = fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Is a company involved? For a caller whose organisation is "
            "registered as a company it is always true: left out, it is taken as true; "
            "false is refused with a 422."
        },
    )
    sensitive_categories = fields.List(
        choice("SensitiveCategory", catalogue.SENSITIVE_CATEGORIES),
        load_default=list,
        validate=validate.Length(max=len(catalogue.SENSITIVE_CATEGORIES)),
        metadata={"description": "Sensitive categories the use touches."},
    )
    circumstances = fields.Nested(
        CircumstancesSchema,
        load_default=dict,
        metadata={
            "description": "Facts the conditions ask about; leave out what you do not "
            "know (the answer then lists what is missing)."
        },
    )
    description = fields.String(load_default="", validate=validate.Length(max=2_000))
    reference = fields.String(
        load_default="",
        validate=validate.Length(max=200),
        metadata={"description": "Your own reference for the use."},
    )
    revision = whole_number(
        load_default=None,
        metadata={"description": "Evaluate against this revision."},
    )
    as_of = Instant(
        load_default=None,
        metadata={"description": "Evaluate against the set in force at this time."},
    )


_TIME = {"format": "date-time"}


class RecordedRequestSchema(Schema):
    """The request as the registry recorded it: the organisation's registered facts in place
    of anything the body said, circumstances without the ones left unknown."""

    purpose = choice("Purpose", Purpose, required=True)
    data_category = choice("DataCategory", DataCategory, required=True)
    organisation_kind = choice("OrganisationKind", OrganisationKind, required=True)
    commercial_involvement = fields.Boolean(required=True, allow_none=True)
    sensitive_categories = fields.List(
        choice("SensitiveCategory", catalogue.SENSITIVE_CATEGORIES), required=True
    )
    circumstances = fields.Nested(CircumstancesSchema, required=True)
    description = fields.String(required=True)
    reference = fields.String(required=True)
    revision = fields.Integer(required=True, allow_none=True)
    as_of = fields.String(required=True, allow_none=True, metadata=_TIME)


class DecidingOrganisationSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = choice("OrganisationKind", OrganisationKind, required=True)


class CitedPolicySchema(Schema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    version = fields.Integer(required=True)
    content_hash = fields.String(
        required=True, metadata={"description": "SHA-256 (hex) of the version's content."}
    )


class ConditionVerdictSchema(Schema):
    policy = fields.String(required=True)
    version = fields.Integer(required=True)
    code = fields.String(required=True)
    title = fields.String(required=True)
    kind = choice("ConditionKind", catalogue.Kind, required=True)
    status = choice("ConditionStatus", catalogue.Status, required=True)
    reason = fields.String(required=True)


class MissingFactSchema(Schema):
    name = fields.String(required=True, metadata={"description": "A key of `circumstances`."})
    question = fields.String(required=True)


class DutySchema(Schema):
    policy = fields.String(required=True)
    code = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    parameters = fields.Dict(keys=fields.String(), required=True)


class DecisionLogSchema(Schema):
    origin = fields.String(required=True, metadata={"description": "The audit log's origin."})
    index = fields.Integer(
        required=True,
        metadata={
            "description": "The 0-based index of the event that recorded this decision: "
            "GET /decisions/{id}/proof proves it is there."
        },
    )


class DecisionSchema(Schema):
    """A decision exactly as answered: the same RFC 8785 canonical bytes whenever read."""

    id = fields.String(required=True)
    decided_at = fields.String(required=True, metadata=_TIME)
    organisation = fields.Nested(DecidingOrganisationSchema, required=True)
    request = fields.Nested(RecordedRequestSchema, required=True)
    outcome = choice("DecisionOutcome", evaluation.OUTCOMES, required=True)
    explanation = fields.String(required=True)
    revision = fields.Integer(required=True)
    as_of = fields.String(required=True, metadata=_TIME)
    policies = fields.List(fields.Nested(CitedPolicySchema), required=True)
    conditions = fields.List(fields.Nested(ConditionVerdictSchema), required=True)
    missing_facts = fields.List(fields.Nested(MissingFactSchema), required=True)
    duties = fields.List(fields.Nested(DutySchema), required=True)
    referred_categories = fields.List(
        choice("SensitiveCategory", catalogue.SENSITIVE_CATEGORIES), required=True
    )
    log = fields.Nested(
        DecisionLogSchema,
        metadata={
            "description": "Where the decision's event is in the audit log (absent on "
            "decisions recorded before decisions cited it)."
        },
    )


class DecisionQuerySchema(PageArgs):
    purpose = choice("Purpose", Purpose)
    data_category = choice("DataCategory", DataCategory)
    outcome = choice("DecisionOutcome", evaluation.OUTCOMES)
    revision = whole_number(minimum=0)
    organisation_id = whole_number(metadata={"description": "Auditors only."})
    since = Instant()
    until = Instant()


class ImpactSchema(Schema):
    review_id = fields.Integer(required=True)
    policy = fields.String(required=True)
    proposed_version = fields.Integer(required=True)
    in_force_version = fields.Integer(allow_none=True)
    evaluated = fields.Integer(required=True)
    changed = fields.Integer(required=True)
    transitions = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    decisions = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": "The first 100 that change among the decisions you may read (your "
            "organisation's; auditors and administrators: all). The counts cover every one."
        },
    )
