"""Reading form records: by id, searches, sub-table rows, people fields; every read goes through the access policy
(``zida.core.access.policy``): a search adds the policy's filter, a read by id asks it about the record."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from zida.core.access import policy
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument, NotFound
from zida.core.principals import AppActor
from zida.core.records import store
from zida.core.records.changes import table_field
from zida.core.records.filters import And, Filter, Page, RecordQuery
from zida.core.records.models import FormInstance, SearchResult
from zida.core.records.values import brief
from zida.db import Connection

__all__ = [
    "MAX_PAGE_SIZE",
    "check_record_form",
    "employee_field_values",
    "get_form_instance",
    "get_form_instances",
    "instance_app_pk",
    "list_sub_table_rows",
    "other_form",
    "readable_record",
    "schemas_of",
    "scoped_query",
    "search_form_instance_ids",
    "search_form_instances",
]

MAX_PAGE_SIZE = 200  # the largest page a dialect may ask for (WeDa's data models: 200; Yida's routes stop at 100)


def _not_found(instance_id: str) -> NotFound:
    return NotFound(f"form instance {instance_id} does not exist or was deleted", reason="record.not_found")


async def instance_app_pk(conn: Connection, corp_pk: int, instance_id: str) -> int:
    """The app a record of the corp belongs to (to authenticate calls that do not name the app)."""
    value = await store.record_app_pk(conn, corp_pk, instance_id)
    if value is None:
        raise _not_found(instance_id)
    return value


async def check_record_form(conn: Connection, actor: AppActor, instance_id: str, form_uuid: str | None) -> None:
    """A form named next to a record's id must be the record's (``form.other_form`` otherwise). Nothing to check
    without a form, and a record that is not the app's is left to the call to report as it does."""
    if not form_uuid:
        return
    actual = await store.record_form_uuid(conn, actor.corp_pk, actor.app_pk, instance_id)
    if actual is not None and actual != form_uuid:
        raise other_form(instance_id, form_uuid)


def other_form(instance_id: str, form_uuid: str) -> InvalidArgument:
    """The error of a record (or approval) named together with a form it does not belong to."""
    return InvalidArgument(f"{instance_id} is not a record of {form_uuid}", reason="form.other_form", param="form")


async def readable_record(conn: Connection, actor: AppActor, instance_id: str) -> FormInstance:
    """A record the actor may read (``NotFound`` if it is not one of the app's, ``PermissionDenied`` if hidden)."""
    if not instance_id:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="record")
    inst = await store.find_instance(conn, actor.corp_pk, instance_id)
    if inst is None:
        raise _not_found(instance_id)
    await policy.check_readable(
        conn,
        actor,
        app_pk=inst.app_pk,
        record_id=inst.instance_id,
        originator=inst.originator_user_id,
        is_process=inst.process_instance_id is not None,
        what="form instance",
    )
    return inst


async def get_form_instance(conn: Connection, actor: AppActor, instance_id: str) -> tuple[FormInstance, Form]:
    """A record the actor may read and the schema version it was saved with."""
    inst = await readable_record(conn, actor, instance_id)
    form = await get_form(conn, actor, None, form_pk=inst.form_pk, version=inst.form_version)
    return inst, form


async def get_form_instances(
    conn: Connection, actor: AppActor, form: Form, instance_ids: list[str]
) -> list[FormInstance]:
    """Records of ``form`` by id, in the order asked; ids that are unknown, of another form or not readable by the
    actor are left out."""
    found = await store.find_instances(conn, actor.corp_pk, instance_ids)
    out = []
    for instance_id in dict.fromkeys(instance_ids):
        inst = found.get(instance_id)
        if inst is None or inst.form_pk != form.pk:
            continue
        if await policy.can_read(
            conn,
            actor,
            app_pk=inst.app_pk,
            record_id=inst.instance_id,
            originator=inst.originator_user_id,
            is_process=inst.process_instance_id is not None,
        ):
            out.append(inst)
    return out


def scoped_query(actor: AppActor, form: Form, query: RecordQuery) -> RecordQuery:
    """``query`` limited to the records the actor may read (the access policy's filter), its page checked."""
    if query.page.size < 1 or query.page.size > MAX_PAGE_SIZE or query.page.number < 1:
        raise InvalidArgument(
            f"page must be >= 1 and pageSize between 1 and {MAX_PAGE_SIZE}", reason="argument.invalid_page"
        )
    readable = policy.readable_filter(actor, process_form=form.form_type == "process")
    if readable is None:
        return query
    combined: Filter = readable if query.filter is None else And((readable, query.filter))
    return replace(query, filter=combined)


async def search_form_instances(conn: Connection, actor: AppActor, form: Form, query: RecordQuery) -> SearchResult:
    """Search one form's records the actor may read (app admins: all)."""
    scoped = scoped_query(actor, form, query)
    total, items = await store.search_instances(conn, actor.corp_pk, form.pk, form.form_uuid, form.fields, scoped)
    return SearchResult(total=total, items=items)


async def search_form_instance_ids(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery
) -> tuple[int | None, list[str]]:
    """Ids of one form's matching records (same visibility as :func:`search_form_instances`)."""
    scoped = scoped_query(actor, form, query)
    return await store.search_instance_ids(conn, actor.corp_pk, form.pk, form.fields, scoped)


async def schemas_of(
    conn: Connection, actor: AppActor, form: Form, items: list[FormInstance]
) -> dict[tuple[int, int], tuple[Field, ...]]:
    """The schema version each record was saved with (``form`` is one of them; the rest are loaded)."""
    out: dict[tuple[int, int], tuple[Field, ...]] = {(form.pk, form.version): form.fields}
    for inst in items:
        key = (inst.form_pk, inst.form_version)
        if key not in out:
            out[key] = (await get_form(conn, actor, None, form_pk=inst.form_pk, version=inst.form_version)).fields
    return out


async def list_sub_table_rows(
    conn: Connection, actor: AppActor, instance_id: str, table_field_id: str, page: Page
) -> tuple[int, list[dict[str, Any]], Form, Field]:
    """One page of a record's sub-table rows (stored shape, with their row ids) and the row count."""
    inst, form = await get_form_instance(conn, actor, instance_id)
    table = table_field(form, table_field_id)
    rows = inst.data.get(table.field_id) or []
    return len(rows), rows[page.offset : page.offset + page.size], form, table


async def employee_field_values(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery, field_ids: list[str], *, limit: int = 10_000
) -> dict[str, list[str]]:
    """The distinct users each people field holds over the matching records the actor may read (at most ``limit``
    per field)."""
    out: dict[str, list[str]] = {}
    scoped = scoped_query(actor, form, query)
    for field_id in field_ids or [f.field_id for f in form.fields if f.refers_to == "users"]:
        f = form.field(field_id)
        if f is None or f.refers_to != "users":
            raise InvalidArgument(
                f"{brief(field_id)} is not a people field of {form.form_uuid}",
                reason="argument.invalid",
                param="target_fields",
            )
        out[field_id] = await store.distinct_array_values(
            conn, actor.corp_pk, form.pk, form.fields, scoped, field_id, limit
        )
    return out
