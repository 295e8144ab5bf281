"""The bare baseline: Starlette + asyncpg (or sqlite3) running the very SQL statements Zida runs, no auth,
no validation, no shaping. Configured by ``ZIDA_BASELINE_CONFIG`` (a JSON file written by bench_records.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONFIG: dict[str, Any] = json.loads(open(os.environ["ZIDA_BASELINE_CONFIG"]).read())  # noqa: SIM115
IS_PG = CONFIG["url"].startswith("postgresql")
state: dict[str, Any] = {}


def numbered(sql: str, names: list[str]) -> str:
    for i, name in enumerate(names, 1):
        sql = sql.replace(f":{name}", f"${i}")
    return sql


async def fetch(sql: str, names: list[str], args: dict[str, Any]) -> list[Any]:
    if IS_PG:
        return list(await state["pool"].fetch(numbered(sql, names), *[args[n] for n in names]))
    return list(state["conn"].execute(sql, args).fetchall())


async def get_record(request: Request) -> Response:
    q = CONFIG["get"]
    rows = await fetch(q["sql"], q["names"], {"instance_id": request.path_params["id"]})
    if not rows:
        return Response(b'{"code":"notFound"}', status_code=404, media_type="application/json")
    row = rows[0]
    body = b'{"formInstId":"' + row[0].encode() + b'","formData":' + row[1].encode() + b"}"
    return Response(body, media_type="application/json")


async def save_record(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    q = CONFIG["save"]
    args = {
        **q["defaults"],
        "instance_id": "FINST-BASE" + os.urandom(15).hex().upper(),
        "data": payload["formDataJson"],
    }
    if IS_PG:
        await state["pool"].execute(numbered(q["sql"], q["names"]), *[args[n] for n in q["names"]])
    else:
        with state["conn"]:
            state["conn"].execute(q["sql"], args)
    return Response(orjson.dumps({"result": args["instance_id"]}), media_type="application/json")


async def search(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    q = CONFIG["search"][payload["q"]]
    args = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in payload["args"].items()}
    if IS_PG:
        from decimal import Decimal

        args = {k: Decimal(str(v)) if isinstance(v, int | float) and k.startswith("f") else v for k, v in args.items()}
    rows = await fetch(q["page"], q["page_names"], args)
    if q["count"] is None:  # counted in the page's own pass (a window count, its last column), as Zida does
        total = rows[0][-1] if rows else 0
    else:
        total = (await fetch(q["count"], q["count_names"], args))[0][0]
    body = b'{"totalCount":' + str(total).encode() + b',"data":[' + b",".join(r[0].encode() for r in rows) + b"]}"
    return Response(body, media_type="application/json")


# ------------------------------------------------------------------ approvals (bench/bench_approvals.py)
# The statements Zida runs for start / getRunningTasks / executeTask of the two-node or-sign process of
# bench/bundle_flow.yaml, hard-wired: no auth, no validation, no engine (the state is a small JSON of the tasks).

TASK_BLOCK = 1_000_000


def _ms() -> int:
    return time.time_ns() // 1_000_000


@asynccontextmanager
async def _write() -> AsyncIterator[Any]:
    """A write transaction: (execute, fetchval, fetchrow, executemany) over ``:name`` SQL."""
    if IS_PG:
        async with state["pool"].acquire() as conn, conn.transaction():
            yield _PgTx(conn)
    else:
        conn = state["conn"]
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")


def _names(sql: str) -> list[str]:
    import re

    seen: list[str] = []
    for name in re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", sql):
        if name not in seen:
            seen.append(name)
    return seen


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: dict[str, Any]) -> str:
        names = _names(sql)
        return str(await self.conn.execute(numbered(sql, names), *[args[n] for n in names]))

    async def fetchrow(self, sql: str, args: dict[str, Any]) -> Any:
        names = _names(sql)
        return await self.conn.fetchrow(numbered(sql, names), *[args[n] for n in names])

    async def executemany(self, sql: str, rows: list[dict[str, Any]]) -> None:
        names = _names(sql)
        await self.conn.executemany(numbered(sql, names), [[r[n] for n in names] for r in rows])


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: dict[str, Any]) -> str:
        return str(self.conn.execute(sql, args).rowcount)

    async def fetchrow(self, sql: str, args: dict[str, Any]) -> Any:
        return self.conn.execute(sql, args).fetchone()

    async def executemany(self, sql: str, rows: list[dict[str, Any]]) -> None:
        self.conn.executemany(sql, rows)


def _json(name: str) -> str:
    return f"CAST(:{name} AS jsonb)" if IS_PG else f":{name}"


_TASK_INSERT = (
    "INSERT INTO task (id, process_instance_pk, corp_pk, app_pk, node_id, assignee_user_id, status, created_at,"
    " active_at) VALUES (:id, :pi, :corp_pk, :app_pk, :node, :user, 'RUNNING', :now, :now)"
)
_OUTBOX_INSERT = (
    "INSERT INTO outbox_event (corp_pk, event_type, payload, created_at)"
    f" VALUES (:corp_pk, :type, {_json('payload')}, :now)"
)
_RECORD_INSERT = (
    "INSERT INTO operation_record (process_instance_pk, kind, actor_user_id, node_id, task_id, result, remark,"
    f" user_ids, on_behalf, created_at) VALUES (:pi, :kind, :actor, :node, :task, :result, :remark, {_json('users')},"
    " false, :now)"
)

# The approval notifications Zida's step writes (zida.core.messages.approvals): a message to the assignees of the
# tasks a step opens, one to the originator when the instance finishes, each with its inbox rows.
_MESSAGE_INSERT = (
    "INSERT INTO message (corp_pk, message_key, sender, msgtype, content, to_all, invalid_user_ids, invalid_dept_ids,"
    f" source_id, created_at) VALUES (:corp_pk, :key, 'approval', 'text', {_json('body')}, false, {_json('none')},"
    f" {_json('none')}, :src, :now)"
)
_INBOX_INSERT = (
    "INSERT INTO message_inbox (message_pk, corp_pk, user_id, created_at)"
    " SELECT id, :corp_pk, :user, :now FROM message WHERE message_key = :key"
)


def _message(text: str, iid: str, title: str, users: list[str]) -> dict[str, Any]:
    """One approval notification: its key, body, source instance and receivers (as Zida writes it)."""
    key = "MSG" + os.urandom(12).hex().upper()
    return {"key": key, "body": {"content": f"{text}：{title}\n/console/approvals/{iid}"}, "src": iid, "users": users}


_TOPICS = {
    ("bpms_instance_change", "start"): "process.started",
    ("bpms_instance_change", "finish"): "process.finished",
    ("bpms_task_change", "start"): "task.created",
    ("bpms_task_change", "finish"): "task.finished",
    ("bpms_task_change", "cancel"): "task.cancelled",
}


def _event(kind: str, type_: str, iid: str, now: int, created_of: int | None = None, **extra: Any) -> dict[str, Any]:
    """An outbox row as Zida writes it (a domain event: topic, object, actor, app, data); ``created_of``: the task
    whose creation time the database puts into ``data.created_at``."""
    task = extra.pop("taskId", None)
    staff = extra.pop("staffId", None)
    data = {
        "process_instance": iid,
        "form": "FORM-BENCH-FLOW",
        "process": "TPROC--BENCH-FLOW",
        "title": "",
        "assignee": staff,
        "created_at": now,
        **extra,
    }
    payload = {"object": str(task) if task is not None else iid, "actor": staff, "app": "APP_BENCHFLOW", "data": data}
    return {"type": _TOPICS[(kind, type_)], "payload": orjson.dumps(payload).decode(), "created_of": created_of}


def _record_event(iid: str, user: str, data: str) -> dict[str, Any]:
    """The record.created event of a started instance's record (its values as changes, as Zida writes it)."""
    changes = {k: {"new": v} for k, v in orjson.loads(data).items()}
    payload = {
        "object": iid,
        "actor": user,
        "app": "APP_BENCHFLOW",
        "data": {"form": "FORM-BENCH-FLOW", "changes": changes},
    }
    return {"type": "record.created", "payload": orjson.dumps(payload).decode(), "created_of": None}


def _guarded_cte(parts: list[str]) -> str:
    """PostgreSQL: the step's rows as data-modifying CTEs selecting from ``guard`` (Zida's statement shape)."""
    return ", ".join(parts)


_PG_NEW_TASKS = (
    "new_tasks AS (INSERT INTO task (id, process_instance_pk, corp_pk, app_pk, node_id, assignee_user_id, status,"
    " created_at, active_at) SELECT x.id, guard.id, :corp_pk, :app_pk, x.node, x.usr, 'RUNNING', :now, :now"
    " FROM guard, jsonb_to_recordset(CAST(:new_tasks AS jsonb)) AS x(id BIGINT, node TEXT, usr TEXT))"
)
_PG_CHANGED_TASKS = (
    "changed_tasks AS (UPDATE task SET status = x.status, result = x.result,"
    " actor_user_id = COALESCE(x.actor, task.actor_user_id), finished_at = :now FROM guard,"
    " jsonb_to_recordset(CAST(:changed_tasks AS jsonb)) AS x(id BIGINT, status TEXT, result TEXT, actor TEXT)"
    " WHERE task.process_instance_pk = :pi AND task.id = x.id)"
)
_PG_HISTORY = (
    "history AS (INSERT INTO operation_record (process_instance_pk, kind, actor_user_id, node_id, task_id, result,"
    " remark, user_ids, on_behalf, created_at) SELECT guard.id, x.kind, x.actor, x.node, x.task, x.result, x.remark,"
    " CAST('[]' AS jsonb), false, :now FROM guard, jsonb_to_recordset(CAST(:history AS jsonb))"
    " AS x(n INT, kind TEXT, actor TEXT, node TEXT, task BIGINT, result TEXT, remark TEXT) ORDER BY x.n)"
)
_PG_EVENTS = (
    "events AS (INSERT INTO outbox_event (corp_pk, event_type, payload, created_at) SELECT :corp_pk, x.type,"
    " CASE WHEN x.created_of IS NULL THEN x.payload ELSE jsonb_set(x.payload, '{data,created_at}',"
    " to_jsonb(COALESCE((SELECT t.created_at FROM task t WHERE t.id = x.created_of), :now))) END, :now FROM guard,"
    " jsonb_to_recordset(CAST(:events AS jsonb)) AS x(n INT, type TEXT, payload JSONB, created_of BIGINT)"
    " ORDER BY x.n)"
)
_PG_MESSAGES = (
    "approval_messages AS (INSERT INTO message (corp_pk, message_key, sender, msgtype, content, to_all,"
    " invalid_user_ids, invalid_dept_ids, source_id, created_at) SELECT :corp_pk, x.key, 'approval', 'text', x.body,"
    " false, CAST('[]' AS jsonb), CAST('[]' AS jsonb), x.src, :now FROM guard,"
    " jsonb_to_recordset(CAST(:messages AS jsonb)) AS x(key TEXT, body JSONB, src TEXT) RETURNING id, message_key)"
    ", approval_inbox AS (INSERT INTO message_inbox (message_pk, corp_pk, user_id, created_at)"
    " SELECT m.id, :corp_pk, u.usr, :now FROM approval_messages m"
    " JOIN jsonb_to_recordset(CAST(:messages AS jsonb)) AS x(key TEXT, users JSONB) ON x.key = m.message_key"
    " CROSS JOIN LATERAL jsonb_array_elements_text(x.users) AS u(usr))"
)


def _rows(
    new: list[dict[str, Any]],
    changed: list[dict[str, Any]],
    ops: list[dict[str, Any]],
    events: list[Any],
    messages: list[dict[str, Any]],
) -> dict[str, Any]:
    """The step's rows as the JSON arrays of the PostgreSQL statement."""

    def rows(items: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
        return orjson.dumps([{"n": n, **{k: i[k] for k in keys}} for n, i in enumerate(items)]).decode()

    return {
        "new_tasks": orjson.dumps([{"id": t["gid"], "node": t["node"], "usr": t["user"]} for t in new]).decode(),
        "changed_tasks": orjson.dumps(
            [{"id": t["gid"], "status": t["row_status"], "result": t["result"], "actor": t["actor"]} for t in changed]
        ).decode(),
        "history": rows(ops, ("kind", "actor", "node", "task", "result", "remark")),
        "events": orjson.dumps(
            [
                {"n": n, "type": e["type"], "payload": orjson.loads(e["payload"]), "created_of": e["created_of"]}
                for n, e in enumerate(events)
            ]
        ).decode(),
        "messages": orjson.dumps(messages).decode(),
    }


async def _write_rows_sqlite(
    tx: Any,
    pi: int,
    new: list[dict[str, Any]],
    changed: list[dict[str, Any]],
    ops: list[dict[str, Any]],
    events: list[Any],
    messages: list[dict[str, Any]],
    now: int,
) -> None:
    f = CONFIG["flow"]
    if new:
        await tx.executemany(
            _TASK_INSERT,
            [{**f, "id": t["gid"], "pi": pi, "node": t["node"], "user": t["user"], "now": now} for t in new],
        )
    if changed:
        await tx.executemany(
            "UPDATE task SET status = :status, result = :result, actor_user_id = COALESCE(:actor, actor_user_id),"
            " finished_at = :now WHERE id = :id",
            [
                {"status": t["row_status"], "result": t["result"], "actor": t["actor"], "now": now, "id": t["gid"]}
                for t in changed
            ],
        )
    await tx.executemany(_RECORD_INSERT, [{**o, "pi": pi, "users": "[]", "now": now} for o in ops])
    await tx.executemany(
        _OUTBOX_INSERT,
        [{"corp_pk": f["corp_pk"], "type": e["type"], "payload": e["payload"], "now": now} for e in events],
    )
    if messages:
        await tx.executemany(
            _MESSAGE_INSERT,
            [
                {**m, "corp_pk": f["corp_pk"], "body": orjson.dumps(m["body"]).decode(), "none": "[]", "now": now}
                for m in messages
            ],
        )
        await tx.executemany(
            _INBOX_INSERT,
            [{"corp_pk": f["corp_pk"], "user": u, "now": now, "key": m["key"]} for m in messages for u in m["users"]],
        )


async def _reserved_pk() -> int:
    """PostgreSQL: a process instance key drawn from its sequence ahead, 32 at a time (as Zida does)."""
    free: list[int] = state.setdefault("free_pks", [])
    if not free:
        rows = await state["pool"].fetch(
            "SELECT nextval(pg_get_serial_sequence('process_instance', 'id')) FROM generate_series(1, 32)"
        )
        free.extend(sorted((r[0] for r in rows), reverse=True))
    return free.pop()


async def _flow_start_pg(f: dict[str, Any], now: int, user: str, iid: str, data: str, tasks: list[Any]) -> None:
    """PostgreSQL: the record, its log, the instance and its first step as one statement (as Zida does)."""
    pi = await _reserved_pk()
    new = [{**t, "gid": pi * TASK_BLOCK + t["id"]} for t in tasks]
    ops = [{"kind": "start", "actor": user, "node": None, "task": None, "result": None, "remark": ""}]
    events = [_record_event(iid, user, data), _event("bpms_instance_change", "start", iid, now, staffId=user)] + [
        _event("bpms_task_change", "start", iid, now, staffId=t["user"], taskId=t["gid"]) for t in new
    ]
    title = user + "发起的报销审批"
    messages = [_message("你有一条待审批", iid, title, [t["user"] for t in new])]
    await state["pool"].fetchval(
        *_pg(
            "WITH record AS (INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title,"
            " originator_user_id, modifier_user_id, created_at, modified_at, data, data_version,"
            " process_instance_id, instance_status) VALUES (:iid, :corp_pk, :app_pk, :form_pk, 1, :title, :user,"
            " :user, :now, :now, CAST(:data AS jsonb), 1, :iid, 'RUNNING') RETURNING id)"
            ", record_log AS (INSERT INTO form_operation_log (corp_pk, form_pk, instance_id, operator_user_id,"
            " operation_type, changes, created_at) VALUES (:corp_pk, :form_pk, :iid, :user, 'CREATE',"
            " CAST(:data AS jsonb), :now))"
            ", guard AS (INSERT INTO process_instance (id, instance_id, form_instance_pk, corp_pk, app_pk, form_pk,"
            " form_version, process_code, originator_user_id, status, state, lock_version, created_at, modified_at)"
            " SELECT :pi, :iid, record.id, :corp_pk, :app_pk, :form_pk, 1, 'TPROC--BENCH-FLOW', :user, 'RUNNING',"
            " CAST(:state AS jsonb), 1, :now, :now FROM record RETURNING id), "
            + _guarded_cte([_PG_NEW_TASKS, _PG_CHANGED_TASKS, _PG_HISTORY, _PG_EVENTS, _PG_MESSAGES])
            + " SELECT id FROM record",
            {
                **f,
                "iid": iid,
                "title": title,
                "user": user,
                "now": now,
                "data": data,
                "pi": pi,
                "state": orjson.dumps({"tasks": tasks}).decode(),
                **_rows(new, [], ops, events, messages),
            },
        )
    )


async def flow_start(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    f, now, user = CONFIG["flow"], _ms(), payload["userId"]
    iid = "FINST-BASE" + os.urandom(15).hex().upper()
    first = CONFIG["flow"]["approvers"]["node_lead"]
    tasks = [{"id": n + 1, "node": "node_lead", "user": u, "status": "running"} for n, u in enumerate(first)]
    if IS_PG:
        await _flow_start_pg(f, now, user, iid, payload["formDataJson"], tasks)
        return Response(orjson.dumps({"result": iid}), media_type="application/json")
    async with _write() as tx:
        row = await tx.fetchrow(
            "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title, originator_user_id,"
            " modifier_user_id, created_at, modified_at, data, data_version, process_instance_id, instance_status)"
            " VALUES (:iid, :corp_pk, :app_pk, :form_pk, 1, :title, :user, :user, :now, :now,"
            f" {_json('data')}, 1, :iid, 'RUNNING') RETURNING id",
            {
                **f,
                "iid": iid,
                "title": user + "发起的报销审批",
                "user": user,
                "now": now,
                "data": payload["formDataJson"],
            },
        )
        await tx.execute(
            "INSERT INTO form_operation_log (corp_pk, form_pk, instance_id, operator_user_id, operation_type, changes,"
            f" created_at) VALUES (:corp_pk, :form_pk, :iid, :user, 'CREATE', {_json('changes')}, :now)",
            {**f, "iid": iid, "user": user, "changes": payload["formDataJson"], "now": now},
        )
        pi = (
            await tx.fetchrow(
                "INSERT INTO process_instance (instance_id, form_instance_pk, corp_pk, app_pk, form_pk, form_version,"
                " process_code, originator_user_id, status, state, lock_version, created_at, modified_at) VALUES"
                " (:iid, :fi, :corp_pk, :app_pk, :form_pk, 1, 'TPROC--BENCH-FLOW', :user, 'RUNNING',"
                f" {_json('state')}, 1, :now, :now) RETURNING id",
                {
                    **f,
                    "iid": iid,
                    "fi": row[0],
                    "user": user,
                    "now": now,
                    "state": orjson.dumps({"tasks": tasks}).decode(),
                },
            )
        )[0]
        new = [{**t, "gid": pi * TASK_BLOCK + t["id"]} for t in tasks]
        ops = [{"kind": "start", "actor": user, "node": None, "task": None, "result": None, "remark": ""}]
        record_event = _record_event(iid, user, payload["formDataJson"])
        events = [record_event, _event("bpms_instance_change", "start", iid, now, staffId=user)] + [
            _event("bpms_task_change", "start", iid, now, staffId=t["user"], taskId=t["gid"]) for t in new
        ]
        messages = [_message("你有一条待审批", iid, user + "发起的报销审批", [t["user"] for t in new])]
        await _write_rows_sqlite(tx, pi, new, [], ops, events, messages, now)
    return Response(orjson.dumps({"result": iid}), media_type="application/json")


async def flow_tasks(request: Request) -> Response:
    iid = request.query_params["processInstanceId"]
    rows = await fetch(
        "SELECT t.id, t.assignee_user_id FROM task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
        " WHERE pi.instance_id = :iid AND pi.corp_pk = :corp_pk AND t.status = 'RUNNING' ORDER BY t.id",
        ["iid", "corp_pk"],
        {"iid": iid, "corp_pk": CONFIG["flow"]["corp_pk"]},
    )
    result = [{"taskId": str(r[0]), "processInstanceId": iid, "actualActionerId": r[1]} for r in rows]
    return Response(orjson.dumps({"result": result}), media_type="application/json")


async def flow_execute(request: Request) -> Response:
    """Read the instance, decide, then write the step guarded by its lock_version (as Zida does)."""
    payload = orjson.loads(await request.body())
    f, now, iid, user = CONFIG["flow"], _ms(), payload["processInstanceId"], payload["userId"]
    (row,) = await fetch(
        "SELECT id, form_instance_pk, state, lock_version, originator_user_id FROM process_instance"
        " WHERE instance_id = :iid AND corp_pk = :corp_pk",
        ["iid", "corp_pk"],
        {"iid": iid, "corp_pk": f["corp_pk"]},
    )
    pi, fi, lock, originator = row[0], row[1], row[3], row[4]
    title = originator + "发起的报销审批"
    tasks = orjson.loads(row[2])["tasks"]
    local = payload["taskId"] - pi * TASK_BLOCK
    mine = next(t for t in tasks if t["id"] == local and t["status"] == "running" and t["user"] == user)
    node = mine["node"]
    changed = []
    for t in tasks:
        if t["status"] == "running":
            done = t is mine
            t["status"], t["result"] = ("completed", "agree") if done else ("cancelled", None)
            changed.append(
                {
                    "gid": pi * TASK_BLOCK + t["id"],
                    "row_status": "COMPLETED" if done else "CANCELED",
                    "result": t["result"],
                    "actor": user if done else None,
                    "user": t["user"],
                    "mine": done,
                }
            )
    events = [
        _event(
            "bpms_task_change",
            "finish" if c["mine"] else "cancel",
            iid,
            now,
            staffId=c["user"],
            taskId=c["gid"],
            **({"result": "agree"} if c["mine"] else {}),
            created_of=c["gid"],
        )
        for c in changed
    ]
    ops = [
        {
            "kind": "agree",
            "actor": user,
            "node": node,
            "task": payload["taskId"],
            "result": "agree",
            "remark": payload["remark"],
        }
    ]
    new: list[dict[str, Any]] = []
    if node == "node_lead":
        for u in f["approvers"]["node_fin"]:
            task = {"id": len(tasks) + 1, "node": "node_fin", "user": u, "status": "running"}
            tasks.append(task)
            new.append({**task, "gid": pi * TASK_BLOCK + task["id"]})
        events += [_event("bpms_task_change", "start", iid, now, staffId=t["user"], taskId=t["gid"]) for t in new]
        messages = [_message("你有一条待审批", iid, title, [t["user"] for t in new])]
        status, result, finished = "RUNNING", None, None
    else:
        ops.append({"kind": "finish", "actor": None, "node": None, "task": None, "result": "agree", "remark": ""})
        events.append(_event("bpms_instance_change", "finish", iid, now, result="agree"))
        messages = [_message("你发起的审批已通过", iid, title, [originator])]
        status, result, finished = "COMPLETED", "agree", now
    guard = {
        "state": orjson.dumps({"tasks": tasks}).decode(),
        "status": status,
        "result": result,
        "now": now,
        "finished": finished,
        "pi": pi,
        "lock": lock,
        "fi": fi,
    }
    # The record is written only when its status or result changes (as Zida does): at the last step.
    record_changed = status != "RUNNING"
    if IS_PG:  # one statement, a transaction by itself
        record = (
            ", record AS (UPDATE form_instance SET instance_status = :status, approved_result = :result,"
            " modified_at = :now FROM guard WHERE form_instance.id = :fi)"
        )
        await state["pool"].fetchval(
            *_pg(
                "WITH guard AS (UPDATE process_instance SET state = CAST(:state AS jsonb), status = :status,"
                " result = :result, modified_at = :now, finished_at = :finished, lock_version = lock_version + 1"
                " WHERE id = :pi AND lock_version = :lock RETURNING id), "
                + _guarded_cte([_PG_NEW_TASKS, _PG_CHANGED_TASKS, _PG_HISTORY, _PG_EVENTS, _PG_MESSAGES])
                + (record if record_changed else "")
                + " SELECT count(*) FROM guard",
                {**f, **guard, **_rows(new, changed, ops, events, messages)},
            )
        )
    else:
        async with _write() as tx:
            await tx.execute(
                "UPDATE process_instance SET state = :state, status = :status, result = :result, modified_at = :now,"
                " finished_at = :finished, lock_version = lock_version + 1 WHERE id = :pi AND lock_version = :lock",
                guard,
            )
            await _write_rows_sqlite(tx, pi, new, changed, ops, events, messages, now)
            if record_changed:
                await tx.execute(
                    "UPDATE form_instance SET instance_status = :status, approved_result = :result,"
                    " modified_at = :now WHERE id = :fi",
                    guard,
                )
    return Response(orjson.dumps({"result": True}), media_type="application/json")


def _pg(sql: str, args: dict[str, Any]) -> list[Any]:
    names = _names(sql)
    return [numbered(sql, names), *[args[n] for n in names]]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    if IS_PG:
        from urllib.parse import parse_qsl

        import asyncpg

        url, _, query = CONFIG["url"].partition("?")
        settings = dict(parse_qsl(query))  # search_path, application_name
        state["pool"] = await asyncpg.create_pool(url, min_size=1, max_size=8, server_settings=settings)
    else:
        conn = sqlite3.connect(CONFIG["url"].split("///", 1)[1], isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # As durable as Zida's commits (zida.db.database: ZIDA_SQLITE_SYNCHRONOUS, FULL unless told otherwise).
        conn.execute(f"PRAGMA synchronous={os.environ.get('ZIDA_SQLITE_SYNCHRONOUS', 'FULL').upper()}")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA mmap_size=1073741824")  # reads mapped, as Zida's connections read (zida.db.database)
        conn.isolation_level = "DEFERRED"
        state["conn"] = conn
    yield


app = Starlette(
    routes=[
        Route("/rec/{id}", get_record, methods=["GET"]),
        Route("/rec", save_record, methods=["POST"]),
        Route("/search", search, methods=["POST"]),
        Route("/flow/start", flow_start, methods=["POST"]),
        Route("/flow/tasks", flow_tasks, methods=["GET"]),
        Route("/flow/execute", flow_execute, methods=["POST"]),
    ],
    lifespan=lifespan,
)
