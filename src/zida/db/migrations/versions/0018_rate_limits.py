"""Rate limits: a credential's own limit of calls per second and API (``credential.rate_limit``).

NULL: the server's default (``ZIDA_RATE_LIMIT_QPS``); 0: no limit; N: at most N calls per second to each API.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("credential", sa.Column("rate_limit", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credential") as batch:
        batch.drop_column("rate_limit")
