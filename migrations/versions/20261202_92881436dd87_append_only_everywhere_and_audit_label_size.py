"""append-only everywhere, and an audit label sized for what feeds it

The audit log's actor label is "<email> (token <name>)": up to 254 + 100 + 9 = 363
characters, which overflowed varchar(254) on PostgreSQL and made every write with such a
token a 500. The column now holds 400, the length at which ``Actor`` cuts a label (with an
ellipsis) on purpose.

On SQLite, REPLACE (and INSERT OR REPLACE) deletes the row in its way without firing a
DELETE trigger, so the audit tables' triggers let it rewrite any event or checkpoint. A
BEFORE INSERT trigger now refuses an insert whose key, or other unique value, exists.

Recorded decisions and the revisions of the set are written once and never changed, like
the log: they now refuse UPDATE, DELETE, TRUNCATE and REPLACE the same way.

Downgrading on PostgreSQL fails, rather than shortening the log, if a label longer than
254 characters was written.

Revision ID: 92881436dd87
Revises: 87b0050724cc
Create Date: 2026-12-02 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "92881436dd87"
down_revision = "87b0050724cc"
branch_labels = None
depends_on = None

# Copied from registry.services.context.LABEL_MAX_LENGTH (migrations import no application
# code): the longest label the registry writes.
LABEL_MAX_LENGTH = 400
OLD_LABEL_LENGTH = 254

AUDIT_TABLES = ("audit_events", "audit_checkpoints")
# Written once, never changed, but not part of the log itself.
RECORD_TABLES = ("decisions", "policy_set_revisions")
# Every unique column of each append-only table: REPLACE deletes a row that clashes on any.
UNIQUE_COLUMNS = {
    "audit_events": ("seq", "hash"),
    "audit_checkpoints": ("size",),
    "decisions": ("seq", "id"),
    "policy_set_revisions": ("number",),
}


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def _refuse(table: str, operation: str, what: str) -> str:
    return f"SELECT RAISE(ABORT, 'the {what} is append-only: {operation} on {table} refused');"


def _what(table: str) -> str:
    return "audit log" if table in AUDIT_TABLES else f"{table} table"


def _sqlite_update_and_delete_triggers(table: str) -> None:
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
            f"BEGIN {_refuse(table, operation, _what(table))} END"
        )


def _sqlite_replace_trigger(table: str) -> None:
    clash = " OR ".join(f"{column} = NEW.{column}" for column in UNIQUE_COLUMNS[table])
    # Names from the constants above, not from input.
    op.execute(
        f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "  # noqa: S608
        f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {clash}) "
        f"BEGIN {_refuse(table, 'INSERT over an existing row', _what(table))} END"
    )


def upgrade() -> None:
    if _sqlite():
        # Changing a column's type rebuilds the table on SQLite, which drops its triggers.
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column(
            "actor_label",
            existing_type=sa.String(length=OLD_LABEL_LENGTH),
            type_=sa.String(length=LABEL_MAX_LENGTH),
            existing_nullable=True,
        )
    if _sqlite():
        _sqlite_update_and_delete_triggers("audit_events")
        for table in RECORD_TABLES:
            _sqlite_update_and_delete_triggers(table)
        for table in (*AUDIT_TABLES, *RECORD_TABLES):
            _sqlite_replace_trigger(table)
        return
    # PostgreSQL has no REPLACE; an upsert's update and MERGE fire the row triggers.
    op.execute(
        """
        CREATE FUNCTION registry_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the % table is append-only: % on % refused',
                TG_TABLE_NAME, TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    for table in RECORD_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION registry_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION registry_append_only()"
        )


def downgrade() -> None:
    if _sqlite():
        for table in (*AUDIT_TABLES, *RECORD_TABLES):
            op.execute(f"DROP TRIGGER {table}_no_replace")
        for table in ("audit_events", *RECORD_TABLES):
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
    else:
        for table in RECORD_TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION registry_append_only()")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column(
            "actor_label",
            existing_type=sa.String(length=LABEL_MAX_LENGTH),
            type_=sa.String(length=OLD_LABEL_LENGTH),
            existing_nullable=True,
        )
    if _sqlite():
        _sqlite_update_and_delete_triggers("audit_events")
