"""Records: comments (remarks) on form instances.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "form_remark",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("form_pk", BIGPK, sa.ForeignKey("form.id", ondelete="CASCADE"), nullable=False),
        sa.Column("instance_id", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("creator_user_id", sa.Text, nullable=False),
        sa.Column("reply_id", sa.BigInteger),
        sa.Column("reply_user_id", sa.Text),
        sa.Column("at_user_ids", JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_form_remark_instance", "form_remark", ["instance_id", "id"])
