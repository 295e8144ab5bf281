"""Writing a record inside a caller's transaction: validate, merge, and write the row with its log row and event.

The record actions (``zida.core.records.actions``) and the workflow (which owns process records) both write records
through these functions, so a record's change always comes with its operation-log row and its domain event. No
access decision is made here: callers have made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument, ZidaError
from zida.core.events.models import DomainEvent
from zida.core.events.outbox import append_events
from zida.core.files.attachments import attach_files, complete_attachments
from zida.core.org.repository import find_departments, find_users
from zida.core.principals import AppActor
from zida.core.records import store
from zida.core.records.models import FormInstance
from zida.core.records.serials import record_serial
from zida.core.records.values import References, is_empty, normalize_values
from zida.db import Connection
from zida.ids import new_form_instance_id

__all__ = [
    "attach_referenced",
    "checked_values",
    "created_changes",
    "insert_record",
    "log_row",
    "new_record",
    "prepare_record",
    "record_event",
    "record_insert_ctes",
    "reference_problems",
    "update_record",
    "validated",
    "write_logs",
]


async def reference_problems(conn: Connection, corp_pk: int, refs_list: list[References]) -> list[ZidaError | None]:
    """For each item, the first user, department or file it names that the corp does not have (one query each);
    files are completed in place and the ones a write would attach noted in ``refs.attaching``. Writes nothing:
    the write that keeps the values marks those with :func:`attach_referenced`, in its transaction."""
    users = set().union(*(r.user_ids for r in refs_list))
    depts = set().union(*(r.dept_ids for r in refs_list))
    known_users = {u for u, user in (await find_users(conn, corp_pk, users)).items() if user.active} if users else set()
    known_depts = {str(d) for d in await find_departments(conn, corp_pk, (int(d) for d in depts))} if depts else set()
    problems: list[ZidaError | None] = []
    for refs in refs_list:
        problem: ZidaError | None = None
        for user_id in sorted(refs.user_ids - known_users):
            fid = refs.owners.get("user:" + user_id)
            problem = InvalidArgument(
                f"{fid}: user {user_id} does not exist in this corp", reason="form_data.unknown_user", field=fid
            )
            break
        if problem is None:
            for dept_id in sorted(refs.dept_ids - known_depts):
                fid = refs.owners.get("dept:" + dept_id)
                problem = InvalidArgument(
                    f"{fid}: department {dept_id} does not exist in this corp",
                    reason="form_data.unknown_department",
                    field=fid,
                )
                break
        problems.append(problem)
    if any(r.files for r in refs_list):  # attachments naming Zida files: checked, completed, marked attached
        good = [i for i, p in enumerate(problems) if p is None]
        found = await complete_attachments(conn, corp_pk, [refs_list[i].files for i in good])
        for i, (problem, attaching) in zip(good, found, strict=True):
            problems[i] = problem
            refs_list[i].attaching = attaching
    return problems


async def attach_referenced(conn: Connection, refs_list: Sequence[References]) -> None:
    """Mark the files these written values name attached, in the transaction that wrote them."""
    pks = set().union(*(r.attaching for r in refs_list)) if refs_list else set()
    if pks:
        await attach_files(conn, pks)


async def checked_values(conn: Connection, corp_pk: int, form: Form, values: Any) -> tuple[dict[str, Any], References]:
    """All of a new record's values, checked against the form and the corp's directory, and what they reference."""
    data, refs = normalize_values(form.fields, values, partial=False)
    problem = (await reference_problems(conn, corp_pk, [refs]))[0]
    if problem is not None:
        raise problem
    return data, refs


async def validated(conn: Connection, corp_pk: int, form: Form, values: Any) -> dict[str, Any]:
    """All of a new record's values, checked against the form and the corp's directory; the files they name are
    marked attached, so ``conn`` is the transaction that writes the record."""
    data, refs = await checked_values(conn, corp_pk, form, values)
    await attach_referenced(conn, [refs])
    return data


def new_record(actor: AppActor, form: Form, data: dict[str, Any], now: int) -> FormInstance:
    """A new record of ``form`` (not yet saved), originated by the actor."""
    return FormInstance(
        pk=0,
        instance_id=new_form_instance_id(),
        corp_pk=actor.corp_pk,
        app_pk=actor.app_pk,
        form_pk=form.pk,
        form_uuid=form.form_uuid,
        form_version=form.version,
        title=f"{actor.user_name}发起的{form.title_zh}",
        originator_user_id=actor.user_id,
        modifier_user_id=actor.user_id,
        created_at=now,
        modified_at=now,
        data={k: v for k, v in data.items() if v is not None},
        data_version=1,
    )


def created_changes(inst: FormInstance) -> dict[str, Any]:
    """A new record's values as changes (``{fieldId: {"new": value}}``)."""
    return {k: {"new": v} for k, v in inst.data.items()}


def log_row(actor: AppActor, inst: FormInstance, operation: str, changes: Any, at: int) -> dict[str, Any]:
    """An operation-log row (``zida.core.records.store.insert_operation_logs``)."""
    return {
        "corp_pk": actor.corp_pk,
        "form_pk": inst.form_pk,
        "instance_id": inst.instance_id,
        "operator": actor.user_id,
        "operation": operation,
        "changes": changes,
        "at": at,
    }


_TOPICS = {"CREATE": "record.created", "UPDATE": "record.updated", "DELETE": "record.deleted"}


def record_event(actor: AppActor, inst: FormInstance, operation: str, changes: Any, at: int) -> DomainEvent:
    """The domain event of one record change (``operation``: CREATE, UPDATE or DELETE)."""
    data: dict[str, Any] = {"form": inst.form_uuid}
    if operation != "DELETE":
        data["changes"] = changes
    return DomainEvent(
        topic=_TOPICS[operation],
        corp_pk=inst.corp_pk,
        object_id=inst.instance_id,
        actor=actor.user_id,
        at=at,
        data=data,
        app=actor.app_type,
    )


# PostgreSQL: a change's log row and its event as one statement (one round trip, as the log row alone was).
_LOG_AND_EVENT = (
    "WITH log AS (INSERT INTO form_operation_log (corp_pk, form_pk, instance_id, operator_user_id, operation_type,"
    " changes, created_at) VALUES (:corp_pk, :form_pk, :instance_id, :operator, :operation, CAST(:changes AS jsonb),"
    " :at)) INSERT INTO outbox_event (corp_pk, event_type, payload, created_at)"
    " VALUES (:corp_pk, :topic, CAST(:payload AS jsonb), :at)"
)


async def write_logs(conn: Connection, actor: AppActor, changes: list[tuple[FormInstance, str, Any]], at: int) -> None:
    """The operation-log rows and domain events of some record changes (``(record, operation, changes)``)."""
    if not changes:
        return
    if conn.sql.name == "postgresql":
        rows = []
        for inst, operation, change in changes:
            event = record_event(actor, inst, operation, change, at)
            row = log_row(actor, inst, operation, change, at)
            row["changes"] = orjson.dumps(change).decode()
            rows.append({**row, "topic": event.topic, "payload": orjson.dumps(event.payload()).decode()})
        await conn.executemany(_LOG_AND_EVENT, rows)
        return
    await store.insert_operation_logs(conn, [log_row(actor, i, op, c, at) for i, op, c in changes])
    await append_events(conn, [record_event(actor, i, op, c, at) for i, op, c in changes])


async def prepare_record(
    conn: Connection, actor: AppActor, form: Form, values: Any, now: int
) -> tuple[FormInstance, set[int]]:
    """A new record of ``form`` with validated values, not yet saved (the caller inserts it with insert_record), and
    the files it attaches (the caller marks them with ``attach_files`` where it writes the record). Writes nothing."""
    data, refs = await checked_values(conn, actor.corp_pk, form, values)
    return new_record(actor, form, data, now), refs.attaching


async def insert_record(conn: Connection, actor: AppActor, inst: FormInstance, *, with_event: bool = True) -> None:
    """Insert a prepared record and its CREATE log inside the caller's transaction, and its event unless the caller
    writes it with its own (``record_event(actor, inst, "CREATE", created_changes(inst), …)``)."""
    changes = created_changes(inst)
    if conn.sql.name == "postgresql":
        # The row, its log row (and its event) as one statement.
        sql, params = record_insert_ctes(actor, inst)
        if with_event:
            event = record_event(actor, inst, "CREATE", changes, inst.created_at)
            sql += _RECORD_EVENT_CTE
            params.update(rec_topic=event.topic, rec_payload=orjson.dumps(event.payload()).decode())
        inst.pk = int(await conn.fetchval("WITH " + sql + " SELECT id FROM record", params))
        return
    inst.pk = await store.insert_instance(conn, inst)
    if with_event:
        await write_logs(conn, actor, [(inst, "CREATE", changes)], inst.created_at)
    else:
        await store.insert_operation_logs(conn, [log_row(actor, inst, "CREATE", changes, inst.created_at)])


_RECORD_EVENT_CTE = (
    ", record_event AS (INSERT INTO outbox_event (corp_pk, event_type, payload, created_at)"
    " VALUES (:rec_corp_pk, :rec_topic, CAST(:rec_payload AS jsonb), :rec_created_at))"
)


def record_insert_ctes(actor: AppActor, inst: FormInstance) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: CTEs inserting a prepared record (``record``, RETURNING its id) and its CREATE log, to lead the
    caller's one statement (what :func:`insert_record` writes but the event, which the caller adds to its own)."""
    return store.insert_instance_ctes(inst, log_row(actor, inst, "CREATE", created_changes(inst), inst.created_at))


async def merge_values(
    conn: Connection,
    actor: AppActor,
    inst: FormInstance,
    values: Any,
    *,
    use_latest_version: bool,
    ignore_empty: bool,
    now: int,
) -> dict[str, Any]:
    """Validate ``values`` against the record's schema, merge them into it and write the row; returns the changes
    (``{fieldId: {"old", "new"}}``) for its log row and event."""
    if not isinstance(values, dict) or not values:
        raise InvalidArgument("the update must be a non-empty object of {fieldId: value}", reason="form_data.invalid")
    if ignore_empty:
        values = {k: v for k, v in values.items() if not is_empty(v)}
    form = await get_form(
        conn, actor, None, form_pk=inst.form_pk, version=None if use_latest_version else inst.form_version
    )
    changes, refs = normalize_values(form.fields, values, partial=True, current=inst.data)
    problem = (await reference_problems(conn, actor.corp_pk, [refs]))[0]
    if problem is not None:
        raise problem
    await attach_referenced(conn, [refs])  # conn is the transaction that writes the row
    diff = {}
    for key, value in changes.items():
        old = inst.data.get(key)
        if value is None:
            inst.data.pop(key, None)
        else:
            inst.data[key] = value
        if old != value:
            diff[key] = {"old": old, "new": value}
    inst.form_version = form.version
    inst.serial_no = record_serial(form, inst.data)
    inst.data_version += 1
    inst.modifier_user_id = actor.user_id
    inst.modified_at = now
    await store.update_instance(conn, inst)
    return diff


async def update_record(
    conn: Connection, actor: AppActor, inst: FormInstance, values: Any, now: int, *, use_latest_version: bool = False
) -> None:
    """Merge ``values`` into a record the caller has loaded (and locked), with its log row and event, in its
    transaction."""
    diff = await merge_values(
        conn, actor, inst, values, use_latest_version=use_latest_version, ignore_empty=False, now=now
    )
    await write_logs(conn, actor, [(inst, "UPDATE", diff)], now)


def table_field(form: Form, table_field_id: str) -> Field:
    """The sub-table field ``table_field_id`` of the form."""
    table = form.field(table_field_id)
    if table is None or table.kind != "table":
        raise InvalidArgument(
            f"{table_field_id} is not a sub-table of {form.form_uuid}", reason="argument.invalid", param="table_field"
        )
    return table
