"""Shapes of organisations, users, logins and tokens."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.models.identity import Role
from registry.schemas.common import MAX_SEQ, PageArgs, choice, whole_number
from registry.vocabulary import USER_ORGANISATION_KINDS, OrganisationKind

ROLES = [str(r) for r in Role]
KINDS = [str(k) for k in USER_ORGANISATION_KINDS]

_name = validate.Length(min=1, max=200)


class OrganisationSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=_name)
    kind = choice(
        "OrganisationKind",
        OrganisationKind,
        required=True,
        metadata={"description": ", ".join(KINDS) + " (registry: the registry's own accounts)."},
    )
    created_at = fields.DateTime(dump_only=True)


class OrganisationCreateSchema(Schema):
    name = fields.String(required=True, validate=_name)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))


class OrganisationQuerySchema(PageArgs):
    kind = choice("OrganisationKind", OrganisationKind)


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(required=True)
    display_name = fields.String(required=True)
    organisation = fields.Nested(OrganisationSchema, dump_only=True)
    role = choice("Role", ROLES, required=True)
    active = fields.Boolean()
    review_reminders = fields.Boolean(
        dump_only=True,
        metadata={"description": "Mail a day before a review closes, if not voted yet."},
    )
    created_at = fields.DateTime(dump_only=True)


class UserCreateSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    display_name = fields.String(required=True, validate=_name)
    organisation_id = whole_number(required=True)
    role = choice("Role", ROLES, required=True)
    password = fields.String(
        load_default=None,
        allow_none=True,
        load_only=True,
        validate=validate.Length(max=1024),
        metadata={"description": "At least 12 characters; omit for a token-only account."},
    )


class UserUpdateSchema(Schema):
    display_name = fields.String(validate=_name)
    organisation_id = whole_number()
    role = choice("Role", ROLES)
    active = fields.Boolean(
        metadata={"description": "false ends the user's sessions and revokes their tokens."}
    )
    password = fields.String(load_only=True, validate=validate.Length(min=1, max=1024))


class UserQuerySchema(PageArgs):
    organisation_id = whole_number()
    role = choice("Role", ROLES)
    active = fields.Boolean()


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))


class MePreferencesSchema(Schema):
    review_reminders = fields.Boolean(
        required=True,
        truthy={True},
        falsy={False},
        metadata={
            "description": "Panel members: false stops the reminder mailed a day "
            "before a review closes (the mails when one opens and closes still come)."
        },
    )


class MeSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    authenticated_by = fields.String(
        required=True, metadata={"description": "`session` or `token`."}
    )
    role = choice(
        "Role",
        ROLES,
        required=True,
        metadata={"description": "The effective role (a token's may be lower)."},
    )
    csrf_token = fields.String(
        metadata={"description": "Send as X-CSRF-Token on writes made with the session cookie."}
    )


class TokenSchema(Schema):
    id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    role = choice("Role", ROLES, dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    expires_at = fields.DateTime(dump_only=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)
    last_used_at = fields.DateTime(
        dump_only=True, allow_none=True, metadata={"description": "To the minute."}
    )


class TokenCreatedSchema(TokenSchema):
    token = fields.String(
        dump_only=True,
        metadata={"description": "The bearer token. Shown this once; store it safely."},
    )


class TokenCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    expires_in_days = whole_number(
        load_default=None,
        maximum=MAX_SEQ,
        metadata={"description": "Default 90, at most 366."},
    )
    role = choice(
        "Role",
        ROLES,
        load_default=None,
        allow_none=True,
        metadata={"description": "Defaults to the owner's role; may not exceed it."},
    )
    user_id = whole_number(
        load_default=None,
        metadata={"description": "Administrators only: create the token for this user."},
    )


class TokenQuerySchema(PageArgs):
    user_id = whole_number()
