"""Stream-mode tickets used: a ticket opens one connection, whichever worker or host it is shown to.

A ticket (``POST /v1.0/gateway/connections/open``) is signed with the server key, so any worker can check it; that
it was used was recorded in the shared store, which without Redis is each worker's own memory: one ticket opened a
connection on each worker. ``stream_ticket_use`` holds the digest of each ticket redeemed until it expires (90 s
by default), in the database every worker shares; expired rows are deleted as tickets are redeemed.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_ticket_use",
        sa.Column("digest", sa.Text, primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_stream_ticket_use_expires", "stream_ticket_use", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_stream_ticket_use_expires", "stream_ticket_use")
    op.drop_table("stream_ticket_use")
