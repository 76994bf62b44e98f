"""Shapes of audit events, checkpoints, proofs and verification reports."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.schemas.common import MAX_SEQ, Instant, PageArgs, QueryArgs, choice, whole_number

# Who acts (registry.services.context.Actor.kind).
ACTOR_TYPES = ("user", "token", "system", "anonymous")


class AuditQuerySchema(PageArgs):
    entity_type = fields.String(validate=validate.Length(max=64))
    entity_id = fields.String(validate=validate.Length(max=64))
    actor_type = choice("ActorType", ACTOR_TYPES)
    actor_id = fields.String(validate=validate.Length(max=64))
    action = fields.String(validate=validate.Length(max=64))
    since = Instant()
    until = Instant()


class ExportQuerySchema(QueryArgs):
    format = fields.String(load_default="jsonl", validate=validate.OneOf(["jsonl", "csv"]))


class EventActorSchema(Schema):
    type = choice("ActorType", ACTOR_TYPES, required=True)
    id = fields.String(required=True, allow_none=True)
    label = fields.String(required=True, allow_none=True)


class EventEntitySchema(Schema):
    type = fields.String(required=True, metadata={"description": "policy, version, review..."})
    id = fields.String(required=True)


class AuditEventSchema(Schema):
    """An event exactly as it is hashed, with its hash."""

    seq = fields.Integer(required=True)
    time = fields.String(required=True, metadata={"format": "date-time"})
    actor = fields.Nested(EventActorSchema, required=True)
    action = fields.String(required=True)
    entity = fields.Nested(EventEntitySchema, required=True)
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)
    request_id = fields.String(allow_none=True)
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)


class CheckpointSchema(Schema):
    origin = fields.String(required=True)
    size = fields.Integer(required=True)
    root_hash = fields.String(required=True)
    issued_at = fields.String(required=True, metadata={"format": "date-time"})
    key_id = fields.String(required=True)
    signature = fields.String(required=True, metadata={"description": "Ed25519, base64."})
    algorithm = fields.String(required=True)
    public_key = fields.String(
        required=True, metadata={"description": "Raw Ed25519 public key, base64."}
    )
    signed_message = fields.String(
        required=True,
        metadata={
            "description": "The RFC 8785 JSON the signature covers: origin, size, root_hash, "
            "issued_at, key_id."
        },
    )
    note = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The same checkpoint as a C2SP signed note (c2sp.org/tlog-checkpoint: "
            "origin, size, base64 root, a blank line, the Ed25519 signature line): what "
            "GET /audit-events/checkpoint answers as text/plain. null for a checkpoint issued "
            "before notes were signed."
        },
    )
    cosignatures = fields.List(
        fields.String(),
        metadata={"description": "With ?witnessed=1: the witnesses' cosignature lines."},
    )
    verifier_key = fields.String(
        required=True,
        metadata={
            "description": "The log's key as a C2SP verifier key (name+hex key ID+base64 key), "
            "to check the note with."
        },
    )


class VerifyCheckSchema(Schema):
    name = fields.String(required=True, metadata={"description": "chain, checkpoints or state."})
    ok = fields.Boolean(
        required=True, allow_none=True, metadata={"description": "null: not checked."}
    )
    proves = fields.String(required=True)
    does_not_prove = fields.String(required=True)
    detail = fields.String(allow_none=True)


class MismatchSchema(Schema):
    entity_type = fields.String(required=True)
    entity_id = fields.String(required=True)
    field = fields.String(required=True)
    seq = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "The event the row disagrees with; null: it has none."},
    )


class CheckedCheckpointSchema(Schema):
    size = fields.Integer(required=True)
    root_hash = fields.String(required=True)
    issued_at = fields.String(required=True, metadata={"format": "date-time"})


class VerifyReportSchema(Schema):
    ok = fields.Boolean(required=True)
    events = fields.Integer(required=True)
    head = fields.String(required=True)
    root_hash = fields.String(required=True)
    checkpoints_checked = fields.Integer(required=True)
    latest_checkpoint = fields.Nested(
        CheckedCheckpointSchema,
        allow_none=True,
        metadata={"description": "The latest checkpoint the events were checked against."},
    )
    awaiting_checkpoint = fields.Integer(
        required=True,
        metadata={
            "description": "Events after the latest checkpoint that are still within the "
            "interval in which their checkpoint is due (CHECKPOINT_INTERVAL_S): recorded and "
            "chained, not yet signed."
        },
    )
    first_bad_seq = fields.Integer(allow_none=True)
    reason = fields.String()
    checks = fields.List(fields.Nested(VerifyCheckSchema), required=True)
    mismatch = fields.Nested(
        MismatchSchema,
        metadata={"description": "The first live row that disagrees with the log."},
    )
    checked_at = fields.String(required=True, metadata={"format": "date-time"})
    witnessed_size = fields.Integer(
        allow_none=True,
        metadata={
            "description": "The size of the latest checkpoint enough witnesses cosigned "
            "(null: none yet, or no witness configured)."
        },
    )


class CheckpointQuerySchema(QueryArgs):
    witnessed = fields.Boolean(
        load_default=False,
        metadata={
            "description": "The latest checkpoint that enough witnesses cosigned "
            "(REGISTRY_WITNESS_QUORUM of REGISTRY_WITNESSES), with their cosignatures."
        },
    )


class InclusionQuerySchema(QueryArgs):
    size = whole_number(
        maximum=MAX_SEQ,
        metadata={"description": "Tree size (default: the latest checkpoint's)."},
    )


class InclusionSchema(Schema):
    seq = fields.Integer(required=True)
    leaf_index = fields.Integer(required=True)
    size = fields.Integer(required=True)
    event_hash = fields.String(required=True)
    leaf_hash = fields.String(required=True)
    root_hash = fields.String(required=True)
    proof = fields.List(fields.String(), required=True)
    checkpoint = fields.Nested(CheckpointSchema, allow_none=True)


class ConsistencyQuerySchema(QueryArgs):
    from_ = whole_number(maximum=MAX_SEQ, required=True, data_key="from")
    to = whole_number(
        maximum=MAX_SEQ,
        metadata={"description": "Default: the latest checkpoint's size."},
    )


class ConsistencySchema(Schema):
    from_ = fields.Integer(required=True, attribute="from", data_key="from")
    to = fields.Integer(required=True)
    from_root = fields.String(required=True)
    to_root = fields.String(required=True)
    proof = fields.List(fields.String(), required=True)
    from_checkpoint = fields.Nested(CheckpointSchema, allow_none=True)
    to_checkpoint = fields.Nested(CheckpointSchema, allow_none=True)
