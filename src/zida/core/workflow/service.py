"""Workflow actions and queries over persisted process instances.

Every action writes in one transaction: it loads the instance (outside the transaction, or row-locked inside it
when the call also changes form values or keeps losing races), runs the pure engine, and writes what the engine
says happened — task rows, operation records, CC
and urge notifications, the instance's state and status, the record's ``instance_status`` /
``approved_result`` — together with the outbox events (``bpms_instance_change`` / ``bpms_task_change``).
The write of the new state is guarded by the instance's ``lock_version``, so a lost update is impossible
even where row locks are not available.

Choices where the platform leaves things open (each is tested):

* **processInstanceId == formInstanceId.** Starting a process creates one record (``FINST-…``) and its
  approval under the same id, as current Yida returns ``FINST-`` ids from startInstance and pairs tasks with a
  ``formInstId`` in executeBatchTask. Every API taking either id accepts it.
* **Task ids** are numbers, ``instance pk × 1 000 000 + n`` (see ``zida.core.workflow.models``).
* **Who may do what:** only a task's assignee executes, transfers, returns or adds signers to it; app admins
  may act for the assignee where the API says so (redirect ``byManager``, executePlatformTask, the admin
  API's ``onBehalf``). Terminate and urge: the originator or an app admin. Delete: app admins (through
  deleteInstance, and through the form API's DeleteFormData, which deletes a process record the same way).
  Update the data: app admins, the originator, or whoever holds a running task of the instance.
* **Who sees an instance** (getInstanceById, getInstancesByIdList, getInstances, getInstanceIdList,
  operation records, running tasks): app admins, its originator, and anyone who has or had a task in it
  (including a transferred or cancelled one) or was CC'd on it.
* **executePlatformTask**: Zida has no virtual "platform" role; an app admin executes, on behalf of its
  assignee, the one task that is running (``process.expect_one_task`` when there are several).
* **Deleting** a running instance first terminates it (its tasks are terminated, with their events), then
  emits ``bpms_instance_change`` with ``type: delete``, then removes the record with its history.
* **Returning to the submitter** (``sid-restartevent``, restartInstance's own example and the admin API's
  ``toNode``): every open task is cancelled and the originator gets one task at ``sid-restartevent``; the
  instance stays RUNNING. Meanwhile the originator may change the values (updateInstance, or ``formDataJson``
  of executeTask). executeTask AGREE on that task resubmits: approvers are resolved again from the record's
  values then (originator choices made at start are kept) and the flow restarts from its first node; a
  ``fail`` node that now resolves to nobody refuses the resubmission and nothing changes. DISAGREE on it, or a
  withdraw, ends the instance TERMINATED. The task cannot be transferred, returned or given signers.
* **One turn per person per node:** a transfer or an added signer that would give someone a second turn at
  the node (they decided there, decide now, or wait later in a sequential line or a signer chain) is refused
  (``task.already_assignee``) rather than merged, so a vote never counts a person twice.
* **Events** (outbox): ``bpms_instance_change`` start / finish (``result`` agree or refuse) / terminate /
  delete, with ``url`` (the instance in the admin API, ``/admin/v1/process-instances/<id>``), ``createTime``,
  ``finishTime`` when it ended; ``bpms_task_change`` start / finish (``result`` agree, refuse, redirect or
  return, ``remark``, ``finishTime``) / cancel, with ``taskId``, ``staffId`` the task's assignee and
  ``createTime``. Every payload has ``processInstanceId``, ``corpId``, ``processCode``,
  ``bizCategoryId`` (empty) and ``title`` (dingtalk-platform.md §4.6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from zida.clock import now_ms
from zida.core.apps.models import Field, Form
from zida.core.apps.service import get_form, parse_fields
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.events.outbox import OutboxEvent, append_events
from zida.core.org.repository import find_departments, find_users
from zida.core.principals import AppActor
from zida.core.records import service as records
from zida.core.records import store as records_repo
from zida.core.records.filters import And, Condition, Filter, RecordQuery
from zida.core.workflow import engine
from zida.core.workflow import repository as repo
from zida.core.workflow.definition import (
    START_ACTIVITY_ID,
    ApproverNode,
    CcNode,
    OriginatorChoice,
    ProcessDefinition,
    parse_process,
)
from zida.core.workflow.directory import load_directory
from zida.core.workflow.engine import (
    Action,
    AddSigner,
    Agree,
    CcSent,
    Disagree,
    Effect,
    EventEmitted,
    InstanceState,
    OperationRecorded,
    Redirect,
    Return,
    TaskCompleted,
    TaskResumed,
    TaskUrged,
    Terminate,
    Urge,
    Withdraw,
)
from zida.core.workflow.models import (
    INSTANCE_STATUS,
    TASK_ID_BLOCK,
    TASK_STATUS,
    InboxQuery,
    Notification,
    OperationRecord,
    ProcessInstance,
    TaskView,
    split_task_id,
)
from zida.db import Connection, Database

__all__ = [
    "MAX_BATCH",
    "MAX_PAGE_SIZE",
    "BatchOutcome",
    "add_signers",
    "check_record_visible",
    "definition_of",
    "delete_instance",
    "execute_platform_task",
    "execute_task",
    "execute_tasks",
    "get_instance",
    "get_instances",
    "inspect_instance",
    "instance_app_pk",
    "instance_history",
    "load_definition",
    "process_activities",
    "record_fields",
    "redirect_task",
    "return_task",
    "running_tasks",
    "search_instance_ids",
    "search_instances",
    "start_instance",
    "task_instance_id",
    "terminate_instance",
    "update_instance",
    "urge_instance",
    "user_copies",
    "user_submissions",
    "user_tasks",
    "visible_record_ids",
    "withdraw_instance",
]

MAX_PAGE_SIZE = 100
MAX_BATCH = 100

_DEFINITIONS: dict[tuple[int, int], ProcessDefinition] = {}


# ----------------------------------------------------------------------------------------- definitions


async def load_definition(conn: Connection, form_pk: int, version: int) -> ProcessDefinition:
    """The process of one form version, parsed once (versions never change)."""
    key = (form_pk, version)
    cached = _DEFINITIONS.get(key)
    if cached is None:
        row = await repo.find_definition_row(conn, form_pk, version)
        if row is None or row["process"] is None:
            raise NotFound(f"form version {version} has no approval process", reason="process.not_found")
        fields = parse_fields(form_pk, version, row["fields"])
        cached = parse_process(orjson.loads(row["process"]), path="process", fields=fields, version=version)
        if len(_DEFINITIONS) > 10_000:
            _DEFINITIONS.clear()
        _DEFINITIONS[key] = cached
    return cached


async def record_fields(conn: Connection, form_pk: int, version: int) -> tuple[Field, ...]:
    """The schema of one form version (to render records the caller may already see)."""
    row = await repo.find_definition_row(conn, form_pk, version)
    if row is None:
        raise NotFound(f"form version {version} does not exist", reason="form.not_found")
    return parse_fields(form_pk, version, row["fields"])


async def definition_of(conn: Connection, inst: ProcessInstance) -> ProcessDefinition:
    """The definition version an instance runs."""
    return await load_definition(conn, inst.form_pk, inst.form_version)


async def process_activities(conn: Connection, actor: AppActor, process_code: str) -> ProcessDefinition:
    """The current definition of the app's process with this code (its nodes are the activities)."""
    if not process_code:
        raise InvalidArgument("processCode is required", reason="argument.missing", param="processCode")
    row = await repo.find_process_form(conn, actor.app_pk, process_code)
    if row is None:
        raise NotFound(f"process {process_code} does not exist in this application", reason="process.not_found")
    return await load_definition(conn, int(row["id"]), int(row["version"]))


# ------------------------------------------------------------------------------------- loading, access


def _not_found(instance_id: str) -> NotFound:
    return NotFound(f"process instance {instance_id} does not exist or was deleted", reason="record.not_found")


async def _load(conn: Connection, actor: AppActor, instance_id: str, *, lock: bool = False) -> ProcessInstance:
    if not instance_id:
        raise InvalidArgument("processInstanceId is required", reason="argument.missing", param="processInstanceId")
    inst = await repo.find_instance(conn, actor.corp_pk, instance_id, lock=lock)
    if inst is None or inst.app_pk != actor.app_pk:
        raise _not_found(instance_id)
    return inst


async def _visible(conn: Connection, actor: AppActor, inst: ProcessInstance) -> bool:
    if actor.is_app_admin or inst.originator_user_id == actor.user_id:
        return True
    if any(t.user_id == actor.user_id for t in inst.state.tasks):
        return True
    cc = await conn.fetchval(
        "SELECT 1 FROM process_notification WHERE process_instance_pk = :pi AND user_id = :u AND kind = 'cc'",
        {"pi": inst.pk, "u": actor.user_id},
    )
    return cc is not None


async def _check_visible(conn: Connection, actor: AppActor, inst: ProcessInstance) -> None:
    if not await _visible(conn, actor, inst):
        raise PermissionDenied(
            f"user {actor.user_id} takes no part in process instance {inst.instance_id}", reason="permission.denied"
        )


def _is_originator_or_admin(actor: AppActor, inst: ProcessInstance, what: str) -> None:
    if not (actor.is_app_admin or inst.originator_user_id == actor.user_id):
        raise PermissionDenied(
            f"only the originator or an app admin may {what} process instance {inst.instance_id}",
            reason="permission.denied",
        )


def _local_task(inst: ProcessInstance, task_id: int) -> int:
    """The engine's number of a public task id of this instance."""
    instance_pk, local = split_task_id(task_id)
    if instance_pk != inst.pk or inst.state.task(local) is None:
        raise NotFound(
            f"task {task_id} does not exist in process instance {inst.instance_id}",
            reason="task.not_found",
            task_id=task_id,
        )
    return local


async def _existing_users(conn: Connection, corp_pk: int, user_ids: Sequence[str]) -> None:
    known = await find_users(conn, corp_pk, user_ids)
    for user_id in user_ids:
        if user_id not in known:
            raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")


async def instance_app_pk(conn: Connection, corp_pk: int, instance_id: str) -> int:
    """The app a process instance of the corp belongs to."""
    row = await repo.instance_ref(conn, corp_pk, instance_id)
    if row is None:
        raise _not_found(instance_id)
    return int(row["app_pk"])


# ------------------------------------------------------------------------------------- applying a step


def _task_changes(
    inst: ProcessInstance,
    before: Mapping[int, tuple[str, str | None]],
    after: InstanceState,
    effects: Sequence[Effect],
    actor: str,
    now: int,
) -> list[repo.TaskChange]:
    completed = {e.task_id for e in effects if isinstance(e, TaskCompleted)}
    resumed = {e.task_id for e in effects if isinstance(e, TaskResumed)}
    changes = []
    for task in after.tasks:
        previous = before.get(task.task_id)
        if previous == (task.status, task.result):
            continue
        changes.append(
            repo.TaskChange(
                task_id=inst.global_task_id(task.task_id),
                new=previous is None,
                node_id=task.node_id,
                assignee_user_id=task.user_id,
                status=TASK_STATUS[task.status],
                result=task.result,
                actor_user_id=actor if task.task_id in completed else None,
                active_at=now if previous is None or task.task_id in resumed else None,
                finished_at=None if task.is_open else now,
            )
        )
    return changes


def _operations(inst: ProcessInstance, effects: Sequence[Effect], digital_sign: str | None) -> list[repo.NewOperation]:
    return [
        repo.NewOperation(
            kind=e.kind,
            actor_user_id=e.actor,
            node_id=e.node_id,
            task_id=inst.global_task_id(e.task_id) if e.task_id is not None else None,
            result=e.result,
            remark=e.remark,
            user_ids=e.user_ids,
            target_node_id=e.target_node_id,
            on_behalf=e.on_behalf,
            digital_sign=digital_sign if e.kind in ("agree", "disagree") else None,
        )
        for e in effects
        if isinstance(e, OperationRecorded)
    ]


def _notifications(inst: ProcessInstance, effects: Sequence[Effect]) -> list[repo.NewNotification]:
    out: list[repo.NewNotification] = []
    for e in effects:
        if isinstance(e, CcSent):
            out.extend(repo.NewNotification("cc", e.node_id, None, user, None) for user in e.user_ids)
        elif isinstance(e, TaskUrged):
            task = inst.state.task(e.task_id)
            node = task.node_id if task is not None else None
            out.append(repo.NewNotification("urge", node, inst.global_task_id(e.task_id), e.user_id, e.actor))
    return out


def _event_rows(
    inst: ProcessInstance, effects: Sequence[Effect], created_now: set[int], now: int
) -> list[repo.NewEvent]:
    """The outbox events of a step; a task event's ``createTime`` is its task's creation time (filled in by the
    repository for tasks created before this step)."""
    events = []
    for e in effects:
        if not isinstance(e, EventEmitted):
            continue
        payload: dict[str, Any] = {
            "EventType": e.event_type,
            "processInstanceId": inst.instance_id,
            "corpId": inst.corp_id,
            "processCode": inst.process_code,
            "bizCategoryId": "",
            "title": inst.title,
            **e.payload,
        }
        created_of = None
        if "taskId" in e.payload:
            task_id = inst.global_task_id(e.payload["taskId"])
            payload["taskId"] = task_id
            payload["createTime"] = now  # (the key's place in the payload)
            created_of = None if e.payload["taskId"] in created_now else task_id
        else:
            payload["createTime"] = inst.created_at
            payload["url"] = f"/admin/v1/process-instances/{inst.instance_id}"
        if payload["type"] in ("finish", "terminate", "delete"):
            payload["finishTime"] = now
        events.append(repo.NewEvent(e.event_type, payload, created_of))
    return events


async def _events(
    conn: Connection, inst: ProcessInstance, effects: Sequence[Effect], created_now: set[int], now: int
) -> list[OutboxEvent]:
    """The outbox events of a step, task creation times read from the task rows."""
    rows = _event_rows(inst, effects, created_now, now)
    created = await repo.task_times(conn, sorted({e.created_of for e in rows if e.created_of is not None}))
    return [
        OutboxEvent(
            inst.corp_pk,
            e.event_type,
            e.payload if e.created_of is None else {**e.payload, "createTime": created.get(e.created_of, now)},
            now,
        )
        for e in rows
    ]


async def _write_effects(
    conn: Connection,
    inst: ProcessInstance,
    before: Mapping[int, tuple[str, str | None]],
    effects: Sequence[Effect],
    *,
    actor: str,
    now: int,
    digital_sign: str | None = None,
) -> None:
    """Tasks, history, notifications and outbox events of one engine step (the instance row is the caller's)."""
    await repo.write_effects(conn, inst, _step(inst, before, effects, actor=actor, now=now, digital_sign=digital_sign))


def _step(
    inst: ProcessInstance,
    before: Mapping[int, tuple[str, str | None]],
    effects: Sequence[Effect],
    *,
    actor: str,
    now: int,
    digital_sign: str | None,
    record_changed: bool = True,
) -> repo.Step:
    """The rows one engine step writes (``inst`` already holds the new state; ``before``: its tasks' old status;
    ``record_changed``: whether the record's row is rewritten too)."""
    if inst.state.next_task_id > TASK_ID_BLOCK:
        raise Conflict(
            f"process instance {inst.instance_id} reached the limit of {TASK_ID_BLOCK - 1} tasks",
            reason="instance.too_many_tasks",
        )
    created_now = {t.task_id for t in inst.state.tasks if t.task_id not in before}
    return repo.Step(
        tasks=_task_changes(inst, before, inst.state, effects, actor, now),
        operations=_operations(inst, effects, digital_sign),
        notifications=_notifications(inst, effects),
        events=_event_rows(inst, effects, created_now, now),
        now=now,
        record_changed=record_changed,
    )


def _adopt(inst: ProcessInstance, state: InstanceState, now: int) -> bool:
    """Take the engine's new state into the instance (status, result, times); whether the record's mirror of the
    status and result changed (only then is the record modified)."""
    inst.state = state
    inst.status = INSTANCE_STATUS[state.status]
    inst.result = state.result
    inst.modified_at = now
    if inst.status != "RUNNING" and inst.finished_at is None:
        inst.finished_at = now
    if (inst.record.instance_status, inst.record.approved_result) == (inst.status, inst.result):
        return False
    inst.record.modified_at = now
    inst.record.instance_status = inst.status
    inst.record.approved_result = inst.result
    return True


def _apply(
    inst: ProcessInstance,
    state: InstanceState,
    effects: Sequence[Effect],
    *,
    actor: str,
    now: int,
    digital_sign: str | None = None,
) -> repo.Step:
    """Take the engine's new state into the instance; the rows the step writes (see ``repo.write_step``)."""
    before = {t.task_id: (t.status, t.result) for t in inst.state.tasks}
    record_changed = _adopt(inst, state, now)
    return _step(inst, before, effects, actor=actor, now=now, digital_sign=digital_sign, record_changed=record_changed)


# Decisions on an unlocked read before falling back to deciding under the row lock.
_OPTIMISTIC_ATTEMPTS = 3


async def _decide(conn: Connection, inst: ProcessInstance, action: Action) -> tuple[InstanceState, list[Effect]]:
    definition = await load_definition(conn, inst.form_pk, inst.form_version)
    state, effects = engine.act(
        definition,
        inst.state,
        action,
        form_data=inst.record.data,
        directory=await _resubmission_directory(conn, inst, definition, action),
        department_id=inst.department_id,
        public_task_id=inst.global_task_id,
    )
    return state, list(effects)


async def _act(
    db: Database,
    actor: AppActor,
    instance_id: str,
    make_action: Callable[[ProcessInstance], Action],
    *,
    values: Any = None,
    digital_sign: str | None = None,
) -> ProcessInstance:
    """One engine action on one instance, in one transaction.

    The engine decides on the instance as read, outside the transaction; the transaction writes the step only
    if nobody changed the instance meanwhile (``repo.write_step``: the guarded instance row first), else the
    action is decided again. So the write lock (SQLite's single writer, PostgreSQL's row lock) is held only
    while rows are written, and on PostgreSQL the whole step is one statement. New form values, or an instance
    that keeps changing under us, are decided inside the transaction on the locked row.
    """
    for _ in range(_OPTIMISTIC_ATTEMPTS if values is None else 0):
        now = now_ms()
        inst = await _load(db, actor, instance_id)
        state, effects = await _decide(db, inst, make_action(inst))
        step = _apply(inst, state, effects, actor=actor.user_id, now=now, digital_sign=digital_sign)
        if await repo.write_step_alone(db, inst, step):
            return inst
    now = now_ms()
    async with db.transaction() as tx:
        inst = await _load(tx, actor, instance_id, lock=True)
        action = make_action(inst)
        if values is not None:
            await records.update_record(tx, actor, inst.record, values, now)
        state, effects = await _decide(tx, inst, action)
        step = _apply(inst, state, effects, actor=actor.user_id, now=now, digital_sign=digital_sign)
        if not await repo.write_step(tx, inst, step):  # cannot happen: the row is locked
            raise Conflict(
                f"process instance {instance_id} was changed concurrently; try again",
                reason="instance.concurrent_change",
            )
    return inst


async def _resubmission_directory(
    conn: Connection, inst: ProcessInstance, definition: ProcessDefinition, action: Action
) -> engine.Directory | None:
    """The org as the originator's resubmission resolves approvers again from (None for any other action)."""
    if not isinstance(action, Agree):
        return None
    task = inst.state.task(action.task_id)
    if task is None or task.node_id != START_ACTIVITY_ID:
        return None
    return await load_directory(
        conn,
        corp_pk=inst.corp_pk,
        app_pk=inst.app_pk,
        definition=definition,
        originator=inst.originator_user_id,
        department_id=inst.department_id,
        form_data=inst.record.data,
        chosen={k: v for k, v in inst.state.assignees.items() if k in _choice_nodes(definition)},
    )


def _choice_nodes(definition: ProcessDefinition) -> set[str]:
    return {
        n.node_id
        for n in definition.walk()
        if isinstance(n, ApproverNode | CcNode) and isinstance(n.who, OriginatorChoice)
    }


# ----------------------------------------------------------------------------------------------- start


async def _check_department(conn: Connection, actor: AppActor, department_id: int) -> None:
    depts = await find_departments(conn, actor.corp_pk, [department_id])
    if department_id not in depts:
        raise InvalidArgument(
            f"department {department_id} does not exist", reason="process.unknown_department", param="departmentId"
        )
    user = (await find_users(conn, actor.corp_pk, [actor.user_id])).get(actor.user_id)
    if user is None or department_id not in user.dept_ids:
        raise InvalidArgument(
            f"user {actor.user_id} is not a member of department {department_id}",
            reason="process.unknown_department",
            param="departmentId",
        )


async def start_instance(
    db: Database,
    actor: AppActor,
    form_uuid: str,
    values: Any,
    *,
    process_code: str | None = None,
    department_id: int | None = None,
    chosen_approvers: Mapping[str, Sequence[str]] | None = None,
) -> ProcessInstance:
    """Start the approval of a new record of a process form; the instance id is the record's id.

    Validation, approver resolution and the engine's first step only read (mostly cached org and schema data),
    so they run before the transaction, which then writes the record, the instance, its tasks, history and
    events together.
    """
    now = now_ms()
    form = await get_form(db, actor, form_uuid)
    if form.form_type != "process":
        raise Conflict(
            f"{form.form_uuid} is a plain form: save form data instead", reason="form.receipt_form_cannot_start"
        )
    definition = await load_definition(db, form.pk, form.version)
    if process_code is not None and process_code != definition.process_code:
        raise InvalidArgument(
            f"processCode {process_code} is not the process of {form.form_uuid}",
            reason="process.code_mismatch",
            param="processCode",
        )
    record = await records.prepare_record(db, actor, form, values, now)
    if department_id is not None:
        await _check_department(db, actor, department_id)
    chosen = dict(chosen_approvers or {})
    directory = await load_directory(
        db,
        corp_pk=actor.corp_pk,
        app_pk=actor.app_pk,
        definition=definition,
        originator=actor.user_id,
        department_id=department_id,
        form_data=record.data,
        chosen=chosen,
    )
    state, effects = engine.start(
        definition,
        originator=actor.user_id,
        form_data=record.data,
        directory=directory,
        chosen_approvers=chosen,
        department_id=department_id,
    )
    record.process_instance_id = record.instance_id
    record.instance_status = INSTANCE_STATUS[state.status]
    record.approved_result = state.result
    inst = ProcessInstance(
        pk=0,
        instance_id=record.instance_id,
        corp_id=await _corp_id(db, actor.corp_pk),
        corp_pk=actor.corp_pk,
        app_pk=actor.app_pk,
        app_type=actor.app_type,
        form_pk=form.pk,
        form_uuid=form.form_uuid,
        form_version=form.version,
        process_code=definition.process_code,
        originator_user_id=actor.user_id,
        department_id=department_id,
        status=INSTANCE_STATUS[state.status],
        result=state.result,
        state=state,
        lock_version=1,
        created_at=now,
        modified_at=now,
        finished_at=None if state.status == "running" else now,
        record=record,
    )
    if db.sql.name == "postgresql":
        # One statement (a transaction by itself): the record, its log, the instance, its tasks, history, events.
        inst.pk = await repo.reserve_instance_pk(db)
        step = _step(inst, {}, effects, actor=actor.user_id, now=now, digital_sign=None)
        await repo.insert_started_instance(db, inst, records.record_insert_ctes(actor, record), step)
        return inst
    async with db.transaction() as tx:
        await records.insert_record(tx, actor, record)
        inst.pk = await repo.insert_process_instance(tx, inst)
        await _write_effects(tx, inst, {}, effects, actor=actor.user_id, now=now)
    return inst


_CORP_IDS: dict[int, str] = {}


async def _corp_id(conn: Connection, corp_pk: int) -> str:
    corp_id = _CORP_IDS.get(corp_pk)
    if corp_id is None:
        corp_id = str(await conn.fetchval("SELECT corp_id FROM corp WHERE id = :c", {"c": corp_pk}))
        _CORP_IDS[corp_pk] = corp_id
    return corp_id


# --------------------------------------------------------------------------------------------- actions


async def execute_task(
    db: Database,
    actor: AppActor,
    instance_id: str,
    task_id: int,
    *,
    agree: bool,
    remark: str = "",
    values: Any = None,
    digital_sign: str | None = None,
) -> ProcessInstance:
    """Agree or refuse a task as its assignee, optionally changing form values in the same step."""

    def action(inst: ProcessInstance) -> Action:
        local = _local_task(inst, task_id)
        return (Agree if agree else Disagree)(local, actor.user_id, remark)

    return await _act(db, actor, instance_id, action, values=values, digital_sign=digital_sign)


@dataclass(slots=True)
class BatchOutcome:
    """Which items of a batch succeeded and which failed (each item is its own transaction)."""

    succeeded: list[tuple[str, int]] = field(default_factory=list)
    failed: list[tuple[str, int, ZidaError]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Items processed."""
        return len(self.succeeded) + len(self.failed)


async def execute_tasks(
    db: Database, actor: AppActor, items: Sequence[tuple[str, int]], *, agree: bool, remark: str = ""
) -> BatchOutcome:
    """Agree or refuse many ``(instance id, task id)`` one by one; a failed item does not stop the others."""
    if not items:
        raise InvalidArgument("the batch names no task", reason="argument.missing", param="taskInformationList")
    if len(items) > MAX_BATCH:
        raise InvalidArgument(f"at most {MAX_BATCH} tasks per batch", reason="argument.invalid")
    outcome = BatchOutcome()
    for instance_id, task_id in items:
        try:
            await execute_task(db, actor, instance_id, task_id, agree=agree, remark=remark)
        except ZidaError as exc:
            outcome.failed.append((instance_id, task_id, exc))
        else:
            outcome.succeeded.append((instance_id, task_id))
    return outcome


async def execute_platform_task(
    db: Database, actor: AppActor, instance_id: str, *, agree: bool, remark: str = "", values: Any = None
) -> ProcessInstance:
    """An app admin executes the instance's one running task on behalf of its assignee."""
    if not actor.is_app_admin:
        raise PermissionDenied(
            f"only an app admin executes platform tasks; {actor.user_id} is not one", reason="permission.denied"
        )

    def action(inst: ProcessInstance) -> Action:
        if inst.status != "RUNNING":
            raise Conflict(f"the process instance has already finished ({inst.status})", reason="instance.finished")
        running = [t for t in inst.state.tasks if t.status == "running"]
        if len(running) != 1:
            raise Conflict(
                f"process instance {inst.instance_id} has {len(running)} running tasks, expected exactly one",
                reason="process.expect_one_task",
            )
        local = running[0].task_id
        return (
            Agree(local, actor.user_id, remark, on_behalf=True)
            if agree
            else Disagree(local, actor.user_id, remark, on_behalf=True)
        )

    return await _act(db, actor, instance_id, action, values=values)


async def redirect_task(
    db: Database,
    actor: AppActor,
    instance_id: str,
    task_id: int,
    to_user: str,
    *,
    remark: str = "",
    by_admin: bool = False,
) -> ProcessInstance:
    """Transfer a running task to another user: its assignee, or an app admin when ``by_admin``."""
    if by_admin and not actor.is_app_admin:
        raise PermissionDenied(
            f"{actor.user_id} is not an app admin and cannot transfer others' tasks", reason="permission.denied"
        )
    if not to_user:
        raise InvalidArgument("name the user who takes the task over", reason="argument.missing")
    await _existing_users(db, actor.corp_pk, [to_user])

    def action(inst: ProcessInstance) -> Action:
        local = _local_task(inst, task_id)
        task = inst.state.task(local)
        if inst.status != "RUNNING" or task is None or task.status != "running":
            raise Conflict(
                f"task {task_id} is not running; only running tasks can be transferred",
                reason="task.redirect_not_running",
            )
        return Redirect(local, actor.user_id, to_user, remark, on_behalf=by_admin)

    return await _act(db, actor, instance_id, action)


async def return_task(
    db: Database,
    actor: AppActor,
    instance_id: str,
    task_id: int,
    *,
    to_node: str | None = None,
    remark: str = "",
    current_node: str | None = None,
    form_uuid: str | None = None,
    on_behalf: bool = False,
) -> ProcessInstance:
    """Send the flow back from a task to an approver node the instance passed (the latest one by default), or
    to the submitter (``sid-restartevent``): the originator then gets a task to resubmit."""
    _check_on_behalf(actor, on_behalf)

    def action(inst: ProcessInstance) -> Action:
        if form_uuid is not None and form_uuid != inst.form_uuid:
            raise InvalidArgument(
                f"{inst.instance_id} is not an instance of {form_uuid}", reason="argument.invalid", param="formUuid"
            )
        local = _local_task(inst, task_id)
        task = inst.state.task(local)
        assert task is not None
        if current_node is not None and current_node != task.node_id:
            raise InvalidArgument(
                f"task {task_id} is at {task.node_id}, not {current_node}",
                reason="task.activity_mismatch",
                param="currentActivityId",
            )
        if task.user_id != actor.user_id and not on_behalf:
            raise PermissionDenied(
                f"only the current approver of task {task_id} may return the instance",
                reason="task.return_not_current_approver",
            )
        return Return(local, actor.user_id, to_node, remark, on_behalf=on_behalf)

    return await _act(db, actor, instance_id, action)


def _check_on_behalf(actor: AppActor, on_behalf: bool) -> None:
    if on_behalf and not actor.is_app_admin:
        raise PermissionDenied(
            f"{actor.user_id} is not an app admin and cannot act for others", reason="permission.denied"
        )


async def add_signers(
    db: Database,
    actor: AppActor,
    instance_id: str,
    task_id: int,
    user_ids: Sequence[str],
    *,
    position: str = "before",
    remark: str = "",
    on_behalf: bool = False,
) -> ProcessInstance:
    """Add signers (加签) before the task's assignee decides, or after the assignee agrees."""
    _check_on_behalf(actor, on_behalf)
    if isinstance(user_ids, str) or not all(isinstance(u, str) and u for u in user_ids):
        raise InvalidArgument("signers must be a list of userIds", reason="argument.invalid", param="userIds")
    await _existing_users(db, actor.corp_pk, list(user_ids))

    def action(inst: ProcessInstance) -> Action:
        local = _local_task(inst, task_id)
        return AddSigner(local, actor.user_id, tuple(user_ids), position, remark, on_behalf=on_behalf)

    return await _act(db, actor, instance_id, action)


async def withdraw_instance(db: Database, actor: AppActor, instance_id: str, *, remark: str = "") -> ProcessInstance:
    """The originator takes the instance back (撤回) before any approver has acted."""
    return await _act(db, actor, instance_id, lambda inst: Withdraw(actor.user_id, remark))


async def urge_instance(
    db: Database, actor: AppActor, instance_id: str, *, task_id: int | None = None, remark: str = ""
) -> ProcessInstance:
    """Remind the assignees of the running tasks (or of one task); the originator or an app admin may."""

    def action(inst: ProcessInstance) -> Action:
        _is_originator_or_admin(actor, inst, "urge")
        local = _local_task(inst, task_id) if task_id is not None else None
        return Urge(actor.user_id, local, remark)

    return await _act(db, actor, instance_id, action)


async def terminate_instance(db: Database, actor: AppActor, instance_id: str, *, remark: str = "") -> ProcessInstance:
    """End a running instance now (终止): the originator or an app admin."""

    def action(inst: ProcessInstance) -> Action:
        _is_originator_or_admin(actor, inst, "terminate")
        return Terminate(actor.user_id, remark)

    return await _act(db, actor, instance_id, action)


async def delete_instance(db: Database, actor: AppActor, instance_id: str) -> None:
    """Delete an instance and its record (app admins); a running instance is terminated first."""
    if not actor.is_app_admin:
        raise PermissionDenied("only app admins may delete process instances", reason="permission.denied")
    now = now_ms()
    async with db.transaction() as tx:
        inst = await _load(tx, actor, instance_id, lock=True)
        if inst.status == "RUNNING":
            definition = await load_definition(tx, inst.form_pk, inst.form_version)
            state, effects = engine.act(definition, inst.state, Terminate(actor.user_id, "deleted"))
            before = {t.task_id: (t.status, t.result) for t in inst.state.tasks}
            _adopt(inst, state, now)
            await _write_effects(tx, inst, before, effects, actor=actor.user_id, now=now)
        deleted = EventEmitted("bpms_instance_change", {"type": "delete", "staffId": actor.user_id})
        await append_events(tx, await _events(tx, inst, [deleted], set(), now))
        await records_repo.delete_instance(tx, inst.record.pk)
        await records_repo.insert_operation_logs(
            tx,
            [
                {
                    "corp_pk": inst.corp_pk,
                    "form_pk": inst.form_pk,
                    "instance_id": inst.instance_id,
                    "operator": actor.user_id,
                    "operation": "DELETE",
                    "changes": {},
                    "at": now,
                }
            ],
        )


async def update_instance(db: Database, actor: AppActor, instance_id: str, values: Any) -> ProcessInstance:
    """Change some values of an instance's record; later route conditions see them."""
    now = now_ms()
    async with db.transaction() as tx:
        inst = await _load(tx, actor, instance_id, lock=True)
        holds_task = any(t.user_id == actor.user_id and t.status == "running" for t in inst.state.tasks)
        if not (actor.is_app_admin or inst.originator_user_id == actor.user_id or holds_task):
            raise PermissionDenied(
                f"user {actor.user_id} may not change process instance {instance_id}", reason="permission.denied"
            )
        await records.update_record(tx, actor, inst.record, values, now)
        inst.modified_at = now
        if not await repo.update_process_instance(tx, inst):
            raise Conflict(
                f"process instance {instance_id} was changed concurrently", reason="instance.concurrent_change"
            )
    return inst


# ---------------------------------------------------------------------------------------------- queries


async def get_instance(conn: Connection, actor: AppActor, instance_id: str) -> ProcessInstance:
    """One instance the actor may see."""
    inst = await _load(conn, actor, instance_id)
    await _check_visible(conn, actor, inst)
    return inst


async def get_instances(conn: Connection, actor: AppActor, instance_ids: Sequence[str]) -> list[ProcessInstance]:
    """Instances by id, in the order asked; unknown ids and instances the actor may not see are left out."""
    if not instance_ids:
        raise InvalidArgument("name at least one process instance id", reason="process.empty_instance_ids")
    if len(instance_ids) > MAX_PAGE_SIZE:
        raise InvalidArgument(f"at most {MAX_PAGE_SIZE} process instance ids", reason="argument.invalid")
    found = await repo.find_instances(conn, actor.corp_pk, instance_ids)
    return [i for i in found if i.app_pk == actor.app_pk and await _visible(conn, actor, i)]


def _process_query(
    form: Form,
    query: RecordQuery,
    *,
    status: str | None,
    result: str | None,
    task_instance: str | None,
) -> RecordQuery:
    if form.form_type != "process":
        raise InvalidArgument(f"{form.form_uuid} is not a process form", reason="process.not_process_form")
    parts: list[Filter] = [] if query.filter is None else [query.filter]
    if status:
        parts.append(Condition("instance_status", "eq", status))
    if result:
        parts.append(Condition("approved_result", "eq", result))
    if task_instance is not None:
        parts.append(Condition("process_instance_id", "eq", task_instance))
    combined = None if not parts else parts[0] if len(parts) == 1 else And(tuple(parts))
    return RecordQuery(filter=combined, sort=query.sort, page=query.page, with_total=query.with_total)


async def _task_instance(conn: Connection, corp_pk: int, task_id: int | None) -> str | None:
    if task_id is None:
        return None
    value = await conn.fetchval(
        "SELECT pi.instance_id FROM task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
        " WHERE t.id = :t AND t.corp_pk = :c",
        {"t": task_id, "c": corp_pk},
    )
    return str(value) if value is not None else ""


async def task_instance_id(conn: Connection, corp_pk: int, task_id: int) -> str:
    """The id of the instance a task of the corp belongs to."""
    instance_id = await _task_instance(conn, corp_pk, task_id)
    if not instance_id:
        raise NotFound(f"task {task_id} does not exist", reason="task.not_found", task_id=task_id)
    return instance_id


async def inspect_instance(
    conn: Connection, corp_pk: int, instance_id: str
) -> tuple[ProcessInstance, list[OperationRecord], list[TaskView]]:
    """An instance of the corp with its history and tasks, for callers trusted by the corp (admin API)."""
    inst = await repo.find_instance(conn, corp_pk, instance_id)
    if inst is None:
        raise _not_found(instance_id)
    return inst, await repo.list_operations(conn, inst.pk), await repo.list_tasks(conn, [inst.pk])


async def search_instances(
    conn: Connection,
    actor: AppActor,
    form: Form,
    query: RecordQuery,
    *,
    status: str | None = None,
    result: str | None = None,
    task_id: int | None = None,
) -> tuple[int | None, list[ProcessInstance]]:
    """Instances of a process form matching the record filter and status/result/task that the actor may see."""
    task_instance = await _task_instance(conn, actor.corp_pk, task_id)
    scoped = _process_query(form, query, status=status, result=result, task_instance=task_instance)
    if not actor.is_app_admin:
        total, ids = await _visible_ids(conn, actor, form, scoped)
        return total, await repo.find_instances(conn, actor.corp_pk, ids)
    found = await records.search_form_instances(conn, actor, form, scoped)
    return found.total, await repo.find_instances(conn, actor.corp_pk, [i.instance_id for i in found.items])


async def search_instance_ids(
    conn: Connection,
    actor: AppActor,
    form: Form,
    query: RecordQuery,
    *,
    status: str | None = None,
    result: str | None = None,
    task_id: int | None = None,
) -> tuple[int | None, list[str]]:
    """Ids of the instances :func:`search_instances` would return."""
    task_instance = await _task_instance(conn, actor.corp_pk, task_id)
    scoped = _process_query(form, query, status=status, result=result, task_instance=task_instance)
    if not actor.is_app_admin:
        return await _visible_ids(conn, actor, form, scoped)
    return await records.search_form_instance_ids(conn, actor, form, scoped)


async def _visible_ids(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery
) -> tuple[int | None, list[str]]:
    """A member who is not an app admin sees the instances they originated, have or had a task in, or were CC'd on
    (the rule of :func:`get_instance`)."""
    if query.page.number < 1 or not 1 <= query.page.size <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page must be >= 1 and pageSize between 1 and {MAX_PAGE_SIZE}", reason="argument.invalid_page"
        )
    query = replace(query, filter=await records.resolve_process_filters(conn, form, query.filter))
    return await repo.search_visible_instance_ids(
        conn, corp_pk=actor.corp_pk, form_pk=form.pk, fields=form.fields, query=query, user_id=actor.user_id
    )


async def running_tasks(
    conn: Connection, actor: AppActor, instance_ids: Sequence[str], *, strict: bool = False
) -> list[TaskView]:
    """The running tasks of instances the actor may see; ``strict``: an unknown or hidden instance is an error."""
    if strict:
        return [task for instance_id in instance_ids for task in await _running_tasks_of(conn, actor, instance_id)]
    instances = await get_instances(conn, actor, instance_ids)
    return await repo.list_tasks(conn, [i.pk for i in instances], ["RUNNING"])


async def _running_tasks_of(conn: Connection, actor: AppActor, instance_id: str) -> list[TaskView]:
    """One instance's running tasks: one query when the task rows already show that the actor may see them."""
    if not instance_id:
        raise InvalidArgument("processInstanceId is required", reason="argument.missing", param="processInstanceId")
    tasks = await repo.instance_tasks(conn, actor.corp_pk, instance_id)
    if tasks and tasks[0].app_type == actor.app_type:
        # The rule of _visible: app admins, the originator, anyone who has or had a task in it …
        if actor.is_app_admin or tasks[0].originator_user_id == actor.user_id:
            return [t for t in tasks if t.status == "RUNNING"]
        if any(t.assignee_user_id == actor.user_id for t in tasks):
            return [t for t in tasks if t.status == "RUNNING"]
    # … else (CC'd, unknown, another app's, no task at all) decide on the instance itself.
    inst = await get_instance(conn, actor, instance_id)
    return await repo.list_tasks(conn, [inst.pk], ["RUNNING"])


async def instance_history(
    conn: Connection, actor: AppActor, instance_id: str
) -> tuple[ProcessInstance, ProcessDefinition, list[OperationRecord], list[TaskView]]:
    """An instance, its definition, its operation records and all its tasks."""
    inst = await get_instance(conn, actor, instance_id)
    definition = await definition_of(conn, inst)
    return inst, definition, await repo.list_operations(conn, inst.pk), await repo.list_tasks(conn, [inst.pk])


# ------------------------------------------------------------------------------------ org-level lists


async def _check_query(conn: Connection, corp_pk: int, user_id: str, query: InboxQuery) -> None:
    if query.page.number < 1 or not 1 <= query.page.size <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page must be >= 1 and pageSize between 1 and {MAX_PAGE_SIZE}", reason="argument.invalid_page"
        )
    if not (await find_users(conn, corp_pk, [user_id])):
        raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")


async def user_tasks(
    conn: Connection, corp_pk: int, user_id: str, query: InboxQuery, *, done: bool = False
) -> tuple[int, list[TaskView]]:
    """A user's to-do tasks (running) or done tasks (completed by them or for them), newest first."""
    await _check_query(conn, corp_pk, user_id, query)
    statuses = ["COMPLETED"] if done else ["RUNNING"]
    return await repo.list_user_tasks(conn, corp_pk, user_id, statuses, query)


async def user_submissions(
    conn: Connection, corp_pk: int, user_id: str, query: InboxQuery
) -> tuple[int, list[ProcessInstance]]:
    """Instances a user started, newest first."""
    await _check_query(conn, corp_pk, user_id, query)
    return await repo.list_submissions(conn, corp_pk, user_id, query)


async def user_copies(
    conn: Connection, corp_pk: int, user_id: str, query: InboxQuery, *, app_pk: int | None = None
) -> tuple[int, list[Notification]]:
    """Instances CC'd to a user (抄送我的), newest first; optionally of one app."""
    await _check_query(conn, corp_pk, user_id, query)
    return await repo.list_notifications(conn, corp_pk, user_id, "cc", query, app_pk=app_pk)


async def visible_record_ids(
    conn: Connection, actor: AppActor, form: Form, query: RecordQuery
) -> tuple[int | None, list[str]]:
    """Record ids of a process form that a member (not an app admin) may see, for the form-record API."""
    return await _visible_ids(conn, actor, form, query)


async def check_record_visible(conn: Connection, actor: AppActor, instance_id: str) -> None:
    """Raise unless the actor takes part in the process instance of this record (the form-record API's read)."""
    await get_instance(conn, actor, instance_id)
