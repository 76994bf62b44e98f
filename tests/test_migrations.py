"""The schema comes only from migrations: they apply, match the models, and undo."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

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


def test_no_migration_imports_the_application() -> None:
    """A migration must keep working when the application's types change later, so it
    is written in Alembic's and SQLAlchemy's terms only."""
    folder = Path(__file__).parent.parent / "migrations" / "versions"
    steps = sorted(folder.glob("*.py"))
    assert steps
    for step in steps:
        tree = ast.parse(step.read_text())
        imported = [
            name
            for node in ast.walk(tree)
            for name in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        ]
        assert not [n for n in imported if n.split(".")[0] in ("registry", "tests")], step.name


def test_the_tree_nodes_are_filled_from_the_log_already_written(
    make_app: Callable[..., Flask], fresh_database: str
) -> None:
    """A registry upgraded with a log already written gets every node of its tree, so its
    proofs hold from the first request after the upgrade."""
    from registry.models.audit import AuditEvent, TreeNode
    from registry.services import audit, merkle
    from tests import factories as f

    app = make_app(SQLALCHEMY_DATABASE_URI=fresh_database)
    with app.app_context():
        upgrade()
        for i in range(11):
            f.organisation(f"Trust {i}")  # 11 events
        expected = {(n.level, n.idx): n.hash for n in db.session.query(TreeNode).all()}
        events = db.session.query(AuditEvent).order_by(AuditEvent.seq).all()
        leaves = [merkle.leaf_hash(bytes.fromhex(e.hash)) for e in events]
        db.session.remove()
        downgrade(revision="5d1f0c2a7b93")  # the step before the nodes: the table goes
        upgrade()  # and the step fills it from the events
        found = {(n.level, n.idx): n.hash for n in db.session.query(TreeNode).all()}
        assert found == expected
        assert len(found) == 11 + 5 + 2 + 1  # the leaves, then the complete nodes above
        assert audit.inclusion(db.session, 0, 11)[1] == merkle.root_from_leaf_hashes(leaves)
        db.session.remove()
        db.engine.dispose()
