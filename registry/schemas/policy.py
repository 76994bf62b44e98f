"""Shapes of policies, versions, conditions, diffs and the policy set."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.models.policy import DataCategory, PolicyState, Purpose, VersionStatus
from registry.models.review import Outcome
from registry.schemas.common import Instant, PageArgs, QueryArgs, choice, whole_number
from registry.services.catalogue import FIVE_SAFES, SENSITIVE_CATEGORIES, Direction, Kind
from registry.services.policies import SLUG_MAX_LENGTH
from registry.vocabulary import PUBLIC_BENEFIT_QUESTIONS

PURPOSES = [str(p) for p in Purpose]
CATEGORIES = [str(c) for c in DataCategory]
STATUSES = [str(s) for s in VersionStatus]
DIRECTIONS = [str(d) for d in Direction]
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

_sensitive = fields.List(
    choice("SensitiveCategory", SENSITIVE_CATEGORIES),
    validate=validate.Length(max=len(SENSITIVE_CATEGORIES)),
    metadata={
        "description": "Sensitive categories this policy explicitly covers: a "
        "decision touching one it does not cover goes to a panel."
    },
)


class ConditionTypeSchema(Schema):
    code = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    kind = choice("ConditionKind", Kind, required=True)
    five_safes = choice("FiveSafes", FIVE_SAFES, required=True)
    duo_code = fields.String(allow_none=True, metadata={"description": "GA4GH DUO term."})
    duo_label = fields.String(allow_none=True)
    parameters_schema = fields.Dict(required=True, metadata={"description": "JSON Schema."})
    facts = fields.List(
        fields.Dict(),
        metadata={"description": "What a decision request should say for this condition."},
    )


class ConditionInSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    parameters = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata={"description": "Checked against the type's schema."},
    )


class ConditionOutSchema(Schema):
    code = fields.String(required=True)
    title = fields.String(required=True)
    kind = choice("ConditionKind", Kind, required=True)
    five_safes = choice(
        "FiveSafes",
        FIVE_SAFES,
        required=True,
        allow_none=True,
        metadata={"description": "null for a code the catalogue no longer holds."},
    )
    duo_code = fields.String(allow_none=True)
    parameters = fields.Dict(required=True)


class TallySchema(Schema):
    """A review's counts, without who was eligible or how anyone voted."""

    eligible = fields.Integer(metadata={"description": "Serving members without a conflict."})
    cast = fields.Integer()
    counted = fields.Integer()
    not_counted = fields.Integer()
    endorse = fields.Integer()
    endorse_with_changes = fields.Integer()
    reject = fields.Integer()
    abstain = fields.Integer()


class ReviewSummarySchema(Schema):
    id = fields.Integer(required=True)
    panel = fields.String(required=True)
    outcome = choice("ReviewOutcome", Outcome, allow_none=True)
    tally = fields.Nested(TallySchema, allow_none=True)
    recommendation = fields.String()
    closes_at = fields.DateTime()
    closed_at = fields.DateTime(allow_none=True)


class VersionSchema(Schema):
    policy = fields.String(required=True)
    title = fields.String(required=True)
    purpose = choice("Purpose", PURPOSES, required=True)
    data_category = choice("DataCategory", CATEGORIES, required=True)
    number = fields.Integer(required=True)
    status = choice("VersionStatus", STATUSES, required=True)
    is_retirement = fields.Boolean(required=True)
    body = fields.String(required=True)
    summary = fields.String(required=True)
    rationale = fields.String(required=True)
    conditions = fields.List(fields.Nested(ConditionOutSchema), required=True)
    sensitive_categories = fields.List(
        choice("SensitiveCategory", SENSITIVE_CATEGORIES), required=True
    )
    effective_from = fields.DateTime(allow_none=True)
    in_force_from = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    revision = fields.Integer(allow_none=True)
    content_hash = fields.String(
        required=True,
        metadata={"description": "SHA-256 of the RFC 8785 canonical content: cite it."},
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    review = fields.Nested(ReviewSummarySchema, allow_none=True)


class PolicySchema(Schema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    purpose = choice("Purpose", PURPOSES, required=True)
    data_category = choice("DataCategory", CATEGORIES, required=True)
    state = choice("PolicyState", PolicyState, required=True)
    latest_version = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class PolicyCreateSchema(Schema):
    slug = fields.String(
        required=True,
        validate=[validate.Length(min=3, max=SLUG_MAX_LENGTH), validate.Regexp(SLUG_PATTERN)],
    )
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    purpose = choice("Purpose", PURPOSES, required=True)
    data_category = choice("DataCategory", CATEGORIES, required=True)
    body = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    summary = fields.String(required=True, validate=validate.Length(min=1, max=2_000))
    rationale = fields.String(load_default="", validate=validate.Length(max=10_000))
    conditions = fields.List(
        fields.Nested(ConditionInSchema), load_default=list, validate=validate.Length(max=30)
    )
    sensitive_categories = _sensitive
    effective_from = Instant(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "When it takes effect (RFC 3339 with offset); omitted: on "
            "publication. Past times correct the record; future ones "
            "give notice."
        },
    )


class VersionCreateSchema(Schema):
    retire = fields.Boolean(
        load_default=False,
        metadata={"description": "A retirement: publishing it takes the policy out of the set."},
    )
    based_on = whole_number(
        load_default=None,
        metadata={"description": "Copy this version (default: the latest)."},
    )


class VersionUpdateSchema(Schema):
    body = fields.String(validate=validate.Length(min=1, max=100_000))
    summary = fields.String(validate=validate.Length(min=1, max=2_000))
    rationale = fields.String(validate=validate.Length(max=10_000))
    conditions = fields.List(fields.Nested(ConditionInSchema), validate=validate.Length(max=30))
    sensitive_categories = fields.List(
        choice("SensitiveCategory", SENSITIVE_CATEGORIES),
        validate=validate.Length(max=len(SENSITIVE_CATEGORIES)),
    )
    effective_from = Instant(allow_none=True)


class PolicyQuerySchema(PageArgs):
    purpose = choice("Purpose", PURPOSES)
    data_category = choice("DataCategory", CATEGORIES)
    state = choice("PolicyState", PolicyState)
    q = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Text in the title or summary."},
    )


class VersionQuerySchema(PageArgs):
    status = choice("VersionStatus", STATUSES)


class SetQuerySchema(QueryArgs):
    revision = whole_number(metadata={"description": "The set as revision N left it."})
    as_of = Instant(
        metadata={
            "description": "What was in force at this time (by effective date). A time to "
            "come is a preview: the versions already published that will then be in force."
        }
    )
    known_at = Instant(
        metadata={"description": "What the registry said at this time (by recording date)."}
    )


class SetVersionSchema(VersionSchema):
    """A version as the set shows it: in force, so without a status."""

    class Meta:
        exclude = ("status",)


class SetPolicySchema(Schema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    purpose = choice("Purpose", PURPOSES, required=True)
    data_category = choice("DataCategory", CATEGORIES, required=True)
    version = fields.Nested(SetVersionSchema, required=True)


class NothingInForceSchema(Schema):
    detail = fields.String(required=True)
    first_in_force_at = fields.DateTime(required=True, allow_none=True)
    first_revision_recorded_at = fields.DateTime(required=True, allow_none=True)


class PolicySetSchema(Schema):
    revision = fields.Integer(required=True, metadata={"description": "0 before the first."})
    revision_recorded_at = fields.DateTime(allow_none=True)
    as_of = fields.DateTime(allow_none=True, metadata={"description": "Present when asked."})
    known_at = fields.DateTime(
        metadata={"description": "Present when asked: the set as the registry knew it then."}
    )
    in_force_since = fields.DateTime(allow_none=True)
    next_change_at = fields.DateTime(
        allow_none=True,
        metadata={
            "description": "When a version already published takes effect and changes the set."
        },
    )
    policies = fields.List(fields.Nested(SetPolicySchema), required=True)
    nothing_in_force = fields.Nested(
        NothingInForceSchema,
        metadata={
            "description": "Present when no version had yet come into force at the time asked "
            "about (before the first, or in an empty registry), saying so plainly."
        },
    )


class RevisionChangeSchema(Schema):
    policy = fields.String(required=True)
    title = fields.String(required=True)
    version = fields.Integer(required=True)
    change = fields.String(required=True, validate=validate.OneOf(["added", "replaced", "retired"]))
    previous_version = fields.Integer(allow_none=True)
    content_hash = fields.String(required=True)
    effective_from = fields.DateTime(required=True, metadata={"description": "In force from."})
    summary = fields.String(required=True)
    review = fields.Nested(ReviewSummarySchema, allow_none=True)


class RevisionSchema(Schema):
    number = fields.Integer(required=True)
    recorded_at = fields.DateTime(required=True)
    summary = fields.String(required=True)
    changes = fields.List(fields.Nested(RevisionChangeSchema), required=True)


class DiffQuerySchema(QueryArgs):
    against = whole_number(
        metadata={"description": "The version to compare with (default: the one before)."},
    )


class ConditionChangeSchema(Schema):
    code = fields.String(required=True)
    kind = choice("ConditionKind", Kind, allow_none=True)
    parameters = fields.Dict()
    from_ = fields.Dict(attribute="from", data_key="from")
    to = fields.Dict()
    direction = choice("Direction", DIRECTIONS, required=True)


class ConditionsDiffSchema(Schema):
    added = fields.List(fields.Nested(ConditionChangeSchema), required=True)
    removed = fields.List(fields.Nested(ConditionChangeSchema), required=True)
    changed = fields.List(fields.Nested(ConditionChangeSchema), required=True)


class DiffSchema(Schema):
    policy = fields.String(required=True)
    from_ = fields.Dict(
        attribute="from",
        data_key="from",
        required=True,
        metadata={"description": "number and content_hash"},
    )
    to = fields.Dict(required=True)
    text = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "Unified diffs of summary, body, rationale."},
    )
    conditions = fields.Nested(ConditionsDiffSchema, required=True)
    sensitive_categories = fields.Dict(required=True)
    effective_from = fields.Dict(required=True)
    retirement = fields.Dict(required=True)
    direction = choice(
        "Direction",
        DIRECTIONS,
        required=True,
        metadata={"description": "Overall: tightens, loosens, mixed or unchanged."},
    )


# One answer for each of the public benefit questions, by the question's key.
PublicBenefitSchema = Schema.from_dict(
    {key: fields.String(validate=validate.Length(max=5_000)) for key in PUBLIC_BENEFIT_QUESTIONS},
    name="PublicBenefitSchema",
)


class SubmitSchema(Schema):
    panel_id = whole_number(required=True)
    closes_at = Instant(
        load_default=None, metadata={"description": "Default: the panel's review period."}
    )
    public_benefit = fields.Nested(
        PublicBenefitSchema,
        load_default=None,
        metadata={"description": "Required, every answer, for planning and research."},
    )
