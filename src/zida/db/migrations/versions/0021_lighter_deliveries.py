"""Events out, speed: fewer writes per delivery.

Every event a subscription receives is one ``event_delivery`` row, inserted by the fan-out, updated by the claim
that leases it and by the settle that marks it delivered. Under an approvals load these writes were most of what
delivery cost PostgreSQL (``pg_stat_statements``, BENCHMARKS.md 2026-12-04, sixth session):

* ``ix_event_delivery_finished`` (read only by pruning, for ``finished_at < :oldest``) now holds finished deliveries
  only: inserting a pending one, and leasing it, no longer writes it.
* PostgreSQL: pages are filled to 50% (was 70%), so a claim's lease (``lease_until``, in no index) fits in the
  delivery's own page and is a HOT update that writes no index. The table takes up to twice the pages it did.
* PostgreSQL: the foreign key from ``corp_pk`` to ``corp`` is dropped. A delivery belongs to its subscription (that
  key stays, with its cascade), and the subscription to the corp: deleting a corp still deletes its deliveries,
  through its subscriptions, and the per-row check of every insert is gone. SQLite keeps the key (dropping it means
  rebuilding the table; its check is an in-process index probe).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

FINISHED = sa.text("finished_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_event_delivery_finished", table_name="event_delivery")
    op.create_index(
        "ix_event_delivery_finished",
        "event_delivery",
        ["finished_at"],
        postgresql_where=FINISHED,
        sqlite_where=FINISHED,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE event_delivery SET (fillfactor = 50)")
        op.drop_constraint("event_delivery_corp_pk_fkey", "event_delivery", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(
            "event_delivery_corp_pk_fkey", "event_delivery", "corp", ["corp_pk"], ["id"], ondelete="CASCADE"
        )
        op.execute("ALTER TABLE event_delivery SET (fillfactor = 70)")
    op.drop_index("ix_event_delivery_finished", table_name="event_delivery")
    op.create_index("ix_event_delivery_finished", "event_delivery", ["finished_at"])
