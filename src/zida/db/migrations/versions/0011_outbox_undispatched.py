"""Events out, speed: the outbox's undispatched events indexed per corp; room for in-page updates of deliveries.

* The fan-out and the delivery worker's "anything waiting?" probe read a corp's undispatched events in id order.
  ``ix_outbox_event_pending`` (``id`` where ``delivered_at IS NULL``) did not serve ``corp_pk = :c``, so SQLite
  scanned the whole outbox for every probe; ``ix_outbox_event_undispatched`` (``corp_pk, id``, same condition)
  replaces it.
* PostgreSQL: ``event_delivery`` pages are filled to 70%, so that a claim's lease (``lease_until``, in no index)
  is written in the same page without touching the table's five indexes (a HOT update).

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
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE event_delivery SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE event_delivery RESET (fillfactor)")
    op.create_index(
        "ix_outbox_event_pending", "outbox_event", ["id"], postgresql_where=UNDISPATCHED, sqlite_where=UNDISPATCHED
    )
    op.drop_index("ix_outbox_event_undispatched", table_name="outbox_event")
