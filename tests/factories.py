"""Plain functions that put things in the database through the services, and clients."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Flask
from flask.testing import FlaskClient

from registry.db import current_session, db, utcnow, writing
from registry.models.identity import Organisation, User
from registry.services import identity
from registry.services.context import Actor

F = TypeVar("F", bound=Callable[..., Any])
PASSWORD = "correct horse battery staple"
SYSTEM = Actor.system(label="tests")
_counter = itertools.count(1)


def writes(func: F) -> F:
    """Run a factory as a fresh write transaction, as a request or a command would."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        db.session.rollback()
        with writing():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@writes
def organisation(name: str | None = None, kind: str = "nhs_trust") -> Organisation:
    org = identity.create_organisation(
        current_session(), SYSTEM, name or f"Organisation {next(_counter)}", kind
    )
    db.session.commit()
    return org


@writes
def user(
    role: str = "reader",
    *,
    email: str | None = None,
    org: Organisation | None = None,
    password: str | None = PASSWORD,
) -> User:
    org = org or organisation()
    created = identity.create_user(
        current_session(),
        SYSTEM,
        email=email or f"{role}{next(_counter)}@example.org",
        display_name=f"A {role}",
        organisation_id=org.id,
        role=role,
        password=password,
    )
    db.session.commit()
    return created


@writes
def token(owner: User, role: str | None = None, days: int = 30, name: str = "test") -> str:
    admin = Actor(kind="system", user_id=owner.id, role="admin", label="tests")
    _row, secret = identity.create_token(
        current_session(),
        admin,
        name=name,
        expires_at=utcnow() + timedelta(days=days),
        role=role,
        user_id=owner.id,
        max_days=366,
    )
    db.session.commit()
    return secret


def bearer(app: Flask, secret: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client


def as_role(app: Flask, role: str, **kwargs: Any) -> tuple[FlaskClient, User]:
    """A client authenticated by a bearer token of a new user with ``role``."""
    member = user(role, **kwargs)
    return bearer(app, token(member)), member


def logged_in(app: Flask, account: User, password: str = PASSWORD) -> tuple[FlaskClient, str]:
    """A client with a session cookie for ``account``, and its CSRF token."""
    client = app.test_client()
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": password}
    )
    assert response.status_code == 200, response.get_json()
    return client, response.get_json()["csrf_token"]
