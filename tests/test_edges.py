"""Input at the edges of every range: times, whole numbers, labels, and the audit tables.

A value the registry accepts must be one it can store, read back and show, on SQLite and
PostgreSQL alike: a time outside the years 1900-9999, a number with a fraction, or a label
longer than its column is refused at the door (422) or shortened on purpose, never left to
fail later in a page or a query that everyone needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema, ValidationError, fields
from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect

from registry.db import UTCDateTime, db
from registry.models.audit import AuditEvent
from registry.models.policy import Policy, SetRevision
from registry.schemas.common import Day, Instant, QueryArgs, WholeNumber
from registry.services import chain
from registry.services.context import LABEL_MAX_LENGTH, Actor
from tests import factories as f
from tests.support import tamper
from tests.support.problems import assert_problem
from tests.support.schemas import request_schemas

API = "/api/v1"


def _schemas() -> list[type[Schema]]:
    return sorted({type(schema) for *_, schema in request_schemas()}, key=lambda s: s.__name__)


def _load_fields(schema: Schema) -> Iterator[tuple[Schema, str, fields.Field[Any]]]:
    """Every field a request can set, nested ones included, with the schema it sits in."""
    for name, field in schema.load_fields.items():
        yield schema, field.data_key or name, field
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested) and isinstance(inner.schema, Schema):
            yield from _load_fields(inner.schema)


def _all_load_fields() -> list[tuple[type[Schema], str, fields.Field[Any]]]:
    return [
        (type(owner), name, field)
        for schema in _schemas()
        for owner, name, field in _load_fields(schema())
    ]


def _of_kind(kind: type[fields.Field[Any]]) -> list[Any]:
    return [
        pytest.param(owner, name, field, id=f"{owner.__name__}.{name}")
        for owner, name, field in _all_load_fields()
        if isinstance(field, kind)
    ]


# --- times ------------------------------------------------------------------------------------

INSTANTS_REFUSED = [
    "1899-12-31T23:59:59Z",
    "1899-12-31T23:59:59.999999Z",
    "0999-01-01T00:00:00Z",
    "0001-01-01T00:00:00+12:00",
    "1900-01-01T00:30:00+01:00",  # 1899 in UTC
    "9999-12-31T23:30:00-01:00",  # the year 10000 in UTC
    "10000-01-01T00:00:00Z",
]
INSTANTS_ACCEPTED = [
    "1900-01-01T00:00:00Z",
    "1899-12-31T23:30:00-01:00",  # 1900 in UTC
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59.999999+01:00",
]
DAYS_REFUSED = ["1899-12-31", "0999-01-01", "0001-01-01", "10000-01-01"]
DAYS_ACCEPTED = ["1900-01-01", "9999-12-31"]


def test_every_time_a_request_can_set_is_an_instant_or_a_day() -> None:
    temporal = [
        f"{owner.__name__}.{name}"
        for owner, name, field in _all_load_fields()
        if isinstance(field, (fields.DateTime, fields.Date, fields.Time, fields.TimeDelta))
        and not isinstance(field, (Instant, Day))
    ]
    assert temporal == []
    assert _of_kind(Instant) and _of_kind(Day)


@pytest.mark.parametrize(("owner", "name", "field"), _of_kind(Instant))
def test_every_instant_field_keeps_to_the_years_1900_to_9999(
    owner: type[Schema], name: str, field: Instant
) -> None:
    schema = owner()
    for value in INSTANTS_REFUSED:
        with pytest.raises(ValidationError) as refused:
            schema.load({name: value}, partial=True)
        assert name in refused.value.messages, value
    for value in INSTANTS_ACCEPTED:
        loaded = schema.load({name: value}, partial=True)
        assert loaded[field.attribute or name] == datetime.fromisoformat(value), value


@pytest.mark.parametrize(("owner", "name", "field"), _of_kind(Day))
def test_every_day_field_keeps_to_the_years_1900_to_9999(
    owner: type[Schema], name: str, field: Day
) -> None:
    schema = owner()
    for value in DAYS_REFUSED:
        with pytest.raises(ValidationError) as refused:
            schema.load({name: value}, partial=True)
        assert name in refused.value.messages, value
    for value in DAYS_ACCEPTED:
        assert schema.load({name: value}, partial=True)[name] == date.fromisoformat(value)


def test_times_are_written_with_four_digit_years() -> None:
    assert chain.format_time(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000000Z"
    assert chain.format_time(datetime(1900, 1, 1, tzinfo=UTC)) == "1900-01-01T00:00:00.000000Z"
    latest = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert chain.format_time(latest) == "9999-12-31T23:59:59.999999Z"
    for spelling in ("0999-01-01T00:00:00.000000Z", "999-01-01T00:00:00.000000Z"):
        assert chain.parse_time(spelling) == datetime(999, 1, 1, tzinfo=UTC)
    assert chain.parse_time(chain.format_time(latest)) == latest


def test_the_time_column_refuses_what_it_could_not_give_back(app: Flask) -> None:
    column = UTCDateTime()
    dialect = db.engine.dialect
    for moment in (
        datetime(1899, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),
    ):
        with pytest.raises(ValueError, match="1900"):
            column.process_bind_param(moment, dialect)
    assert column.process_bind_param(datetime(1900, 1, 1, tzinfo=UTC), dialect) is not None


@pytest.fixture
def editor(app: Flask) -> FlaskClient:
    f.catalogue()
    client, _ = f.as_role(app, "editor")
    return client


def _published(slug: str = "research-data", **changes: Any) -> Any:
    f.catalogue()
    return f.published(slug, **changes)


def _count(model: Any) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("value", INSTANTS_REFUSED)
def test_a_policy_effective_outside_the_years_is_refused(editor: FlaskClient, value: str) -> None:
    before = (_count(Policy), _count(AuditEvent))
    response = editor.post(f"{API}/policies", json=f.policy_body(effective_from=value))
    assert "effective_from" in assert_problem(response, 422)["errors"]
    assert (_count(Policy), _count(AuditEvent)) == before


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("1900-01-01T00:00:00Z", "1900-01-01T00:00:00+00:00"),
        ("1899-12-31T23:30:00-01:00", "1900-01-01T00:30:00+00:00"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999+00:00"),
    ],
)
def test_a_version_effective_at_the_edges_is_published_and_read_everywhere(
    app: Flask, editor: FlaskClient, given: str, stored: str
) -> None:
    created = editor.post(f"{API}/policies", json=f.policy_body("drafted", effective_from=given))
    assert created.status_code == 201, created.get_json()
    assert datetime.fromisoformat(created.get_json()["effective_from"]) == datetime.fromisoformat(
        stored
    )
    assert editor.get(f"{API}/policies/drafted/versions/1").get_json()["effective_from"] == stored
    _published("research-data", effective_from=datetime.fromisoformat(given))
    public = app.test_client()
    version = public.get(f"{API}/policies/research-data/versions/1").get_json()
    assert version["effective_from"] == stored
    revisions = public.get(f"{API}/policy-set/revisions")
    assert revisions.status_code == 200
    assert revisions.get_json()[0]["changes"][0]["effective_from"] == stored
    for url in ("/changes", "/", "/policies/research-data", "/policies/research-data/versions/1"):
        assert public.get(url).status_code == 200, url
    at = public.get(f"{API}/policy-set", query_string={"as_of": "9999-12-31T23:59:59.999999Z"})
    assert at.status_code == 200
    assert [p["slug"] for p in at.get_json()["policies"]] == ["research-data"]


def test_a_revision_written_with_a_three_digit_year_still_reads(app: Flask) -> None:
    """Rows written before years were checked and padded: read, not a 500 for everyone."""
    _published("research-data")
    with tamper.behind_the_back() as conn:
        revision = conn.execute(select(SetRevision.changes)).scalar_one()
        revision[0]["effective_from"] = "999-01-01T00:00:00.000000Z"
        conn.execute(SetRevision.__table__.update().values(changes=revision))
    public = app.test_client()
    revisions = public.get(f"{API}/policy-set/revisions")
    assert revisions.status_code == 200
    assert revisions.get_json()[0]["changes"][0]["effective_from"] == "0999-01-01T00:00:00+00:00"
    assert public.get("/changes").status_code == 200


@pytest.mark.parametrize("value", ["1899-12-31T23:59:59Z", "9999-12-31T23:30:00-01:00"])
def test_query_times_outside_the_years_are_refused(app: Flask, value: str) -> None:
    auditor, _ = f.as_role(app, "auditor")
    for url, name in (
        (f"{API}/policy-set", "as_of"),
        (f"{API}/policy-set", "known_at"),
        (f"{API}/audit-events", "since"),
        (f"{API}/audit-events", "until"),
        (f"{API}/decisions", "since"),
    ):
        response = auditor.get(url, query_string={name: value})
        assert name in assert_problem(response, 422)["errors"], url


def test_a_decision_as_of_outside_the_years_is_refused(app: Flask) -> None:
    _published("research-data")
    reader, _ = f.as_role(app, "reader")
    request = {"purpose": "research", "data_category": "depersonalised"}
    for value in ("1899-12-31T23:59:59Z", "0999-06-01T00:00:00Z"):
        response = reader.post(f"{API}/decisions", json={**request, "as_of": value})
        assert "as_of" in assert_problem(response, 422)["errors"]
    edge = reader.post(f"{API}/decisions", json={**request, "as_of": "1900-01-01T00:00:00Z"})
    assert edge.status_code == 201, edge.get_json()
    assert edge.get_json()["as_of"] == "1900-01-01T00:00:00.000000Z"


@pytest.fixture
def panel(app: Flask) -> tuple[FlaskClient, int]:
    admin, _ = f.as_role(app, "admin")
    made = admin.post(f"{API}/panels", json={"name": "Edges", "quorum": 0.5, "threshold": 0.5})
    assert made.status_code == 201
    return admin, made.get_json()["id"]


@pytest.mark.parametrize("term_start", DAYS_REFUSED)
def test_a_term_outside_the_years_is_refused(
    panel: tuple[FlaskClient, int], term_start: str
) -> None:
    admin, panel_id = panel
    member = f.user("panel_member")
    for body in (
        {"user_id": member.id, "term_start": term_start},
        {"user_id": member.id, "term_start": "2020-01-01", "term_end": term_start},
    ):
        response = admin.post(f"{API}/panels/{panel_id}/members", json=body)
        problem = assert_problem(response, 422)
        assert set(problem["errors"]) & {"term_start", "term_end"}


@pytest.mark.parametrize(
    ("term_start", "term_end"),
    [("1900-01-01", None), ("1900-01-01", "9999-12-31"), ("9999-12-31", "9999-12-31")],
)
def test_a_term_at_the_edges_is_kept_and_can_be_ended(
    panel: tuple[FlaskClient, int], term_start: str, term_end: str | None
) -> None:
    admin, panel_id = panel
    member = f.user("panel_member")
    added = admin.post(
        f"{API}/panels/{panel_id}/members",
        json={"user_id": member.id, "term_start": term_start, "term_end": term_end},
    )
    assert added.status_code == 201, added.get_json()
    listed = admin.get(f"{API}/panels/{panel_id}/members").get_json()
    assert (listed[0]["term_start"], listed[0]["term_end"]) == (term_start, term_end)
    removed = admin.delete(f"{API}/panels/{panel_id}/members?user_id={member.id}")
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json()["current"] is False


def test_ending_a_term_that_starts_on_the_first_day_python_knows(app: Flask) -> None:
    """A row from before the years were checked: ending it is arithmetic, not a 500."""
    from registry.models.review import PanelMember

    admin, _ = f.as_role(app, "admin")
    member = f.user("panel_member")
    board = f.panel([member])
    with db.engine.begin() as conn:
        conn.execute(PanelMember.__table__.update().values(term_start=date.min))
    removed = admin.delete(f"{API}/panels/{board.id}/members?user_id={member.id}")
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json()["current"] is False


@pytest.mark.parametrize(
    ("value", "status"),
    [("0999-01-01", 400), ("1899-12-31", 400), ("1900-01-01", 200), ("9999-12-31", 200)],
)
def test_the_set_page_keeps_its_date_to_the_years(app: Flask, value: str, status: int) -> None:
    _published("research-data")
    assert app.test_client().get("/", query_string={"date": value}).status_code == status


# --- whole numbers ----------------------------------------------------------------------------


def test_every_query_is_read_as_text() -> None:
    assert request_schemas()
    loose = [
        f"{view}.{method}"
        for view, method, location, schema in request_schemas()
        if location == "query" and not isinstance(schema, QueryArgs)
    ]
    assert loose == []


def test_every_integer_a_request_can_set_is_a_whole_number() -> None:
    loose = [
        f"{owner.__name__}.{name}"
        for owner, name, field in _all_load_fields()
        if isinstance(field, fields.Integer) and not isinstance(field, WholeNumber)
    ]
    assert loose == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("1", 201),
        ("1.0", 201),
        ("1e0", 201),
        ("1.9", 422),
        ("1.0000001", 422),
        ("0.9999999999999999", 422),
        ("true", 422),
        ('"1"', 422),
        ("1e300", 422),
        ("-1", 422),
    ],
)
def test_a_revision_in_a_body_is_a_whole_number(app: Flask, raw: str, status: int) -> None:
    _published("research-data")
    reader, _ = f.as_role(app, "reader")
    body = f'{{"purpose": "research", "data_category": "depersonalised", "revision": {raw}}}'
    response = reader.post(
        f"{API}/decisions", data=body, headers={"Content-Type": "application/json"}
    )
    if status == 201:
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["revision"] == 1
    else:
        assert "revision" in assert_problem(response, 422)["errors"]


def test_whole_numbers_elsewhere_in_bodies(app: Flask, panel: tuple[FlaskClient, int]) -> None:
    admin, panel_id = panel
    member = f.user("panel_member")
    response = admin.post(f"{API}/panels/{panel_id}/members", json={"user_id": member.id + 0.5})
    assert "user_id" in assert_problem(response, 422)["errors"]
    response = admin.post(
        f"{API}/panels",
        json={"name": "Days", "quorum": 1, "threshold": 1, "default_review_days": 7.5},
    )
    assert "default_review_days" in assert_problem(response, 422)["errors"]
    response = admin.post(f"{API}/tokens", json={"name": "t", "expires_in_days": 30.5})
    assert "expires_in_days" in assert_problem(response, 422)["errors"]
    whole = admin.post(f"{API}/tokens", json={"name": "t", "expires_in_days": 30.0})
    assert whole.status_code == 201, whole.get_json()


@pytest.mark.parametrize("raw", ["1.9", "1.0", "+1", " 1", "1_0", "\u0661", "0x1", "1e0"])
def test_a_number_in_a_query_is_ascii_digits(app: Flask, raw: str) -> None:
    _published("research-data")
    public = app.test_client()
    for url, name in (
        (f"{API}/policy-set", "revision"),
        (f"{API}/policy-set/revisions", "limit"),
        (f"{API}/policies/research-data/versions/1/diff", "against"),
    ):
        response = public.get(url, query_string={name: raw})
        assert name in assert_problem(response, 422)["errors"], (url, raw)
    assert public.get(f"{API}/policy-set", query_string={"revision": "1"}).status_code == 200
    assert public.get(f"{API}/policy-set", query_string={"revision": "01"}).status_code == 200


# --- labels in the audit log ------------------------------------------------------------------


def test_the_longest_token_label_is_kept_whole_in_the_audit_log(app: Flask) -> None:
    owner = f.user("admin", email=f.longest_email("admin"))
    name = "n" * 100
    client = f.bearer(app, f.token(owner, name=name))
    created = client.post(f"{API}/organisations", json={"name": "Long labels", "kind": "icb"})
    assert created.status_code == 201, created.get_json()
    label = db.session.execute(
        select(AuditEvent.actor_label).order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one()
    assert label == f"{owner.email} (token {name})"
    assert len(label) == 363 <= LABEL_MAX_LENGTH


def test_a_label_past_its_length_is_cut_with_an_ellipsis() -> None:
    assert Actor.system(label="x" * LABEL_MAX_LENGTH).label == "x" * LABEL_MAX_LENGTH
    cut = Actor.system(label="y" * (LABEL_MAX_LENGTH + 1)).label
    assert cut == "y" * (LABEL_MAX_LENGTH - 1) + "\u2026"
    assert Actor(kind="token", label="z" * 10_000).label == "z" * (LABEL_MAX_LENGTH - 1) + "\u2026"
    assert Actor.anonymous().label is None


def test_the_label_column_holds_the_longest_label(app: Flask) -> None:
    model = AuditEvent.__table__.c.actor_label.type
    assert model.length == LABEL_MAX_LENGTH
    migrated = {c["name"]: c["type"] for c in sa_inspect(db.engine).get_columns("audit_events")}
    assert migrated["actor_label"].length == LABEL_MAX_LENGTH
