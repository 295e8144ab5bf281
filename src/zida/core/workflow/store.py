"""SQL for process instances, tasks, operation records and notifications (a step's writes: ``step_store``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from zida.core.records.models import FormInstance
from zida.core.workflow.engine import InstanceState
from zida.core.workflow.models import (
    InboxQuery,
    Notification,
    OperationRecord,
    ProcessInstance,
    TaskView,
)
from zida.db import Connection, Row
from zida.db.database import SqlDialect

__all__ = [
    "NewNotification",
    "NewOperation",
    "TaskChange",
    "corp_public_id",
    "count_and_page",
    "delete_instance",
    "find_definition_row",
    "find_instance",
    "find_instances",
    "find_process_form",
    "find_process_forms_by_code",
    "insert_notifications",
    "insert_operations",
    "insert_process_instance",
    "instance_ref",
    "instance_tasks",
    "list_notifications",
    "list_operations",
    "list_submissions",
    "list_tasks",
    "list_user_tasks",
    "lock_instances_of_records",
    "open_tasks_of",
    "process_versions",
    "running_assignees_of_records",
    "save_tasks",
    "task_times",
    "touch_instances_of_records",
    "update_process_instance",
    "update_record_status",
]

_INSTANCE_COLUMNS = (
    "pi.id, pi.instance_id, pi.corp_pk, pi.app_pk, pi.form_pk, pi.form_version, pi.process_code,"
    " pi.originator_user_id, pi.department_id, pi.status, pi.result, pi.state, pi.lock_version, pi.created_at,"
    " pi.modified_at, pi.finished_at, fi.id AS fi_id, fi.form_version AS fi_form_version, fi.title,"
    " fi.originator_user_id AS fi_originator, fi.modifier_user_id, fi.created_at AS fi_created_at,"
    " fi.modified_at AS fi_modified_at, fi.data, fi.data_version, fi.serial_no, fi.instance_status,"
    " fi.approved_result, f.form_uuid, a.app_type, co.corp_id"
)
_INSTANCE_FROM = (
    "process_instance pi JOIN form_instance fi ON fi.id = pi.form_instance_pk JOIN form f ON f.id = pi.form_pk"
    " JOIN app a ON a.id = pi.app_pk JOIN corp co ON co.id = pi.corp_pk"
)


def _in(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    names = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{n}" for n in names) or "NULL", names


def _instance(row: Row) -> ProcessInstance:
    record = FormInstance(
        pk=row["fi_id"],
        instance_id=row["instance_id"],
        corp_pk=row["corp_pk"],
        app_pk=row["app_pk"],
        form_pk=row["form_pk"],
        form_uuid=row["form_uuid"],
        form_version=row["fi_form_version"],
        title=row["title"],
        originator_user_id=row["fi_originator"],
        modifier_user_id=row["modifier_user_id"],
        created_at=row["fi_created_at"],
        modified_at=row["fi_modified_at"],
        data=orjson.loads(row["data"]),
        data_version=row["data_version"],
        serial_no=row["serial_no"],
        process_instance_id=row["instance_id"],
        instance_status=row["instance_status"],
        approved_result=row["approved_result"],
    )
    return ProcessInstance(
        pk=row["id"],
        instance_id=row["instance_id"],
        corp_id=row["corp_id"],
        corp_pk=row["corp_pk"],
        app_pk=row["app_pk"],
        app_type=row["app_type"],
        form_pk=row["form_pk"],
        form_uuid=row["form_uuid"],
        form_version=row["form_version"],
        process_code=row["process_code"],
        originator_user_id=row["originator_user_id"],
        department_id=row["department_id"],
        status=row["status"],
        result=row["result"],
        state=InstanceState.from_json(row["state"]),
        lock_version=row["lock_version"],
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        finished_at=row["finished_at"],
        record=record,
    )


# ----------------------------------------------------------------------------------------- definitions


async def find_definition_row(conn: Connection, form_pk: int, version: int) -> Row | None:
    """The stored process block and fields of one form version."""
    return await conn.fetchrow(
        "SELECT process, fields FROM form_version WHERE form_pk = :f AND version = :v", {"f": form_pk, "v": version}
    )


async def process_versions(conn: Connection, form_pk: int) -> list[Row]:
    """Every version of a form that has a process: its number, fields and process block."""
    return await conn.fetch(
        "SELECT version, fields, process FROM form_version WHERE form_pk = :f AND process IS NOT NULL",
        {"f": form_pk},
    )


async def find_process_form(conn: Connection, app_pk: int, process_code: str) -> Row | None:
    """The process form of an app whose current version has this process code."""
    code = conn.sql.json_text("v.process", "processCode")
    return await conn.fetchrow(
        "SELECT f.id, f.form_uuid, v.version FROM form f"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE f.app_pk = :a AND f.form_type = 'process' AND {code} = :code ORDER BY f.id LIMIT 1",
        {"a": app_pk, "code": process_code},
    )


async def find_process_forms_by_key(conn: Connection, corp_pk: int, process_key: str) -> list[Row]:
    """The corp's process forms whose current version's process has this WeDa ProcessKey (``processKey``, else
    ``processCode``); more than one only when two apps share a process code and neither names a key."""
    key = conn.sql.json_text("v.process", "processKey")
    code = conn.sql.json_text("v.process", "processCode")
    return await conn.fetch(
        "SELECT f.app_pk, f.form_uuid FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE a.corp_pk = :c AND f.form_type = 'process'"
        f" AND ({key} = :k OR ({key} IS NULL AND {code} = :k)) ORDER BY f.id LIMIT 2",
        {"c": corp_pk, "k": process_key},
    )


async def find_process_forms_by_code(conn: Connection, corp_pk: int, process_code: str) -> list[Row]:
    """The corp's process forms whose current version's process has this code (at most two: more than one means
    apps share it)."""
    code = conn.sql.json_text("v.process", "processCode")
    return await conn.fetch(
        "SELECT f.app_pk, f.form_uuid FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        f" WHERE a.corp_pk = :c AND f.form_type = 'process' AND {code} = :code ORDER BY f.id LIMIT 2",
        {"c": corp_pk, "code": process_code},
    )


async def list_process_forms(conn: Connection, corp_pk: int) -> list[Row]:
    """The corp's process forms with their app and current version, oldest first."""
    return await conn.fetch(
        "SELECT f.id, a.app_type, a.name AS app_name, f.model_name, v.version, v.created_at"
        " FROM form f JOIN app a ON a.id = f.app_pk"
        " JOIN form_version v ON v.form_pk = f.id AND v.version = f.current_version"
        " WHERE a.corp_pk = :c AND f.form_type = 'process' ORDER BY f.id",
        {"c": corp_pk},
    )


async def delete_draft(tx: Connection, corp_pk: int, user_id: str, draft_id: str) -> bool:
    """Delete one of the user's drafts; whether it was there."""
    gone = await tx.fetchval(
        "DELETE FROM process_draft WHERE draft_id = :d AND corp_pk = :c AND user_id = :u RETURNING id",
        {"d": draft_id, "c": corp_pk, "u": user_id},
    )
    return gone is not None


# ------------------------------------------------------------------------------------------- instances


async def instance_ref(conn: Connection, corp_pk: int, instance_id: str) -> Row | None:
    """(pk, app_pk) of a process instance of the corp, without loading it."""
    return await conn.fetchrow(
        "SELECT id, app_pk FROM process_instance WHERE instance_id = :i AND corp_pk = :c",
        {"i": instance_id, "c": corp_pk},
    )


async def find_instance(
    conn: Connection, corp_pk: int, instance_id: str, *, lock: bool = False
) -> ProcessInstance | None:
    """The process instance with this id in the corp, with its record; locks both rows on PostgreSQL if asked."""
    lock_sql = conn.sql.for_update.replace("FOR UPDATE", "FOR UPDATE OF pi, fi") if lock else ""
    row = await conn.fetchrow(
        f"SELECT {_INSTANCE_COLUMNS} FROM {_INSTANCE_FROM} WHERE pi.instance_id = :i AND pi.corp_pk = :c{lock_sql}",
        {"i": instance_id, "c": corp_pk},
    )
    return None if row is None else _instance(row)


async def find_instances(conn: Connection, corp_pk: int, instance_ids: Sequence[str]) -> list[ProcessInstance]:
    """Process instances of the corp by id, in the order asked (unknown ids are absent)."""
    if not instance_ids:
        return []
    placeholders, params = _in("i", list(dict.fromkeys(instance_ids)))
    rows = await conn.fetch(
        f"SELECT {_INSTANCE_COLUMNS} FROM {_INSTANCE_FROM}"
        f" WHERE pi.corp_pk = :c AND pi.instance_id IN ({placeholders})",
        {"c": corp_pk, **params},
    )
    found = {r["instance_id"]: _instance(r) for r in rows}
    return [found[i] for i in dict.fromkeys(instance_ids) if i in found]


def instance_row_params(inst: ProcessInstance) -> dict[str, Any]:
    return {
        "instance_id": inst.instance_id,
        "form_pk": inst.form_pk,
        "form_version": inst.form_version,
        "process_code": inst.process_code,
        "originator": inst.originator_user_id,
        "department_id": inst.department_id,
        "status": inst.status,
        "result": inst.result,
        "state": inst.state.to_json(),
        "created_at": inst.created_at,
        "modified_at": inst.modified_at,
        "finished_at": inst.finished_at,
    }


async def insert_process_instance(conn: Connection, inst: ProcessInstance) -> int:
    """Insert the process row of a new instance; returns its primary key."""
    pk = await conn.fetchval(
        "INSERT INTO process_instance (instance_id, form_instance_pk, corp_pk, app_pk, form_pk, form_version,"
        " process_code, originator_user_id, department_id, status, result, state, lock_version, created_at,"
        " modified_at, finished_at) VALUES (:instance_id, :form_instance_pk, :corp_pk, :app_pk, :form_pk,"
        f" :form_version, :process_code, :originator, :department_id, :status, :result,"
        f" {conn.sql.json_param('state')}, 1, :created_at, :modified_at, :finished_at) RETURNING id",
        {
            **instance_row_params(inst),
            "form_instance_pk": inst.record.pk,
            "corp_pk": inst.corp_pk,
            "app_pk": inst.app_pk,
        },
    )
    return int(pk)


async def update_process_instance(conn: Connection, inst: ProcessInstance) -> bool:
    """Write the new state if nobody changed the instance since it was read (False otherwise)."""
    changed = await conn.execute(
        f"UPDATE process_instance SET state = {conn.sql.json_param('state')}, status = :status, result = :result,"
        " modified_at = :modified_at, finished_at = :finished_at, lock_version = lock_version + 1"
        # (the instance id too: SQLite may give a deleted instance's row id to a new one)
        " WHERE id = :pk AND lock_version = :lock_version AND instance_id = :instance_id",
        {
            "instance_id": inst.instance_id,
            "state": inst.state.to_json(),
            "status": inst.status,
            "result": inst.result,
            "modified_at": inst.modified_at,
            "finished_at": inst.finished_at,
            "pk": inst.pk,
            "lock_version": inst.lock_version,
        },
    )
    if changed == 1:
        inst.lock_version += 1
    return changed == 1


async def update_record_status(conn: Connection, inst: ProcessInstance) -> None:
    """Mirror the instance's status, result and modification time on its form record."""
    await conn.execute(
        "UPDATE form_instance SET instance_status = :status, approved_result = :result, modified_at = :modified_at"
        " WHERE id = :pk",
        {"status": inst.status, "result": inst.result, "modified_at": inst.modified_at, "pk": inst.record.pk},
    )


async def delete_instance(conn: Connection, inst: ProcessInstance) -> None:
    """Remove the record; its process instance, tasks, history and notifications go with it."""
    await conn.execute("DELETE FROM form_instance WHERE id = :pk", {"pk": inst.record.pk})


# ----------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A task row to insert (``new``) or update after one engine step."""

    task_id: int
    new: bool
    node_id: str
    assignee_user_id: str
    status: str
    result: str | None
    actor_user_id: str | None
    active_at: int | None
    finished_at: int | None


async def task_times(conn: Connection, task_ids: Sequence[int]) -> dict[int, int]:
    """Creation times of existing tasks."""
    if not task_ids:
        return {}
    placeholders, params = _in("t", list(task_ids))
    rows = await conn.fetch(f"SELECT id, created_at FROM task WHERE id IN ({placeholders})", params)
    return {int(r["id"]): int(r["created_at"]) for r in rows}


async def save_tasks(
    conn: Connection, inst: ProcessInstance, changes: Sequence[TaskChange], now: int
) -> dict[int, int]:
    """Insert new task rows and update changed ones (one statement each); returns the updated tasks' creation
    times, which their events carry."""
    inserts = [c for c in changes if c.new]
    updates = [c for c in changes if not c.new]
    if inserts:
        await conn.executemany(
            "INSERT INTO task (id, process_instance_pk, corp_pk, app_pk, node_id, assignee_user_id, actor_user_id,"
            " status, result, created_at, active_at, finished_at) VALUES (:id, :pi, :corp_pk, :app_pk, :node_id,"
            " :assignee, :actor, :status, :result, :now, :now, :finished_at)",
            [
                {
                    "id": c.task_id,
                    "pi": inst.pk,
                    "corp_pk": inst.corp_pk,
                    "app_pk": inst.app_pk,
                    "node_id": c.node_id,
                    "assignee": c.assignee_user_id,
                    "actor": c.actor_user_id,
                    "status": c.status,
                    "result": c.result,
                    "now": now,
                    "finished_at": c.finished_at,
                }
                for c in inserts
            ],
        )
    if not updates:
        return {}
    # One UPDATE … CASE id … RETURNING for all changed rows (typed, so that PostgreSQL infers every parameter).
    params: dict[str, Any] = {}
    columns: dict[str, list[str]] = {"status": [], "result": [], "actor": [], "active": [], "finished": []}
    for n, c in enumerate(updates):
        params.update(
            {
                f"i{n}": c.task_id,
                f"s{n}": c.status,
                f"r{n}": c.result,
                f"a{n}": c.actor_user_id,
                f"v{n}": c.active_at,
                f"f{n}": c.finished_at,
            }
        )
        columns["status"].append(f" WHEN :i{n} THEN CAST(:s{n} AS TEXT)")
        columns["result"].append(f" WHEN :i{n} THEN CAST(:r{n} AS TEXT)")
        columns["actor"].append(f" WHEN :i{n} THEN COALESCE(CAST(:a{n} AS TEXT), actor_user_id)")
        columns["active"].append(f" WHEN :i{n} THEN COALESCE(CAST(:v{n} AS BIGINT), active_at)")
        columns["finished"].append(f" WHEN :i{n} THEN CAST(:f{n} AS BIGINT)")
    ids = ", ".join(f":i{n}" for n in range(len(updates)))
    rows = await conn.fetch(
        f"UPDATE task SET status = CASE id{''.join(columns['status'])} END,"
        f" result = CASE id{''.join(columns['result'])} END,"
        f" actor_user_id = CASE id{''.join(columns['actor'])} END,"
        f" active_at = CASE id{''.join(columns['active'])} END,"
        f" finished_at = CASE id{''.join(columns['finished'])} END"
        f" WHERE id IN ({ids}) RETURNING id, created_at",
        params,
    )
    return {int(r["id"]): int(r["created_at"]) for r in rows}


_TASK_COLUMNS = (
    "t.id, t.node_id, t.assignee_user_id, t.actor_user_id, t.status, t.result, t.created_at, t.active_at,"
    " t.finished_at, pi.instance_id, pi.process_code, pi.originator_user_id, pi.status AS instance_status,"
    " pi.form_pk, pi.form_version,"
    " fi.title, a.app_type, f.form_uuid"
)
_TASK_FROM = (
    "task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
    " JOIN form_instance fi ON fi.id = pi.form_instance_pk JOIN app a ON a.id = t.app_pk"
    " JOIN form f ON f.id = pi.form_pk"
)


def _task(row: Row) -> TaskView:
    return TaskView(
        task_id=int(row["id"]),
        instance_id=row["instance_id"],
        node_id=row["node_id"],
        assignee_user_id=row["assignee_user_id"],
        actor_user_id=row["actor_user_id"],
        status=row["status"],
        result=row["result"],
        created_at=row["created_at"],
        active_at=row["active_at"],
        finished_at=row["finished_at"],
        app_type=row["app_type"],
        form_pk=row["form_pk"],
        form_version=row["form_version"],
        form_uuid=row["form_uuid"],
        process_code=row["process_code"],
        title=row["title"],
        originator_user_id=row["originator_user_id"],
        instance_status=row["instance_status"],
    )


async def list_tasks(
    conn: Connection, instance_pks: Sequence[int], statuses: Sequence[str] | None = None
) -> list[TaskView]:
    """Tasks of some instances (optionally only some statuses), oldest first."""
    if not instance_pks:
        return []
    placeholders, params = _in("p", list(instance_pks))
    where = f"t.process_instance_pk IN ({placeholders})"
    if statuses:
        status_sql, status_params = _in("s", list(statuses))
        where += f" AND t.status IN ({status_sql})"
        params.update(status_params)
    rows = await conn.fetch(f"SELECT {_TASK_COLUMNS} FROM {_TASK_FROM} WHERE {where} ORDER BY t.id", params)
    return [_task(r) for r in rows]


async def instance_tasks(conn: Connection, corp_pk: int, instance_id: str) -> list[TaskView]:
    """Every task of one instance of the corp (found by its id), oldest first."""
    rows = await conn.fetch(
        f"SELECT {_TASK_COLUMNS} FROM {_TASK_FROM} WHERE pi.instance_id = :i AND pi.corp_pk = :c ORDER BY t.id",
        {"i": instance_id, "c": corp_pk},
    )
    return [_task(r) for r in rows]


def _inbox_filters(sql: SqlDialect, query: InboxQuery, time_column: str, params: dict[str, Any]) -> str:
    where = ""
    if query.app_types:
        placeholders, names = _in("app", list(query.app_types))
        where += f" AND a.app_type IN ({placeholders})"
        params.update(names)
    if query.process_codes:
        placeholders, names = _in("pc", list(query.process_codes))
        where += f" AND pi.process_code IN ({placeholders})"
        params.update(names)
    if query.created_from is not None:
        where += f" AND {time_column} >= :created_from"
        params["created_from"] = query.created_from
    if query.created_to is not None:
        where += f" AND {time_column} <= :created_to"
        params["created_to"] = query.created_to
    if query.instance_created_from is not None:
        where += " AND pi.created_at >= :instance_from"
        params["instance_from"] = query.instance_created_from
    if query.instance_created_to is not None:
        where += " AND pi.created_at <= :instance_to"
        params["instance_to"] = query.instance_created_to
    if query.keyword:
        keyword = query.keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # The platform's "fuzzy match on form values": the title or a value, ignoring case, never a key or the JSON
        # punctuation between values (which differs between the databases' stored forms).
        where += f" AND (fi.title {sql.like} :kw ESCAPE '\\' OR {sql.values_like('fi.data', 'kw')})"
        params["kw"] = f"%{keyword}%"
    return where


async def count_and_page(
    conn: Connection, select: str, from_where: str, order: str, params: dict[str, Any], query: InboxQuery
) -> tuple[int, list[Row]]:
    """Total count and one page of ``SELECT <select> FROM <from_where> ORDER BY <order>``."""
    total = await conn.fetchval(f"SELECT count(*) FROM {from_where}", params)
    rows = await conn.fetch(
        f"SELECT {select} FROM {from_where} ORDER BY {order} LIMIT :limit OFFSET :offset",
        {**params, "limit": query.page.size, "offset": query.page.offset},
    )
    return int(total), rows


async def list_user_tasks(
    conn: Connection, corp_pk: int, user_id: str, statuses: Sequence[str], query: InboxQuery
) -> tuple[int, list[TaskView]]:
    """A user's tasks in some statuses across the corp's apps, newest first."""
    status_sql, params = _in("s", list(statuses))
    params.update(c=corp_pk, u=user_id)
    where = (
        f"{_TASK_FROM} WHERE t.corp_pk = :c AND t.assignee_user_id = :u AND t.status IN ({status_sql})"
        + _inbox_filters(conn.sql, query, "t.created_at", params)
    )
    total, rows = await count_and_page(conn, _TASK_COLUMNS, where, "t.created_at DESC, t.id DESC", params, query)
    return total, [_task(r) for r in rows]


async def list_submissions(
    conn: Connection, corp_pk: int, user_id: str, query: InboxQuery
) -> tuple[int, list[ProcessInstance]]:
    """Instances a user originated across the corp's apps, newest first."""
    params: dict[str, Any] = {"c": corp_pk, "u": user_id}
    where = f"{_INSTANCE_FROM} WHERE pi.corp_pk = :c AND pi.originator_user_id = :u" + _inbox_filters(
        conn.sql, query, "pi.created_at", params
    )
    total, rows = await count_and_page(conn, _INSTANCE_COLUMNS, where, "pi.created_at DESC, pi.id DESC", params, query)
    return total, [_instance(r) for r in rows]


# ----------------------------------------------------------------------------- history, notifications


@dataclass(frozen=True, slots=True)
class NewOperation:
    """An operation record to write."""

    kind: str
    actor_user_id: str | None
    node_id: str | None
    task_id: int | None
    result: str | None
    remark: str
    user_ids: tuple[str, ...]
    target_node_id: str | None
    on_behalf: bool
    digital_sign: str | None


async def insert_operations(conn: Connection, instance_pk: int, records: Sequence[NewOperation], now: int) -> None:
    """Append rows to an instance's history."""
    if not records:
        return
    await conn.executemany(
        "INSERT INTO operation_record (process_instance_pk, kind, actor_user_id, node_id, task_id, result, remark,"
        " user_ids, target_node_id, on_behalf, digital_sign, created_at) VALUES (:pi, :kind, :actor, :node_id,"
        f" :task_id, :result, :remark, {conn.sql.json_param('user_ids')}, :target, :on_behalf, :digital_sign, :now)",
        [
            {
                "pi": instance_pk,
                "kind": r.kind,
                "actor": r.actor_user_id,
                "node_id": r.node_id,
                "task_id": r.task_id,
                "result": r.result,
                "remark": r.remark,
                "user_ids": orjson.dumps(list(r.user_ids)).decode(),
                "target": r.target_node_id,
                "on_behalf": r.on_behalf,
                "digital_sign": r.digital_sign,
                "now": now,
            }
            for r in records
        ],
    )


async def list_operations(conn: Connection, instance_pk: int) -> list[OperationRecord]:
    """An instance's history, oldest first."""
    return (await list_operations_of(conn, [instance_pk])).get(instance_pk, [])


async def list_operations_of(conn: Connection, instance_pks: Sequence[int]) -> dict[int, list[OperationRecord]]:
    """The histories of some instances (by instance pk; one without any is absent), each oldest first."""
    if not instance_pks:
        return {}
    placeholders, params = _in("p", list(instance_pks))
    rows = await conn.fetch(
        "SELECT process_instance_pk, id, kind, actor_user_id, node_id, task_id, result, remark, user_ids,"
        " target_node_id, on_behalf, digital_sign, created_at FROM operation_record"
        f" WHERE process_instance_pk IN ({placeholders}) ORDER BY process_instance_pk, id",
        params,
    )
    out: dict[int, list[OperationRecord]] = {}
    for r in rows:
        out.setdefault(int(r["process_instance_pk"]), []).append(_operation(r))
    return out


def _operation(r: Row) -> OperationRecord:
    return OperationRecord(
        record_id=int(r["id"]),
        kind=r["kind"],
        actor_user_id=r["actor_user_id"],
        node_id=r["node_id"],
        task_id=r["task_id"],
        result=r["result"],
        remark=r["remark"],
        user_ids=tuple(orjson.loads(r["user_ids"])),
        target_node_id=r["target_node_id"],
        on_behalf=bool(r["on_behalf"]),
        digital_sign=r["digital_sign"],
        created_at=r["created_at"],
    )


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A CC or an urge to write."""

    kind: str
    node_id: str | None
    task_id: int | None
    user_id: str
    sender_user_id: str | None


async def insert_notifications(
    conn: Connection, inst: ProcessInstance, notes: Sequence[NewNotification], now: int
) -> None:
    """Record CCs and urges sent for an instance."""
    if not notes:
        return
    await conn.executemany(
        "INSERT INTO process_notification (process_instance_pk, corp_pk, app_pk, kind, node_id, task_id, user_id,"
        " sender_user_id, created_at) VALUES (:pi, :corp_pk, :app_pk, :kind, :node_id, :task_id, :user_id,"
        " :sender, :now)",
        [
            {
                "pi": inst.pk,
                "corp_pk": inst.corp_pk,
                "app_pk": inst.app_pk,
                "kind": n.kind,
                "node_id": n.node_id,
                "task_id": n.task_id,
                "user_id": n.user_id,
                "sender": n.sender_user_id,
                "now": now,
            }
            for n in notes
        ],
    )


async def list_notifications(
    conn: Connection, corp_pk: int, user_id: str, kind: str, query: InboxQuery, *, app_pk: int | None = None
) -> tuple[int, list[Notification]]:
    """Notifications of one kind sent to a user (optionally in one app), newest first."""
    params: dict[str, Any] = {"c": corp_pk, "u": user_id, "kind": kind}
    where = (
        f"{_INSTANCE_FROM} JOIN process_notification n ON n.process_instance_pk = pi.id"
        " WHERE n.corp_pk = :c AND n.user_id = :u AND n.kind = :kind"
    )
    if app_pk is not None:
        where += " AND n.app_pk = :app_pk"
        params["app_pk"] = app_pk
    where += _inbox_filters(conn.sql, query, "n.created_at", params)
    select = f"n.id AS n_id, n.node_id AS n_node, n.user_id AS n_user, n.created_at AS n_created, {_INSTANCE_COLUMNS}"
    total, rows = await count_and_page(conn, select, where, "n.created_at DESC, n.id DESC", params, query)
    return total, [
        Notification(
            notification_id=int(r["n_id"]),
            node_id=r["n_node"],
            user_id=r["n_user"],
            created_at=r["n_created"],
            instance=_instance(r),
        )
        for r in rows
    ]


async def corp_public_id(conn: Connection, corp_pk: int) -> str:
    """The public id of a corp."""
    return str(await conn.fetchval("SELECT corp_id FROM corp WHERE id = :c", {"c": corp_pk}))


async def open_tasks_of(conn: Connection, corp_pk: int, user_id: str) -> dict[str, list[int]]:
    """A user's open (running or paused) tasks across the corp, by process instance id, oldest first."""
    rows = await conn.fetch(
        "SELECT t.id, pi.instance_id FROM task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
        " WHERE t.corp_pk = :c AND t.assignee_user_id = :u AND t.status IN ('RUNNING', 'PAUSED') ORDER BY t.id",
        {"c": corp_pk, "u": user_id},
    )
    out: dict[str, list[int]] = {}
    for r in rows:
        out.setdefault(str(r["instance_id"]), []).append(int(r["id"]))
    return out


# -------------------------------------------------------------------------------- their records' changes


async def touch_instances_of_records(conn: Connection, form_instance_pks: list[int], at: int) -> None:
    """Mark the process instances of these records as changed (their optimistic version moves on)."""
    if form_instance_pks:
        names = {f"p{n}": v for n, v in enumerate(form_instance_pks)}
        await conn.execute(
            "UPDATE process_instance SET lock_version = lock_version + 1, modified_at = :at"
            f" WHERE form_instance_pk IN ({', '.join(':' + n for n in names)})",
            {"at": at, **names},
        )


async def running_assignees_of_records(
    conn: Connection, corp_pk: int, instance_ids: list[str]
) -> dict[str, frozenset[str]]:
    """Who holds a running task of each of these records' approvals."""
    if not instance_ids:
        return {}
    names = {f"i{n}": v for n, v in enumerate(dict.fromkeys(instance_ids))}
    rows = await conn.fetch(
        "SELECT pi.instance_id, t.assignee_user_id FROM task t JOIN process_instance pi"
        " ON pi.id = t.process_instance_pk WHERE pi.corp_pk = :corp_pk"
        f" AND pi.instance_id IN ({', '.join(':' + n for n in names)}) AND t.status = 'RUNNING'",
        {"corp_pk": corp_pk, **names},
    )
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(str(r["instance_id"]), set()).add(str(r["assignee_user_id"]))
    return {k: frozenset(v) for k, v in out.items()}


async def lock_instances_of_records(conn: Connection, corp_pk: int, instance_ids: list[str]) -> None:
    """PostgreSQL: lock the process instances of these records (if any) before their records are locked.

    An approval step locks the instance row, then the record; taking them in the same order here keeps a
    record update and an approval step from deadlocking. SQLite has one writer and needs nothing.
    """
    if conn.sql.name != "postgresql" or not instance_ids:
        return
    names = {f"i{n}": v for n, v in enumerate(dict.fromkeys(instance_ids))}
    await conn.fetch(
        "SELECT id FROM process_instance WHERE corp_pk = :corp_pk"
        f" AND instance_id IN ({', '.join(':' + n for n in names)}) ORDER BY id FOR UPDATE",
        {"corp_pk": corp_pk, **names},
    )
