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
from registry.services import identity, memberships, panels
from registry.services.context import Actor
from tests.support import watch

F = TypeVar("F", bound=Callable[..., Any])
PASSWORD = watch.secret("correct horse battery staple")
SYSTEM = Actor.system(label="tests")
_counter = itertools.count(1)
_depth = 0


def writes(func: F) -> F:
    """Run a factory as a fresh write transaction, as a request or a command would."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _depth
        if _depth == 0:
            db.session.commit()  # end any read transaction; unlike rollback, expires nothing
        _depth += 1
        try:
            with writing():
                return func(*args, **kwargs)
        finally:
            _depth -= 1

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
    return watch.secret(secret)


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


# --- policies and reviews -------------------------------------------------------------------

EDITOR = Actor(kind="system", role="editor", label="tests")


def policy_body(slug: str = "research-data", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "slug": slug,
        "title": f"Policy {slug}",
        "purpose": "research",
        "data_category": "depersonalised",
        "body": "# A policy\n\nSome rules.\n",
        "summary": "What it says, in plain English.",
        "rationale": "Why.",
        "conditions": [
            {"code": "time_limited", "parameters": {"max_months": 24}},
            {"code": "ethics_approval", "parameters": {}},
        ],
        "sensitive_categories": [],
    }
    body.update(overrides)
    return body


ASSESSMENT = {
    "benefits": "Better care.",
    "beneficiaries": "Londoners.",
    "harms_and_mitigations": "Few, mitigated.",
    "commercial_involvement": "None.",
    "benefits_to_nhs_and_public": "Directly.",
    "public_communication": "Published.",
}


@writes
def catalogue() -> None:
    from registry.services import policies

    policies.sync_catalogue(current_session(), SYSTEM)
    db.session.commit()


@writes
def panel(
    members: list[User] | None = None,
    *,
    quorum: float = 0.5,
    threshold: float = 0.5,
    name: str | None = None,
) -> Any:

    created = panels.create_panel(
        current_session(),
        SYSTEM,
        {"name": name or f"Panel {next(_counter)}", "quorum": quorum, "threshold": threshold},
    )
    for member in members or []:
        memberships.add_member(current_session(), SYSTEM, created.id, member.id, None, None)
    db.session.commit()
    return created


@writes
def published(
    slug: str = "research-data",
    *,
    author: User | None = None,
    retire: bool = False,
    **changes: Any,
) -> Any:
    """Draft (or next version), review, endorse and publish a version of ``slug``."""
    from registry.models.review import Choice
    from registry.services import policies, reviews

    session = current_session()
    author = author or user("editor")
    editor = Actor(kind="user", user_id=author.id, role="editor", label=author.email)
    if policies.find_policy(session, slug) is None:
        version = policies.create_policy(session, editor, policy_body(slug, **changes))
    else:
        version = policies.new_version(session, editor, slug, retire=retire)
        if changes:
            version = policies.update_draft(
                session, editor, slug, version.number, policies.etag(version), changes
            )
    voter = user("panel_member")
    board = panels.create_panel(
        session, SYSTEM, {"name": f"Panel {next(_counter)}", "quorum": 1, "threshold": 1}
    )
    memberships.add_member(session, SYSTEM, board.id, voter.id, None, None)
    review = reviews.submit(session, editor, version, board.id, None, ASSESSMENT)
    member = Actor(kind="user", user_id=voter.id, role="panel_member", label=voter.email)
    reviews.cast_vote(session, member, review.id, Choice.ENDORSE, "")
    reviews.close(session, editor, review, "Publish.")
    policies.publish(session, editor, slug, version.number)
    db.session.commit()
    return version


def longest_email(tag: str) -> str:
    """254 characters, the most an address (and the users.email column) may have."""
    domain = ".".join(["d" * 61, "e" * 61, "f" * 61, "example"])  # 193 characters
    local = (tag + "x" * 64)[:60]
    address = f"{local}@{domain}"
    assert len(address) == 254
    return address


@writes
def webhook(organisation_id: int, url: str = "https://hooks.example.org/in") -> Any:
    """An endpoint written straight to the table (registration would resolve the name)."""
    from registry.models.webhook import WebhookEndpoint
    from registry.services import webhooks

    endpoint = WebhookEndpoint(
        organisation_id=organisation_id,
        url=url,
        event_types="",
        description="",
        secret=webhooks.new_secret(),
        sequence=0,
        status="active",
    )
    current_session().add(endpoint)
    db.session.commit()
    return endpoint
