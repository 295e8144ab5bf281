"""One engine step's writes: the instance row (guarded by its ``lock_version``), task rows, history,
notifications, outbox events and work notifications (the tasks' to-dos are the task rows themselves,
``zida.core.todos.approvals``) — on PostgreSQL as one statement of
data-modifying CTEs (a transaction by itself), on SQLite as statements in the caller's transaction."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from zida.core.events.outbox import insert_events_sql
from zida.core.messages.approvals import (
    APPROVAL_MESSAGE_CTES,
    ApprovalMessage,
    messages_param,
    write_approval_messages,
)
from zida.core.workflow.models import ProcessInstance
from zida.core.workflow.store import (
    NewNotification,
    NewOperation,
    TaskChange,
    insert_notifications,
    insert_operations,
    instance_row_params,
    save_tasks,
    task_times,
    update_process_instance,
    update_record_status,
)
from zida.db import Connection, Database

__all__ = [
    "NewEvent",
    "Step",
    "insert_started_instance",
    "reserve_instance_pk",
    "write_effects",
    "write_events",
    "write_step",
    "write_step_alone",
]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A domain event to write (``topic`` and its stored payload, ``zida.core.events.models``); ``created_of``:
    the task whose creation time goes into the event's ``data.created_at`` (read from the task's row)."""

    topic: str
    payload: dict[str, Any]
    created_of: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What one engine step writes besides the instance row: task rows, history, notifications, events."""

    tasks: Sequence[TaskChange]
    operations: Sequence[NewOperation]
    notifications: Sequence[NewNotification]
    events: Sequence[NewEvent]
    now: int
    # whether the record's mirror of the status / result changes (only then is the record row written: an
    # intermediate approval changes nothing a reader of the record sees, and a record row is costly to rewrite)
    record_changed: bool = True
    # the work notifications it sends (zida.core.messages.approvals)
    messages: Sequence[ApprovalMessage] = ()


async def reserve_instance_pk(db: Database) -> int:
    """PostgreSQL: the primary key of a new process instance, drawn from its sequence ahead of the insert (a block
    at a time), so that the rows naming it (task ids, events) can go in the same statement as the instance."""
    free = _RESERVED_PKS.setdefault(db, [])
    if not free:
        rows = await db.fetch(
            "SELECT nextval(pg_get_serial_sequence('process_instance', 'id')) AS id"
            f" FROM generate_series(1, {_RESERVED_BLOCK})"
        )
        free.extend(sorted((int(r["id"]) for r in rows), reverse=True))
    return free.pop()


# Sequence values are never given twice, so a block reserved by one process is its own; unused ones are gaps.
_RESERVED_BLOCK = 32
_RESERVED_PKS: weakref.WeakKeyDictionary[Database, list[int]] = weakref.WeakKeyDictionary()


async def insert_started_instance(
    conn: Connection,
    inst: ProcessInstance,
    record: tuple[str, dict[str, Any]],
    step: Step,
) -> None:
    """PostgreSQL: a new instance as one statement (so a transaction by itself): its record and the record's log
    (``record`` CTEs from core.records), the instance row (``inst.pk`` reserved by :func:`reserve_instance_pk`) and
    the rows of its first step; sets the record's pk. (Values naming files to attach take the caller's transaction,
    which refuses a file removed since the values were checked.)"""
    record_sql, params = record
    params = {
        **params,
        **_step_params(inst, step),
        **instance_row_params(inst),
    }
    inst.record.pk = int(await conn.fetchval("WITH " + record_sql + _START, params))


async def write_effects(conn: Connection, inst: ProcessInstance, step: Step) -> None:
    """The step's rows, in the caller's transaction (the instance row is the caller's)."""
    if conn.sql.name == "postgresql":
        await conn.fetchval(*_step_statement(inst, step, guard=None))
    else:
        await _write_rows(conn, inst, step)


async def write_step(conn: Connection, inst: ProcessInstance, step: Step) -> bool:
    """The instance's new state, if nobody changed it since it was read (else nothing and False), then the step's
    rows and the record's status. On PostgreSQL this is one statement, so ``conn`` need not be in a transaction;
    elsewhere the caller's transaction makes it one."""
    if conn.sql.name == "postgresql":
        if not await conn.fetchval(*_step_statement(inst, step, guard=inst)):
            return False
        inst.lock_version += 1
        return True
    if not await update_process_instance(conn, inst):
        return False
    await _write_rows(conn, inst, step)
    if step.record_changed:
        await update_record_status(conn, inst)
    return True


async def write_step_alone(db: Database, inst: ProcessInstance, step: Step) -> bool:
    """:func:`write_step` as a transaction of its own (on PostgreSQL its single statement is one)."""
    if db.sql.name == "postgresql":
        return await write_step(db, inst, step)
    async with db.transaction() as tx:
        return await write_step(tx, inst, step)


async def write_events(conn: Connection, inst: ProcessInstance, events: Sequence[NewEvent], now: int) -> None:
    """Events of the instance outside an engine step, in the caller's transaction."""
    await _write_events(conn, inst, events, {}, now)


async def _write_events(
    conn: Connection, inst: ProcessInstance, events: Sequence[NewEvent], created: dict[int, int], now: int
) -> None:
    missing = sorted({e.created_of for e in events if e.created_of is not None} - created.keys())
    created = {**created, **await task_times(conn, missing)}
    rows = []
    for e in events:
        payload = e.payload
        if e.created_of is not None:
            payload = {**payload, "data": {**payload["data"], "created_at": created.get(e.created_of, now)}}
        rows.append(
            {"corp_pk": inst.corp_pk, "topic": e.topic, "payload": orjson.dumps(payload).decode(), "created_at": now}
        )
    if rows:
        await conn.executemany(insert_events_sql(conn), rows)


async def _write_rows(conn: Connection, inst: ProcessInstance, step: Step) -> None:
    created = await save_tasks(conn, inst, step.tasks, step.now)
    await insert_operations(conn, inst.pk, step.operations, step.now)
    await insert_notifications(conn, inst, step.notifications, step.now)
    await _write_events(conn, inst, step.events, created, step.now)
    await write_approval_messages(conn, inst.corp_pk, step.messages, step.now)


def _json_rows(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


def _step_statement(inst: ProcessInstance, step: Step, *, guard: ProcessInstance | None) -> tuple[str, dict[str, Any]]:
    """One PostgreSQL statement writing a step: data-modifying CTEs that all select from ``guard`` (the instance
    row's guarded UPDATE, or just its pk), so a lost race writes nothing."""
    params = _step_params(inst, step)
    if guard is None:
        return "WITH guard AS (SELECT CAST(:pk AS BIGINT) AS id)" + _STEP_CTES + " SELECT 1", params
    params.update(
        state=guard.state.to_json(),
        status=guard.status,
        result=guard.result,
        modified_at=guard.modified_at,
        finished_at=guard.finished_at,
        lock_version=guard.lock_version,
        instance_id=guard.instance_id,
    )
    if step.record_changed:
        params["record_pk"] = guard.record.pk
    return (_GUARDED_STEP_RECORD if step.record_changed else _GUARDED_STEP), params


def _step_params(inst: ProcessInstance, step: Step) -> dict[str, Any]:
    """The step's rows as the parameters of :data:`_STEP_CTES`.

    Each table's rows go in as one JSON array read by ``jsonb_to_recordset``: few parameters to encode, and a
    plan PostgreSQL can cache (with ``unnest`` of array parameters it re-plans every call, since it estimates
    their length from the values: ~0.3 ms of server CPU each time).
    """
    return {
        "pk": inst.pk,
        "corp_pk": inst.corp_pk,
        "app_pk": inst.app_pk,
        "now": step.now,
        "new_tasks": _json_rows(
            [
                {
                    "id": c.task_id,
                    "node": c.node_id,
                    "usr": c.assignee_user_id,
                    "actor": c.actor_user_id,
                    "status": c.status,
                    "result": c.result,
                    "fin": c.finished_at,
                }
                for c in step.tasks
                if c.new
            ]
        ),
        "changed_tasks": _json_rows(
            [
                {
                    "id": c.task_id,
                    "status": c.status,
                    "result": c.result,
                    "actor": c.actor_user_id,
                    "active": c.active_at,
                    "fin": c.finished_at,
                }
                for c in step.tasks
                if not c.new
            ]
        ),
        "history": _json_rows(
            [
                {
                    "n": n,
                    "kind": o.kind,
                    "actor": o.actor_user_id,
                    "node": o.node_id,
                    "task": o.task_id,
                    "result": o.result,
                    "remark": o.remark,
                    "users": list(o.user_ids),
                    "target": o.target_node_id,
                    "behalf": o.on_behalf,
                    "sign": o.digital_sign,
                }
                for n, o in enumerate(step.operations)
            ]
        ),
        "notes": _json_rows(
            [
                {
                    "n": n,
                    "kind": x.kind,
                    "node": x.node_id,
                    "task": x.task_id,
                    "usr": x.user_id,
                    "sender": x.sender_user_id,
                }
                for n, x in enumerate(step.notifications)
            ]
        ),
        "events": _json_rows(
            [
                {"n": n, "type": e.topic, "payload": e.payload, "created_of": e.created_of}
                for n, e in enumerate(step.events)
            ]
        ),
        "messages": messages_param(step.messages),
    }


# The rows of a step, each CTE selecting from ``guard`` (the instance's pk, when its row was written).
_STEP_CTES = (
    ", new_tasks AS (INSERT INTO task (id, process_instance_pk, corp_pk, app_pk, node_id, assignee_user_id,"
    " actor_user_id, status, result, created_at, active_at, finished_at)"
    " SELECT x.id, guard.id, :corp_pk, :app_pk, x.node, x.usr, x.actor, x.status, x.result, :now, :now, x.fin"
    " FROM guard, jsonb_to_recordset(CAST(:new_tasks AS jsonb))"
    " AS x(id BIGINT, node TEXT, usr TEXT, actor TEXT, status TEXT, result TEXT, fin BIGINT))"
    ", changed_tasks AS (UPDATE task SET status = x.status, result = x.result,"
    " actor_user_id = COALESCE(x.actor, task.actor_user_id), active_at = COALESCE(x.active, task.active_at),"
    " finished_at = x.fin FROM guard, jsonb_to_recordset(CAST(:changed_tasks AS jsonb))"
    # (the instance's own tasks first: with an estimate of 100 JSON rows a generic plan would scan them all)
    " AS x(id BIGINT, status TEXT, result TEXT, actor TEXT, active BIGINT, fin BIGINT)"
    " WHERE task.process_instance_pk = :pk AND task.id = x.id)"
    ", history AS (INSERT INTO operation_record (process_instance_pk, kind, actor_user_id, node_id, task_id,"
    " result, remark, user_ids, target_node_id, on_behalf, digital_sign, created_at)"
    " SELECT guard.id, x.kind, x.actor, x.node, x.task, x.result, x.remark, x.users, x.target, x.behalf, x.sign,"
    " :now FROM guard, jsonb_to_recordset(CAST(:history AS jsonb)) AS x(n INT, kind TEXT, actor TEXT, node TEXT,"
    " task BIGINT, result TEXT, remark TEXT, users JSONB, target TEXT, behalf BOOLEAN, sign TEXT) ORDER BY x.n)"
    ", notes AS (INSERT INTO process_notification (process_instance_pk, corp_pk, app_pk, kind, node_id,"
    " task_id, user_id, sender_user_id, created_at) SELECT guard.id, :corp_pk, :app_pk, x.kind, x.node, x.task,"
    " x.usr, x.sender, :now FROM guard, jsonb_to_recordset(CAST(:notes AS jsonb))"
    " AS x(n INT, kind TEXT, node TEXT, task BIGINT, usr TEXT, sender TEXT) ORDER BY x.n)"
    ", events AS (INSERT INTO outbox_event (corp_pk, event_type, payload, created_at)"
    " SELECT :corp_pk, x.type, CASE WHEN x.created_of IS NULL THEN x.payload"
    " ELSE jsonb_set(x.payload, '{data,created_at}',"
    " to_jsonb(COALESCE((SELECT t.created_at FROM task t WHERE t.id = x.created_of), :now))) END, :now"
    " FROM guard, jsonb_to_recordset(CAST(:events AS jsonb))"
    " AS x(n INT, type TEXT, payload JSONB, created_of BIGINT) ORDER BY x.n)" + APPROVAL_MESSAGE_CTES
)
_GUARD = (
    "WITH guard AS (UPDATE process_instance SET state = CAST(:state AS jsonb), status = :status,"
    " result = :result, modified_at = :modified_at, finished_at = :finished_at,"
    " lock_version = lock_version + 1 WHERE id = :pk AND lock_version = :lock_version"
    " AND instance_id = :instance_id RETURNING id)"
)
_GUARDED_STEP = _GUARD + _STEP_CTES + " SELECT count(*) FROM guard"
_GUARDED_STEP_RECORD = (
    _GUARD + _STEP_CTES + ", record AS (UPDATE form_instance SET instance_status = :status, approved_result = :result,"
    " modified_at = :modified_at FROM guard WHERE form_instance.id = :record_pk)"
    " SELECT count(*) FROM guard"
)
# A started instance: its record and the record's log (CTEs ``record``, ``record_log`` of core.records), the
# instance row, then its first step's rows; the statement answers the record's pk.
_START = (
    ", guard AS (INSERT INTO process_instance (id, instance_id, form_instance_pk, corp_pk, app_pk, form_pk,"
    " form_version, process_code, originator_user_id, department_id, status, result, state, lock_version,"
    " created_at, modified_at, finished_at) SELECT :pk, :instance_id, record.id, :corp_pk, :app_pk, :form_pk,"
    " :form_version, :process_code, :originator, :department_id, :status, :result, CAST(:state AS jsonb), 1,"
    " :created_at, :modified_at, :finished_at FROM record RETURNING id)" + _STEP_CTES + " SELECT id FROM record"
)
