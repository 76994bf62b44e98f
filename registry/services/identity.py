"""Organisations, users, logins and API tokens: the rules."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from registry.models.identity import ApiToken, Organisation, Role, User
from registry.services import audit, ledger, passwords, reviews
from registry.services.context import Actor
from registry.services.paging import Page, keyset_page
from registry.vocabulary import OrganisationKind

LOGIN_FAILED = "The email address or password was not recognised."
TOKEN_PREFIX = "rgt"  # noqa: S105 (a public prefix, not a secret)


def token_roles_allowed(owner_role: str) -> set[str]:
    """The roles a token of a user with ``owner_role`` may carry: theirs, or less."""
    if owner_role == Role.ADMIN:
        return {str(r) for r in Role}
    return {owner_role, str(Role.READER)}


def hash_secret(secret: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough to store them safely."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_secret() -> tuple[str, str, str]:
    """A fresh token: (the whole token, shown once; its lookup part; its secret's hash)."""
    lookup = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}_{lookup}_{secret}", lookup, hash_secret(secret)


# --- snapshots for the audit log (never a password or token hash) -------------------------


def organisation_snapshot(org: Organisation) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "kind": org.kind}


def user_snapshot(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "organisation_id": user.organisation_id,
        "role": user.role,
        "active": user.active,
        "has_password": user.password_hash is not None,
    }


def token_snapshot(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "role": token.role,
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        # A digest of the stored credential, so a hash swapped in the table is found.
        "credential": ledger.credential_digest(token.lookup, token.secret_hash),
    }


# --- organisations ------------------------------------------------------------------------


def create_organisation(session: Session, actor: Actor, name: str, kind: str) -> Organisation:
    """Create an organisation; its name must be new."""
    if kind not in set(OrganisationKind):
        raise InvalidInput("Unknown organisation kind.", {"kind": [f"Unknown kind {kind!r}."]})
    name = name.strip()
    if session.execute(select(Organisation.id).where(Organisation.name == name)).first():
        raise Conflict(f"An organisation named {name!r} already exists.")
    org = Organisation(name=name, kind=kind)
    session.add(org)
    session.flush()
    audit.record(
        session,
        actor,
        "organisation.created",
        "organisation",
        org.id,
        after=organisation_snapshot(org),
    )
    return org


def get_organisation(session: Session, org_id: int) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"No organisation {org_id}.")
    return org


def find_organisation(session: Session, name: str) -> Organisation | None:
    return session.execute(
        select(Organisation).where(Organisation.name == name.strip())
    ).scalar_one_or_none()


def list_organisations(
    session: Session, *, kind: str | None, limit: int, after: int | None
) -> Page[Organisation]:
    statement = select(Organisation)
    if kind:
        statement = statement.where(Organisation.kind == kind)
    return keyset_page(session, statement, Organisation.id, limit, after)


# --- users ----------------------------------------------------------------------------------


def _check_password(password: str) -> None:
    if len(password) < passwords.MIN_LENGTH:
        raise InvalidInput(
            "The password is too short.",
            {"password": [f"Use at least {passwords.MIN_LENGTH} characters."]},
        )


def create_user(
    session: Session,
    actor: Actor,
    *,
    email: str,
    display_name: str,
    organisation_id: int,
    role: str,
    password: str | None,
) -> User:
    """Create a user; the email address must be new (compared without case)."""
    email = email.strip().lower()
    if role not in set(Role):
        raise InvalidInput("Unknown role.", {"role": [f"Unknown role {role!r}."]})
    get_organisation(session, organisation_id)
    if session.execute(select(User.id).where(User.email == email)).first():
        raise Conflict("A user with that email address already exists.")
    if password is not None:
        _check_password(password)
    user = User(
        email=email,
        display_name=display_name.strip(),
        organisation_id=organisation_id,
        role=role,
        active=True,
        password_hash=passwords.hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", "user", user.id, after=user_snapshot(user))
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.execute(
        select(User).where(User.email == email.strip().lower())
    ).scalar_one_or_none()


def list_users(
    session: Session,
    *,
    organisation_id: int | None,
    role: str | None,
    active: bool | None,
    limit: int,
    after: int | None,
) -> Page[User]:
    statement = select(User)
    if organisation_id is not None:
        statement = statement.where(User.organisation_id == organisation_id)
    if role:
        statement = statement.where(User.role == role)
    if active is not None:
        statement = statement.where(User.active == active)
    return keyset_page(session, statement, User.id, limit, after)


def set_preferences(session: Session, actor: Actor, changes: dict[str, Any]) -> User:
    """The caller's own preferences; a change is on the record."""
    user = get_user(session, actor.user_id or 0)
    before = {"review_reminders": user.review_reminders}
    user.review_reminders = bool(changes["review_reminders"])
    after = {"review_reminders": user.review_reminders}
    if after != before:
        session.flush()
        audit.record(
            session, actor, "user.preferences_changed", "user", user.id, before=before, after=after
        )
    return user


def update_user(session: Session, actor: Actor, user_id: int, changes: dict[str, Any]) -> User:
    """Change a user's name, organisation, role, active flag or password.

    Deactivating a user, or changing their role or password, ends every session they
    have; deactivating revokes their tokens, and a lower role revokes the tokens that
    carry more than it allows.
    """
    user = get_user(session, user_id)
    before = user_snapshot(user)
    if actor.user_id == user.id and (
        changes.get("active") is False or ("role" in changes and changes["role"] != user.role)
    ):
        raise Forbidden("Administrators cannot deactivate themselves or change their own role.")
    if any(key in changes and changes[key] != getattr(user, key) for key in ("role", "active")):
        reviews.close_all_due(session)  # counted with those who served at their close
    if "organisation_id" in changes:
        get_organisation(session, changes["organisation_id"])
        user.organisation_id = changes["organisation_id"]
    if "display_name" in changes:
        user.display_name = changes["display_name"].strip()
    end_sessions = False
    if "role" in changes and changes["role"] != user.role:
        if changes["role"] not in set(Role):
            raise InvalidInput("Unknown role.", {"role": [f"Unknown role {changes['role']!r}."]})
        user.role = changes["role"]
        end_sessions = True
        _revoke_tokens(session, actor, user, keep_roles=token_roles_allowed(user.role))
    if "password" in changes:
        _check_password(changes["password"])
        user.password_hash = passwords.hash_password(changes["password"])
        end_sessions = True
    if "active" in changes and changes["active"] != user.active:
        user.active = changes["active"]
        end_sessions = True
        if not user.active:
            _revoke_tokens(session, actor, user, keep_roles=set())
    if end_sessions:
        user.session_epoch += 1
    session.flush()
    after = user_snapshot(user)
    if after != before or end_sessions:
        action = "user.role_changed" if before["role"] != after["role"] else "user.updated"
        audit.record(session, actor, action, "user", user.id, before=before, after=after)
    return user


def _revoke_tokens(session: Session, actor: Actor, user: User, keep_roles: set[str]) -> None:
    now = utcnow()
    tokens = session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).scalars()
    for token in list(tokens):
        if token.role not in keep_roles:
            before = token_snapshot(token)
            token.revoked_at = now
            # Each revocation is on the record: the live token must match its last event.
            audit.record(
                session,
                actor,
                "token.revoked",
                "api_token",
                token.id,
                before=before,
                after=token_snapshot(token),
            )


# --- logins ---------------------------------------------------------------------------------


def authenticate(session: Session, actor: Actor, email: str, password: str) -> User:
    """Check a login; record it either way. Says nothing about which part was wrong."""
    user = find_user(session, email)
    ok = passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        audit.record(
            session,
            actor,
            "auth.login_failed",
            "user",
            user.id if user else "unknown",
            after={"email": email.strip().lower()[:254]},
        )
        raise Unauthenticated(LOGIN_FAILED)
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    logged_in = Actor(
        kind="user",
        user_id=user.id,
        role=user.role,
        organisation_id=user.organisation_id,
        label=user.email,
        request_id=actor.request_id,
    )
    audit.record(session, logged_in, "auth.login", "user", user.id)
    return user


def record_logout(session: Session, actor: Actor) -> None:
    audit.record(session, actor, "auth.logout", "user", actor.user_id or "unknown")


# --- tokens -----------------------------------------------------------------------------------


def create_token(
    session: Session,
    actor: Actor,
    *,
    name: str,
    expires_at: datetime,
    role: str | None = None,
    user_id: int | None = None,
    max_days: int,
) -> tuple[ApiToken, str]:
    """Create a token for ``actor`` (or, for an administrator, another user).

    Returns the token row and the secret, which is shown once and stored only hashed.
    """
    owner_id = user_id if user_id is not None else actor.user_id
    if owner_id is None:
        raise Unauthenticated()
    if owner_id != actor.user_id and actor.role != Role.ADMIN:
        raise Forbidden("Only administrators create tokens for other users.")
    if actor.kind == "token" and actor.role != Role.ADMIN:
        raise Forbidden("Create tokens with a login session, not with another token.")
    owner = get_user(session, owner_id)
    if not owner.active:
        raise Conflict("The user is deactivated.")
    role = role or owner.role
    if role not in token_roles_allowed(owner.role):
        raise InvalidInput(
            "The token's role is higher than its owner's.",
            {
                "role": [
                    f"A token of a {owner.role} may carry: "
                    + ", ".join(sorted(token_roles_allowed(owner.role)))
                ]
            },
        )
    now = utcnow()
    if expires_at <= now:
        raise InvalidInput("The expiry is in the past.", {"expires_at": ["Must be in the future."]})
    if expires_at > now + timedelta(days=max_days):
        raise InvalidInput(
            "The expiry is too far away.", {"expires_at": [f"At most {max_days} days ahead."]}
        )
    whole, lookup, secret_hash = new_token_secret()
    token = ApiToken(
        user_id=owner.id,
        name=name.strip(),
        role=role,
        lookup=lookup,
        secret_hash=secret_hash,
        expires_at=expires_at,
        created_by_id=actor.user_id if actor.user_id is not None else owner.id,
    )
    session.add(token)
    session.flush()
    audit.record(
        session, actor, "token.created", "api_token", token.id, after=token_snapshot(token)
    )
    return token, whole


def _visible_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    # Another user's token is "not found", not "forbidden": ids reveal nothing.
    if token is None or (token.user_id != actor.user_id and actor.role != Role.ADMIN):
        raise NotFound(f"No token {token_id}.")
    return token


def get_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    return _visible_token(session, actor, token_id)


def list_tokens(
    session: Session, actor: Actor, *, user_id: int | None, limit: int, after: int | None
) -> Page[ApiToken]:
    """The caller's tokens; an administrator may list anyone's (or everyone's)."""
    statement = select(ApiToken)
    if actor.role != Role.ADMIN:
        if user_id is not None and user_id != actor.user_id:
            raise Forbidden("You can list only your own tokens.")
        statement = statement.where(ApiToken.user_id == actor.user_id)
    elif user_id is not None:
        statement = statement.where(ApiToken.user_id == user_id)
    return keyset_page(session, statement, ApiToken.id, limit, after)


def revoke_token(session: Session, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token; it stops working on the very next request. Revoking twice is fine."""
    token = _visible_token(session, actor, token_id)
    if token.revoked_at is None:
        before = token_snapshot(token)
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(revoked_at=utcnow()))
        session.refresh(token)
        audit.record(
            session,
            actor,
            "token.revoked",
            "api_token",
            token.id,
            before=before,
            after=token_snapshot(token),
        )
    return token
