"""Every role, and no one, against every operation: the exact status each gets.

Clients authenticate with bearer tokens carrying their role; object-level cases use
objects that belong to someone else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from registry.db import db
from registry.models.identity import ApiToken
from tests import factories as f

API = "/api/v1"
ROLES = ("anonymous", "reader", "panel_member", "auditor", "editor", "admin")


@dataclass
class World:
    """What the operations act on, made fresh for every case."""

    app: Flask
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)


def build_world(app: Flask) -> World:
    world = World(app)
    world.clients["anonymous"] = app.test_client()
    for role in ROLES[1:]:
        client, member = f.as_role(app, role)
        world.clients[role] = client
        world.users[role] = member
    stranger = f.user("reader")
    f.token(stranger, name="someone else's")
    world.objects["stranger"] = stranger
    world.objects["stranger_token_id"] = db.session.execute(
        select(ApiToken.id).where(ApiToken.user_id == stranger.id)
    ).scalar_one()
    return world


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    expect: dict[str, int]
    body: Callable[[World], Any] | None = None

    def url(self, world: World) -> str:
        return self.path.format(**world.objects)


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def signed_in(status: int, *, anonymous: int = 401, **by_role: int) -> dict[str, int]:
    expect = dict.fromkeys(ROLES[1:], status)
    expect["anonymous"] = anonymous
    expect.update(by_role)
    return expect


def only(roles: dict[str, int], otherwise: int = 403) -> dict[str, int]:
    return signed_in(otherwise, **roles)


OPERATIONS: list[Op] = [
    Op("GET", "/healthz", everyone(200)),
    Op("GET", "/readyz", everyone(200)),
    Op("GET", "/openapi.json", everyone(200)),
    Op("GET", "/docs", everyone(200)),
    Op("POST", f"{API}/auth/login", everyone(200),
       body=lambda w: {"email": w.objects["stranger"].email, "password": f.PASSWORD}),
    Op("GET", f"{API}/auth/me", signed_in(200)),
    Op("POST", f"{API}/auth/logout", signed_in(204)),
    Op("GET", f"{API}/tokens", signed_in(200)),
    # Machines do not mint tokens with tokens (administrators excepted).
    Op("POST", f"{API}/tokens", only({"admin": 201}), body=lambda w: {"name": "m"}),
    Op("GET", f"{API}/tokens/{{stranger_token_id}}", signed_in(404, admin=200)),
    Op("DELETE", f"{API}/tokens/{{stranger_token_id}}", signed_in(404, admin=204)),
    Op("GET", f"{API}/organisations", signed_in(200)),
    Op("POST", f"{API}/organisations", only({"admin": 201}),
       body=lambda w: {"name": "Whittington Health", "kind": "nhs_trust"}),
    Op("GET", f"{API}/users", only({"admin": 200})),
    Op("POST", f"{API}/users", only({"admin": 201}),
       body=lambda w: {"email": "new@example.org", "display_name": "New",
                       "organisation_id": w.objects["stranger"].organisation_id,
                       "role": "reader"}),
    Op("GET", f"{API}/users/{{stranger.id}}", only({"admin": 200})),
    Op("PATCH", f"{API}/users/{{stranger.id}}", only({"admin": 200}),
       body=lambda w: {"display_name": "Renamed"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_authorisation_matrix(app: Flask, op: Op, role: str) -> None:
    world = build_world(app)
    client = world.clients[role]
    body = op.body(world) if op.body else None
    response = client.open(op.url(world), method=op.method, json=body)
    assert response.status_code == op.expect[role], (
        f"{role} {op.method} {op.url(world)}: {response.get_data(as_text=True)[:300]}"
    )
    if response.status_code in (401, 403, 404):
        assert response.mimetype == "application/problem+json"


def test_every_api_route_is_in_the_matrix(app: Flask) -> None:
    covered = {(op.method, op.path.split("{")[0].rstrip("/")) for op in OPERATIONS}
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API) or rule.rule in {f"{API}/healthz", f"{API}/readyz"}:
            continue
        prefix = rule.rule.split("<")[0].rstrip("/")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (method, prefix) not in covered:
                missing.append(f"{method} {rule.rule}")
    assert missing == []
