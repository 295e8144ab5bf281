"""Actions on form records: each mutation is one transaction writing the change and its operation log."""

from __future__ import annotations

from typing import Any

from zida.clock import now_ms
from zida.core.access.models import AppActor
from zida.core.apps.models import Field, Form
from zida.core.apps.service import get_form
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from zida.core.filters import And, Condition, Filter, RecordQuery
from zida.core.org.repository import find_departments, find_users
from zida.core.records import repository as repo
from zida.core.records.models import FormInstance, SearchResult
from zida.core.records.values import References, normalize_values
from zida.db import Connection, Database
from zida.ids import new_form_instance_id

__all__ = [
    "MAX_PAGE_SIZE",
    "delete_form_instance",
    "get_form_instance",
    "instance_app_pk",
    "save_form_instance",
    "schemas_of",
    "search_form_instance_ids",
    "search_form_instances",
    "update_form_instance",
]

MAX_PAGE_SIZE = 100


async def _check_references(conn: Connection, corp_pk: int, refs: References) -> None:
    if refs.user_ids:
        known = await find_users(conn, corp_pk, refs.user_ids)
        for user_id in sorted(refs.user_ids - known.keys()):
            field = refs.owners.get("user:" + user_id)
            raise InvalidArgument(
                f"{field}: user {user_id} does not exist in this corp",
                reason="form_data.unknown_user",
                field=field,
            )
    if refs.dept_ids:
        depts = await find_departments(conn, corp_pk, (int(d) for d in refs.dept_ids))
        for dept_id in sorted(refs.dept_ids - {str(d) for d in depts}):
            field = refs.owners.get("dept:" + dept_id)
            raise InvalidArgument(
                f"{field}: department {dept_id} does not exist in this corp",
                reason="form_data.unknown_department",
                field=field,
            )


def _can_touch(actor: AppActor, inst: FormInstance) -> bool:
    return actor.is_app_admin or inst.originator_user_id == actor.user_id


async def save_form_instance(db: Database, actor: AppActor, form_uuid: str, values: Any) -> FormInstance:
    """Create a record of a plain (receipt) form; any member of the corp may submit."""
    async with db.transaction() as tx:
        form = await get_form(tx, actor, form_uuid)
        if form.form_type != "receipt":
            raise Conflict(
                f"{form.form_uuid} is a process form: start a process instance instead",
                reason="form.process_form_cannot_save",
            )
        data, refs = normalize_values(form.fields, values, partial=False)
        data = {k: v for k, v in data.items() if v is not None}
        await _check_references(tx, actor.corp_pk, refs)
        now = now_ms()
        inst = FormInstance(
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
            data=data,
            data_version=1,
        )
        inst.pk = await repo.insert_instance(tx, inst)
        await repo.insert_operation_log(
            tx,
            corp_pk=actor.corp_pk,
            form_pk=form.pk,
            instance_id=inst.instance_id,
            operator=actor.user_id,
            operation="CREATE",
            changes={k: {"new": v} for k, v in data.items()},
            at=now,
        )
    return inst


async def instance_app_pk(conn: Connection, corp_pk: int, instance_id: str) -> int:
    """The app an instance of the corp belongs to (to authenticate calls that omit appType)."""
    value = await conn.fetchval(
        "SELECT app_pk FROM form_instance WHERE instance_id = :i AND corp_pk = :c",
        {"i": instance_id, "c": corp_pk},
    )
    if value is None:
        raise NotFound(f"form instance {instance_id} does not exist or was deleted", reason="record.not_found")
    return int(value)


async def _load(conn: Connection, actor: AppActor, instance_id: str, *, lock: bool) -> FormInstance:
    if not instance_id:
        raise InvalidArgument("formInstanceId is required", reason="argument.missing", param="formInstanceId")
    inst = await repo.find_instance(conn, actor.corp_pk, instance_id, lock=lock)
    if inst is None or inst.app_pk != actor.app_pk:
        raise NotFound(f"form instance {instance_id} does not exist or was deleted", reason="record.not_found")
    if not _can_touch(actor, inst):
        raise PermissionDenied(
            f"user {actor.user_id} is neither an app admin nor the originator of {instance_id}",
            reason="permission.denied",
        )
    return inst


async def get_form_instance(conn: Connection, actor: AppActor, instance_id: str) -> tuple[FormInstance, Form]:
    """A record and the schema version it was saved with; app admins and the originator may read it."""
    inst = await _load(conn, actor, instance_id, lock=False)
    form = await get_form(conn, actor, None, form_pk=inst.form_pk, version=inst.form_version)
    return inst, form


async def update_form_instance(
    db: Database, actor: AppActor, instance_id: str, values: Any, *, use_latest_version: bool = False
) -> FormInstance:
    """Change only the given fields (a TableField value replaces the whole sub-table).

    The row is locked for the transaction and the new values are merged into the current ones, so two
    concurrent updates of different fields both survive; on the same field the later commit wins.
    """
    async with db.transaction() as tx:
        inst = await _load(tx, actor, instance_id, lock=True)
        version = None if use_latest_version else inst.form_version
        form = await get_form(tx, actor, None, form_pk=inst.form_pk, version=version)
        if not isinstance(values, dict) or not values:
            raise InvalidArgument("updateFormDataJson must be a non-empty object", reason="form_data.invalid")
        changes, refs = normalize_values(form.fields, values, partial=True, current=inst.data)
        await _check_references(tx, actor.corp_pk, refs)
        diff = {}
        for key, value in changes.items():
            old = inst.data.get(key)
            if value is None:
                inst.data.pop(key, None)
            else:
                inst.data[key] = value
            if old != value:
                diff[key] = {"old": old, "new": value}
        now = now_ms()
        inst.form_version = form.version
        inst.data_version += 1
        inst.modifier_user_id = actor.user_id
        inst.modified_at = now
        await repo.update_instance(tx, inst)
        await repo.insert_operation_log(
            tx,
            corp_pk=actor.corp_pk,
            form_pk=inst.form_pk,
            instance_id=inst.instance_id,
            operator=actor.user_id,
            operation="UPDATE",
            changes=diff,
            at=now,
        )
    return inst


async def delete_form_instance(db: Database, actor: AppActor, instance_id: str) -> None:
    """Delete a record (app admins, or the originator of their own record)."""
    async with db.transaction() as tx:
        inst = await _load(tx, actor, instance_id, lock=True)
        await repo.delete_instance(tx, inst.pk)
        await repo.insert_operation_log(
            tx,
            corp_pk=actor.corp_pk,
            form_pk=inst.form_pk,
            instance_id=inst.instance_id,
            operator=actor.user_id,
            operation="DELETE",
            changes={},
            at=now_ms(),
        )


def _scoped(actor: AppActor, query: RecordQuery) -> RecordQuery:
    """Non-admins see only the records they originated."""
    if query.page.size < 1 or query.page.size > MAX_PAGE_SIZE or query.page.number < 1:
        raise InvalidArgument(
            f"page must be >= 1 and pageSize between 1 and {MAX_PAGE_SIZE}", reason="argument.invalid_page"
        )
    if actor.is_app_admin:
        return query
    own: Filter = Condition("originator", "eq", actor.user_id)
    combined = own if query.filter is None else And((own, query.filter))
    return RecordQuery(filter=combined, sort=query.sort, page=query.page, with_total=query.with_total)


async def search_form_instances(conn: Connection, actor: AppActor, form: Form, query: RecordQuery) -> SearchResult:
    """Search one form's records (app admins: all; others: their own)."""
    total, items = await repo.search_instances(conn, form.pk, form.form_uuid, form.fields, _scoped(actor, query))
    return SearchResult(total=total, items=items)


async def search_form_instance_ids(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery
) -> tuple[int | None, list[str]]:
    """Ids of one form's matching records (same visibility as :func:`search_form_instances`)."""
    return await repo.search_instance_ids(conn, form.pk, form.fields, _scoped(actor, query))


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
