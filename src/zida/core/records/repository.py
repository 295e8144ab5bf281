"""SQL for form instances and their operation log."""

from __future__ import annotations

from typing import Any

import orjson

from zida.core.apps.models import Field
from zida.core.filters import RecordQuery
from zida.core.records.models import FormInstance
from zida.db import Connection, Row
from zida.db.filters import FilterCompiler

__all__ = [
    "delete_instance",
    "find_instance",
    "insert_instance",
    "insert_operation_log",
    "search_instance_ids",
    "search_instances",
    "update_instance",
]

INSTANCE_COLUMNS = (
    "id, instance_id, corp_pk, app_pk, form_pk, form_version, title, originator_user_id, modifier_user_id,"
    " created_at, modified_at, data, data_version, serial_no, process_instance_id, instance_status,"
    " approved_result"
)
COLUMNS = ", ".join("fi." + c.strip() for c in INSTANCE_COLUMNS.split(",")) + ", f.form_uuid"


def _instance(row: Row, form_uuid: str | None = None) -> FormInstance:
    return FormInstance(
        pk=row["id"],
        instance_id=row["instance_id"],
        corp_pk=row["corp_pk"],
        app_pk=row["app_pk"],
        form_pk=row["form_pk"],
        form_uuid=form_uuid or row["form_uuid"],
        form_version=row["form_version"],
        title=row["title"],
        originator_user_id=row["originator_user_id"],
        modifier_user_id=row["modifier_user_id"],
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        data=orjson.loads(row["data"]),
        data_version=row["data_version"],
        serial_no=row["serial_no"],
        process_instance_id=row["process_instance_id"],
        instance_status=row["instance_status"],
        approved_result=row["approved_result"],
    )


async def find_instance(conn: Connection, corp_pk: int, instance_id: str, *, lock: bool = False) -> FormInstance | None:
    """The instance with this id in the corp (row-locked on PostgreSQL when ``lock``)."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM form_instance fi JOIN form f ON f.id = fi.form_pk"
        " WHERE fi.instance_id = :instance_id AND fi.corp_pk = :corp_pk"
        + (conn.sql.for_update.replace("FOR UPDATE", "FOR UPDATE OF fi") if lock else ""),
        {"instance_id": instance_id, "corp_pk": corp_pk},
    )
    return None if row is None else _instance(row)


async def insert_instance(conn: Connection, inst: FormInstance) -> int:
    """Insert a new instance; returns its primary key."""
    pk = await conn.fetchval(
        "INSERT INTO form_instance (instance_id, corp_pk, app_pk, form_pk, form_version, title, originator_user_id,"
        " modifier_user_id, created_at, modified_at, data, data_version, serial_no, process_instance_id,"
        " instance_status, approved_result)"
        " VALUES (:instance_id, :corp_pk, :app_pk, :form_pk, :form_version, :title, :originator, :modifier,"
        f" :created_at, :modified_at, {conn.sql.json_param('data')}, :data_version, :serial_no,"
        " :process_instance_id, :instance_status, :approved_result) RETURNING id",
        {
            "instance_id": inst.instance_id,
            "corp_pk": inst.corp_pk,
            "app_pk": inst.app_pk,
            "form_pk": inst.form_pk,
            "form_version": inst.form_version,
            "title": inst.title,
            "originator": inst.originator_user_id,
            "modifier": inst.modifier_user_id,
            "created_at": inst.created_at,
            "modified_at": inst.modified_at,
            "data": orjson.dumps(inst.data).decode(),
            "data_version": inst.data_version,
            "serial_no": inst.serial_no,
            "process_instance_id": inst.process_instance_id,
            "instance_status": inst.instance_status,
            "approved_result": inst.approved_result,
        },
    )
    return int(pk)


async def update_instance(conn: Connection, inst: FormInstance) -> None:
    """Write back the data and modification fields of an instance."""
    await conn.execute(
        f"UPDATE form_instance SET data = {conn.sql.json_param('data')}, data_version = :data_version,"
        " form_version = :form_version, modifier_user_id = :modifier, modified_at = :modified_at WHERE id = :pk",
        {
            "data": orjson.dumps(inst.data).decode(),
            "data_version": inst.data_version,
            "form_version": inst.form_version,
            "modifier": inst.modifier_user_id,
            "modified_at": inst.modified_at,
            "pk": inst.pk,
        },
    )


async def delete_instance(conn: Connection, pk: int) -> None:
    """Remove an instance row."""
    await conn.execute("DELETE FROM form_instance WHERE id = :pk", {"pk": pk})


async def insert_operation_log(
    conn: Connection,
    *,
    corp_pk: int,
    form_pk: int,
    instance_id: str,
    operator: str,
    operation: str,
    changes: Any,
    at: int,
) -> None:
    """Append one row to a record's operation log."""
    await conn.execute(
        "INSERT INTO form_operation_log (corp_pk, form_pk, instance_id, operator_user_id, operation_type, changes,"
        f" created_at) VALUES (:corp_pk, :form_pk, :instance_id, :operator, :operation,"
        f" {conn.sql.json_param('changes')}, :at)",
        {
            "corp_pk": corp_pk,
            "form_pk": form_pk,
            "instance_id": instance_id,
            "operator": operator,
            "operation": operation,
            "changes": orjson.dumps(changes).decode(),
            "at": at,
        },
    )


def _where(conn: Connection, form_pk: int, fields: tuple[Field, ...], query: RecordQuery) -> tuple[str, FilterCompiler]:
    compiler = FilterCompiler(conn.sql, fields)
    # The form is a literal so that the per-form partial indexes (zida.db.indexes) apply.
    return f"form_pk = {int(form_pk)} AND {compiler.where(query.filter)}", compiler


async def search_instances(
    conn: Connection, form_pk: int, form_uuid: str, fields: tuple[Field, ...], query: RecordQuery
) -> tuple[int | None, list[FormInstance]]:
    """One page of a form's instances matching ``query``, and the total count if asked."""
    where, compiler = _where(conn, form_pk, fields, query)
    rows = await conn.fetch(
        f"SELECT {INSTANCE_COLUMNS} FROM form_instance WHERE {where}"
        f" ORDER BY {compiler.order_by(query.sort)} LIMIT :limit OFFSET :offset",
        {**compiler.params, "limit": query.page.size, "offset": query.page.offset},
    )
    total = None
    if query.with_total:
        total = int(await conn.fetchval(f"SELECT count(*) FROM form_instance WHERE {where}", compiler.params))
    return total, [_instance(r, form_uuid) for r in rows]


async def search_instance_ids(
    conn: Connection, form_pk: int, fields: tuple[Field, ...], query: RecordQuery
) -> tuple[int | None, list[str]]:
    """Like :func:`search_instances` but only the instance ids."""
    where, compiler = _where(conn, form_pk, fields, query)
    rows = await conn.fetch(
        f"SELECT instance_id FROM form_instance WHERE {where}"
        f" ORDER BY {compiler.order_by(query.sort)} LIMIT :limit OFFSET :offset",
        {**compiler.params, "limit": query.page.size, "offset": query.page.offset},
    )
    total = None
    if query.with_total:
        total = int(await conn.fetchval(f"SELECT count(*) FROM form_instance WHERE {where}", compiler.params))
    return total, [r["instance_id"] for r in rows]
