"""Broad searches: the combinations of fields a form declares for its usual searches (``searchIndexes``).

``form.search_indexes`` holds them (a JSON list of lists of field ids; NULL: none). Each becomes one composite
per-form index (``zida.core.records.filters.indexes``), built after the form is written, like a searchable field's.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("form", sa.Column("search_indexes", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("form") as batch:
        batch.drop_column("search_indexes")
