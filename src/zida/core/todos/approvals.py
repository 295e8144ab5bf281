"""The to-dos of approval tasks: each task the engine created is its assignee's to-do, read from the task's row.

Nothing is copied: an approval to-do is the task seen as a to-do, so the approval step writes no to-do rows (it
cost about 6% of an approval's database and server time when it did) and the two can never disagree. Its id is
``approval-<taskId>``; subject the instance's title; creator the originator; the assignee its one executor;
``source`` ``approval`` and ``source_id`` the task id; links to the approval's page in the console
(``/console/approvals/<id>``, where its assignee acts on it; also its events' ``url``); created when the task was,
done when the task ended (completed, cancelled, transferred — its successor task is a to-do of its own —,
returned, terminated), ``modified_at`` then. Choice: every task counts, one the engine created and ended in the same
step (an approver passed over automatically) too, as a to-do done at once. These to-dos have no audit rows or
``todo.*`` events of their own (their history is the instance's: operation records, ``task.*`` events); they have no
participants, due time or priority, and they cannot be changed through the to-do actions (the task is executed
instead).

:func:`approval_todo_source` is the query side: what ``zida.core.todos.queries`` selects them from and filters
them with, keyed like client to-dos (their row id is the task id negated, so one keyset covers both kinds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zida.core.todos.models import APPROVAL_SOURCE, CREATOR, EXECUTOR, Executor, Todo
from zida.db import Connection, Row

__all__ = [
    "APPROVAL_TODO_COLUMNS",
    "APPROVAL_TODO_FROM",
    "ApprovalTodoSource",
    "approval_task_of",
    "approval_todo",
    "approval_todo_id",
    "approval_todo_source",
    "find_approval_todo",
    "instance_url",
]

_OPEN = ("RUNNING", "PAUSED")  # zida.core.workflow.models.OPEN_TASK_STATUSES
_ID = re.compile(r"approval-([0-9]{1,18})")

# The columns an approval to-do is built from (``t`` the task, ``pi`` its instance, ``fi`` the instance's record).
APPROVAL_TODO_COLUMNS = (
    "t.id AS task_id, t.corp_pk, t.assignee_user_id, t.status, t.created_at, t.finished_at,"
    " pi.instance_id, pi.originator_user_id, fi.title"
)
APPROVAL_TODO_FROM = (
    "task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
    " JOIN form_instance fi ON fi.id = pi.form_instance_pk"
)


def instance_url(instance_id: str) -> str:
    """The page of a process instance its to-dos, notifications and events link to: the console's, where a person
    reads and acts on it (a server with the console off answers 404 there; the admin API has the instance too)."""
    return f"/console/approvals/{instance_id}"


def approval_todo_id(task_id: int) -> str:
    """The to-do id of an approval task."""
    return f"approval-{task_id}"


def approval_task_of(todo_id: str) -> int | None:
    """The approval task a to-do id names (None: a client's to-do id)."""
    match = _ID.fullmatch(todo_id)
    return int(match.group(1)) if match is not None else None


def approval_todo(row: Row) -> Todo:
    """The to-do of one task row (:data:`APPROVAL_TODO_COLUMNS`)."""
    task_id = int(row["task_id"])
    done = row["status"] not in _OPEN
    url = instance_url(row["instance_id"])
    finished_at = row["finished_at"] if done else None
    return Todo(
        pk=-task_id,
        todo_id=approval_todo_id(task_id),
        corp_pk=int(row["corp_pk"]),
        creator_user_id=row["originator_user_id"],
        modifier_user_id=None,
        subject=str(row["title"])[:1024],
        description=None,
        due_time=None,
        priority=None,
        done=done,
        finished_at=finished_at,
        app_url=url,
        pc_url=url,
        source=APPROVAL_SOURCE,
        source_id=str(task_id),
        approval_task_id=task_id,
        details={},
        executors=(Executor(row["assignee_user_id"], done),),
        participants=(),
        created_at=int(row["created_at"]),
        modified_at=int(finished_at if finished_at is not None else row["created_at"]),
    )


async def find_approval_todo(conn: Connection, corp_pk: int, task_id: int) -> Todo | None:
    """The to-do of a task of the corp, whoever may see it."""
    row = await conn.fetchrow(
        f"SELECT {APPROVAL_TODO_COLUMNS} FROM {APPROVAL_TODO_FROM} WHERE t.id = :t AND t.corp_pk = :c",
        {"t": task_id, "c": corp_pk},
    )
    return None if row is None else approval_todo(row)


@dataclass(frozen=True, slots=True)
class ApprovalTodoSource:
    """How one page query reads approval to-dos: the rows a user's roles reach (``mine``), and the SQL of the
    query's filters and sort key over them (``where``: None when no approval to-do can match)."""

    mine: str
    where: str | None
    sort_key: str


# Sort keys (zida.core.todos.queries._ORDER): an approval to-do has no due time, so it sorts after every one.
_ORDER = {"created": "t.created_at", "modified": "COALESCE(t.finished_at, t.created_at)", "due": "9007199254740991"}


def approval_todo_source(
    groups: list[tuple[str, ...]],
    order_by: str,
    *,
    done: bool | None,
    due: bool,
    subject: bool,
    kind: str | None,
    like: str = "LIKE",
) -> ApprovalTodoSource:
    """The approval side of a to-do page: ``groups`` the role groups asked for (any group, every role in it);
    ``done``, ``due`` (a due-time bound is set), ``subject`` (a subject is searched, with the database's ``like``
    that ignores case) and ``kind`` the query's filters. Parameters: ``:c`` corp, ``:u`` user, ``:subject`` as the
    client to-dos' query binds them."""
    roles = {role for group in groups for role in group}
    parts = []
    if EXECUTOR in roles:
        parts.append("SELECT id FROM task WHERE corp_pk = :c AND assignee_user_id = :u")
    if CREATOR in roles:
        parts.append(
            "SELECT t2.id FROM process_instance p2 JOIN task t2 ON t2.process_instance_pk = p2.id"
            " WHERE p2.corp_pk = :c AND p2.originator_user_id = :u"
        )
    conditions = {EXECUTOR: "t.assignee_user_id = :u", CREATOR: "pi.originator_user_id = :u"}
    reachable = [g for g in groups if all(r in conditions for r in g)]  # participants: none
    if not parts or not reachable or due or (kind or "todo") != "todo":
        return ApprovalTodoSource("", None, _ORDER[order_by])
    open_list = ", ".join(f"'{s}'" for s in _OPEN)
    where = [
        "t.corp_pk = :c",
        "(" + " OR ".join("(" + " AND ".join(conditions[r] for r in sorted(set(g))) + ")" for g in reachable) + ")",
    ]
    if done is not None:
        where.append(f"t.status {'NOT IN' if done else 'IN'} ({open_list})")
    if subject:
        where.append(f"fi.title {like} :subject ESCAPE '\\'")
    return ApprovalTodoSource(f"t.id IN ({' UNION '.join(parts)})", " AND ".join(where), _ORDER[order_by])
