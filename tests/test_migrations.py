"""The schema comes only from migrations: they apply, match the models, and undo."""

from __future__ import annotations

from collections.abc import Callable

from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import check, downgrade, upgrade
from sqlalchemy import inspect

from registry.app import _alembic_config
from registry.db import db


def test_a_single_head() -> None:
    script = ScriptDirectory.from_config(_alembic_config())
    assert len(script.get_heads()) == 1


def test_upgrade_check_downgrade(make_app: Callable[..., Flask], fresh_database: str) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=fresh_database)
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert set(db.metadata.tables) <= tables
        check()  # raises if the models and the migrated schema differ
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()  # and the way back up works again
        db.session.remove()
        db.engine.dispose()
