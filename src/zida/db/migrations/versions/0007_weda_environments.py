"""WeDa environments: a corp serves an environment's ``prod`` data or its ``pre`` (preview) data.

* ``corp.env_type``: ``prod`` (default) or ``pre``; ``(env_id, env_type)`` is unique instead of ``env_id``, so
  one environment id may name two corps: its published data and its preview data.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("corp", sa.Column("env_type", sa.Text, nullable=False, server_default="prod"))
    op.drop_index("ux_corp_env", "corp")
    op.create_index("ux_corp_env", "corp", ["env_id", "env_type"], unique=True)


def downgrade() -> None:
    previews = op.get_bind().execute(sa.text("SELECT count(*) FROM corp WHERE env_type <> 'prod'")).scalar()
    if previews:
        raise CommandError(f"{previews} corps hold WeDa preview (pre) data: delete them before downgrading")
    op.drop_index("ux_corp_env", "corp")
    op.create_index("ux_corp_env", "corp", ["env_id"], unique=True)
    with op.batch_alter_table("corp") as batch:
        batch.drop_column("env_type")
