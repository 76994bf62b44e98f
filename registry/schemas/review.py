"""Shapes of panels, members, reviews and votes."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.models.review import Choice, Outcome
from registry.schemas.common import Day, PageArgs, QueryArgs, choice, whole_number
from registry.schemas.policy import DiffSchema, PublicBenefitSchema, TallySchema, VersionSchema

# More than 0: a quorum of 0 decides with no one voting, a threshold of 0 endorses with
# no one endorsing. The service also refuses what rounds to 0 at four places.
_fraction = validate.Range(min=0, max=1, min_inclusive=False)


class PanelSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5_000))
    quorum = fields.Float(
        required=True,
        validate=_fraction,
        metadata={
            "description": "Fraction of eligible members who must vote (abstentions "
            "count): more than 0, at most 1, to four decimal places."
        },
    )
    threshold = fields.Float(
        required=True,
        validate=_fraction,
        metadata={
            "description": "Fraction of counted, non-abstaining votes that must endorse: "
            "more than 0, at most 1, to four decimal places. A review is never endorsed "
            "without at least one counted endorsement."
        },
    )
    default_review_days = whole_number(load_default=14, maximum=365)
    chair_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "The member named chair. They act as chair (and are marked so in "
            "the member list) only while they serve: in their term, active, with the "
            "panel_member role."
        },
    )
    created_at = fields.DateTime(dump_only=True)


class MemberSchema(Schema):
    user_id = fields.Integer(required=True)
    display_name = fields.String(required=True)
    term_start = Day(required=True)
    term_end = Day(allow_none=True)
    current = fields.Boolean(
        required=True,
        metadata={"description": "Serving today: in this term, active, a panel_member."},
    )
    chair = fields.Boolean(required=True, metadata={"description": "The acting chair."})


class MemberAddSchema(Schema):
    user_id = whole_number(required=True)
    term_start = Day(load_default=None, metadata={"description": "Default: today."})
    term_end = Day(load_default=None, allow_none=True)
    chair = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Make this member the panel's chair, who may record its "
            "recommendation (the previous chair, if any, stops being chair). The term "
            "must be current (422 otherwise)."
        },
    )


class MemberRemoveQuerySchema(QueryArgs):
    user_id = whole_number(required=True)


class ReviewQuerySchema(PageArgs):
    status = choice("ReviewStatus", ["open", "closed"])
    panel = whole_number()


class VoterSchema(Schema):
    id = fields.Integer(required=True)
    display_name = fields.String(required=True)


class PanelRefSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class VoteSchema(Schema):
    choice = choice("VoteChoice", Choice, required=True)
    comment = fields.String(
        load_default="",
        validate=validate.Length(max=5_000),
        metadata={"description": "Required unless you endorse."},
    )
    content_hash = fields.String(
        dump_only=True, metadata={"description": "The exact version voted on."}
    )
    counted = fields.Boolean(dump_only=True)
    voter = fields.Nested(
        VoterSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "Only for the panel's members, editors and auditors."},
    )
    cast_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class ConflictInSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2_000))


class ConflictSchema(Schema):
    user_id = fields.Integer(dump_only=True)
    reason = fields.String(dump_only=True)
    declared_at = fields.DateTime(dump_only=True)


class CloseSchema(Schema):
    recommendation = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=10_000)
    )


class RecommendationSchema(Schema):
    recommendation = fields.String(required=True, validate=validate.Length(min=1, max=10_000))


class ReviewSchema(Schema):
    id = fields.Integer(required=True)
    status = choice("ReviewStatus", ["open", "closed"], required=True)
    outcome = choice("ReviewOutcome", Outcome, allow_none=True)
    panel = fields.Nested(PanelRefSchema, required=True)
    policy = fields.String(required=True)
    version_number = fields.Integer(required=True)
    content_hash = fields.String(required=True)
    opened_at = fields.DateTime(required=True)
    closes_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(allow_none=True)
    tally = fields.Nested(
        TallySchema, required=True, metadata={"description": "Counts only until close."}
    )
    recommendation = fields.String(required=True)
    public_benefit = fields.Nested(PublicBenefitSchema, allow_none=True)


class ReviewDetailSchema(ReviewSchema):
    proposed = fields.Nested(VersionSchema, required=True)
    in_force = fields.Integer(
        allow_none=True, metadata={"description": "The version in force it would replace."}
    )
    diff = fields.Nested(DiffSchema, allow_none=True)
    votes = fields.List(fields.Nested(VoteSchema), metadata={"description": "After close."})
    conflicts = fields.List(fields.Nested(ConflictSchema), metadata={"description": "After close."})
    my_vote = fields.Nested(VoteSchema, allow_none=True)
    my_conflict = fields.Nested(ConflictSchema, allow_none=True)
