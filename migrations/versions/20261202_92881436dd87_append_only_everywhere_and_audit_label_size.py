"""an audit label sized for what feeds it

The audit log's actor label is "<email> (token <name>)": up to 254 + 100 + 9 = 363
characters, which overflowed varchar(254) on PostgreSQL and made every write with such a
token a 500. The column now holds 400, the length at which ``Actor`` cuts a label (with an
ellipsis) on purpose.

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


def _sqlite() -> bool:
    return op.get_context().dialect.name == "sqlite"


def _refuse(table: str, operation: str, what: str) -> str:
    return f"SELECT RAISE(ABORT, 'the {what} is append-only: {operation} on {table} refused');"


def _sqlite_update_and_delete_triggers(table: str) -> None:
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
            f"BEGIN {_refuse(table, operation, 'audit log')} END"
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


def downgrade() -> None:
    if _sqlite():
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column(
            "actor_label",
            existing_type=sa.String(length=LABEL_MAX_LENGTH),
            type_=sa.String(length=OLD_LABEL_LENGTH),
            existing_nullable=True,
        )
    if _sqlite():
        _sqlite_update_and_delete_triggers("audit_events")
