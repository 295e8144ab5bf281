"""Process drafts: a start form's values a user saved before submitting (WeDa's draft box, 草稿箱).

* ``process_draft``: per draft id, the corp, app and process form, whose draft it is, the values (JSON) and when it
  was saved; submitting it starts the process and deletes the row in the same transaction.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "process_draft",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("draft_id", sa.Text, nullable=False, unique=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("app_pk", BIGPK, sa.ForeignKey("app.id", ondelete="CASCADE"), nullable=False),
        sa.Column("form_pk", BIGPK, sa.ForeignKey("form.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_process_draft_user", "process_draft", ["corp_pk", "user_id", "updated_at"])


def downgrade() -> None:
    op.drop_table("process_draft")
