"""checkpoints as C2SP signed notes

Each checkpoint issued from now on is also signed as a c2sp.org/tlog-checkpoint note:
the origin it was issued under, and the note signature (key ID and Ed25519 signature,
base64). Checkpoints issued before keep NULL in both, and their JSON signature.

Columns are added in place (no table rebuild), so the append-only triggers stay.

Revision ID: 5d1f0c2a7b93
Revises: 92881436dd87
Create Date: 2026-12-03 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "5d1f0c2a7b93"
down_revision = "92881436dd87"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_checkpoints", sa.Column("origin", sa.String(255), nullable=True))
    op.add_column("audit_checkpoints", sa.Column("note_signature", sa.String(128), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_checkpoints", "note_signature")
    op.drop_column("audit_checkpoints", "origin")
