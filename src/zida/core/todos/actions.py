"""Actions on to-dos: create, update, set executors' status, delete — each one transaction writing the to-do's rows,
its audit row and its event (``todo.created``, ``todo.updated``, ``todo.deleted``; ``zida.core.audit``).

Rules (each tested):

* **People** (creator, executors, participants, the operator) are active users of the corp; an unknown or
  deactivated one is ``InvalidArgument`` naming him, and nothing is written. Repeated names count once.
* **The acting user** (the one a call is made for) must see the to-do: its creator, an executor or a participant;
  any other to-do is ``NotFound`` (another corp's too).
* **sourceId** is the creator's own key: unique per creator (a second to-do of his with it is ``Conflict``).
  Choice (DingTalk does not say): unique per creator, not per corp, so two integrations of two users never collide.
* **Detail links** are optional. DingTalk requires ``detailUrl`` for work to-dos created since 2024-02-01; Zida
  accepts to-dos without one (integrations written before still work) and checks the links given: an http(s) URL
  or a path, at most 2,048 characters.
* **done**: a to-do with executors is done when every executor is; marking the to-do done (or not) marks every
  executor so. A to-do without executors is done only when marked so. ``finished_at`` is when it became done.
* **An approval task's to-do** (``source`` ``approval``) follows its task (``zida.core.todos.approvals``): it cannot
  be changed or deleted through these actions (``Conflict``): the task is executed instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from zida.clock import now_ms
from zida.core.audit import changed_fields, created_fields, record_change, removed_fields
from zida.core.errors import Conflict, InvalidArgument
from zida.core.org.models import CorpRef
from zida.core.org.repository import find_users
from zida.core.todos.models import EXECUTOR, PARTICIPANT, Executor, Todo, TodoChanges, TodoSpec
from zida.core.todos.queries import get_todo, todo_not_found
from zida.db import Connection, Database
from zida.ids import new_id

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_PEOPLE",
    "MAX_SUBJECT",
    "create_todo",
    "delete_todo",
    "set_executor_status",
    "update_todo",
]

MAX_SUBJECT = 1024
MAX_DESCRIPTION = 4096
MAX_PEOPLE = 1000
MAX_SOURCE_ID = 128
MAX_URL = 2048
PRIORITIES = (10, 20, 30, 40)
_MAX_TIME = 2**53
# A web address, a path on this server, or a DingTalk client link (``dingtalk://dingtalkclient/page/link?url=…``, how
# integrations open a to-do in the client's side panel). Nothing else (``javascript:``, ``data:``): clients show
# these as links.
_URL = re.compile(r"(https?://|dingtalk://|/)\S*", re.I)


def _invalid(message: str, param: str, reason: str = "argument.invalid") -> InvalidArgument:
    return InvalidArgument(message, reason=reason, param=param)


def _subject(value: str | None) -> str:
    if value is None or not value.strip():
        raise _invalid("{param} is required", "subject", "argument.missing")
    if len(value) > MAX_SUBJECT:
        raise _invalid(f"{{param}} may have at most {MAX_SUBJECT} characters", "subject", "argument.too_long")
    return value


def _description(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION:
        raise _invalid(f"{{param}} may have at most {MAX_DESCRIPTION} characters", "description",
                       "argument.too_long")  # fmt: skip
    return value


def _time(value: int | None, param: str) -> int | None:
    if value is not None and not 0 <= value <= _MAX_TIME:
        raise _invalid("{param} must be a time in epoch milliseconds", param)
    return value


def _url(value: str | None, param: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_URL or not _URL.fullmatch(value):
        raise _invalid(
            f"{{param}} must be an http(s) URL, a dingtalk:// link or a path of at most {MAX_URL} characters", param
        )
    return value


def _people(values: Sequence[str], param: str) -> list[str]:
    people = list(dict.fromkeys(values))
    if len(people) > MAX_PEOPLE:
        raise _invalid(f"{{param}} may name at most {MAX_PEOPLE} people", param)
    return people


async def _check_users(conn: Connection, corp: CorpRef, named: Mapping[str, Sequence[str]]) -> None:
    """Every user named (by parameter) is an active user of the corp."""
    found = await find_users(conn, corp.pk, [u for users in named.values() for u in users])
    for param, users in named.items():
        for user_id in users:
            user = found.get(user_id)
            if user is None or not user.active:
                raise _invalid(f"{{param}}: user {user_id} does not exist or is deactivated in this corp", param,
                               "todo.unknown_user")  # fmt: skip


def _details(details: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in details.items() if v is not None}
    fields = out.get("content_fields")
    if fields is not None:
        out["content_fields"] = _content_fields(fields)
    if len(orjson.dumps(out)) > 65_536:
        raise _invalid("the to-do's other fields take more than 64 KB", "details")
    return out


def _content_fields(fields: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    if len(fields) > 100:
        raise _invalid("{param} may hold at most 100 fields", "content_fields")
    out = []
    for field in fields:
        key, value = field.get("key"), field.get("value")
        if not isinstance(key, str) or not key or not isinstance(value, str | None):
            raise _invalid("{param}: each field needs a key and a text value", "content_fields")
        out.append({"key": key, "value": value or ""})
    return out


def _overall_done(executors: Sequence[Executor], current: bool) -> bool:
    return all(e.done for e in executors) if executors else current


def _audit_values(todo: Todo) -> dict[str, Any]:
    return {
        "subject": todo.subject,
        "description": todo.description,
        "due_time": todo.due_time,
        "priority": todo.priority,
        "done": todo.done,
        "executors": [e.user_id for e in todo.executors],
        "executors_done": [e.user_id for e in todo.executors if e.done],
        "participants": list(todo.participants),
        "creator": todo.creator_user_id,
        "source_id": todo.source_id,
        "app_url": todo.app_url,
        "pc_url": todo.pc_url,
    }


async def _insert_members(tx: Connection, todo: Todo) -> None:
    rows = [
        {"t": todo.pk, "c": todo.corp_pk, "r": EXECUTOR, "u": e.user_id, "p": n, "d": e.done,
         "at": (todo.finished_at or todo.modified_at) if e.done else None}
        for n, e in enumerate(todo.executors)
    ] + [
        {"t": todo.pk, "c": todo.corp_pk, "r": PARTICIPANT, "u": u, "p": n, "d": False, "at": None}
        for n, u in enumerate(todo.participants)
    ]  # fmt: skip
    if rows:
        await tx.executemany(
            "INSERT INTO todo_member (todo_pk, corp_pk, role, user_id, position, done, done_at)"
            " VALUES (:t, :c, :r, :u, :p, :d, :at)",
            rows,
        )


async def create_todo(db: Database, corp: CorpRef, spec: TodoSpec, *, source: str, actor: str | None) -> Todo:
    """Create a to-do (see the module's rules); ``source`` is who creates it (an app credential's client id)."""
    subject = _subject(spec.subject)
    description = _description(spec.description)
    due_time = _time(spec.due_time, "due_time")
    if spec.priority is not None and spec.priority not in PRIORITIES:
        raise _invalid("{param} must be 10, 20, 30 or 40", "priority")
    if spec.source_id is not None and not 0 < len(spec.source_id) <= MAX_SOURCE_ID:
        raise _invalid(f"{{param}} must have 1 to {MAX_SOURCE_ID} characters", "source_id")
    executors = _people(spec.executors, "executors")
    participants = _people(spec.participants, "participants")
    details = _details(spec.details)
    app_url, pc_url = _url(spec.app_url, "app_url"), _url(spec.pc_url, "pc_url")
    now = now_ms()
    todo_id = new_id("TODO", 24)
    async with db.transaction() as tx:
        await _check_users(
            tx, corp, {"creator": [spec.creator_user_id], "executors": executors, "participants": participants}
        )
        pk = await tx.fetchval(
            "INSERT INTO todo_task (corp_pk, todo_id, creator_user_id, subject, description, due_time, priority, done,"
            " app_url, pc_url, source, source_id, details, created_at, modified_at) VALUES (:c, :id, :creator,"
            f" :subject, :description, :due, :priority, :done, :app_url, :pc_url, :source, :source_id,"
            f" {tx.sql.json_param('details')}, :now, :now)"
            " ON CONFLICT (corp_pk, creator_user_id, source_id) DO NOTHING RETURNING id",
            {
                "c": corp.pk,
                "id": todo_id,
                "creator": spec.creator_user_id,
                "subject": subject,
                "description": description,
                "due": due_time,
                "priority": spec.priority,
                "done": False,
                "app_url": app_url,
                "pc_url": pc_url,
                "source": source,
                "source_id": spec.source_id,
                "details": orjson.dumps(details).decode(),
                "now": now,
            },
        )
        if pk is None:
            raise Conflict(f"user {spec.creator_user_id} already has a to-do with source id {spec.source_id}",
                           reason="todo.source_exists", param="source_id")  # fmt: skip
        todo = Todo(
            pk=int(pk), todo_id=todo_id, corp_pk=corp.pk, creator_user_id=spec.creator_user_id, modifier_user_id=None,
            subject=subject, description=description, due_time=due_time, priority=spec.priority, done=False,
            finished_at=None, app_url=app_url, pc_url=pc_url, source=source, source_id=spec.source_id,
            approval_task_id=None, details=details, executors=tuple(Executor(u) for u in executors),
            participants=tuple(participants), created_at=now, modified_at=now,
        )  # fmt: skip
        await _insert_members(tx, todo)
        await record_change(tx, corp_pk=corp.pk, kind="todo", object_id=todo_id, action="created",
                            changes=created_fields(_audit_values(todo)), actor=actor, at=now)  # fmt: skip
    return todo


async def _changeable(tx: Connection, corp: CorpRef, todo_id: str, user_id: str, operator: str | None) -> Todo:
    """The to-do as stored, if ``user_id`` sees it and it is no approval task's; the operator is checked too. Its row
    is locked first (PostgreSQL), so two changes at once (two executors marking themselves done) never lose one."""
    if tx.sql.for_update:
        await tx.fetchval(
            f"SELECT id FROM todo_task WHERE todo_id = :id AND corp_pk = :c{tx.sql.for_update}",
            {"id": todo_id, "c": corp.pk},
        )
    todo = await get_todo(tx, corp.pk, todo_id, user_id)
    if todo.approval_task_id is not None:
        raise Conflict(
            f"to-do {todo_id} follows approval task {todo.approval_task_id}: it changes when the task is executed",
            reason="todo.follows_approval",
        )
    if operator is not None and operator != user_id:
        await _check_users(tx, corp, {"operator": [operator]})
    return todo


async def _rewrite(tx: Connection, corp: CorpRef, old: Todo, new: Todo, *, actor: str | None) -> bool:
    """Store ``new`` over ``old`` (its row and members) with its audit row and event; whether anything changed."""
    changes = changed_fields(_audit_values(old), _audit_values(new))
    if old.details != new.details:
        changes["details"] = {"old": dict(old.details), "new": dict(new.details)}
    if not changes:
        return False
    await tx.execute(
        "UPDATE todo_task SET subject = :subject, description = :description, due_time = :due, done = :done,"
        f" finished_at = :fin, modifier_user_id = :modifier, details = {tx.sql.json_param('details')},"
        " modified_at = :now WHERE id = :pk",
        {
            "subject": new.subject,
            "description": new.description,
            "due": new.due_time,
            "done": new.done,
            "fin": new.finished_at,
            "modifier": new.modifier_user_id,
            "details": orjson.dumps(dict(new.details)).decode(),
            "now": new.modified_at,
            "pk": new.pk,
        },
    )
    await tx.execute("DELETE FROM todo_member WHERE todo_pk = :pk", {"pk": new.pk})
    await _insert_members(tx, new)
    await record_change(tx, corp_pk=corp.pk, kind="todo", object_id=new.todo_id, action="updated", changes=changes,
                        actor=actor, at=new.modified_at)  # fmt: skip
    return True


def _finished(todo: Todo, done: bool, now: int) -> Todo:
    if done == todo.done:
        return todo
    return replace(todo, done=done, finished_at=now if done else None)


async def update_todo(
    db: Database,
    corp: CorpRef,
    todo_id: str,
    changes: TodoChanges,
    *,
    user_id: str,
    operator: str | None,
    actor: str | None,
) -> Todo:
    """Change the fields ``changes`` names of a to-do ``user_id`` sees (``operator``: who changes it, recorded)."""
    subject = _subject(changes.subject) if changes.subject is not None else None
    description = _description(changes.description)
    due_time = _time(changes.due_time, "due_time")
    executors = _people(changes.executors, "executors") if changes.executors is not None else None
    participants = _people(changes.participants, "participants") if changes.participants is not None else None
    content_fields = _content_fields(changes.content_fields) if changes.content_fields is not None else None
    now = now_ms()
    async with db.transaction() as tx:
        old = await _changeable(tx, corp, todo_id, user_id, operator)
        await _check_users(tx, corp, {"executors": executors or [], "participants": participants or []})
        new = old
        if subject is not None:
            new = replace(new, subject=subject)
        if description is not None:
            new = replace(new, description=description)
        if due_time is not None:
            new = replace(new, due_time=due_time)
        if participants is not None:
            new = replace(new, participants=tuple(participants))
        if content_fields is not None:
            new = replace(new, details={**new.details, "content_fields": content_fields})
        if executors is not None:
            status = {e.user_id: e.done for e in old.executors}
            new = replace(new, executors=tuple(Executor(u, status.get(u, False)) for u in executors))
            new = _finished(new, _overall_done(new.executors, new.done), now)
        if changes.done is not None:
            new = replace(new, executors=tuple(Executor(e.user_id, changes.done) for e in new.executors))
            new = _finished(new, changes.done, now)
        new = replace(new, modifier_user_id=operator or user_id, modified_at=now)
        if not await _rewrite(tx, corp, old, new, actor=actor):
            return old
    return new


async def set_executor_status(
    db: Database,
    corp: CorpRef,
    todo_id: str,
    statuses: Sequence[tuple[str, bool]],
    *,
    user_id: str,
    operator: str | None,
    actor: str | None,
) -> Todo:
    """Mark executors of a to-do done or not (each must be one of its executors); the to-do is done when all are."""
    if not statuses:
        raise _invalid("{param} must name at least one executor", "executor_status", "argument.missing")
    now = now_ms()
    async with db.transaction() as tx:
        old = await _changeable(tx, corp, todo_id, user_id, operator)
        current = {e.user_id for e in old.executors}
        wanted = dict(statuses)
        for executor in wanted:
            if executor not in current:
                raise _invalid(f"{{param}}: user {executor} is not an executor of to-do {todo_id}",
                               "executor_status", "todo.not_executor")  # fmt: skip
        executors = tuple(Executor(e.user_id, wanted.get(e.user_id, e.done)) for e in old.executors)
        new = _finished(replace(old, executors=executors), _overall_done(executors, old.done), now)
        new = replace(new, modifier_user_id=operator or user_id, modified_at=now)
        if not await _rewrite(tx, corp, old, new, actor=actor):
            return old
    return new


async def delete_todo(
    db: Database, corp: CorpRef, todo_id: str, *, user_id: str, operator: str | None, actor: str | None
) -> None:
    """Delete a to-do ``user_id`` sees, with its members."""
    now = now_ms()
    async with db.transaction() as tx:
        todo = await _changeable(tx, corp, todo_id, user_id, operator)
        await tx.execute("DELETE FROM todo_member WHERE todo_pk = :pk", {"pk": todo.pk})
        deleted = await tx.execute("DELETE FROM todo_task WHERE id = :pk", {"pk": todo.pk})
        if not deleted:
            raise todo_not_found(todo_id)
        changes = removed_fields(_audit_values(todo))
        await record_change(tx, corp_pk=corp.pk, kind="todo", object_id=todo_id, action="deleted", changes=changes,
                            actor=actor, at=now)  # fmt: skip
