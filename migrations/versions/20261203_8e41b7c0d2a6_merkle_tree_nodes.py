"""the Merkle tree's complete nodes, stored as the log grows

Every complete node of the audit log's RFC 6962 tree: level 0 the leaf hashes
SHA-256(0x00 || event hash), level l index i the root of entries i * 2**l to
(i + 1) * 2**l. Proofs and tiles read them instead of every leaf. Filled here from the
events already written; each append adds the nodes it completes.

Revision ID: 8e41b7c0d2a6
Revises: 5d1f0c2a7b93
Create Date: 2026-12-03 11:30:00.000000
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "8e41b7c0d2a6"
down_revision = "5d1f0c2a7b93"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    nodes = op.create_table(
        "audit_tree_nodes",
        sa.Column("level", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    # The same hashing as registry.services.merkle (migrations import no application code).
    connection = op.get_bind()
    frontier: list[bytes] = []
    rows: list[dict[str, object]] = []
    events = connection.execute(sa.text("SELECT hash FROM audit_events ORDER BY seq"))
    for size, (event_hash,) in enumerate(events):
        merged = hashlib.sha256(b"\x00" + bytes.fromhex(event_hash)).digest()
        rows.append({"level": 0, "idx": size, "hash": merged})
        carried, level = size, 0
        while carried & 1:
            merged = hashlib.sha256(b"\x01" + frontier.pop() + merged).digest()
            carried >>= 1
            level += 1
            rows.append({"level": level, "idx": size >> level, "hash": merged})
        frontier.append(merged)
        if len(rows) >= BATCH:
            op.bulk_insert(nodes, rows)
            rows = []
    if rows:
        op.bulk_insert(nodes, rows)


def downgrade() -> None:
    op.drop_table("audit_tree_nodes")
