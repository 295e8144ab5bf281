"""The to-dos of approval tasks: written by the approval step that creates or ends the task, in its transaction.

A task created open (running, or paused behind signers added before its assignee) gives its assignee a to-do:
subject the instance's title, creator the originator, ``source`` ``approval``, ``source_id`` the task id, links to
the instance's page in the admin API (``/admin/v1/process-instances/<id>``, as its events' ``url``). When the task
ends — completed, cancelled, transferred (its successor task gets a to-do of its own), returned, terminated — the
to-do and its executor are done. These to-dos have no audit rows or ``todo.*`` events of their own: their history
is the instance's (operation records, ``task.*`` events).

The step writes them batched: on SQLite two statements (the to-dos, upserted by task; their executors, upserted
by to-do), on PostgreSQL two more CTEs of the step's one statement (:data:`APPROVAL_TODO_CTES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from zida.core.todos.models import APPROVAL_SOURCE
from zida.db import Connection
from zida.ids import new_id

if TYPE_CHECKING:
    from zida.core.workflow.models import ProcessInstance
    from zida.core.workflow.store import TaskChange

__all__ = ["APPROVAL_TODO_CTES", "ApprovalTodo", "approval_todo_rows", "approval_todos", "write_approval_todos"]

_OPEN = ("RUNNING", "PAUSED")  # zida.core.workflow.models.OPEN_TASK_STATUSES


@dataclass(frozen=True, slots=True)
class ApprovalTodo:
    """The to-do of one approval task as a step leaves it (``todo_id`` is used when it is created)."""

    todo_id: str
    task_id: int
    assignee: str
    creator: str
    subject: str
    url: str
    done: bool


def instance_url(instance_id: str) -> str:
    """The page of a process instance the to-dos and notifications of its approval link to."""
    return f"/admin/v1/process-instances/{instance_id}"


def approval_todos(inst: ProcessInstance, changes: Sequence[TaskChange]) -> list[ApprovalTodo]:
    """The to-dos one step's task changes create (tasks created open) and complete (open tasks that ended)."""
    out = []
    for c in changes:
        is_open = c.status in _OPEN
        if c.new != is_open:  # created already ended, or an open task still open (resumed)
            continue
        out.append(
            ApprovalTodo(
                todo_id=new_id("TODO", 24) if c.new else "",
                task_id=c.task_id,
                assignee=c.assignee_user_id,
                creator=inst.originator_user_id,
                subject=inst.title[:1024],
                url=instance_url(inst.instance_id),
                done=not is_open,
            )
        )
    return out


def approval_todo_rows(todos: Sequence[ApprovalTodo], now: int) -> list[dict[str, Any]]:
    """The rows the statements bind (one per to-do)."""
    return [
        {
            "id": t.todo_id or new_id("TODO", 24),  # a task ended before Zida kept to-dos gets a done one
            "task": t.task_id,
            "usr": t.assignee,
            "creator": t.creator,
            "subject": t.subject,
            "url": t.url,
            "done": t.done,
            "fin": now if t.done else None,
        }
        for t in todos
    ]


_UPSERT_TODO = (
    "INSERT INTO todo_task (corp_pk, todo_id, creator_user_id, subject, done, finished_at, app_url, pc_url, source,"
    " source_id, approval_task_id, details, created_at, modified_at)"
)
_ON_TODO = (
    " ON CONFLICT (approval_task_id) DO UPDATE SET done = excluded.done, finished_at = excluded.finished_at,"
    " modified_at = excluded.modified_at"
)
_UPSERT_MEMBER = "INSERT INTO todo_member (todo_pk, corp_pk, role, user_id, position, done, done_at)"
_ON_MEMBER = " ON CONFLICT (todo_pk, role, user_id) DO UPDATE SET done = excluded.done, done_at = excluded.done_at"


async def write_approval_todos(conn: Connection, corp_pk: int, todos: Sequence[ApprovalTodo], now: int) -> None:
    """The step's to-dos, in the caller's transaction (two statements; none without to-dos)."""
    if not todos:
        return
    rows = [{**r, "c": corp_pk, "now": now} for r in approval_todo_rows(todos, now)]
    await conn.executemany(
        _UPSERT_TODO + f" VALUES (:c, :id, :creator, :subject, :done, :fin, :url, :url, '{APPROVAL_SOURCE}',"
        " CAST(:task AS TEXT), :task, '{}', :now, :now)" + _ON_TODO,
        rows,
    )
    await conn.executemany(
        _UPSERT_MEMBER + " SELECT id, corp_pk, 'executor', :usr, 0, :done, :fin FROM todo_task"
        " WHERE approval_task_id = :task" + _ON_MEMBER,
        rows,
    )


# PostgreSQL: the same writes as CTEs of the approval step's statement (``zida.core.workflow.step_store``), each
# selecting from its ``guard`` (so a step that lost its race writes none); parameters ``todos`` (the JSON of
# :func:`approval_todo_rows`), ``corp_pk``, ``now``.
APPROVAL_TODO_CTES = (
    ", approval_todos AS (" + _UPSERT_TODO + " SELECT :corp_pk, x.id, x.creator, x.subject, x.done, x.fin, x.url,"
    f" x.url, '{APPROVAL_SOURCE}', CAST(x.task AS TEXT), x.task, CAST('{{}}' AS jsonb), :now, :now"
    " FROM guard, jsonb_to_recordset(CAST(:todos AS jsonb))"
    " AS x(id TEXT, task BIGINT, creator TEXT, subject TEXT, url TEXT, done BOOLEAN, fin BIGINT)"
    + _ON_TODO
    + " RETURNING id, approval_task_id, done, finished_at)"
    ", approval_todo_members AS ("
    + _UPSERT_MEMBER
    + " SELECT t.id, :corp_pk, 'executor', x.usr, 0, t.done, t.finished_at FROM approval_todos t"
    " JOIN jsonb_to_recordset(CAST(:todos AS jsonb)) AS x(task BIGINT, usr TEXT) ON x.task = t.approval_task_id"
    + _ON_MEMBER
    + ")"
)


def todos_param(todos: Sequence[ApprovalTodo], now: int) -> str:
    """The ``todos`` parameter of :data:`APPROVAL_TODO_CTES`."""
    return orjson.dumps(approval_todo_rows(todos, now)).decode()
