"""The form API over one core: every call on form records goes through here, to the records or to the workflow.

A record of a process form *is* its approval (one id for both), so changing or deleting one
through the form API follows the approval's rules: a single update is the workflow's ``update_instance`` (its rule of
who may, and the instance learns of the change, so a concurrent approval step decides on the new values); a delete is
``delete_instance`` (app admins only, a running instance terminated first, its events written — the platform's data
management deletes approval data the same way); batch and sub-table updates lock the approval first and tell it of
the change. Searches of a process form may name the approval's current node by name. This is the only module that
uses both ``zida.core.records`` and ``zida.core.workflow``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from zida.core.apps.models import Form
from zida.core.principals import AppActor
from zida.core.records import actions as records
from zida.core.records import queries as record_queries
from zida.core.records import store as record_store
from zida.core.records.filters import Filter, RecordQuery
from zida.core.records.models import FormInstance, SearchResult
from zida.core.workflow import actions as workflow
from zida.core.workflow import store as workflow_store
from zida.core.workflow.definitions import resolve_node_names
from zida.db import Connection, Database

__all__ = [
    "APPROVALS",
    "delete_record",
    "delete_records",
    "save_record",
    "save_records",
    "search_record_ids",
    "search_records",
    "update_record",
    "update_records",
    "update_sub_table_rows",
    "upsert_record",
    "upsert_record_split",
]

# How approvals take part in record transactions (locked first, told of changes).
APPROVALS = records.ApprovalHooks(
    lock=workflow_store.lock_instances_of_records,
    assignees=workflow_store.running_assignees_of_records,
    touched=workflow_store.touch_instances_of_records,
)


async def _process_record(conn: Connection, actor: AppActor, instance_id: str) -> FormInstance | None:
    """The record, if it is a process record of the actor's app (else None: the records' own rules apply)."""
    if not instance_id:
        return None
    found = (await record_store.find_instances(conn, actor.corp_pk, [instance_id])).get(instance_id)
    if found is None or found.process_instance_id is None or found.app_pk != actor.app_pk:
        return None
    return found


async def save_record(db: Database, actor: AppActor, form_uuid: str, values: Any) -> FormInstance:
    """Create a record of a plain form (a process form's records are started as approvals)."""
    return await records.save_form_instance(db, actor, form_uuid, values)


async def save_records(
    db: Database, actor: AppActor, form_uuid: str, values_list: list[Any], *, keep_running: bool = False
) -> records.BatchResult:
    """Create many records of a plain form in one transaction (see ``records.save_form_instances``)."""
    return await records.save_form_instances(db, actor, form_uuid, values_list, keep_running=keep_running)


async def update_record(
    db: Database, actor: AppActor, instance_id: str, values: Any, *, use_latest_version: bool = False
) -> FormInstance:
    """Change some values of a record (a process record: as its approval's ``update_instance``)."""
    if await _process_record(db, actor, instance_id) is not None:
        return (await workflow.update_instance(db, actor, instance_id, values)).record
    return await records.update_form_instance(db, actor, instance_id, values, use_latest_version=use_latest_version)


async def update_records(
    db: Database,
    actor: AppActor,
    form: Form,
    updates: list[tuple[str, Any]],
    *,
    ignore_empty: bool = False,
    use_latest_version: bool = False,
    still_matching: Filter | None = None,
) -> list[str]:
    """Change many records of one form in one transaction; their approvals are locked first and told
    (``still_matching``: only those the filter still matches once locked; the ids changed are returned)."""
    return await records.update_form_instances(
        db,
        actor,
        form,
        updates,
        ignore_empty=ignore_empty,
        use_latest_version=use_latest_version,
        approvals=APPROVALS,
        still_matching=await _resolved_filter(db, form, still_matching),
    )


async def update_sub_table_rows(
    db: Database, actor: AppActor, instance_id: str, table_field_id: str, rows: Any, *, use_latest_version: bool = False
) -> None:
    """Change some rows of a record's sub-table (its approval, if any, locked first and told)."""
    await records.update_sub_table_rows(
        db, actor, instance_id, table_field_id, rows, use_latest_version=use_latest_version, approvals=APPROVALS
    )


async def delete_record(db: Database, actor: AppActor, instance_id: str) -> None:
    """Delete a record (a process record: as ``delete_instance`` deletes its approval)."""
    if await _process_record(db, actor, instance_id) is not None:
        await workflow.delete_instance(db, actor, instance_id)
        return
    await records.delete_form_instance(db, actor, instance_id)


async def delete_records(
    db: Database, actor: AppActor, form: Form, instance_ids: list[str], *, still_matching: Filter | None = None
) -> list[str]:
    """Delete many records of a plain form in one transaction (``still_matching``: only those the filter still
    matches once locked; the ids deleted are returned)."""
    return await records.delete_form_instances(
        db, actor, form, instance_ids, still_matching=await _resolved_filter(db, form, still_matching)
    )


async def upsert_record(db: Database, actor: AppActor, form: Form, condition: Filter | None, values: Any) -> list[str]:
    """Update the one record of a plain form matching ``condition``, or create it."""
    return await records.upsert_form_instance(db, actor, form, condition, values)


async def upsert_record_split(
    db: Database, actor: AppActor, form: Form, condition: Filter | None, update_values: Any, create_values: Any
) -> tuple[str, bool]:
    """Update the one record of a plain form matching ``condition``, or create one: (record id, created)."""
    return await records.upsert_form_instance_split(db, actor, form, condition, update_values, create_values)


async def _resolved_filter(conn: Connection, form: Form, condition: Filter | None) -> Filter | None:
    if condition is None or form.form_type != "process":
        return condition
    return await resolve_node_names(conn, form, condition)


async def _resolved(conn: Connection, form: Form, query: RecordQuery) -> RecordQuery:
    if form.form_type != "process":
        return query
    return replace(query, filter=await _resolved_filter(conn, form, query.filter))


async def search_records(conn: Connection, actor: AppActor, form: Form, query: RecordQuery) -> SearchResult:
    """Search one form's records the actor may read."""
    return await record_queries.search_form_instances(conn, actor, form, await _resolved(conn, form, query))


async def search_record_ids(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery
) -> tuple[int | None, list[str]]:
    """Ids of one form's matching records the actor may read."""
    return await record_queries.search_form_instance_ids(conn, actor, form, await _resolved(conn, form, query))
