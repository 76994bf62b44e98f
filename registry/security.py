"""Who may do what: roles, permissions, and the one decorator every route declares.

Identity comes from a session cookie (people, via Flask-Login) or a bearer token
(machines), never both; the query string never carries a token. ``requires`` both
enforces a permission and documents it (security, 401, 403) in the OpenAPI spec, and a
test fails for any route that does not declare one.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user, login_user
from sqlalchemy import bindparam, select, update

from registry import work
from registry.db import current_session, db, utcnow
from registry.errors import DomainError, Forbidden, Unauthenticated
from registry.extensions import login_manager
from registry.models.identity import ApiToken, Role, User
from registry.ratelimit import hit
from registry.services import identity
from registry.services.context import Actor
from registry.services.identity import TOKEN_PREFIX, hash_secret

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("registry.security")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_QUERY_TOKEN_NAMES = ("access_token", "token", "api_key", "apikey", "bearer")


class Permission(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    POLICY_EDIT = "policy:edit"
    POLICY_READ_DRAFTS = "policy:read-drafts"
    REVIEW_VOTE = "review:vote"
    REVIEW_MANAGE = "review:manage"
    PANEL_MANAGE = "panel:manage"
    DECISION_CREATE = "decision:create"
    DECISION_READ_ALL = "decision:read-all"
    AUDIT_READ = "audit:read"
    IDENTITY_MANAGE = "identity:manage"
    WEBHOOK_MANAGE = "webhook:manage"


_EVERYONE = {Permission.PUBLIC, Permission.AUTHENTICATED}
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        _EVERYONE
        | {
            Permission.POLICY_READ_DRAFTS,
            Permission.REVIEW_MANAGE,
            Permission.PANEL_MANAGE,
            Permission.DECISION_CREATE,
            Permission.DECISION_READ_ALL,
            Permission.AUDIT_READ,
            Permission.IDENTITY_MANAGE,
            Permission.WEBHOOK_MANAGE,
        }
    ),
    Role.EDITOR: frozenset(
        _EVERYONE
        | {
            Permission.POLICY_EDIT,
            Permission.POLICY_READ_DRAFTS,
            Permission.REVIEW_MANAGE,
            Permission.DECISION_CREATE,
            Permission.WEBHOOK_MANAGE,
        }
    ),
    Role.PANEL_MEMBER: frozenset(_EVERYONE | {Permission.REVIEW_VOTE}),
    Role.AUDITOR: frozenset(_EVERYONE | {Permission.AUDIT_READ, Permission.DECISION_READ_ALL}),
    Role.READER: frozenset(_EVERYONE | {Permission.DECISION_CREATE}),
}


def has_permission(actor: Actor, permission: Permission) -> bool:
    if permission is Permission.PUBLIC:
        return True
    if not actor.is_authenticated or actor.role is None:
        return False
    return permission in ROLE_PERMISSIONS.get(actor.role, frozenset())


# --- the decorator -------------------------------------------------------------------

PERMISSION_ATTR = "__registry_permission__"
_AUTHENTICATED_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": []}]
# A public operation declares no security requirement: ``[]``, not ``[{}, ...]``, which
# says the same in OpenAPI but which generated clients read as "credentials required".
# Credentials sent to it are still checked, and widen what it shows where it says so.
_PUBLIC_SECURITY: list[dict[str, list[str]]] = []


def requires(permission: Permission) -> Callable[[F], F]:
    """Declare, enforce and document the permission a view needs.

    Public views still accept credentials (an editor sees drafts where the public does
    not); every other view answers 401 without credentials and 403 without the role.
    Authorisation only: the transaction is ``registry.work``'s.
    """

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor = current_actor()
            if not has_permission(actor, permission):
                if not actor.is_authenticated:
                    raise Unauthenticated()
                raise Forbidden(f"Your role ({actor.role}) does not allow this ({permission}).")
            return func(*args, **kwargs)

        apidoc = dict(getattr(wrapper, "_apidoc", {}))
        manual = dict(apidoc.get("manual_doc", {}))
        if permission is Permission.PUBLIC:
            manual["security"] = _PUBLIC_SECURITY
        else:
            manual["security"] = _AUTHENTICATED_SECURITY
            responses = dict(manual.get("responses", {}))
            responses["401"] = {"$ref": "#/components/responses/Unauthenticated"}
            responses["403"] = {"$ref": "#/components/responses/Forbidden"}
            manual["responses"] = responses
            manual.setdefault("x-permission", str(permission))
        apidoc["manual_doc"] = manual
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        setattr(wrapper, PERMISSION_ATTR, permission)
        return cast(F, wrapper)

    return decorate


def declared_permission(view: Any) -> Permission | None:
    return getattr(view, PERMISSION_ATTR, None)


# --- identity --------------------------------------------------------------------------


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:
        actor = Actor.anonymous(g.get("request_id"))
    return cast(Actor, actor)


def actor_for_user(user: User) -> Actor:
    return Actor(
        kind="user",
        user_id=user.id,
        role=user.role,
        organisation_id=user.organisation_id,
        label=user.email,
        request_id=g.get("request_id"),
    )


# Who a bearer token is, in one statement on the request's connection: the token and its
# owner's columns the request needs, and no ORM objects (the ORM's loading of a token and
# its user cost several times the SQL). Read at every request: a revocation, an expiry
# or a deactivated owner takes effect on the very next one.
_TOKEN_LOOKUP = (
    select(
        ApiToken.id,
        ApiToken.name,
        ApiToken.role,
        ApiToken.secret_hash,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiToken.last_used_at,
        User.id.label("user_id"),
        User.email,
        User.active,
        User.organisation_id,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.lookup == bindparam("lookup"))
)


def _token_actor(raw: str, request_id: str | None) -> Actor:
    invalid = Unauthenticated("The bearer token is invalid, expired or revoked.")
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        raise invalid
    token = current_session().connection().execute(_TOKEN_LOOKUP, {"lookup": parts[1]}).first()
    # Compare even when no row matched, so timing does not tell a lookup that exists.
    stored = token.secret_hash if token is not None else "0" * 64
    matches = hmac.compare_digest(stored, hash_secret(parts[2]))
    now = utcnow()
    if (
        token is None
        or not matches
        or token.revoked_at is not None
        or token.expires_at <= now
        or not token.active
    ):
        raise invalid
    _touch(token.id, token.last_used_at, now)
    return Actor(
        kind="token",
        user_id=token.user_id,
        token_id=token.id,
        role=token.role,
        organisation_id=token.organisation_id,
        label=f"{token.email} (token {token.name})",
        request_id=request_id,
    )


def _touch(token_id: int, last_used_at: Any, now: Any) -> None:
    """Record the token's use, at most once per resolution interval, in its own write."""
    resolution = timedelta(seconds=current_app.config["TOKEN_LAST_USED_RESOLUTION_S"])
    if last_used_at is not None and now - last_used_at < resolution:
        return
    statement = update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
    # Bookkeeping, aside from the request's transaction, which stays a reader until the
    # view writes; when the database is busy the next request records it.
    work.aside(statement, "token last-use")


class MixedCredentials(DomainError):
    status, type = 400, "mixed-credentials"


class CredentialsInQuery(DomainError):
    status, type = 400, "credentials-in-query"


class CsrfFailed(DomainError):
    status, type = 403, "csrf-failed"


def load_identity() -> None:
    """Establish ``g.actor`` for this request from a bearer token or the session."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    context = g._get_current_object()
    context.actor = anonymous = Actor.anonymous(context.get("request_id"))
    if environ.get("QUERY_STRING") and any(name in req.args for name in _QUERY_TOKEN_NAMES):
        raise CredentialsInQuery(
            "Send tokens in the Authorization header, never in the URL: URLs are logged."
        )
    authorization = environ.get("HTTP_AUTHORIZATION")
    has_cookie = "HTTP_COOKIE" in environ and (
        current_app.config["SESSION_COOKIE_NAME"] in req.cookies
    )
    if authorization is not None:
        if has_cookie:
            raise MixedCredentials("Send either a session cookie or a bearer token, not both.")
        scheme, _, raw = authorization.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("Use 'Authorization: Bearer <token>'.")
        context.actor = actor = _token_actor(raw.strip(), anonymous.request_id)
        context.actor_label = f"token:{actor.token_id}"
        return
    if has_cookie and current_user.is_authenticated:
        context.actor = actor_for_user(cast(User, current_user))
        context.actor_label = f"user:{current_user.id}"
        if req.method in UNSAFE_METHODS:
            _check_csrf()


def start_session(email: str, password: str) -> User:
    """Log a person in, for the API and the pages alike: rate limits per client address
    and per account, the password check (a failed attempt stays on the record, and raises
    Unauthenticated), then a new session. A request that already carries a bearer token
    is refused: it would get no cookie, so the login could only mislead."""
    if current_actor().kind == "token":
        raise MixedCredentials("A request with a bearer token cannot start a session.")
    hit("RATELIMIT_LOGIN_PER_ADDRESS", request.remote_addr or "unknown")
    hit("RATELIMIT_LOGIN_PER_ACCOUNT", email.strip().lower())
    try:
        user = identity.authenticate(current_session(), current_actor(), email, password)
    except Unauthenticated:
        work.keep()  # the failed attempt stays on the record
        raise
    session.clear()
    session.permanent = True
    login_user(user)
    g.actor = actor_for_user(user)
    return user


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return cast(str, token)


def _check_csrf() -> None:
    expected = session.get("csrf")
    supplied = request.headers.get(CSRF_HEADER)
    if supplied is None and request.mimetype in _FORM_TYPES:
        supplied = request.form.get("csrf_token")
    if not expected or not supplied or not hmac.compare_digest(str(expected), str(supplied)):
        raise CsrfFailed(
            f"Writes with a session cookie need the {CSRF_HEADER} header "
            "(its value comes from GET /api/v1/auth/me or the login response)."
        )


@login_manager.user_loader
def _load_session_user(identifier: str) -> User | None:
    user_id, _, epoch = identifier.partition(":")
    try:
        user = db.session.get(User, int(user_id))
    except ValueError:
        return None
    if user is None or not user.active or str(user.session_epoch) != epoch:
        return None
    return user


@login_manager.unauthorized_handler
def _unauthorised() -> Any:
    raise Unauthenticated()


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signer for requests that carry
    no session cookie at all (machines with tokens, anonymous readers: most requests).

    A request that carries ``Authorization`` never gets a cookie back, whatever the route
    did with the session: a token is the whole of a machine's identity, and a cookie
    handed to it would be a second credential nobody asked for."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if not session and not session.modified:
            return  # nothing to set, nothing to delete (Flask would work that out slower)
        if "Authorization" in request.headers:
            return
        super().save_session(app, session, response)


def init_security(app: Flask) -> None:
    app.session_interface = CookieSessions()
    login_manager.init_app(app)
    login_manager.session_protection = None
