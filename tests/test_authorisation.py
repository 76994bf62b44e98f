"""Every role, and no one, against every operation: the exact status each gets.

Clients authenticate with bearer tokens carrying their role; object-level cases use
objects that belong to someone else.
"""

from __future__ import annotations

import re
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
    stranger_client = f.bearer(app, f.token(stranger, name="someone else's"))
    world.objects["stranger"] = stranger
    world.objects["stranger_token_id"] = db.session.execute(
        select(ApiToken.id).where(ApiToken.user_id == stranger.id)
    ).scalar_one()
    world.objects["spare_member"] = f.user("panel_member")
    f.catalogue()
    f.published("research-data")
    f.published("research-data", summary="Second.")
    board = f.panel([world.users["panel_member"]], quorum=1, threshold=1)
    world.objects["panel"] = board
    editor = world.clients["editor"]
    for slug in ("draft-policy", "open-policy", "endorsed-policy"):
        assert editor.post(f"{API}/policies", json=f.policy_body(slug)).status_code == 201
    world.objects["draft_etag"] = editor.get(f"{API}/policies/draft-policy/versions/1").headers[
        "ETag"
    ]
    for slug in ("open-policy", "endorsed-policy"):
        made = editor.post(
            f"{API}/policies/{slug}/versions/1/submit",
            json={"panel_id": board.id, "public_benefit": f.ASSESSMENT},
        )
        world.objects[slug.replace("-policy", "_review")] = made.get_json()["id"]
    endorsed = world.objects["endorsed_review"]
    assert (
        world.clients["panel_member"]
        .put(f"{API}/reviews/{endorsed}/votes/me", json={"choice": "endorse"})
        .status_code
        == 201
    )
    assert editor.post(f"{API}/reviews/{endorsed}/close", json={}).status_code == 200
    decided = stranger_client.post(f"{API}/decisions", json=DECISION)
    assert decided.status_code == 201
    world.objects["decision"] = decided.get_json()["id"]
    world.objects["stranger_webhook"] = f.webhook(stranger.organisation_id).id
    return world


DECISION = {"purpose": "research", "data_category": "depersonalised"}


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    expect: dict[str, int]
    body: Callable[[World], Any] | None = None
    headers: Callable[[World], dict[str, str]] | None = None

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
    Op(
        "POST",
        f"{API}/auth/login",
        # A request with a bearer token cannot start a session: it would get no cookie.
        signed_in(400, anonymous=200),
        body=lambda w: {"email": w.objects["stranger"].email, "password": f.PASSWORD},
    ),
    Op("GET", f"{API}/auth/me", signed_in(200)),
    Op("PATCH", f"{API}/auth/me", signed_in(200), body=lambda w: {"review_reminders": False}),
    Op("POST", f"{API}/auth/logout", signed_in(204)),
    Op("GET", f"{API}/tokens", signed_in(200)),
    # Machines do not mint tokens with tokens (administrators excepted).
    Op("POST", f"{API}/tokens", only({"admin": 201}), body=lambda w: {"name": "m"}),
    Op("GET", f"{API}/tokens/{{stranger_token_id}}", signed_in(404, admin=200)),
    Op("DELETE", f"{API}/tokens/{{stranger_token_id}}", signed_in(404, admin=204)),
    Op("GET", f"{API}/organisations", signed_in(200)),
    Op(
        "POST",
        f"{API}/organisations",
        only({"admin": 201}),
        body=lambda w: {"name": "Whittington Health", "kind": "nhs_trust"},
    ),
    Op("GET", f"{API}/users", only({"admin": 200})),
    Op(
        "POST",
        f"{API}/users",
        only({"admin": 201}),
        body=lambda w: {
            "email": "new@example.org",
            "display_name": "New",
            "organisation_id": w.objects["stranger"].organisation_id,
            "role": "reader",
        },
    ),
    Op("GET", f"{API}/users/{{stranger.id}}", only({"admin": 200})),
    Op(
        "PATCH",
        f"{API}/users/{{stranger.id}}",
        only({"admin": 200}),
        body=lambda w: {"display_name": "Renamed"},
    ),
    # The policy set and its policies: public where published, editors for the rest.
    Op("GET", f"{API}/policy-set", everyone(200)),
    Op("GET", f"{API}/policy-set/revisions", everyone(200)),
    Op("GET", f"{API}/conditions", everyone(200)),
    Op("GET", f"{API}/policies", everyone(200)),
    Op(
        "POST", f"{API}/policies", only({"editor": 201}), body=lambda w: f.policy_body("new-policy")
    ),
    Op("GET", f"{API}/policies/research-data", everyone(200)),
    Op("GET", f"{API}/policies/draft-policy", dict(everyone(404), editor=200, admin=200)),
    Op("GET", f"{API}/policies/research-data/versions", everyone(200)),
    Op("POST", f"{API}/policies/draft-policy/versions", only({"editor": 409}), body=lambda w: {}),
    Op("POST", f"{API}/policies/research-data/versions", only({"editor": 201}), body=lambda w: {}),
    Op("GET", f"{API}/policies/research-data/versions/1", everyone(200)),
    Op(
        "GET", f"{API}/policies/draft-policy/versions/1", dict(everyone(404), editor=200, admin=200)
    ),
    Op(
        "PATCH",
        f"{API}/policies/draft-policy/versions/1",
        only({"editor": 200}),
        body=lambda w: {"summary": "Changed."},
        headers=lambda w: {"If-Match": w.objects["draft_etag"]},
    ),
    Op("POST", f"{API}/policies/draft-policy/versions/1/withdraw", only({"editor": 200})),
    Op(
        "POST",
        f"{API}/policies/draft-policy/versions/1/submit",
        only({"editor": 201}),
        body=lambda w: {"panel_id": w.objects["panel"].id, "public_benefit": f.ASSESSMENT},
    ),
    Op("POST", f"{API}/policies/endorsed-policy/versions/1/publish", only({"editor": 200})),
    Op("GET", f"{API}/policies/research-data/versions/2/diff", everyone(200)),
    Op(
        "GET",
        f"{API}/policies/draft-policy/versions/1/diff?against=1",
        dict(everyone(404), editor=200, admin=200),
    ),
    Op("GET", f"{API}/policies/research-data/versions/2/odrl", everyone(200)),
    Op("GET", f"{API}/policies/research-data/versions/2/proof", everyone(200)),
    Op("GET", f"{API}/policies/draft-policy/versions/1/proof", everyone(404)),
    Op(
        "GET",
        f"{API}/policies/draft-policy/versions/1/odrl",
        dict(everyone(404), editor=200, admin=200),
    ),
    # Panels and reviews.
    Op("GET", f"{API}/panels", signed_in(200)),
    Op(
        "POST",
        f"{API}/panels",
        only({"admin": 201}),
        body=lambda w: {"name": "Another panel", "quorum": 0.5, "threshold": 0.5},
    ),
    Op("GET", f"{API}/panels/{{panel.id}}", signed_in(200)),
    Op("GET", f"{API}/panels/{{panel.id}}/members", signed_in(200)),
    Op(
        "POST",
        f"{API}/panels/{{panel.id}}/members",
        only({"admin": 201}),
        body=lambda w: {"user_id": w.objects["spare_member"].id},
    ),
    Op(
        "DELETE",
        f"{API}/panels/{{panel.id}}/members?user_id={{spare_member.id}}",
        only({"admin": 404}),
    ),
    # A submitted version is public from then on, with its review.
    Op("GET", f"{API}/policies/open-policy", everyone(200)),
    Op("GET", f"{API}/policies/open-policy/versions/1", everyone(200)),
    Op("GET", f"{API}/reviews", everyone(200)),
    Op("GET", f"{API}/reviews/{{open_review}}", everyone(200)),
    Op(
        "PUT",
        f"{API}/reviews/{{open_review}}/votes/me",
        only({"panel_member": 201}),
        body=lambda w: {"choice": "endorse"},
    ),
    Op(
        "POST",
        f"{API}/reviews/{{open_review}}/conflicts",
        only({"panel_member": 201}),
        body=lambda w: {"reason": "I work there."},
    ),
    Op(
        "POST",
        f"{API}/reviews/{{open_review}}/close",
        only({"editor": 200, "admin": 200}),
        body=lambda w: {},
    ),
    # The audit trail: events for auditors, proofs and verification for anyone.
    Op("GET", f"{API}/audit-events", only({"auditor": 200, "admin": 200})),
    Op("GET", f"{API}/audit-events/export", only({"auditor": 200, "admin": 200})),
    Op("GET", f"{API}/audit-events/verify", everyone(200)),
    Op("GET", f"{API}/audit-events/checkpoint", everyone(200)),
    Op("GET", f"{API}/audit-events/verifier-key", everyone(200)),
    Op("GET", f"{API}/log/checkpoint", everyone(200)),
    # Witnessing other logs: this registry is not configured as a witness here.
    Op("POST", "/witness/add-checkpoint", everyone(404), body=lambda w: "old 0\n\n"),
    Op("GET", "/witness/verifier-key", everyone(404)),
    Op("GET", "/witness/" + "0" * 64 + "/checkpoint", everyone(404)),
    Op("GET", f"{API}/log/tile/0/000.p/1", everyone(200)),
    Op("GET", f"{API}/log/tile/entries/000.p/1", everyone(200)),
    Op("GET", f"{API}/audit-events/3/inclusion", everyone(200)),
    Op("GET", f"{API}/audit-events/consistency?from=2", everyone(200)),
    # Decisions.
    Op(
        "POST",
        f"{API}/decisions",
        only({"reader": 201, "editor": 201, "admin": 201}),
        body=lambda w: DECISION,
    ),
    Op("GET", f"{API}/decisions", signed_in(200)),
    Op("GET", f"{API}/decisions/{{decision}}", signed_in(404, auditor=200, admin=200)),
    Op("GET", f"{API}/decisions/{{decision}}/proof", signed_in(404, auditor=200, admin=200)),
    Op("GET", f"{API}/reviews/{{open_review}}/impact", signed_in(200)),
    Op(
        "PUT",
        f"{API}/reviews/{{endorsed_review}}/recommendation",
        only({"editor": 200, "admin": 200}),
        body=lambda w: {"recommendation": "Publish."},
    ),
    # Webhooks: an organisation's own (someone else's is not found).
    Op("GET", f"{API}/webhooks", only({"editor": 200, "admin": 200})),
    Op(
        "POST",
        f"{API}/webhooks",
        only({"editor": 422, "admin": 422}),  # a private address is refused
        body=lambda w: {"url": "https://10.0.0.1/hooks"},
    ),
    *[
        Op(
            method,
            f"{API}/webhooks/{{stranger_webhook}}{tail}",
            only({"editor": 404, "admin": 404}),
            body=body,
        )
        for method, tail, body in [
            ("GET", "", None),
            ("PATCH", "", lambda w: {"description": "mine now"}),
            ("DELETE", "", None),
            ("POST", "/pause", None),
            ("POST", "/resume", None),
            ("POST", "/test", None),
            ("POST", "/replay", lambda w: {"from_sequence": 1}),
            ("POST", "/rotate-secret", None),
            ("GET", "/messages", None),
            ("GET", "/deliveries", None),
        ]
    ],
]


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_authorisation_matrix(app: Flask, database: Any, op: Op) -> None:
    """Each role in turn; a write gets a fresh world for every role."""
    world = None
    failures = []
    for role in ROLES:
        if world is None or op.method != "GET":
            database.reset(app)
            world = build_world(app)
        body = op.body(world) if op.body else None
        headers = op.headers(world) if op.headers else {}
        with world.clients[role].open(
            op.url(world), method=op.method, json=body, headers=headers
        ) as response:
            response.get_data()
        if response.status_code != op.expect[role]:
            failures.append(
                f"{role}: {response.status_code} (expected {op.expect[role]}) "
                f"{response.get_data(as_text=True)[:200]}"
            )
        elif response.status_code in (401, 403, 404):
            assert response.mimetype == "application/problem+json"
    assert failures == []


def test_every_api_route_is_in_the_matrix(app: Flask) -> None:
    adapter = app.url_map.bind("localhost")
    covered = set()
    for op in OPERATIONS:
        path = re.sub(r"\{[^}]*\}", "1", op.path).split("?")[0]
        endpoint, _ = adapter.match(path, method=op.method)
        covered.add((endpoint, op.method))
    missing = [
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API) and rule.rule not in {f"{API}/healthz", f"{API}/readyz"}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if (rule.endpoint, method) not in covered
    ]
    assert missing == []
