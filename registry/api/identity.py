"""Logins, tokens, organisations and users."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, session
from flask.views import MethodView
from flask_login import logout_user

from registry.api.base import Blueprint, page_after, paged, problems
from registry.db import current_session, utcnow
from registry.errors import InvalidInput
from registry.models.identity import User
from registry.schemas.identity import (
    LoginSchema,
    MePreferencesSchema,
    MeSchema,
    OrganisationCreateSchema,
    OrganisationQuerySchema,
    OrganisationSchema,
    TokenCreatedSchema,
    TokenCreateSchema,
    TokenQuerySchema,
    TokenSchema,
    UserCreateSchema,
    UserQuerySchema,
    UserSchema,
    UserUpdateSchema,
)
from registry.security import (
    Permission,
    csrf_token,
    current_actor,
    requires,
    start_session,
)
from registry.services import identity

blp = Blueprint(
    "identity",
    __name__,
    description="Logins for people, bearer tokens for machines, organisations and users.",
)


def _me(user: User) -> dict[str, Any]:
    actor = current_actor()
    me: dict[str, Any] = {
        "user": user,
        "authenticated_by": "token" if actor.kind == "token" else "session",
        "role": actor.role or user.role,
    }
    if actor.kind != "token":
        me["csrf_token"] = csrf_token()
    return me


@blp.route("/auth/login")
class Login(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(LoginSchema())
    @blp.response(200, MeSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(401, response="Unauthenticated")
    @blp.alt_response(429, response="RateLimited")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Log in with email and password; the session cookie comes back with a CSRF token"""
        return _me(start_session(body["email"], body["password"]))


@blp.route("/auth/logout")
class Logout(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(204)
    def post(self) -> None:
        """End the session"""
        identity.record_logout(current_session(), current_actor())
        logout_user()
        session.clear()


@blp.route("/auth/me")
class Me(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(200, MeSchema)
    def get(self) -> dict[str, Any]:
        """Describe the caller: user, effective role, and the CSRF token for session writes"""
        user = identity.get_user(current_session(), current_actor().user_id or 0)
        return _me(user)

    @requires(Permission.AUTHENTICATED)
    @blp.arguments(MePreferencesSchema())
    @blp.response(200, MeSchema)
    def patch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Change your own preferences (review reminders)"""
        user = identity.set_preferences(current_session(), current_actor(), body)
        return _me(user)


@blp.route("/tokens")
class Tokens(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.arguments(TokenQuerySchema(), location="query")
    @blp.response(200, TokenSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List your API tokens (administrators: anyone's), without their secrets"""
        return paged(
            identity.list_tokens(
                current_session(),
                current_actor(),
                user_id=args.get("user_id"),
                limit=args["limit"],
                after=page_after(args),
            )
        )

    @requires(Permission.AUTHENTICATED)
    @blp.arguments(TokenCreateSchema())
    @blp.response(201, TokenCreatedSchema)
    @problems(404, 409)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an API token; the response shows it once"""
        config = current_app.config
        days = body.get("expires_in_days") or config["TOKEN_DEFAULT_EXPIRY_DAYS"]
        longest = config["TOKEN_MAX_EXPIRY_DAYS"]
        if days > longest:  # refused before the date arithmetic, which a huge number overflows
            raise InvalidInput(
                "The expiry is too far away.", {"expires_in_days": [f"At most {longest} days."]}
            )
        token, secret = identity.create_token(
            current_session(),
            current_actor(),
            name=body["name"],
            expires_at=utcnow() + timedelta(days=days),
            role=body.get("role"),
            user_id=body.get("user_id"),
            max_days=config["TOKEN_MAX_EXPIRY_DAYS"],
        )
        created = {name: getattr(token, name) for name in TokenSchema().fields}
        created["token"] = secret
        return created


@blp.route("/tokens/<id:token_id>")
class TokenItem(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(200, TokenSchema)
    def get(self, token_id: int) -> Any:
        """Show one of your tokens, without its secret"""
        return identity.get_token(current_session(), current_actor(), token_id)

    @requires(Permission.AUTHENTICATED)
    @blp.response(204)
    def delete(self, token_id: int) -> None:
        """Revoke a token; it stops working on the very next request"""
        identity.revoke_token(current_session(), current_actor(), token_id)


@blp.route("/organisations")
class Organisations(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.arguments(OrganisationQuerySchema(), location="query")
    @blp.response(200, OrganisationSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List organisations"""
        return paged(
            identity.list_organisations(
                current_session(),
                kind=args.get("kind"),
                limit=args["limit"],
                after=page_after(args),
            )
        )

    @requires(Permission.IDENTITY_MANAGE)
    @blp.arguments(OrganisationCreateSchema())
    @blp.response(201, OrganisationSchema)
    @problems(409)
    def post(self, body: dict[str, Any]) -> Any:
        """Register an organisation"""
        return identity.create_organisation(
            current_session(), current_actor(), body["name"], body["kind"]
        )


@blp.route("/users")
class Users(MethodView):
    @requires(Permission.IDENTITY_MANAGE)
    @blp.arguments(UserQuerySchema(), location="query")
    @blp.response(200, UserSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List users"""
        return paged(
            identity.list_users(
                current_session(),
                organisation_id=args.get("organisation_id"),
                role=args.get("role"),
                active=args.get("active"),
                limit=args["limit"],
                after=page_after(args),
            )
        )

    @requires(Permission.IDENTITY_MANAGE)
    @blp.arguments(UserCreateSchema())
    @blp.response(201, UserSchema)
    @problems(404, 409)
    def post(self, body: dict[str, Any]) -> Any:
        """Create a user"""
        return identity.create_user(current_session(), current_actor(), **body)


@blp.route("/users/<id:user_id>")
class UserItem(MethodView):
    @requires(Permission.IDENTITY_MANAGE)
    @blp.response(200, UserSchema)
    def get(self, user_id: int) -> Any:
        """Show a user"""
        return identity.get_user(current_session(), user_id)

    @requires(Permission.IDENTITY_MANAGE)
    @blp.arguments(UserUpdateSchema())
    @blp.response(200, UserSchema)
    def patch(self, body: dict[str, Any], user_id: int) -> Any:
        """Change a user's name, organisation, role, password or whether they are active"""
        return identity.update_user(current_session(), current_actor(), user_id, body)
