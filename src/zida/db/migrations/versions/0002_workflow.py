"""Workflow: process instances, tasks, operation records, notifications (CC, urge) and the event outbox.

Revision ID: 0002
Revises: 0001

A process instance is the engine's state (JSON) for one record of a process form; ``lock_version`` guards
against lost updates. Each task the engine ever created is a row, so inboxes are indexed queries. Task ids
are ``process_instance.id * 1_000_000 + n`` (n = the engine's per-instance task number): numeric like the
platform's, unique, and they name their instance.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _pk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", BIGPK, primary_key=True, autoincrement=True)


def _fk(name: str, target: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, BIGPK, sa.ForeignKey(f"{target}.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "process_instance",
        _pk(),
        sa.Column("instance_id", sa.Text, nullable=False, unique=True),
        sa.Column(
            "form_instance_pk",
            BIGPK,
            sa.ForeignKey("form_instance.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        _fk("corp_pk", "corp"),
        _fk("app_pk", "app"),
        _fk("form_pk", "form"),
        sa.Column("form_version", sa.Integer, nullable=False),
        sa.Column("process_code", sa.Text, nullable=False),
        sa.Column("originator_user_id", sa.Text, nullable=False),
        sa.Column("department_id", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("state", JSON, nullable=False),
        sa.Column("lock_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
    )
    op.create_index(
        "ix_process_instance_originator", "process_instance", ["corp_pk", "originator_user_id", "created_at"]
    )

    op.create_table(
        "task",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        _fk("process_instance_pk", "process_instance"),
        _fk("corp_pk", "corp"),
        _fk("app_pk", "app"),
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("assignee_user_id", sa.Text, nullable=False),
        sa.Column("actor_user_id", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("active_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
    )
    op.create_index("ix_task_instance", "task", ["process_instance_pk", "id"])
    op.create_index("ix_task_inbox", "task", ["corp_pk", "assignee_user_id", "status", "created_at"])

    op.create_table(
        "operation_record",
        _pk(),
        _fk("process_instance_pk", "process_instance"),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("actor_user_id", sa.Text),
        sa.Column("node_id", sa.Text),
        sa.Column("task_id", sa.BigInteger),
        sa.Column("result", sa.Text),
        sa.Column("remark", sa.Text, nullable=False, server_default=""),
        sa.Column("user_ids", JSON, nullable=False),
        sa.Column("target_node_id", sa.Text),
        sa.Column("on_behalf", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("digital_sign", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_operation_record_instance", "operation_record", ["process_instance_pk", "id"])

    op.create_table(
        "process_notification",
        _pk(),
        _fk("process_instance_pk", "process_instance"),
        _fk("corp_pk", "corp"),
        _fk("app_pk", "app"),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("node_id", sa.Text),
        sa.Column("task_id", sa.BigInteger),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("sender_user_id", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_process_notification_user", "process_notification", ["corp_pk", "user_id", "kind", "created_at"]
    )
    op.create_index("ix_process_notification_instance", "process_notification", ["process_instance_pk"])

    op.create_table(
        "outbox_event",
        _pk(),
        _fk("corp_pk", "corp"),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("delivered_at", sa.BigInteger),
    )
    op.create_index(
        "ix_outbox_event_pending",
        "outbox_event",
        ["id"],
        postgresql_where=sa.text("delivered_at IS NULL"),
        sqlite_where=sa.text("delivered_at IS NULL"),
    )
    op.create_index("ix_outbox_event_corp", "outbox_event", ["corp_pk", "id"])


def downgrade() -> None:
    op.drop_table("outbox_event")
    op.drop_table("process_notification")
    op.drop_table("operation_record")
    op.drop_table("task")
    op.drop_table("process_instance")
