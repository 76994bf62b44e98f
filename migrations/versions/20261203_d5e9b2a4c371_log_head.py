"""where the log ends, in one row: the last event's number and hash, and the frontier

Every append read the log's end from the events and the Merkle frontier from the
checkpoint at that size; with checkpoints issued on a cadence rather than per write,
there is no checkpoint at every size. The head holds both, rewritten by each append
under the chain lock. Filled here from the events already written.

Revision ID: d5e9b2a4c371
Revises: c4d8a1f3e262
Create Date: 2026-12-03 14:30:00.000000
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "d5e9b2a4c371"
down_revision = "c4d8a1f3e262"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.SmallInteger(), nullable=False, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The same hashing as registry.services.merkle (migrations import no application code).
    frontier: list[bytes] = []
    size, last = 0, GENESIS_HASH
    events = op.get_bind().execute(sa.text("SELECT seq, hash FROM audit_events ORDER BY seq"))
    for seq, event_hash in events:
        merged = hashlib.sha256(b"\x00" + bytes.fromhex(event_hash)).digest()
        carried = size
        while carried & 1:
            merged = hashlib.sha256(b"\x01" + frontier.pop() + merged).digest()
            carried >>= 1
        frontier.append(merged)
        size, last = seq, event_hash
    row = {"id": 1, "size": size, "hash": last, "frontier": [h.hex() for h in frontier]}
    op.bulk_insert(head, [row])


def downgrade() -> None:
    op.drop_table("audit_head")
