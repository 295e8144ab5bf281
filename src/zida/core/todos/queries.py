"""Reading to-dos: one by id or by its creator's key, and a user's to-dos by role, page by page.

A user sees a to-do he created, executes or takes part in; any other to-do (another corp's too) is not found.
Two kinds are read alike: clients' to-dos (``todo_task``) and approval tasks' (the task rows themselves,
``zida.core.todos.approvals``). Pages are keyset pages over (sort value, row id), an approval to-do's row id being
its task id negated: the cursor is ``<value>.<id>`` of the last row, opaque to clients. ``done`` in a query is the
to-do's own state (every executor done, or marked done as a whole).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from zida.core.errors import InvalidArgument, NotFound
from zida.core.todos.approvals import (
    APPROVAL_TODO_COLUMNS,
    APPROVAL_TODO_FROM,
    approval_task_of,
    approval_todo,
    approval_todo_source,
    find_approval_todo,
)
from zida.core.todos.models import ANY_ROLE, CREATOR, EXECUTOR, PARTICIPANT, Executor, Todo, TodoPage, TodoQuery
from zida.db import Connection, Row

__all__ = [
    "find_todo",
    "get_todo",
    "get_todo_by_source",
    "load_todos",
    "query_todos",
    "todo_not_found",
    "users_by_union_id",
]

_COLUMNS = (
    "t.id, t.todo_id, t.corp_pk, t.creator_user_id, t.modifier_user_id, t.subject, t.description, t.due_time,"
    " t.priority, t.done, t.finished_at, t.app_url, t.pc_url, t.source, t.source_id, t.details,"
    " t.created_at, t.modified_at"
)
# Sort keys: a due time absent sorts after every due time (ascending).
_ORDER = {"created": "t.created_at", "modified": "t.modified_at", "due": "COALESCE(t.due_time, 9007199254740991)"}
_CURSOR = re.compile(r"(-?[0-9]{1,19})\.(-?[0-9]{1,19})")


def todo_not_found(todo_id: str) -> NotFound:
    """The error for a to-do the user does not see."""
    return NotFound(f"to-do {todo_id} does not exist or the user may not see it", reason="todo.not_found",
                    param="todo")  # fmt: skip


def _todo(row: Row, members: Sequence[Row]) -> Todo:
    details = row["details"]
    return Todo(
        pk=int(row["id"]),
        todo_id=row["todo_id"],
        corp_pk=int(row["corp_pk"]),
        creator_user_id=row["creator_user_id"],
        modifier_user_id=row["modifier_user_id"],
        subject=row["subject"],
        description=row["description"],
        due_time=row["due_time"],
        priority=row["priority"],
        done=bool(row["done"]),
        finished_at=row["finished_at"],
        app_url=row["app_url"],
        pc_url=row["pc_url"],
        source=row["source"],
        source_id=row["source_id"],
        approval_task_id=None,
        details=orjson.loads(details) if isinstance(details, str | bytes) else dict(details or {}),
        executors=tuple(Executor(m["user_id"], bool(m["done"])) for m in members if m["role"] == EXECUTOR),
        participants=tuple(m["user_id"] for m in members if m["role"] == PARTICIPANT),
        created_at=int(row["created_at"]),
        modified_at=int(row["modified_at"]),
    )


async def load_todos(conn: Connection, rows: Sequence[Row]) -> list[Todo]:
    """To-dos of some ``todo_task`` rows (``_COLUMNS``), with their members, in the rows' order."""
    if not rows:
        return []
    names = {f"p{i}": int(r["id"]) for i, r in enumerate(rows)}
    members = await conn.fetch(
        "SELECT todo_pk, role, user_id, done FROM todo_member"
        f" WHERE todo_pk IN ({', '.join(':' + n for n in names)}) ORDER BY todo_pk, role, position",
        names,
    )
    by_todo: dict[int, list[Row]] = {}
    for m in members:
        by_todo.setdefault(int(m["todo_pk"]), []).append(m)
    return [_todo(r, by_todo.get(int(r["id"]), [])) for r in rows]


async def find_todo(conn: Connection, corp_pk: int, todo_id: str) -> Todo | None:
    """A to-do of the corp by id, whoever may see it."""
    task_id = approval_task_of(todo_id)
    if task_id is not None:
        return await find_approval_todo(conn, corp_pk, task_id)
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM todo_task t WHERE t.todo_id = :id AND t.corp_pk = :c",
                              {"id": todo_id, "c": corp_pk})  # fmt: skip
    return None if row is None else (await load_todos(conn, [row]))[0]


async def get_todo(conn: Connection, corp_pk: int, todo_id: str, user_id: str) -> Todo:
    """A to-do ``user_id`` sees (creator, executor or participant); else ``NotFound``."""
    todo = await find_todo(conn, corp_pk, todo_id)
    if todo is None or not todo.role_of(user_id):
        raise todo_not_found(todo_id)
    return todo


async def get_todo_by_source(conn: Connection, corp_pk: int, source_id: str, user_id: str) -> Todo:
    """The to-do with this creator's key that ``user_id`` sees: his own first, else the oldest he takes part in;
    else the to-do of the approval task with this id (its ``source_id``) if he is its assignee or originator."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM todo_task t WHERE t.corp_pk = :c AND t.source_id = :s"
        " AND (t.creator_user_id = :u OR EXISTS (SELECT 1 FROM todo_member m WHERE m.todo_pk = t.id"
        " AND m.user_id = :u)) ORDER BY CASE WHEN t.creator_user_id = :u THEN 0 ELSE 1 END, t.id LIMIT 1",
        {"c": corp_pk, "s": source_id, "u": user_id},
    )
    if rows:
        return (await load_todos(conn, rows))[0]
    if source_id.isascii() and source_id.isdigit() and len(source_id) <= 18:
        todo = await find_approval_todo(conn, corp_pk, int(source_id))
        if todo is not None and todo.role_of(user_id):
            return todo
    raise NotFound(f"no to-do with source id {source_id} that the user may see", reason="todo.not_found",
                   param="source_id")  # fmt: skip


def _role_condition(role: str) -> str:
    if role == CREATOR:
        return "t.creator_user_id = :u"
    return f"EXISTS (SELECT 1 FROM todo_member m WHERE m.todo_pk = t.id AND m.user_id = :u AND m.role = '{role}')"


def _cursor(value: str) -> tuple[int, int]:
    match = _CURSOR.fullmatch(value)
    parts = (int(match.group(1)), int(match.group(2))) if match is not None else None
    if parts is None or not all(-(2**63) < part < 2**63 for part in parts):
        raise InvalidArgument("{param} is not a cursor this server gave", reason="argument.invalid", param="cursor")
    return parts


async def query_todos(conn: Connection, corp_pk: int, user_id: str, query: TodoQuery) -> TodoPage:
    """One page of ``user_id``'s to-dos, clients' and approval tasks' merged in one order (see ``TodoQuery``)."""
    if query.order_by not in _ORDER:
        raise InvalidArgument(f"to-dos cannot be ordered by {query.order_by}", reason="argument.invalid",
                              param="order_by")  # fmt: skip
    for group in query.roles:
        for role in group:
            if role not in (EXECUTOR, CREATOR, PARTICIPANT):
                raise InvalidArgument(f"unknown role {role!r}: executor, creator or participant",
                                      reason="argument.invalid", param="roles")  # fmt: skip
    groups = [g for g in query.roles if g] or list(ANY_ROLE)
    params: dict[str, Any] = {"c": corp_pk, "u": user_id, "limit": query.limit + 1}
    if query.subject:
        params["subject"] = "%" + re.sub(r"([\\%_])", r"\\\1", query.subject) + "%"
    after = _cursor(query.after) if query.after else None
    direction, compare = ("DESC", "<") if query.descending else ("ASC", ">")
    if after is not None:
        params.update(kv=after[0], kid=after[1])
    clients = await _client_rows(conn, groups, query, params, direction, compare)
    approvals = await _approval_rows(conn, groups, query, params, direction, compare)
    # one order over both kinds: (sort value, row id), the row id of an approval to-do its task id negated
    merged = sorted(
        [(int(r["sort_key"]), int(r["id"]), r, False) for r in clients]
        + [(int(r["sort_key"]), -int(r["task_id"]), r, True) for r in approvals],
        key=lambda item: (item[0], item[1]),
        reverse=query.descending,
    )
    more = len(merged) > query.limit
    merged = merged[: query.limit]
    loaded = iter(await load_todos(conn, [r for _, _, r, approval in merged if not approval]))
    todos = [approval_todo(r) if approval else next(loaded) for _, _, r, approval in merged]
    cursor = f"{merged[-1][0]}.{merged[-1][1]}" if merged and more else None
    return TodoPage(todos, cursor)


async def _client_rows(
    conn: Connection, groups: list[tuple[str, ...]], query: TodoQuery, params: dict[str, Any], direction: str,
    compare: str,
) -> list[Row]:  # fmt: skip
    roles_sql = " OR ".join("(" + " AND ".join(_role_condition(r) for r in sorted(set(g))) + ")" for g in groups)
    # The user's to-dos found by index first (as a member, as the creator), then the roles asked for.
    mine = (
        "t.id IN (SELECT todo_pk FROM todo_member WHERE corp_pk = :c AND user_id = :u"
        " UNION SELECT id FROM todo_task WHERE corp_pk = :c AND creator_user_id = :u)"
    )
    where = [f"t.corp_pk = :c AND {mine} AND ({roles_sql})"]
    values = dict(params)
    if query.done is not None:
        where.append("t.done = :done")
        values["done"] = query.done
    if query.due_from is not None:
        where.append("t.due_time >= :due_from")
        values["due_from"] = query.due_from
    if query.due_to is not None:
        where.append("t.due_time <= :due_to")
        values["due_to"] = query.due_to
    if query.subject:
        where.append(f"t.subject {conn.sql.like} :subject ESCAPE '\\'")  # ignoring case, on both databases
    if query.kind:
        where.append(f"COALESCE({conn.sql.json_text('t.details', 'kind')}, 'todo') = :kind")
        values["kind"] = query.kind
    key = _ORDER[query.order_by]
    if "kv" in values:
        where.append(f"({key} {compare} :kv OR ({key} = :kv AND t.id {compare} :kid))")
    return await conn.fetch(
        f"SELECT {_COLUMNS}, {key} AS sort_key FROM todo_task t WHERE {' AND '.join(where)}"
        f" ORDER BY {key} {direction}, t.id {direction} LIMIT :limit",
        values,
    )


async def _approval_rows(
    conn: Connection, groups: list[tuple[str, ...]], query: TodoQuery, params: dict[str, Any], direction: str,
    compare: str,
) -> list[Row]:  # fmt: skip
    source = approval_todo_source(
        groups,
        query.order_by,
        done=query.done,
        due=query.due_from is not None or query.due_to is not None,
        subject=bool(query.subject),
        kind=query.kind,
        like=conn.sql.like,
    )
    if source.where is None:
        return []
    key = source.sort_key
    where = [source.mine, source.where]
    if "kv" in params:
        # the row id of an approval to-do is its task id negated: the opposite order of task ids
        reverse = ">" if compare == "<" else "<"
        where.append(f"({key} {compare} :kv OR ({key} = :kv AND t.id {reverse} -CAST(:kid AS BIGINT)))")
    task_direction = "ASC" if direction == "DESC" else "DESC"
    return await conn.fetch(
        f"SELECT {APPROVAL_TODO_COLUMNS}, {key} AS sort_key FROM {APPROVAL_TODO_FROM} WHERE {' AND '.join(where)}"
        f" ORDER BY sort_key {direction}, t.id {task_direction} LIMIT :limit",
        params,
    )


async def users_by_union_id(conn: Connection, corp_pk: int, union_ids: Sequence[str]) -> dict[str, str]:
    """The user ids of the corp's users with these unionIds (unknown ones are absent; deactivated ones included)."""
    wanted = sorted({u for u in union_ids if u})
    if not wanted:
        return {}
    names = {f"n{i}": v for i, v in enumerate(wanted)}
    rows = await conn.fetch(
        "SELECT union_id, user_id FROM org_user WHERE corp_pk = :c"
        f" AND union_id IN ({', '.join(':' + n for n in names)})",
        {"c": corp_pk, **names},
    )
    return {r["union_id"]: r["user_id"] for r in rows}
