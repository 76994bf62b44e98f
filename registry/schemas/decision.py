"""Shapes of decision requests, decisions and their replay against a proposed change."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from registry.models.policy import DataCategory, Purpose
from registry.schemas.common import Instant, PageArgs, WholeNumber, whole_number
from registry.services import catalogue, evaluation
from registry.services.decisions import TOP_LEVEL_FACTS


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
    purpose = fields.String(required=True, validate=validate.OneOf([str(p) for p in Purpose]))
    data_category = fields.String(
        required=True, validate=validate.OneOf([str(c) for c in DataCategory])
    )
    organisation_kind = fields.String(
        load_default=None,
        validate=validate.OneOf(catalogue.ORGANISATION_KINDS),
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
        fields.String(validate=validate.OneOf(catalogue.SENSITIVE_CATEGORIES)),
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


class DecisionSchema(Schema):
    """A decision exactly as answered (times are the strings that were given)."""

    id = fields.String(required=True)
    decided_at = fields.String(required=True)
    organisation = fields.Dict(required=True)
    request = fields.Dict(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(evaluation.OUTCOMES))
    explanation = fields.String(required=True)
    revision = fields.Integer(required=True)
    as_of = fields.String(required=True)
    policies = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "Cited: slug, version, content_hash."},
    )
    conditions = fields.List(fields.Dict(), required=True)
    missing_facts = fields.List(fields.Dict(), required=True)
    duties = fields.List(fields.Dict(), required=True)
    referred_categories = fields.List(fields.String(), required=True)


class DecisionQuerySchema(PageArgs):
    purpose = fields.String(validate=validate.OneOf([str(p) for p in Purpose]))
    data_category = fields.String(validate=validate.OneOf([str(c) for c in DataCategory]))
    outcome = fields.String(validate=validate.OneOf(evaluation.OUTCOMES))
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
