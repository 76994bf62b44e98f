"""logs this registry witnesses

For each other log this registry witnesses (c2sp.org/tlog-witness), the latest
checkpoint it cosigned: origin, size, root hash and the checkpoint note.

Revision ID: b7c2e9d4f150
Revises: 8e41b7c0d2a6
Create Date: 2026-12-03 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "b7c2e9d4f150"
down_revision = "8e41b7c0d2a6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witnessed_logs",
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("origin"),
    )


def downgrade() -> None:
    op.drop_table("witnessed_logs")
