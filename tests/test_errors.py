"""Every error is an RFC 9457 problem: router errors, validation, size limits, crashes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.views import MethodView
from marshmallow import Schema, fields

from registry.api.base import Blueprint
from registry.extensions import api
from registry.security import Permission, requires
from tests.support.problems import assert_problem


class EchoSchema(Schema):
    name = fields.String(required=True)
    count = fields.Integer()


@pytest.fixture
def error_app(make_app: Callable[..., Flask], database: Any) -> Flask:
    app = make_app()
    blp = Blueprint("errortest", __name__)

    @blp.route("/echo")
    class Echo(MethodView):
        @requires(Permission.PUBLIC)
        @blp.arguments(EchoSchema)
        @blp.response(200, EchoSchema)
        @blp.doc(operationId="echoForTests")
        def post(self, body: dict[str, Any]) -> dict[str, Any]:
            """Echo the body"""
            return body

    @blp.route("/boom")
    class Boom(MethodView):
        @requires(Permission.PUBLIC)
        @blp.doc(operationId="failForTests")
        def get(self) -> None:
            """Fail on purpose"""
            raise RuntimeError("secret-value-42 in SELECT * FROM users")

    api.register_blueprint(blp, url_prefix="/test")
    database.reset(app)
    return app


def test_unknown_route_is_a_404_problem(client: Any) -> None:
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404, "not-found")
    assert body["instance"] == "/api/v1/no-such-thing"


def test_wrong_method_is_a_405_problem_with_allow(client: Any) -> None:
    response = client.delete("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed
    assert "DELETE" not in allowed


def test_validation_errors_name_the_fields(error_app: Flask) -> None:
    client = error_app.test_client()
    response = client.post("/test/echo", json={"count": "many"})
    body = assert_problem(response, 422, "validation-error")
    assert set(body["errors"]) == {"name", "count"}


def test_unknown_fields_are_rejected(error_app: Flask) -> None:
    client = error_app.test_client()
    body = assert_problem(
        client.post("/test/echo", json={"name": "a", "surprise": 1}), 422, "validation-error"
    )
    assert "surprise" in body["errors"]


def test_malformed_json_is_a_400_problem(error_app: Flask) -> None:
    client = error_app.test_client()
    response = client.post("/test/echo", data="{not json", content_type="application/json")
    assert_problem(response, 400)


def test_deeply_nested_json_is_refused(error_app: Flask) -> None:
    client = error_app.test_client()
    # {"name": [...]} is 1 + depth containers deep: at the limit it reaches the schema.
    limit = error_app.config["MAX_JSON_DEPTH"]
    payload = "[" * (limit - 1) + "]" * (limit - 1)
    at_limit = client.post(
        "/test/echo", data='{"name": ' + payload + "}", content_type="application/json"
    )
    assert_problem(at_limit, 422, "validation-error")
    for depth in (limit, 5000):
        payload = "[" * depth + "]" * depth
        response = client.post(
            "/test/echo", data='{"name": ' + payload + "}", content_type="application/json"
        )
        body = assert_problem(response, 400)
        assert "nested" in json.dumps(body["errors"])


def test_a_body_over_one_mebibyte_is_a_413_problem(error_app: Flask) -> None:
    client = error_app.test_client()
    big = json.dumps({"name": "x" * (1024 * 1024)})
    assert_problem(client.post("/test/echo", data=big, content_type="application/json"), 413)


def test_a_body_just_under_the_limit_is_accepted(error_app: Flask) -> None:
    client = error_app.test_client()
    name = "x" * (1024 * 1024 - 100)
    response = client.post("/test/echo", json={"name": name})
    assert response.status_code == 200
    assert response.get_json()["name"] == name


def test_a_crash_is_a_500_problem_with_a_correlation_id_and_nothing_internal(
    error_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = error_app.test_client()
    with caplog.at_level(logging.ERROR, logger="registry"):
        response = client.get("/test/boom", headers={"X-Request-ID": "crash-1"})
    body = assert_problem(response, 500, "internal-error")
    text = response.get_data(as_text=True)
    assert body["correlation_id"] == "crash-1"
    for leaked in ("secret-value-42", "SELECT", "Traceback", "RuntimeError"):
        assert leaked not in text
    records = [r for r in caplog.records if r.getMessage() == "unhandled exception"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert "secret-value-42" in str(records[0].exc_info[1])


def test_every_response_carries_a_request_id(client: Any) -> None:
    supplied = client.get("/healthz", headers={"X-Request-ID": "abc-123.x:y"})
    assert supplied.headers["X-Request-ID"] == "abc-123.x:y"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["X-Request-ID"] not in ("", "bad id\twith spaces")
    assert len(generated.headers["X-Request-ID"]) == 32
    missing = client.get("/api/v1/nowhere")
    assert missing.headers["X-Request-ID"]
    assert missing.get_json(force=True)["request_id"] == missing.headers["X-Request-ID"]
    page = client.get("/nowhere")  # a page for people, which quotes it too
    assert page.mimetype == "text/html"
    assert page.headers["X-Request-ID"] in page.get_data(as_text=True)


def test_the_nul_character_is_refused_everywhere_before_any_query(app: Flask) -> None:
    """PostgreSQL cannot hold U+0000 in text: it was a 500 there (and stored on SQLite).
    Now it is a 400 problem on both, wherever it comes, with nothing changed."""
    from tests import factories as f

    admin, _ = f.as_role(app, "admin")
    auditor, _ = f.as_role(app, "auditor")
    before = admin.get("/api/v1/organisations").get_json()
    refused = [
        admin.post("/api/v1/organisations", json={"name": "Trust\x00", "kind": "icb"}),
        admin.post("/api/v1/panels", json={"name": "\x00", "quorum": 0.5, "threshold": 0.5}),
        auditor.get("/api/v1/audit-events?action=%00"),
        admin.get("/api/v1/policies/care%00x"),
        app.test_client().post(
            "/api/v1/auth/login", json={"email": "a\x00@b.org", "password": "x"}
        ),
    ]
    for response in refused:
        assert_problem(response, 400, "nul-character")
    # The pages answer with a page, and the same status.
    page = app.test_client().post("/login", data={"email": "a\x00@b.org", "password": "x"})
    assert (page.status_code, page.mimetype) == (400, "text/html")
    assert admin.get("/api/v1/organisations").get_json() == before
    # The six characters backslash, u, 0, 0, 0, 0 are text like any other.
    named = admin.post("/api/v1/organisations", json={"name": "Trust \\u0000", "kind": "icb"})
    assert named.status_code == 201
    assert named.get_json()["name"] == "Trust \\u0000"


def test_a_lone_surrogate_is_refused_and_a_pair_is_text(app: Flask) -> None:
    """JSON can escape half of a UTF-16 pair alone; no database can store it (it was a 500
    at login). Both halves together are one character like any other."""
    from tests import factories as f

    admin, _ = f.as_role(app, "admin")
    before = admin.get("/api/v1/organisations").get_json()
    for raw in (b'{"name": "Trust \\ud800", "kind": "icb"}', b'{"\\udfff": 1}'):
        refused = admin.post("/api/v1/organisations", data=raw, content_type="application/json")
        assert "surrogate" in json.dumps(assert_problem(refused, 400)["errors"])
    login = app.test_client().post(
        "/api/v1/auth/login",
        data=b'{"email": "a\\udc00@b.org", "password": "x"}',
        content_type="application/json",
    )
    assert_problem(login, 400)
    assert admin.get("/api/v1/organisations").get_json() == before
    paired = admin.post(
        "/api/v1/organisations",
        data=b'{"name": "Trust \\ud83c\\udfe5", "kind": "icb"}',
        content_type="application/json",
    )
    assert paired.status_code == 201
    assert paired.get_json()["name"] == "Trust \U0001f3e5"


def test_the_nul_character_is_refused_however_the_body_is_sent(app: Flask) -> None:
    """Chunked bodies (no Content-Length), JSON in UTF-16, and forms with the raw byte or
    in multipart: each was a way past a check of the body's bytes."""
    from tests import factories as f

    admin, _ = f.as_role(app, "admin")
    before = admin.get("/api/v1/organisations").get_json()
    body = json.dumps({"name": "Trust\x00", "kind": "icb"}).encode()
    chunked = admin.post(
        "/api/v1/organisations",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert chunked.request.content_length is None
    assert_problem(chunked, 400, "nul-character")
    for encoding in ("utf-16", "utf-32-le"):
        wide = admin.post(
            "/api/v1/organisations",
            data=json.dumps({"name": "Trust\x00", "kind": "icb"}).encode(encoding),
            content_type="application/json",
        )
        problem = assert_problem(wide, 400)
        assert "UTF-8" in json.dumps(problem["errors"])
    login = {"email": "a@b.org", "password": "x", "csrf_token": "t"}
    for form in (
        {**login, "email": b"a\x00@b.org"},  # the raw byte, not %00
        {**login, "password": "x\x00"},
    ):
        raw = "&".join(
            f"{key}={value.decode('latin-1') if isinstance(value, bytes) else value}"
            for key, value in form.items()
        ).encode("latin-1")
        page = app.test_client().post(
            "/login", data=raw, content_type="application/x-www-form-urlencoded"
        )
        assert page.status_code == 400
    multipart = app.test_client().post(
        "/login",
        data={**login, "email": "a\x00@b.org"},
        content_type="multipart/form-data",
    )
    assert multipart.status_code == 400
    assert admin.get("/api/v1/organisations").get_json() == before
