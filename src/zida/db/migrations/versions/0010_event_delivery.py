"""Events out: subscriptions (HTTP callbacks, event-subscription pushes, Stream mode) and their deliveries.

* ``event_subscription``: per app credential and kind (``callback``: DingTalk's ``register_call_back`` format,
  ``http``: the event-subscription push format, ``stream``: Stream mode), the URL, the token and aes_key
  (encrypted with the server key: both are needed to sign and encrypt every push), the tags or topics it
  receives, its retry schedule (``dingtalk``: +10 s, +30 s, then the failed list; ``persistent``: backoff up to
  the retry window), the outbox id it starts after, and, while its receiver is failing, since when and the next
  probe time.
* ``event_delivery``: one event rendered for one subscription (the plaintext JSON it sends), its state
  (``pending``, ``delivered``, ``failed``), attempts, the next attempt time, a lease (``lease_until``: a worker
  that claimed it and is sending it), the last error, and whether its failure was read from the failed list.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "event_subscription",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("credential_pk", BIGPK, sa.ForeignKey("credential.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("token_enc", sa.Text),
        sa.Column("aes_key_enc", sa.Text),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("start_event_id", sa.BigInteger, nullable=False),
        sa.Column("failing_since", sa.BigInteger),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retry_at", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.Column("last_delivered_at", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("credential_pk", "kind", name="uq_event_subscription_kind"),
    )
    op.create_index("ix_event_subscription_corp", "event_subscription", ["corp_pk"])
    op.create_table(
        "event_delivery",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", BIGPK, sa.ForeignKey("event_subscription.id", ondelete="CASCADE"), nullable=False),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.BigInteger, nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("event_time", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("failure_read", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_event_delivery_event"),
    )
    op.create_index(
        "ix_event_delivery_due",
        "event_delivery",
        ["subscription_id", "next_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_event_delivery_object",
        "event_delivery",
        ["subscription_id", "object_key", "event_id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index("ix_event_delivery_state", "event_delivery", ["subscription_id", "status", "id"])
    op.create_index("ix_event_delivery_finished", "event_delivery", ["finished_at"])


def downgrade() -> None:
    op.drop_table("event_delivery")
    op.drop_table("event_subscription")
