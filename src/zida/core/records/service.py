"""Actions on form records: each mutation is one transaction writing the change and its operation log.

Batch actions are all-or-nothing: the first bad item raises an error that names it and nothing is written.
Only ``save_form_instances(keep_running=True)`` skips bad items, and then says which failed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from zida.clock import now_ms
from zida.core.apps.models import Field, Form
from zida.core.apps.service import get_form
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.org.repository import find_departments, find_users
from zida.core.principals import AppActor
from zida.core.records import store as repo
from zida.core.records.filters import And, Condition, Filter, Or, Page, RecordQuery
from zida.core.records.models import FormInstance, SearchResult
from zida.core.records.values import ROW_ID, References, is_empty, normalize_values
from zida.db import Connection, Database
from zida.ids import new_form_instance_id

__all__ = [
    "MAX_PAGE_SIZE",
    "BatchFailure",
    "BatchResult",
    "delete_form_instance",
    "delete_form_instances",
    "employee_field_values",
    "get_form_instance",
    "get_form_instances",
    "insert_record",
    "instance_app_pk",
    "list_sub_table_rows",
    "prepare_record",
    "record_insert_ctes",
    "resolve_process_filters",
    "save_form_instance",
    "save_form_instances",
    "schemas_of",
    "search_form_instance_ids",
    "search_form_instances",
    "update_form_instance",
    "update_form_instances",
    "update_record",
    "update_sub_table_rows",
    "upsert_form_instance",
]

MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class BatchFailure:
    """An item of a batch that was skipped, with why."""

    index: int
    error: ZidaError


@dataclass(slots=True)
class BatchResult:
    """Ids written by a batch, in input order, and the items that failed (only with keep-running)."""

    ids: list[str] = field(default_factory=list)
    failures: list[BatchFailure] = field(default_factory=list)


def _in_item(exc: ZidaError, label: str) -> ZidaError:
    """The same error, its message prefixed with the batch item it concerns."""
    return type(exc)(f"{label}: {exc.message}", reason=exc.reason, **exc.details)


async def _reference_problems(conn: Connection, corp_pk: int, refs_list: list[References]) -> list[ZidaError | None]:
    """For each item, the first user or department it names that the corp does not have (one query each)."""
    users = set().union(*(r.user_ids for r in refs_list))
    depts = set().union(*(r.dept_ids for r in refs_list))
    known_users = set((await find_users(conn, corp_pk, users)).keys()) if users else set()
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
    return problems


def _can_touch(actor: AppActor, inst: FormInstance) -> bool:
    return actor.is_app_admin or inst.originator_user_id == actor.user_id


def _receipt_form(form: Form) -> None:
    if form.form_type != "receipt":
        raise Conflict(
            f"{form.form_uuid} is a process form: start a process instance instead",
            reason="form.process_form_cannot_save",
        )


def _new_instance(actor: AppActor, form: Form, data: dict[str, Any], now: int) -> FormInstance:
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


def _log(actor: AppActor, inst: FormInstance, operation: str, changes: Any, at: int) -> dict[str, Any]:
    return {
        "corp_pk": actor.corp_pk,
        "form_pk": inst.form_pk,
        "instance_id": inst.instance_id,
        "operator": actor.user_id,
        "operation": operation,
        "changes": changes,
        "at": at,
    }


async def save_form_instance(db: Database, actor: AppActor, form_uuid: str, values: Any) -> FormInstance:
    """Create a record of a plain (receipt) form; any member of the corp may submit."""
    async with db.transaction() as tx:
        form = await get_form(tx, actor, form_uuid)
        _receipt_form(form)
        data, refs = normalize_values(form.fields, values, partial=False)
        problem = (await _reference_problems(tx, actor.corp_pk, [refs]))[0]
        if problem is not None:
            raise problem
        now = now_ms()
        inst = _new_instance(actor, form, data, now)
        inst.pk = await repo.insert_instance(tx, inst)
        await repo.insert_operation_log(
            tx, **_log(actor, inst, "CREATE", {k: {"new": v} for k, v in inst.data.items()}, now)
        )
    return inst


async def save_form_instances(
    db: Database, actor: AppActor, form_uuid: str, values_list: list[Any], *, keep_running: bool = False
) -> BatchResult:
    """Create many records in one transaction.

    All-or-nothing by default: the first invalid item raises (its message starts with ``[index]``).
    With ``keep_running`` invalid items are skipped, the valid ones saved, and the result lists the failures.
    An item may already be a ``ZidaError`` (the caller could not even decode it): it fails as that error.
    """
    result = BatchResult()
    async with db.transaction() as tx:
        form = await get_form(tx, actor, form_uuid)
        _receipt_form(form)
        prepared: list[tuple[int, dict[str, Any], References]] = []
        for index, values in enumerate(values_list):
            try:
                if isinstance(values, ZidaError):
                    raise values
                data, refs = normalize_values(form.fields, values, partial=False)
            except ZidaError as exc:
                if not keep_running:
                    raise _in_item(exc, f"[{index}]") from None
                result.failures.append(BatchFailure(index, exc))
                continue
            prepared.append((index, data, refs))
        problems = await _reference_problems(tx, actor.corp_pk, [refs for _, _, refs in prepared])
        now = now_ms()
        items = []
        for (index, data, _), problem in zip(prepared, problems, strict=True):
            if problem is not None:
                if not keep_running:
                    raise _in_item(problem, f"[{index}]")
                result.failures.append(BatchFailure(index, problem))
                continue
            items.append(_new_instance(actor, form, data, now))
        await repo.insert_instances(tx, items)
        await repo.insert_operation_logs(
            tx, [_log(actor, i, "CREATE", {k: {"new": v} for k, v in i.data.items()}, now) for i in items]
        )
        result.ids = [i.instance_id for i in items]
        result.failures.sort(key=lambda f: f.index)
    return result


async def instance_app_pk(conn: Connection, corp_pk: int, instance_id: str) -> int:
    """The app an instance of the corp belongs to (to authenticate calls that omit appType)."""
    value = await conn.fetchval(
        "SELECT app_pk FROM form_instance WHERE instance_id = :i AND corp_pk = :c",
        {"i": instance_id, "c": corp_pk},
    )
    if value is None:
        raise NotFound(f"form instance {instance_id} does not exist or was deleted", reason="record.not_found")
    return int(value)


def _check_access(actor: AppActor, inst: FormInstance | None, instance_id: str) -> FormInstance:
    if inst is None or inst.app_pk != actor.app_pk:
        raise NotFound(f"form instance {instance_id} does not exist or was deleted", reason="record.not_found")
    if not _can_touch(actor, inst):
        raise PermissionDenied(
            f"user {actor.user_id} is neither an app admin nor the originator of {instance_id}",
            reason="permission.denied",
        )
    return inst


async def _load(conn: Connection, actor: AppActor, instance_id: str, *, lock: bool) -> FormInstance:
    if not instance_id:
        raise InvalidArgument("formInstanceId is required", reason="argument.missing", param="formInstanceId")
    return _check_access(actor, await repo.find_instance(conn, actor.corp_pk, instance_id, lock=lock), instance_id)


async def get_form_instance(conn: Connection, actor: AppActor, instance_id: str) -> tuple[FormInstance, Form]:
    """A record and the schema version it was saved with; app admins and the originator may read it, and a
    process record also whoever takes part in its approval (the process API's rule)."""
    if not instance_id:
        raise InvalidArgument("formInstanceId is required", reason="argument.missing", param="formInstanceId")
    found = await repo.find_instance(conn, actor.corp_pk, instance_id)
    if (
        found is not None
        and found.app_pk == actor.app_pk
        and found.process_instance_id
        and not _can_touch(actor, found)
    ):
        from zida.core.workflow.service import check_record_visible  # the workflow builds on records: import late

        await check_record_visible(conn, actor, instance_id)
        inst = found
    else:
        inst = _check_access(actor, found, instance_id)
    form = await get_form(conn, actor, None, form_pk=inst.form_pk, version=inst.form_version)
    return inst, form


async def get_form_instances(
    conn: Connection, actor: AppActor, form: Form, instance_ids: list[str]
) -> list[FormInstance]:
    """Records of ``form`` by id, in the order asked; ids that are unknown, of another form or not visible
    to the actor (non-admins see their own, and process records whose approval they take part in) are left
    out."""
    found = await repo.find_instances(conn, actor.corp_pk, instance_ids)
    out = []
    for instance_id in dict.fromkeys(instance_ids):
        inst = found.get(instance_id)
        if inst is None or inst.form_pk != form.pk:
            continue
        if _can_touch(actor, inst) or (inst.process_instance_id and await _takes_part(conn, actor, instance_id)):
            out.append(inst)
    return out


async def _takes_part(conn: Connection, actor: AppActor, instance_id: str) -> bool:
    """Whether the actor takes part in the approval of this process record (the process API's read rule)."""
    from zida.core.workflow.service import check_record_visible  # the workflow builds on records: import late

    try:
        await check_record_visible(conn, actor, instance_id)
    except (PermissionDenied, NotFound):
        return False
    return True


async def _apply_update(
    tx: Connection,
    actor: AppActor,
    inst: FormInstance,
    values: Any,
    *,
    use_latest_version: bool,
    ignore_empty: bool,
    now: int,
) -> dict[str, Any]:
    """Validate ``values`` against the record's schema, merge them into it and return the log row."""
    if not isinstance(values, dict) or not values:
        raise InvalidArgument("the update must be a non-empty object of {fieldId: value}", reason="form_data.invalid")
    if ignore_empty:
        values = {k: v for k, v in values.items() if not is_empty(v)}
    form = await get_form(
        tx, actor, None, form_pk=inst.form_pk, version=None if use_latest_version else inst.form_version
    )
    changes, refs = normalize_values(form.fields, values, partial=True, current=inst.data)
    problem = (await _reference_problems(tx, actor.corp_pk, [refs]))[0]
    if problem is not None:
        raise problem
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
    inst.data_version += 1
    inst.modifier_user_id = actor.user_id
    inst.modified_at = now
    await repo.update_instance(tx, inst)
    return _log(actor, inst, "UPDATE", diff, now)


async def update_form_instance(
    db: Database, actor: AppActor, instance_id: str, values: Any, *, use_latest_version: bool = False
) -> FormInstance:
    """Change only the given fields (a TableField value replaces the whole sub-table).

    The row is locked for the transaction and the new values are merged into the current ones, so two
    concurrent updates of different fields both survive; on the same field the later commit wins
    (last-write-wins, documented choice). A record of a process form is changed the way updateInstance
    changes it (``zida.core.workflow.service.update_instance``: its rule of who may, and the instance learns
    of the change, so a concurrent approval step decides on the new values).
    """
    found = await repo.find_instances(db, actor.corp_pk, [instance_id]) if instance_id else {}
    record = found.get(instance_id)
    if record is not None and record.process_instance_id is not None and record.app_pk == actor.app_pk:
        from zida.core.workflow.service import update_instance  # the workflow builds on records: import late

        return (await update_instance(db, actor, instance_id, values)).record
    async with db.transaction() as tx:
        inst = await _load(tx, actor, instance_id, lock=True)
        log = await _apply_update(
            tx, actor, inst, values, use_latest_version=use_latest_version, ignore_empty=False, now=now_ms()
        )
        await repo.insert_operation_logs(tx, [log])
    return inst


async def update_form_instances(
    db: Database,
    actor: AppActor,
    form: Form,
    updates: list[tuple[str, Any]],
    *,
    ignore_empty: bool = False,
    use_latest_version: bool = False,
) -> list[str]:
    """Apply each ``(instance_id, values)`` in one transaction (rows locked in id order); all or nothing."""
    ids = [i for i, _ in updates]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("an instance id appears twice in the batch", reason="argument.invalid")
    now = now_ms()
    async with db.transaction() as tx:
        await repo.lock_process_instances(tx, actor.corp_pk, ids)
        found = await repo.find_instances(tx, actor.corp_pk, ids, lock=True)
        logs = []
        for instance_id, values in updates:
            try:
                inst = _check_access(actor, found.get(instance_id), instance_id)
                if inst.form_pk != form.pk:
                    raise NotFound(f"{instance_id} is not a record of {form.form_uuid}", reason="record.not_found")
                logs.append(
                    await _apply_update(
                        tx,
                        actor,
                        inst,
                        values,
                        use_latest_version=use_latest_version,
                        ignore_empty=ignore_empty,
                        now=now,
                    )
                )
            except ZidaError as exc:
                raise _in_item(exc, instance_id) from None
        await repo.insert_operation_logs(tx, logs)
        # Process records: tell their instances, so an approval step decided on the old values is retried.
        await repo.touch_process_instances(tx, [found[i].pk for i in ids if found[i].process_instance_id], now)
    return ids


async def delete_form_instance(db: Database, actor: AppActor, instance_id: str) -> None:
    """Delete a record (app admins, or the originator of their own record).

    A record of a process form *is* its process instance, so it is deleted the way deleteInstance deletes it
    (``zida.core.workflow.service.delete_instance``): by app admins only, a running instance being terminated
    first, with its ``bpms_*`` events written. Yida's data management deletes approval data the same way.
    """
    found = await repo.find_instances(db, actor.corp_pk, [instance_id]) if instance_id else {}
    record = found.get(instance_id)
    if record is not None and record.process_instance_id is not None and record.app_pk == actor.app_pk:
        from zida.core.workflow.service import delete_instance  # the workflow builds on records: import late

        await delete_instance(db, actor, instance_id)
        return
    async with db.transaction() as tx:
        inst = await _load(tx, actor, instance_id, lock=True)
        await repo.delete_instance(tx, inst.pk)
        await repo.insert_operation_logs(tx, [_log(actor, inst, "DELETE", {}, now_ms())])


async def delete_form_instances(db: Database, actor: AppActor, form: Form, instance_ids: list[str]) -> list[str]:
    """Delete many records of a plain form in one transaction; all or nothing."""
    if form.form_type != "receipt":
        raise Conflict(
            f"{form.form_uuid} is a process form: only plain form data can be deleted in batches",
            reason="form.batch_delete_process_data",
        )
    now = now_ms()
    async with db.transaction() as tx:
        found = await repo.find_instances(tx, actor.corp_pk, instance_ids, lock=True)
        doomed = []
        for instance_id in dict.fromkeys(instance_ids):
            inst = _check_access(actor, found.get(instance_id), instance_id)
            if inst.form_pk != form.pk:
                raise NotFound(f"{instance_id} is not a record of {form.form_uuid}", reason="record.not_found")
            doomed.append(inst)
        await repo.delete_instances(tx, [i.pk for i in doomed])
        await repo.insert_operation_logs(tx, [_log(actor, i, "DELETE", {}, now) for i in doomed])
    return [i.instance_id for i in doomed]


async def upsert_form_instance(
    db: Database, actor: AppActor, form: Form, condition: Filter | None, values: Any
) -> list[str]:
    """Update the one record matching ``condition`` with ``values``, or create one if none matches.

    More than one match is an error (``record.ambiguous_upsert``) and changes nothing. Upserts of one form
    are serialised (a transaction-scoped advisory lock on the form on PostgreSQL, the single writer on
    SQLite), so concurrent calls never create two records, however their conditions are written.
    """
    _receipt_form(form)
    if condition is None:
        raise InvalidArgument(
            "searchCondition must name at least one condition", reason="argument.missing", param="searchCondition"
        )
    now = now_ms()
    async with db.transaction() as tx:
        if tx.sql.name == "postgresql":
            key = hashlib.sha256(f"zida-upsert:{form.pk}".encode()).digest()
            await tx.execute("SELECT pg_advisory_xact_lock(:k)", {"k": int.from_bytes(key[:8], "big", signed=True)})
        query = _scoped(actor, RecordQuery(filter=condition, page=Page(1, 2), with_total=False))
        _, ids = await repo.search_instance_ids(tx, form.pk, form.fields, query)
        if len(ids) > 1:
            raise Conflict(
                f"searchCondition matches more than one record of {form.form_uuid}", reason="record.ambiguous_upsert"
            )
        if ids:
            inst = _check_access(actor, await repo.find_instance(tx, actor.corp_pk, ids[0], lock=True), ids[0])
            log = await _apply_update(tx, actor, inst, values, use_latest_version=False, ignore_empty=False, now=now)
            await repo.insert_operation_logs(tx, [log])
            return [inst.instance_id]
        data, refs = normalize_values(form.fields, values, partial=False)
        problem = (await _reference_problems(tx, actor.corp_pk, [refs]))[0]
        if problem is not None:
            raise problem
        inst = _new_instance(actor, form, data, now)
        inst.pk = await repo.insert_instance(tx, inst)
        await repo.insert_operation_logs(
            tx, [_log(actor, inst, "CREATE", {k: {"new": v} for k, v in inst.data.items()}, now)]
        )
        return [inst.instance_id]


def _names_match(op: str, value: Any, names: tuple[str, ...]) -> bool:
    if op == "like":
        return any(str(value).lower() in n.lower() for n in names)
    if op in ("in", "eq") and isinstance(value, list):
        return any(str(v) in names for v in value)
    if op == "eq":
        return str(value) in names
    raise InvalidArgument(f"currentNodeName supports eq, like and in, not {op}", reason="search.unsupported_operator")


async def resolve_process_filters(conn: Connection, form: Form, node: Filter | None) -> Filter | None:
    """Turn ``current_node_name`` conditions into ``current_node`` (the ids of the approver and CC nodes so
    named in any version of the form's process, Chinese or English name)."""
    if node is None or not _mentions(node, "current_node_name"):
        return node
    rows = await conn.fetch(
        "SELECT version, fields, process FROM form_version WHERE form_pk = :f AND process IS NOT NULL",
        {"f": form.pk},
    )
    from zida.core.workflow.definition import ApproverNode, CcNode, parse_process  # records don't need it otherwise

    named: list[tuple[str, tuple[str, ...]]] = []
    for row in rows:
        raw = row["process"] if isinstance(row["process"], dict) else orjson.loads(row["process"])
        fields = tuple(Field.from_dict(f) for f in orjson.loads(row["fields"]))
        definition = parse_process(raw, path="process", fields=fields, version=int(row["version"]))
        for n in definition.walk():
            if isinstance(n, ApproverNode | CcNode):
                named.append((n.node_id, tuple(x for x in (n.name, n.name_en) if x)))

    def rewrite(item: Filter) -> Filter:
        if isinstance(item, And):
            return And(tuple(rewrite(i) for i in item.items))
        if isinstance(item, Or):
            return Or(tuple(rewrite(i) for i in item.items))
        if item.field != "current_node_name":
            return item
        ids = sorted({node_id for node_id, names in named if _names_match(item.op, item.value, names)})
        return Condition("current_node", "in", ids)

    return rewrite(node)


def _mentions(node: Filter, field_name: str) -> bool:
    if isinstance(node, And | Or):
        return any(_mentions(i, field_name) for i in node.items)
    return node.field == field_name


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
    """Search one form's records (app admins: all; others: their own, and on a process form also those whose
    approval they take part in)."""
    query = replace(query, filter=await resolve_process_filters(conn, form, query.filter))
    if form.form_type == "process" and not actor.is_app_admin:
        from zida.core.workflow.service import visible_record_ids  # the workflow builds on records: import late

        total, ids = await visible_record_ids(conn, actor, form, query)
        found = await repo.find_instances(conn, actor.corp_pk, ids)
        return SearchResult(total=total, items=[found[i] for i in ids if i in found])
    total, items = await repo.search_instances(conn, form.pk, form.form_uuid, form.fields, _scoped(actor, query))
    return SearchResult(total=total, items=items)


async def search_form_instance_ids(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery
) -> tuple[int | None, list[str]]:
    """Ids of one form's matching records (same visibility as :func:`search_form_instances`)."""
    query = replace(query, filter=await resolve_process_filters(conn, form, query.filter))
    if form.form_type == "process" and not actor.is_app_admin:
        from zida.core.workflow.service import visible_record_ids

        return await visible_record_ids(conn, actor, form, query)
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


def _table_field(form: Form, table_field_id: str) -> Field:
    table = form.field(table_field_id)
    if table is None or table.component != "TableField":
        raise InvalidArgument(
            f"{table_field_id} is not a sub-table of {form.form_uuid}", reason="argument.invalid", param="tableFieldId"
        )
    return table


async def list_sub_table_rows(
    conn: Connection, actor: AppActor, instance_id: str, table_field_id: str, page: Page
) -> tuple[int, list[dict[str, Any]], Form, Field]:
    """One page of a record's sub-table rows (stored shape, with their row ids) and the row count."""
    inst, form = await get_form_instance(conn, actor, instance_id)
    table = _table_field(form, table_field_id)
    rows = inst.data.get(table.field_id) or []
    return len(rows), rows[page.offset : page.offset + page.size], form, table


async def update_sub_table_rows(
    db: Database, actor: AppActor, instance_id: str, table_field_id: str, rows: Any, *, use_latest_version: bool = False
) -> None:
    """Change the sub-table rows named by their ``rowId`` (cells not given keep their value); an unknown
    row id is an error and changes nothing. On a process record the instance learns of the change."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgument("the update must be a non-empty array of rows with rowId", reason="form_data.invalid")
    async with db.transaction() as tx:
        await repo.lock_process_instances(tx, actor.corp_pk, [instance_id])
        inst = await _load(tx, actor, instance_id, lock=True)
        form = await get_form(tx, actor, None, form_pk=inst.form_pk, version=inst.form_version)
        table = _table_field(form, table_field_id)
        current = [dict(r) for r in inst.data.get(table.field_id) or []]
        by_id = {r.get(ROW_ID): r for r in current}
        for index, row in enumerate(rows):
            row_id = row.get("rowId")
            if row_id not in by_id:
                raise NotFound(f"[{index}]: {table.field_id} has no row {row_id!r}", reason="record.row_not_found")
            by_id[row_id].update({k: v for k, v in row.items() if k != "rowId"})
        merged = [{("rowId" if k == ROW_ID else k): v for k, v in r.items()} for r in current]
        log_time = now_ms()
        log = await _apply_update(
            tx,
            actor,
            inst,
            {table.field_id: merged},
            use_latest_version=use_latest_version,
            ignore_empty=False,
            now=log_time,
        )
        await repo.insert_operation_logs(tx, [log])
        if inst.process_instance_id is not None:
            await repo.touch_process_instances(tx, [inst.pk], log_time)


async def employee_field_values(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery, field_ids: list[str], *, limit: int = 10_000
) -> dict[str, list[str]]:
    """The distinct userIds each EmployeeField holds over the matching records (at most ``limit`` per field)."""
    out: dict[str, list[str]] = {}
    scoped = _scoped(actor, query)
    for field_id in field_ids or [f.field_id for f in form.fields if f.component == "EmployeeField"]:
        f = form.field(field_id)
        if f is None or f.component != "EmployeeField":
            raise InvalidArgument(
                f"{field_id} is not an EmployeeField of {form.form_uuid}",
                reason="argument.invalid",
                param="targetFieldJson",
            )
        out[field_id] = await repo.distinct_array_values(conn, form.pk, form.fields, scoped, field_id, limit)
    return out


# Records created and changed by other actions inside their own transaction (starting and acting on a process).


async def prepare_record(conn: Connection, actor: AppActor, form: Form, values: Any, now: int) -> FormInstance:
    """A new record of ``form`` with validated values, not yet saved (the caller inserts it with insert_record)."""
    data, refs = normalize_values(form.fields, values, partial=False)
    problem = (await _reference_problems(conn, actor.corp_pk, [refs]))[0]
    if problem is not None:
        raise problem
    return _new_instance(actor, form, data, now)


async def insert_record(conn: Connection, actor: AppActor, inst: FormInstance) -> None:
    """Insert a prepared record and its CREATE log inside the caller's transaction."""
    inst.pk = await repo.insert_instance(conn, inst)
    await repo.insert_operation_logs(conn, [_log(actor, inst, "CREATE", _created(inst), inst.created_at)])


def record_insert_ctes(actor: AppActor, inst: FormInstance) -> tuple[str, dict[str, Any]]:
    """PostgreSQL: CTEs inserting a prepared record (``record``, RETURNING its id) and its CREATE log, to lead the
    caller's one statement (what :func:`insert_record` writes, composable)."""
    return repo.insert_instance_ctes(inst, _log(actor, inst, "CREATE", _created(inst), inst.created_at))


def _created(inst: FormInstance) -> dict[str, Any]:
    return {k: {"new": v} for k, v in inst.data.items()}


async def update_record(conn: Connection, actor: AppActor, inst: FormInstance, values: Any, now: int) -> None:
    """Merge ``values`` into a record the caller has loaded (and locked) and log the change, in its transaction."""
    log = await _apply_update(conn, actor, inst, values, use_latest_version=False, ignore_empty=False, now=now)
    await repo.insert_operation_logs(conn, [log])
