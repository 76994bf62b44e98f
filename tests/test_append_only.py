"""The append-only tables refuse every SQL verb that could change or remove a row.

The audit log and its checkpoints, the recorded decisions and the revisions of the set are
written once and never changed. The database itself refuses, whoever asks: UPDATE, DELETE,
TRUNCATE (PostgreSQL), MERGE (PostgreSQL), and on SQLite the verbs that delete without a
DELETE trigger firing: REPLACE, INSERT OR REPLACE, UPDATE OR REPLACE, and an upsert. An
INSERT OR IGNORE or ON CONFLICT DO NOTHING over an existing row is harmless (the row stays
as it was); the tests check that too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from registry.db import db
from tests import factories as f


@dataclass(frozen=True)
class Table:
    name: str
    key: str  # the primary key
    column: str  # a text column a forger would change
    forged: str
    unique: tuple[str, ...] = ()  # other unique columns


TABLES = (
    Table("audit_events", "seq", "action", "forged.action", ("hash",)),
    Table("audit_checkpoints", "size", "root_hash", "f" * 64),
    Table("decisions", "seq", "outcome", "refused", ("id",)),
    Table("policy_set_revisions", "number", "summary", "A forged summary."),
)


@pytest.fixture
def rows(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Two rows at least in each append-only table, made the ordinary way."""
    f.catalogue()
    f.published("research-data")
    f.published("planning-data", purpose="planning")
    reader, _ = f.as_role(app, "reader")
    for _ in range(2):
        decided = reader.post(
            "/api/v1/decisions", json={"purpose": "research", "data_category": "depersonalised"}
        )
        assert decided.status_code == 201, decided.get_json()
    db.session.commit()
    found = {table.name: _rows(table) for table in TABLES}
    assert all(len(r) >= 2 for r in found.values()), {k: len(v) for k, v in found.items()}
    return found


def _rows(table: Table) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        result = conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {table.key}"))
        return [dict(r) for r in result.mappings()]


def _values(row: dict[str, Any], **changes: Any) -> tuple[str, str, dict[str, Any]]:
    """Column list, placeholders and parameters to insert ``row`` with ``changes``."""
    given = {**row, **changes}
    if db.engine.dialect.name == "postgresql":
        # JSON columns come back as objects; send them back as JSON text.
        import json

        given = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in given.items()}
    names = ", ".join(given)
    marks = ", ".join(f":{k}" for k in given)
    return names, marks, given


def _statements(table: Table, rows: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, SQL, parameters) of every verb that could change or remove a row."""
    first, second = rows[0], rows[1]
    key, column, forged = table.key, table.column, table.forged
    names, marks, params = _values(first, **{column: forged})
    set_all = ", ".join(f"{k} = excluded.{k}" for k in first if k != key)
    found: list[tuple[str, str, dict[str, Any]]] = [
        (
            "update",
            f"UPDATE {table.name} SET {column} = :v WHERE {key} = :k",
            {"v": forged, "k": first[key]},
        ),
        ("delete one", f"DELETE FROM {table.name} WHERE {key} = :k", {"k": first[key]}),
        ("delete all", f"DELETE FROM {table.name}", {}),
        (
            "upsert",
            f"INSERT INTO {table.name} ({names}) VALUES ({marks}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {set_all}",
            params,
        ),
    ]
    if db.engine.dialect.name == "sqlite":
        found += [
            ("replace", f"REPLACE INTO {table.name} ({names}) VALUES ({marks})", params),
            (
                "insert or replace",
                f"INSERT OR REPLACE INTO {table.name} ({names}) VALUES ({marks})",
                params,
            ),
            (
                "update or replace",
                f"UPDATE OR REPLACE {table.name} SET {key} = :to WHERE {key} = :k",
                {"to": second[key], "k": first[key]},
            ),
        ]
        for unique in table.unique:
            # A new key, but another row's unique value: REPLACE would delete that row.
            _, _, moved = _values(first, **{key: rows[-1][key] + 1000})
            names2, marks2, _ = _values(moved)
            found.append(
                (
                    f"replace over {unique}",
                    f"REPLACE INTO {table.name} ({names2}) VALUES ({marks2})",
                    moved,
                )
            )
    else:
        found += [
            ("truncate", f"TRUNCATE {table.name}", {}),
            ("truncate cascade", f"TRUNCATE {table.name} CASCADE", {}),
            (
                "merge update",
                f"MERGE INTO {table.name} t USING (SELECT :k AS k) s ON t.{key} = s.k "
                f"WHEN MATCHED THEN UPDATE SET {column} = :v",
                {"k": first[key], "v": forged},
            ),
            (
                "merge delete",
                f"MERGE INTO {table.name} t USING (SELECT :k AS k) s ON t.{key} = s.k "
                "WHEN MATCHED THEN DELETE",
                {"k": first[key]},
            ),
        ]
    return found


def _harmless(table: Table, rows: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    names, marks, params = _values(rows[0], **{table.column: table.forged})
    if db.engine.dialect.name == "sqlite":
        return [
            (
                "insert or ignore",
                f"INSERT OR IGNORE INTO {table.name} ({names}) VALUES ({marks})",
                params,
            )
        ]
    return [
        (
            "do nothing",
            f"INSERT INTO {table.name} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            params,
        )
    ]


def _attempt(table: Table, statement: str, params: dict[str, Any]) -> tuple[str | None, Any]:
    """Run ``statement`` and roll it back: the refusal if any, and the rows it left."""
    with db.engine.connect() as conn:
        transaction = conn.begin()
        try:
            conn.execute(text(statement), params)
        except DBAPIError as refused:
            transaction.rollback()
            return str(refused.orig), _rows(table)
        seen = conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {table.key}"))
        after = [dict(r) for r in seen.mappings()]
        transaction.rollback()
        return None, after


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_every_verb_that_changes_a_row_is_refused(
    rows: dict[str, list[dict[str, Any]]], table: Table
) -> None:
    before = rows[table.name]
    slipped = []
    for label, statement, params in _statements(table, before):
        refusal, after = _attempt(table, statement, params)
        if refusal is None or "append-only" not in refusal or after != before:
            slipped.append(label)
    assert slipped == []
    assert _rows(table) == before


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_an_insert_that_ignores_a_duplicate_leaves_the_row_as_it_was(
    rows: dict[str, list[dict[str, Any]]], table: Table
) -> None:
    before = rows[table.name]
    for label, statement, params in _harmless(table, before):
        refusal, after = _attempt(table, statement, params)
        assert refusal is None or "append-only" in refusal, label
        assert after == before, label


def test_a_new_row_is_still_appended(rows: dict[str, list[dict[str, Any]]]) -> None:
    """The refusal is of rows that exist: the log still grows, by the ordinary path."""
    events = len(rows["audit_events"])
    f.organisation()
    assert len(_rows(TABLES[0])) == events + 1
