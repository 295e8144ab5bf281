"""Approval to-dos are read from the task rows (``zida.core.todos.approvals``), no longer copied into ``todo_task``.

The copies written by 0014's approval steps are removed (with their members): each is the to-do of a task that is
still there, so nothing is lost. ``todo_task.approval_task_id`` goes, and a client's ``source_id`` is unique per
creator without the exception the copies needed.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM todo_member WHERE todo_pk IN (SELECT id FROM todo_task WHERE approval_task_id IS NOT NULL)")
    op.execute("DELETE FROM todo_task WHERE approval_task_id IS NOT NULL")
    op.drop_index("uq_todo_task_source", table_name="todo_task")
    with op.batch_alter_table("todo_task") as batch:
        batch.drop_column("approval_task_id")
    op.create_index("uq_todo_task_source", "todo_task", ["corp_pk", "creator_user_id", "source_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_todo_task_source", table_name="todo_task")
    with op.batch_alter_table("todo_task") as batch:
        batch.add_column(sa.Column("approval_task_id", sa.BigInteger, unique=True))
    op.create_index(
        "uq_todo_task_source",
        "todo_task",
        ["corp_pk", "creator_user_id", "source_id"],
        unique=True,
        postgresql_where=sa.text("approval_task_id IS NULL"),
        sqlite_where=sa.text("approval_task_id IS NULL"),
    )
