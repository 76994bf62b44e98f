"""Every text field at its maximum length is stored and read back whole; one more is a 422.

Driven by the request schemas: every string field with a maximum length (nested ones and
lists of strings included) is filled to its maximum with text of one-, two-, three- and
four-byte characters, for every write endpoint, so a field added later is covered
without touching this file. PostgreSQL counts characters against each column's size, as
marshmallow does, so a schema limit longer than its column fails here as a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema, fields, validate

from registry.schemas.decision import DecisionRequestSchema
from registry.schemas.identity import (
    LoginSchema,
    OrganisationCreateSchema,
    TokenCreateSchema,
    UserCreateSchema,
    UserUpdateSchema,
)
from registry.schemas.policy import PolicyCreateSchema, SubmitSchema, VersionUpdateSchema
from registry.schemas.review import (
    CloseSchema,
    ConflictInSchema,
    PanelSchema,
    RecommendationSchema,
    VoteSchema,
)
from tests import factories as f
from tests.support.problems import assert_problem
from tests.support.schemas import request_schemas

API = "/api/v1"
Path = tuple[str, ...]
TEXT = "a\u00e9\u4e2d\U0001d11e"  # one, two, three and four bytes in UTF-8


def _fill(length: int) -> str:
    return (TEXT * (length // len(TEXT) + 1))[:length]


def _limit(field: fields.Field[Any]) -> int | None:
    for check in field.validators:
        if isinstance(check, validate.Length) and check.max is not None:
            return check.max
    return None


def _text_value(owner: str, field: fields.Field[Any], length: int) -> str | None:
    """A valid value of ``length`` characters, or None when the field is not free text."""
    kinds = {type(check) for check in field.validators}
    if validate.OneOf in kinds:
        return None
    if isinstance(field, fields.Email) or field.name == "email":
        return f.longest_email("lengths") if length == 254 else "x" * (length - 12) + "@example.org"
    if validate.Regexp in kinds:
        return "s" * length  # the slug: lower-case letters are a valid slug
    if owner == "ConditionInSchema":
        return None  # names a catalogue entry; lists of nested items are not walked
    return _fill(length)


def _text_fields(schema: Schema) -> Iterator[tuple[Path, fields.Field[Any], int, bool]]:
    """(path, field, maximum, is a list of strings) of every bounded text field."""
    for name, field in schema.load_fields.items():
        key = field.data_key or name
        if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            for path, inner, limit, many in _text_fields(field.schema):
                yield (key, *path), inner, limit, many
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.String):
            limit = _limit(field.inner)
            if limit is not None and _text_value("", field.inner, limit) is not None:
                yield (key,), field, limit, True
        elif isinstance(field, fields.String):
            limit = _limit(field)
            if limit is not None and _text_value(type(schema).__name__, field, limit) is not None:
                yield (key,), field, limit, False


def _value(field: fields.Field[Any], length: int, many: bool) -> Any:
    if many:
        assert isinstance(field, fields.List)
        items = _limit(field) or 1
        return [_fill(length)] * items
    return _text_value("", field, length)


def _put(body: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        body = body.setdefault(key, {})
    body[path[-1]] = value


def _get(document: Any, path: Path) -> Any:
    for key in path:
        document = document[key]
    return document


def maximal(schema: Schema, over: Path | None = None) -> tuple[dict[str, Any], list[Path]]:
    """A body with every text field at its maximum (``over``: that one a character more)."""
    body: dict[str, Any] = {}
    paths = []
    for path, field, limit, many in _text_fields(schema):
        length = limit + 1 if path == over else limit
        if many and path == over:
            value: Any = [_fill(length)]
        else:
            value = _value(field, length, many)
        _put(body, path, value)
        if not field.load_only:
            paths.append(path)
    return body, paths


# --- the world and the write endpoints --------------------------------------------------------


@dataclass
class World:
    app: Flask
    admin: FlaskClient
    editor: FlaskClient
    member: FlaskClient
    member_id: int
    panel_id: int
    org_id: int
    made: int = 0
    logins: int = 0

    def fresh(self, stem: str) -> str:
        self.made += 1
        return f"{stem}-{self.made}"

    def send(self, client: FlaskClient, method: str, url: str, body: dict[str, Any]) -> Any:
        return client.open(
            url,
            method=method,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
        )

    def review(self) -> int:
        """A new policy, submitted to the panel: its open review's id."""
        slug = self.fresh("under-review")
        assert self.editor.post(f"{API}/policies", json=f.policy_body(slug)).status_code == 201
        submitted = self.editor.post(
            f"{API}/policies/{slug}/versions/1/submit",
            json={"panel_id": self.panel_id, "public_benefit": f.ASSESSMENT},
        )
        assert submitted.status_code == 201, submitted.get_json()
        review_id: int = submitted.get_json()["id"]
        return review_id


@pytest.fixture
def world(app: Flask) -> World:
    f.catalogue()
    f.published("research-data")
    # The callers' labels in the audit log are the longest too: the longest address and
    # the longest token name.
    admin = f.bearer(app, f.token(f.user("admin", email=f.longest_email("admin")), name="n" * 100))
    editor = f.bearer(
        app, f.token(f.user("editor", email=f.longest_email("editor")), name="e" * 100)
    )
    member, member_user = f.as_role(app, "panel_member")
    made = admin.post(f"{API}/panels", json={"name": "Lengths", "quorum": 0.5, "threshold": 0.5})
    panel_id = made.get_json()["id"]
    added = admin.post(f"{API}/panels/{panel_id}/members", json={"user_id": member_user.id})
    assert added.status_code == 201
    return World(app, admin, editor, member, member_user.id, panel_id, f.organisation().id)


# Each write: (send the body, and answer (response, the document to read the fields back
# from)); the document is read the way a client would, after the write.
Write = Callable[[World, dict[str, Any]], tuple[Any, Callable[[], Any]]]


def _organisation(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    response = w.send(w.admin, "POST", f"{API}/organisations", {"kind": "charity", **body})
    return response, lambda: w.admin.get(f"{API}/organisations").get_json()[-1]


def _user(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    body = {"organisation_id": w.org_id, "role": "reader", **body}
    response = w.send(w.admin, "POST", f"{API}/users", body)

    def read() -> Any:
        made = w.admin.get(f"{API}/users/{response.get_json()['id']}").get_json()
        login = w.app.test_client().post(
            f"{API}/auth/login", json={"email": body["email"], "password": body["password"]}
        )
        assert login.status_code == 200, "the longest password logs in"
        return made

    return response, read


def _user_update(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    account = f.user("reader")
    response = w.send(w.admin, "PATCH", f"{API}/users/{account.id}", body)

    def read() -> Any:
        login = w.app.test_client().post(
            f"{API}/auth/login", json={"email": account.email, "password": body["password"]}
        )
        assert login.status_code == 200, "the longest password logs in"
        return w.admin.get(f"{API}/users/{account.id}").get_json()

    return response, read


def _login(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    # The account can hold what a login may send; one character more is refused unread.
    if w.logins == 0 and len(body["email"]) <= 254 and len(body["password"]) <= 1024:
        f.user("reader", email=body["email"], password=body["password"])
        w.logins += 1
    client = w.app.test_client()
    response = w.send(client, "POST", f"{API}/auth/login", body)
    return response, lambda: client.get(f"{API}/auth/me").get_json()["user"]


def _token(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    response = w.send(w.admin, "POST", f"{API}/tokens", body)
    return response, lambda: w.admin.get(f"{API}/tokens/{response.get_json()['id']}").get_json()


def _policy(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    body = {**f.policy_body(body.get("slug", "drafted")), **body}
    response = w.send(w.editor, "POST", f"{API}/policies", body)

    def read() -> Any:
        slug = body["slug"]
        return {
            **w.editor.get(f"{API}/policies/{slug}/versions/1").get_json(),
            "slug": w.editor.get(f"{API}/policies/{slug}").get_json()["slug"],
        }

    return response, read


def _version_update(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    slug = w.fresh("patched")
    assert w.editor.post(f"{API}/policies", json=f.policy_body(slug)).status_code == 201
    url = f"{API}/policies/{slug}/versions/1"
    etag = w.editor.get(url).headers["ETag"]
    response = w.editor.patch(
        url,
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "If-Match": etag},
    )
    return response, lambda: w.editor.get(url).get_json()


def _submit(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    slug = w.fresh("submitted")
    assert w.editor.post(f"{API}/policies", json=f.policy_body(slug)).status_code == 201
    response = w.send(
        w.editor,
        "POST",
        f"{API}/policies/{slug}/versions/1/submit",
        {"panel_id": w.panel_id, **body},
    )
    return response, lambda: w.editor.get(f"{API}/reviews/{response.get_json()['id']}").get_json()


def _panel(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    response = w.send(w.admin, "POST", f"{API}/panels", {"quorum": 1, "threshold": 1, **body})
    return response, lambda: w.admin.get(f"{API}/panels/{response.get_json()['id']}").get_json()


def _vote(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    review_id = w.review()
    response = w.send(
        w.member, "PUT", f"{API}/reviews/{review_id}/votes/me", {"choice": "reject", **body}
    )
    return response, lambda: w.member.get(f"{API}/reviews/{review_id}").get_json()["my_vote"]


def _conflict(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    review_id = w.review()
    response = w.send(w.member, "POST", f"{API}/reviews/{review_id}/conflicts", body)
    return response, lambda: w.member.get(f"{API}/reviews/{review_id}").get_json()["my_conflict"]


def _close(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    review_id = w.review()
    response = w.send(w.editor, "POST", f"{API}/reviews/{review_id}/close", body)
    return response, lambda: w.editor.get(f"{API}/reviews/{review_id}").get_json()


def _recommendation(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    review_id = w.review()
    closed = w.editor.post(f"{API}/reviews/{review_id}/close", json={})
    assert closed.status_code == 200, closed.get_json()
    response = w.send(w.editor, "PUT", f"{API}/reviews/{review_id}/recommendation", body)
    return response, lambda: w.editor.get(f"{API}/reviews/{review_id}").get_json()


def _decision(w: World, body: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
    body = {"purpose": "research", "data_category": "depersonalised", **body}
    response = w.send(w.editor, "POST", f"{API}/decisions", body)
    return response, lambda: w.editor.get(
        f"{API}/decisions/{response.get_json()['id']}"
    ).get_json()["request"]


WRITES: dict[type[Schema], Write] = {
    OrganisationCreateSchema: _organisation,
    UserCreateSchema: _user,
    UserUpdateSchema: _user_update,
    LoginSchema: _login,
    TokenCreateSchema: _token,
    PolicyCreateSchema: _policy,
    VersionUpdateSchema: _version_update,
    SubmitSchema: _submit,
    PanelSchema: _panel,
    VoteSchema: _vote,
    ConflictInSchema: _conflict,
    CloseSchema: _close,
    RecommendationSchema: _recommendation,
    DecisionRequestSchema: _decision,
}


def _bounded_bodies() -> list[type[Schema]]:
    return sorted(
        {
            type(schema)
            for _view, _method, location, schema in request_schemas()
            if location == "json" and any(True for _ in _text_fields(schema))
        },
        key=lambda s: s.__name__,
    )


def test_every_body_with_text_is_tried_at_its_limits() -> None:
    assert _bounded_bodies() == sorted(WRITES, key=lambda s: s.__name__)


@pytest.mark.parametrize("schema", _bounded_bodies(), ids=lambda s: s.__name__)
def test_every_text_field_at_its_maximum_is_kept_whole(world: World, schema: type[Schema]) -> None:
    body, paths = maximal(schema())
    assert paths
    response, read = WRITES[schema](world, body)
    assert response.status_code in (200, 201), response.get_data(as_text=True)[:500]
    document = read()
    for path in paths:
        assert _get(document, path) == _get(body, path), path


@pytest.mark.parametrize("schema", _bounded_bodies(), ids=lambda s: s.__name__)
def test_every_text_field_one_past_its_maximum_is_a_422(world: World, schema: type[Schema]) -> None:
    for path, *_ in _text_fields(schema()):
        body, _paths = maximal(schema(), over=path)
        response, _read = WRITES[schema](world, body)
        problem = assert_problem(response, 422)
        assert path[0] in problem["errors"], path
