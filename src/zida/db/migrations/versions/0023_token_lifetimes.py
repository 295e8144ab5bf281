"""Access tokens: each keeps the lifetime it was issued with.

DingTalk's token requests give a token 7200 s (``ZIDA_TOKEN_TTL_SECONDS``), WeDa's 72 h
(``ZIDA_WEDA_TOKEN_TTL_SECONDS``). A credential asking again within validity gets the same token back with its
validity renewed, and that used to be one token per credential whichever dialect asked: a WeDa request renewed a
DingTalk client's token for 72 h, a DingTalk request cut a WeDa client's token to 2 h. ``lifetime_s`` records the
lifetime a token was issued with; a request renews only a token of its own lifetime, else issues another. Tokens
issued before this revision (``NULL``) keep working until they expire and are never renewed.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("access_token", sa.Column("lifetime_s", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("access_token", "lifetime_s")
