"""Actions on form records: each mutation is one transaction writing the change, its operation log and its events.

Batch actions are all-or-nothing: the first bad item raises an error that names it and nothing is written.
Only ``save_form_instances(keep_running=True)`` skips bad items, and then says which failed.

Records of a process form belong to their approval (``zida.core.workflow``); single-record changes of them are
routed there by ``zida.core.forms``. The batch and sub-table updates here may touch them too: the caller then
passes the ``ApprovalHooks`` through which the approval locks itself first and learns of the change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from zida.clock import now_ms
from zida.core.access import policy
from zida.core.apps.models import Form
from zida.core.apps.queries import get_form
from zida.core.errors import Conflict, InvalidArgument, NotFound, ZidaError
from zida.core.principals import AppActor
from zida.core.records import store
from zida.core.records.changes import (
    attach_referenced,
    created_changes,
    insert_record,
    merge_values,
    new_record,
    reference_problems,
    table_field,
    validated,
    write_logs,
)
from zida.core.records.filters import And, Condition, Filter, Page, RecordQuery
from zida.core.records.models import FormInstance
from zida.core.records.queries import scoped_query
from zida.core.records.serials import assign_serials
from zida.core.records.values import ROW_ID, References, brief, normalize_values, refuse_internal_key
from zida.db import Connection, Database

__all__ = [
    "ApprovalHooks",
    "BatchFailure",
    "BatchResult",
    "delete_form_instance",
    "delete_form_instances",
    "save_form_instance",
    "save_form_instances",
    "update_form_instance",
    "update_form_instances",
    "update_sub_table_rows",
    "upsert_form_instance",
    "upsert_form_instance_split",
]


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


@dataclass(frozen=True, slots=True)
class ApprovalHooks:
    """How the approvals of process records take part in a record transaction: ``lock`` (corp pk, record ids) runs
    before the records are locked (an approval step locks its instance first, so the order never deadlocks);
    ``assignees`` (corp pk, record ids) says who holds a running task of each record's approval (they may change
    it, as the access policy says); ``touched`` (record pks, time) after process records changed, so an approval
    step decided on old values is decided again."""

    lock: Callable[[Connection, int, list[str]], Awaitable[None]]
    assignees: Callable[[Connection, int, list[str]], Awaitable[dict[str, frozenset[str]]]]
    touched: Callable[[Connection, list[int], int], Awaitable[None]]


def _receipt_form(form: Form) -> None:
    if form.form_type != "receipt":
        raise Conflict(
            f"{form.form_uuid} is a process form: start a process instance instead",
            reason="form.process_form_cannot_save",
        )


def _not_found(instance_id: str) -> NotFound:
    return NotFound(f"form instance {instance_id} does not exist or was deleted", reason="record.not_found")


def _changeable(
    actor: AppActor, inst: FormInstance | None, instance_id: str, running: frozenset[str] = frozenset()
) -> FormInstance:
    """The record, if the actor may change it (the access policy: app admins, the originator, and on a process
    record whoever holds a running task of its approval — ``running``; a finished approval's record app admins
    only)."""
    if inst is None or inst.app_pk != actor.app_pk:
        raise _not_found(instance_id)
    policy.check_changeable(
        actor,
        record_id=instance_id,
        originator=inst.originator_user_id,
        running_assignees=running,
        approval_status=inst.instance_status if inst.process_instance_id is not None else None,
    )
    return inst


async def _running_assignees(
    tx: Connection, actor: AppActor, approvals: ApprovalHooks | None, instance_ids: list[str]
) -> dict[str, frozenset[str]]:
    """Who holds a running task of each record's approval (only asked when it can matter: not for app admins)."""
    if approvals is None or actor.is_app_admin:
        return {}
    return await approvals.assignees(tx, actor.corp_pk, instance_ids)


async def _load_changeable(
    conn: Connection, actor: AppActor, instance_id: str, running: frozenset[str] = frozenset()
) -> FormInstance:
    if not instance_id:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="record")
    found = await store.find_instance(conn, actor.corp_pk, instance_id, lock=True)
    return _changeable(actor, found, instance_id, running)


async def save_form_instance(db: Database, actor: AppActor, form_uuid: str, values: Any) -> FormInstance:
    """Create a record of a plain (receipt) form; any member of the corp may submit."""
    async with db.transaction() as tx:
        form = await get_form(tx, actor, form_uuid)
        _receipt_form(form)
        inst = new_record(actor, form, await validated(tx, actor.corp_pk, form, values), now_ms())
        await assign_serials(tx, form, [inst])
        await insert_record(tx, actor, inst)
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
                    raise exc.within(f"[{index}]") from None
                result.failures.append(BatchFailure(index, exc))
                continue
            prepared.append((index, data, refs))
        problems = await reference_problems(tx, actor.corp_pk, [refs for _, _, refs in prepared])
        now = now_ms()
        items = []
        written: list[References] = []
        for (index, data, refs), problem in zip(prepared, problems, strict=True):
            if problem is not None:
                if not keep_running:
                    raise problem.within(f"[{index}]")
                result.failures.append(BatchFailure(index, problem))
                continue
            items.append(new_record(actor, form, data, now))
            written.append(refs)
        await attach_referenced(tx, written)  # before the counter's lock, in the order a single save takes them
        await assign_serials(tx, form, items)
        await store.insert_instances(tx, items)
        await write_logs(tx, actor, [(i, "CREATE", created_changes(i)) for i in items], now)
        result.ids = [i.instance_id for i in items]
        result.failures.sort(key=lambda f: f.index)
    return result


async def update_form_instance(
    db: Database, actor: AppActor, instance_id: str, values: Any, *, use_latest_version: bool = False
) -> FormInstance:
    """Change only the given fields of a plain record (a TableField value replaces the whole sub-table).

    The row is locked for the transaction and the new values are merged into the current ones, so two
    concurrent updates of different fields both survive; on the same field the later commit wins
    (last-write-wins, documented choice).
    """
    async with db.transaction() as tx:
        inst = await _load_changeable(tx, actor, instance_id)
        if inst.process_instance_id is not None:
            raise Conflict(f"{instance_id} belongs to an approval: update the instance", reason="record.process_record")
        now = now_ms()
        diff = await merge_values(
            tx, actor, inst, values, use_latest_version=use_latest_version, ignore_empty=False, now=now
        )
        await write_logs(tx, actor, [(inst, "UPDATE", diff)], now)
    return inst


async def update_form_instances(
    db: Database,
    actor: AppActor,
    form: Form,
    updates: list[tuple[str, Any]],
    *,
    ignore_empty: bool = False,
    use_latest_version: bool = False,
    approvals: ApprovalHooks | None = None,
    still_matching: Filter | None = None,
) -> list[str]:
    """Apply each ``(instance_id, values)`` in one transaction (rows locked in id order); all or nothing. With
    ``still_matching`` (a conditional update: the filter that found them), only the records it still matches once
    locked are changed, and those are returned."""
    ids = [i for i, _ in updates]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("an instance id appears twice in the batch", reason="argument.invalid")
    async with db.transaction() as tx:
        if approvals is not None:
            await approvals.lock(tx, actor.corp_pk, ids)
        found = await store.find_instances(tx, actor.corp_pk, ids, lock=True)
        # Once the rows are locked: a change that waited for another's commit is later than it, in modifiedTimeGMT
        # (what clients sync by) and in the operation log, as in commit order.
        now = now_ms()
        if still_matching is not None:
            kept = await _still_matching(tx, actor, form, still_matching, [i for i in ids if i in found])
            updates, ids = [(i, v) for i, v in updates if i in kept], [i for i in ids if i in kept]
        running = await _running_assignees(tx, actor, approvals, ids)
        changes = []
        for instance_id, values in updates:
            try:
                inst = _changeable(actor, found.get(instance_id), instance_id, running.get(instance_id, frozenset()))
                if inst.form_pk != form.pk:
                    raise NotFound(f"{instance_id} is not a record of {form.form_uuid}", reason="record.not_found")
                if inst.process_instance_id is not None and approvals is None:
                    raise Conflict(f"{instance_id} belongs to an approval", reason="record.process_record")
                diff = await merge_values(
                    tx,
                    actor,
                    inst,
                    values,
                    use_latest_version=use_latest_version,
                    ignore_empty=ignore_empty,
                    now=now,
                )
                changes.append((inst, "UPDATE", diff))
            except ZidaError as exc:
                raise exc.within(instance_id) from None
        await write_logs(tx, actor, changes, now)
        touched = [found[i].pk for i in ids if found[i].process_instance_id]
        if touched and approvals is not None:
            await approvals.touched(tx, touched, now)
    return ids


async def delete_form_instance(db: Database, actor: AppActor, instance_id: str) -> None:
    """Delete a plain record (app admins, or the originator of their own record)."""
    async with db.transaction() as tx:
        inst = await _load_changeable(tx, actor, instance_id)
        if inst.process_instance_id is not None:
            raise Conflict(f"{instance_id} belongs to an approval: delete the instance", reason="record.process_record")
        await store.delete_instance(tx, inst.pk)
        await write_logs(tx, actor, [(inst, "DELETE", {})], now_ms())


async def _still_matching(tx: Connection, actor: AppActor, form: Form, condition: Filter, ids: list[str]) -> set[str]:
    """Those of ``ids`` (their rows locked) that ``condition`` matches now: a change made meanwhile by another
    transaction (which held the lock) is seen, so a conditional change does not overwrite a record that stopped
    matching (two ``update where status = open`` at once: one of them changes it)."""
    if not ids:
        return set()
    both = And((condition, Condition("instance_id", "in", list(ids))))
    query = RecordQuery(filter=both, page=Page(1, len(ids)), with_total=False)
    return set((await store.search_instance_ids(tx, actor.corp_pk, form.pk, form.fields, query))[1])


async def delete_form_instances(
    db: Database, actor: AppActor, form: Form, instance_ids: list[str], *, still_matching: Filter | None = None
) -> list[str]:
    """Delete many records of a plain form in one transaction; all or nothing (``still_matching``: only those the
    filter still matches once locked, as ``update_form_instances``)."""
    if form.form_type != "receipt":
        raise Conflict(
            f"{form.form_uuid} is a process form: only plain form data can be deleted in batches",
            reason="form.batch_delete_process_data",
        )
    async with db.transaction() as tx:
        found = await store.find_instances(tx, actor.corp_pk, instance_ids, lock=True)
        now = now_ms()  # once the rows are locked (update_form_instances)
        if still_matching is not None:
            kept = await _still_matching(tx, actor, form, still_matching, [i for i in instance_ids if i in found])
            instance_ids = [i for i in instance_ids if i in kept]
        doomed = []
        for instance_id in dict.fromkeys(instance_ids):
            inst = _changeable(actor, found.get(instance_id), instance_id)
            if inst.form_pk != form.pk:
                raise NotFound(f"{instance_id} is not a record of {form.form_uuid}", reason="record.not_found")
            doomed.append(inst)
        await store.delete_instances(tx, [i.pk for i in doomed])
        await write_logs(tx, actor, [(i, "DELETE", {}) for i in doomed], now)
    return [i.instance_id for i in doomed]


def _upsert_lock_key(form_pk: int) -> int:
    key = hashlib.sha256(f"zida-upsert:{form_pk}".encode()).digest()
    return int.from_bytes(key[:8], "big", signed=True)


async def upsert_form_instance(
    db: Database, actor: AppActor, form: Form, condition: Filter | None, values: Any
) -> list[str]:
    """Update the one record matching ``condition`` with ``values``, or create one if none matches.

    More than one match is an error (``record.ambiguous_upsert``) and changes nothing. Upserts of one form
    are serialised (a transaction-scoped advisory lock on the form on PostgreSQL, the single writer on
    SQLite), so concurrent calls never create two records, however their conditions are written. Only the records
    the actor may change are matched.
    """
    instance_id, _ = await upsert_form_instance_split(db, actor, form, condition, values, values)
    return [instance_id]


async def upsert_form_instance_split(
    db: Database, actor: AppActor, form: Form, condition: Filter | None, update_values: Any, create_values: Any
) -> tuple[str, bool]:
    """``upsert_form_instance`` with different values for the update and the create: (record id, created)."""
    _receipt_form(form)
    if condition is None:
        raise InvalidArgument("{param} must name at least one condition", reason="argument.missing", param="condition")
    async with db.transaction() as tx:
        if tx.sql.name == "postgresql":
            await tx.execute("SELECT pg_advisory_xact_lock(:k)", {"k": _upsert_lock_key(form.pk)})
        query = scoped_query(actor, form, RecordQuery(filter=condition, page=Page(1, 2), with_total=False))
        _, ids = await store.search_instance_ids(tx, actor.corp_pk, form.pk, form.fields, query)
        if len(ids) > 1:
            raise Conflict(
                f"{{param}} matches more than one record of {form.form_uuid}",
                reason="record.ambiguous_upsert",
                param="condition",
            )
        if ids:
            inst = _changeable(actor, await store.find_instance(tx, actor.corp_pk, ids[0], lock=True), ids[0])
            now = now_ms()  # once the row is locked (update_form_instances)
            diff = await merge_values(
                tx, actor, inst, update_values, use_latest_version=False, ignore_empty=False, now=now
            )
            await write_logs(tx, actor, [(inst, "UPDATE", diff)], now)
            return inst.instance_id, False
        inst = new_record(actor, form, await validated(tx, actor.corp_pk, form, create_values), now_ms())
        await assign_serials(tx, form, [inst])
        await insert_record(tx, actor, inst)
        return inst.instance_id, True


async def update_sub_table_rows(
    db: Database,
    actor: AppActor,
    instance_id: str,
    table_field_id: str,
    rows: Any,
    *,
    use_latest_version: bool = False,
    approvals: ApprovalHooks | None = None,
) -> None:
    """Change the sub-table rows named by their ``rowId`` (cells not given keep their value); an unknown
    row id is an error and changes nothing. On a process record (``approvals`` given) the approval learns of the
    change."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgument("the update must be a non-empty array of rows with rowId", reason="form_data.invalid")
    async with db.transaction() as tx:
        if approvals is not None:
            await approvals.lock(tx, actor.corp_pk, [instance_id])
        running = await _running_assignees(tx, actor, approvals, [instance_id])
        inst = await _load_changeable(tx, actor, instance_id, running.get(instance_id, frozenset()))
        if inst.process_instance_id is not None and approvals is None:
            raise Conflict(f"{instance_id} belongs to an approval", reason="record.process_record")
        form = await get_form(tx, actor, None, form_pk=inst.form_pk, version=inst.form_version)
        table = table_field(form, table_field_id)
        current = [dict(r) for r in inst.data.get(table.field_id) or []]
        by_id = {r.get(ROW_ID): r for r in current}
        for index, row in enumerate(rows):
            refuse_internal_key(row, f"[{index}]")
            row_id = row.get("rowId")
            if row_id is None or row_id == "":
                raise InvalidArgument(f"[{index}]: a row to update names its rowId", reason="argument.missing")
            if row_id not in by_id:
                raise NotFound(f"[{index}]: {table.field_id} has no row {brief(row_id)}", reason="record.row_not_found")
            by_id[row_id].update({k: v for k, v in row.items() if k != "rowId"})
        merged = [{("rowId" if k == ROW_ID else k): v for k, v in r.items()} for r in current]
        now = now_ms()
        diff = await merge_values(
            tx,
            actor,
            inst,
            {table.field_id: merged},
            use_latest_version=use_latest_version,
            ignore_empty=False,
            now=now,
        )
        await write_logs(tx, actor, [(inst, "UPDATE", diff)], now)
        if inst.process_instance_id is not None and approvals is not None:
            await approvals.touched(tx, [inst.pk], now)
