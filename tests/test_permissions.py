"""Deny by default: every route declares the permission it needs."""

from __future__ import annotations

from flask import Flask

from registry.security import Permission, declared_permission

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _undeclared(app: Flask) -> list[str]:
    missing = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in sorted((rule.methods or set()) & HTTP_METHODS):
            target = getattr(view_class, method.lower(), None) if view_class else view
            if not isinstance(declared_permission(target), Permission):
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    return missing


def test_every_route_declares_a_permission(app: Flask) -> None:
    assert _undeclared(app) == []
    assert len(list(app.url_map.iter_rules())) >= 5


def test_the_walk_notices_an_undeclared_route(make_app: object) -> None:
    app = make_app()  # type: ignore[operator]

    @app.route("/undeclared")
    def undeclared() -> str:
        return "nobody said who may see this"

    assert _undeclared(app) == ["GET /undeclared (undeclared)"]
