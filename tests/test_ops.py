"""Liveness, readiness and the documentation page."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import text

from registry.db import db
from tests.support.problems import assert_problem


def test_healthz(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert client.get("/api/v1/healthz").status_code == 200


def test_readyz_when_migrated(client: Any, app: Flask) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["migration"] == app.extensions["registry.migration_head"]


def test_readyz_is_503_when_the_database_is_behind(client: Any, app: Flask) -> None:
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        db.session.commit()
    response = client.get("/readyz")
    body = assert_problem(response, 503, "unavailable")
    assert body["database_revision"] == "older"


def test_docs_page_serves_assets_from_the_package(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html
    assert "https://" not in html
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "init.js"):
        assert f"/docs/assets/{asset}" in html
        with client.get(f"/docs/assets/{asset}") as response:
            assert response.status_code == 200
            assert len(response.get_data()) > 100
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.get_json()["openapi"].startswith("3.1")
