"""webhook endpoint ids are never used twice, on SQLite too

A message's id (webhook-id, and the CloudEvent's) is its endpoint's id and sequence
number; SQLite gives a deleted row's id to the next row unless the table is declared
AUTOINCREMENT, and a new endpoint would repeat a deleted one's message ids, which a
receiver that drops duplicates by id would drop. PostgreSQL's sequences never go back.

Revision ID: d8b2f4a6c913
Revises: c6a1d3e8f402
Create Date: 2026-12-04 19:30:00.000000
"""

from alembic import op

revision = "d8b2f4a6c913"
down_revision = "c6a1d3e8f402"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "webhook_endpoints", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "webhook_endpoints", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
