"""Events out, speed: the outbox's undispatched events indexed per corp.

The fan-out and the delivery worker's "anything waiting?" probe read a corp's undispatched events in id order.
``ix_outbox_event_pending`` (``id`` where ``delivered_at IS NULL``) did not serve ``corp_pk = :c``, so SQLite
scanned the whole outbox for every probe; ``ix_outbox_event_undispatched`` (``corp_pk, id``, same condition)
replaces it.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UNDISPATCHED = sa.text("delivered_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_event_undispatched",
        "outbox_event",
        ["corp_pk", "id"],
        postgresql_where=UNDISPATCHED,
        sqlite_where=UNDISPATCHED,
    )
    op.drop_index("ix_outbox_event_pending", table_name="outbox_event")


def downgrade() -> None:
    op.create_index(
        "ix_outbox_event_pending", "outbox_event", ["id"], postgresql_where=UNDISPATCHED, sqlite_where=UNDISPATCHED
    )
    op.drop_index("ix_outbox_event_undispatched", table_name="outbox_event")
