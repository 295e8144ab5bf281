"""Serial numbers: one counter per form, SerialNumberField and period (``zida.core.records.serials``).

``period`` is '' for a counter that never starts again, else the day, week, month or year it counts in.
``last_value`` is the last number given. Records saved before this revision keep the serial numbers they have.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "serial_counter",
        sa.Column("form_pk", BIGPK, sa.ForeignKey("form.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field_id", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("last_value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("form_pk", "field_id", "period"),
    )


def downgrade() -> None:
    op.drop_table("serial_counter")
