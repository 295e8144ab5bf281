"""WeDa: environments, sign-in names, data models, user sessions.

* ``corp.env_id``: the environment id a client names the corp by (WeDa's envId, sign-in's ``client_id``), unique.
* ``org_user.username``: a user's sign-in name (NULL: his userId), unique in the corp.
* ``form.model_name``: the WeDa data model a form is (``/v1/model/{env}/{modelName}``), unique in the corp
  (checked by the form action: forms belong to apps).
* ``user_session``: a signed-in user's access and refresh tokens (their SHA-256 only) and their expiry.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("corp", sa.Column("env_id", sa.Text))
    op.create_index("ux_corp_env", "corp", ["env_id"], unique=True)
    op.add_column("org_user", sa.Column("username", sa.Text))
    op.create_index("ux_org_user_username", "org_user", ["corp_pk", "username"], unique=True)
    op.add_column("form", sa.Column("model_name", sa.Text))
    op.create_index("ix_form_model_name", "form", ["model_name"])
    op.create_table(
        "user_session",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_pk", BIGPK, sa.ForeignKey("org_user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("access_digest", sa.Text, nullable=False, unique=True),
        sa.Column("access_expires_at", sa.BigInteger, nullable=False),
        sa.Column("refresh_digest", sa.Text, nullable=False, unique=True),
        sa.Column("refresh_expires_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_user_session_user", "user_session", ["user_pk", "refresh_expires_at"])


def downgrade() -> None:
    op.drop_table("user_session")
    op.drop_index("ix_form_model_name", "form")
    op.drop_index("ux_org_user_username", "org_user")
    op.drop_index("ux_corp_env", "corp")
    for table, column in (("form", "model_name"), ("org_user", "username"), ("corp", "env_id")):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
