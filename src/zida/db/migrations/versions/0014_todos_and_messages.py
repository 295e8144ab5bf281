"""To-dos and work notifications.

* ``todo_task``: one to-do of a corp (public id ``todo_id``), its creator, subject, description, due time,
  priority, detail links, whether it is done (``done``, ``finished_at``), where it came from (``source``: the app
  credential that created it, or ``approval``; ``source_id``: the creator's own key for it, unique per creator),
  for an approval's to-do the task it stands for (``approval_task_id``, unique: the step that ends the task
  completes it), and the rest of what a client sent (``details``: content fields, notify configs, actions…).
* ``todo_member``: the executors and participants of a to-do (``role``), an executor's own status (``done``);
  indexed for "my to-dos" by user and role.
* ``message``: one work notification as sent (its opaque ``message_key``, who sent it, its kind and body, the
  receivers it named that were unknown, whether it was recalled); its numeric id is what the send answers.
* ``message_inbox``: the notification in one recipient's inbox, read or not; indexed for a user's inbox, newest
  first.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BIGPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CLIENT_TODO = sa.text("approval_task_id IS NULL")


def upgrade() -> None:
    op.create_table(
        "todo_task",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("todo_id", sa.Text, nullable=False, unique=True),
        sa.Column("creator_user_id", sa.Text, nullable=False),
        sa.Column("modifier_user_id", sa.Text),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("due_time", sa.BigInteger),
        sa.Column("priority", sa.Integer),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("app_url", sa.Text),
        sa.Column("pc_url", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text),
        sa.Column("approval_task_id", sa.BigInteger, unique=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("modified_at", sa.BigInteger, nullable=False),
    )
    # A client's sourceId is unique per creator; an approval's to-dos (named by their task) are outside the rule,
    # so that no client can block an approval step by taking a task's id first.
    op.create_index(
        "uq_todo_task_source",
        "todo_task",
        ["corp_pk", "creator_user_id", "source_id"],
        unique=True,
        postgresql_where=CLIENT_TODO,
        sqlite_where=CLIENT_TODO,
    )
    op.create_index("ix_todo_task_creator", "todo_task", ["corp_pk", "creator_user_id", "id"])
    op.create_index("ix_todo_task_source", "todo_task", ["corp_pk", "source_id"])
    op.create_table(
        "todo_member",
        sa.Column("todo_pk", BIGPK, sa.ForeignKey("todo_task.id", ondelete="CASCADE"), nullable=False),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("done_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("todo_pk", "role", "user_id", name="pk_todo_member"),
    )
    op.create_index("ix_todo_member_user", "todo_member", ["corp_pk", "user_id", "role", "todo_pk"])
    op.create_table(
        "message",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_key", sa.Text, nullable=False, unique=True),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("agent_id", sa.BigInteger),
        sa.Column("msgtype", sa.Text, nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("to_all", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("invalid_user_ids", JSON, nullable=False),
        sa.Column("invalid_dept_ids", JSON, nullable=False),
        sa.Column("source_id", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("recalled_at", sa.BigInteger),
    )
    op.create_index("ix_message_sender", "message", ["corp_pk", "sender", "id"])
    op.create_table(
        "message_inbox",
        sa.Column("id", BIGPK, primary_key=True, autoincrement=True),
        sa.Column("message_pk", BIGPK, sa.ForeignKey("message.id", ondelete="CASCADE"), nullable=False),
        sa.Column("corp_pk", BIGPK, sa.ForeignKey("corp.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("read_at", sa.BigInteger),
        sa.UniqueConstraint("message_pk", "user_id", name="uq_message_inbox_user"),
    )
    op.create_index("ix_message_inbox_user", "message_inbox", ["corp_pk", "user_id", "id"])


def downgrade() -> None:
    op.drop_table("message_inbox")
    op.drop_table("message")
    op.drop_table("todo_member")
    op.drop_table("todo_task")
