"""Workflow actions: starting, deciding, transferring, returning, terminating, deleting and updating approvals.

Every action writes in one transaction: it loads the instance (outside the transaction, or row-locked inside it
when the call also changes form values or keeps losing races), runs the pure engine, and writes what the engine
says happened — task rows, operation records, CC and urge notifications, the instance's state and status, the
record's ``instance_status`` / ``approved_result`` — together with its domain events (``process.*``, ``task.*``;
``zida.core.workflow.events``). The write of the new state is guarded by the instance's ``lock_version``, so a lost
update is impossible even where row locks are not available (``zida.core.workflow.steps``).

Choices where the platforms leave things open (each is tested):

* **One id.** Starting an approval creates one record and its approval under the same id (``FINST-…``).
* **Task ids** are numbers, ``instance pk × 1 000 000 + n`` (see ``zida.core.workflow.models``).
* **Who may do what** (``zida.core.access.policy``): only a task's assignee executes, transfers, returns or adds
  signers to it; app admins may act for the assignee where a dialect's API says so (``on_behalf``, ``by_admin``,
  :func:`execute_platform_task`). Terminate and urge: the originator or an app admin. Delete: app admins (also
  when a record of a process form is deleted through the form API). Update the data: app admins, the
  originator, or whoever holds a running task of the instance — once the instance has finished, app admins only
  (``instance.finished``); their changes are logged in the record's operation log like any other.
* **Who sees an instance**: app admins, its originator, and anyone who has or had a task in it (including a
  transferred or cancelled one) or was CC'd on it.
* **A platform task** (:func:`execute_platform_task`): Zida has no virtual "platform" role; an app admin executes,
  on behalf of its assignee, the one task that is running (``process.expect_one_task`` when there are several).
* **Deleting** a running instance first terminates it (its tasks are terminated, with their events), then writes
  ``process.deleted``, then removes the record with its history.
* **Returning to the submitter** (the start activity, ``sid-restartevent``): every open task is cancelled and the
  originator gets one task at the start activity; the instance stays RUNNING. Meanwhile the originator may change
  the values (:func:`update_instance`, or values given with :func:`execute_task`). Agreeing on that task
  resubmits: approvers are resolved again from the record's values then (originator choices made at start are
  kept) and the flow restarts from its first node; a ``fail`` node that now resolves to nobody refuses the
  resubmission and nothing changes. Refusing it, or a withdraw, ends the instance TERMINATED. The task cannot be
  transferred, returned or given signers.
* **One turn per person per node:** a transfer or an added signer that would give someone a second turn at
  the node (they decided there, decide now, or wait later in a sequential line or a signer chain) is refused
  (``task.already_assignee``) rather than merged, so a vote never counts a person twice.
* **Leaving users** (:func:`hand_over_tasks`): a user who is deactivated hands his open tasks over in the same
  transaction, each as a transfer on behalf of the acting admin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from zida.clock import now_ms
from zida.core.access import policy
from zida.core.apps.queries import get_form
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ZidaError
from zida.core.files.attachments import attach_files
from zida.core.org.repository import find_departments, find_users
from zida.core.principals import AppActor
from zida.core.records import changes as record_changes
from zida.core.records.models import FormInstance
from zida.core.records.serials import assign_serials, serial_fields
from zida.core.workflow import engine, own_flow, step_store
from zida.core.workflow import store as repo
from zida.core.workflow.definition import OriginatorChoice, ProcessDefinition
from zida.core.workflow.definitions import definition_of, load_definition
from zida.core.workflow.directory import load_directory
from zida.core.workflow.engine import (
    Action,
    AddSigner,
    Agree,
    Disagree,
    Redirect,
    Return,
    Terminate,
    Urge,
    Withdraw,
)
from zida.core.workflow.events import process_event
from zida.core.workflow.models import INSTANCE_STATUS, ProcessInstance
from zida.core.workflow.own_flow import ApproverStep
from zida.core.workflow.steps import act, adopt, load_instance, local_task, step_of, write_effects_of
from zida.db import Connection, Database

__all__ = [
    "MAX_BATCH",
    "BatchOutcome",
    "add_signers",
    "delete_instance",
    "execute_platform_task",
    "execute_task",
    "execute_tasks",
    "hand_over_tasks",
    "redirect_task",
    "return_task",
    "start_instance",
    "terminate_instance",
    "update_instance",
    "urge_instance",
    "withdraw_instance",
]

MAX_BATCH = 100


async def _existing_users(conn: Connection, corp_pk: int, user_ids: Sequence[str]) -> None:
    known = await find_users(conn, corp_pk, user_ids)
    for user_id in user_ids:
        if user_id not in known or not known[user_id].active:
            raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")


def _may_manage(actor: AppActor, inst: ProcessInstance, what: str) -> None:
    if not policy.can_manage_approval(actor, originator=inst.originator_user_id):
        raise PermissionDenied(
            f"only the originator or an app admin may {what} process instance {inst.instance_id}",
            reason="permission.denied",
        )


async def _check_department(conn: Connection, actor: AppActor, department_id: int) -> None:
    depts = await find_departments(conn, actor.corp_pk, [department_id])
    if department_id not in depts:
        raise InvalidArgument(
            f"department {department_id} does not exist", reason="process.unknown_department", param="department"
        )
    user = (await find_users(conn, actor.corp_pk, [actor.user_id])).get(actor.user_id)
    if user is None or department_id not in user.dept_ids:
        raise InvalidArgument(
            f"user {actor.user_id} is not a member of department {department_id}",
            reason="process.unknown_department",
            param="department",
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
    draft_id: str | None = None,
    approvers: Sequence[ApproverStep] = (),
    cc_users: Sequence[str] = (),
    cc_at: str = "start",
    choices_required: bool = False,
) -> ProcessInstance:
    """Start the approval of a new record of a process form; the instance id is the record's id. ``draft_id``: the
    actor's draft this submits, deleted in the same transaction (``Conflict`` when it is already gone).

    ``approvers`` (steps of users) replace the form's flow and ``cc_users`` are copied at ``cc_at`` (start, finish,
    start_finish): the instance then runs a flow of its own (``zida.core.workflow.own_flow``); every user named
    must be an active member of the corp (``user.not_found``). ``choices_required``: every originator-choice node
    the flow will reach must have been given its users (``process.choice_missing``), instead of following its
    empty-approver policy.

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
            param="process",
        )
    flow: list[dict[str, Any]] | None = None
    if approvers or cc_users:
        flow = own_flow.flow_nodes(definition, approvers, cc_users, cc_at)
        await _existing_users(
            db, actor.corp_pk, list(dict.fromkeys([*(u for s in approvers for u in s.user_ids), *cc_users]))
        )
        definition = own_flow.with_flow(definition, flow)
    record, attaching = await record_changes.prepare_record(db, actor, form, values, now)
    if department_id is not None:
        await _check_department(db, actor, department_id)
    chosen = dict(chosen_approvers or {})
    if choices_required:
        _check_choices(definition, record.data, chosen)
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
    state.flow = flow
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
    numbered = bool(serial_fields(form))
    if db.sql.name == "postgresql" and draft_id is None and not numbered and not attaching:
        # One statement (a transaction by itself): the record, its log, the instance, its tasks, history, events.
        # Values naming new uploads take the transaction below: attach_files refuses a file gc removed meanwhile.
        inst.pk = await step_store.reserve_instance_pk(db)
        step = step_of(inst, {}, effects, actor=actor.user_id, now=now, digital_sign=None)
        step = replace(step, events=[_record_created(actor, record, now), *step.events])
        await step_store.insert_started_instance(db, inst, record_changes.record_insert_ctes(actor, record), step)
        return inst
    async with db.transaction() as tx:
        if draft_id is not None and not await repo.delete_draft(tx, actor.corp_pk, actor.user_id, draft_id):
            raise Conflict(f"draft {draft_id} was submitted or deleted already", reason="draft.gone")
        if numbered:  # the counter advances in the transaction that writes the record
            await assign_serials(tx, form, [record])
        await record_changes.insert_record(tx, actor, record, with_event=False)
        await attach_files(tx, attaching)
        inst.pk = await repo.insert_process_instance(tx, inst)
        step = step_of(inst, {}, effects, actor=actor.user_id, now=now, digital_sign=None)
        await step_store.write_effects(
            tx, inst, replace(step, events=[_record_created(actor, record, now), *step.events])
        )
    return inst


def _record_created(actor: AppActor, record: FormInstance, now: int) -> step_store.NewEvent:
    created = record_changes.record_event(actor, record, "CREATE", record_changes.created_changes(record), now)
    return step_store.NewEvent(created.topic, created.payload())


def _check_choices(
    definition: ProcessDefinition, values: Mapping[str, Any], chosen: Mapping[str, Sequence[str]]
) -> None:
    for node in engine.forecast(definition, values):
        if isinstance(node.who, OriginatorChoice) and not chosen.get(node.node_id):
            raise InvalidArgument(
                f"approver node {node.name} ({node.node_id}) lets the originator choose its approvers: none was given",
                reason="process.choice_missing",
                node=node.node_id,
            )


# Corps' public ids (they never change).
_CORP_IDS: dict[int, str] = {}


async def _corp_id(conn: Connection, corp_pk: int) -> str:
    corp_id = _CORP_IDS.get(corp_pk)
    if corp_id is None:
        corp_id = await repo.corp_public_id(conn, corp_pk)
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
        local = local_task(inst, task_id)
        return (Agree if agree else Disagree)(local, actor.user_id, remark)

    return await act(db, actor, instance_id, action, values=values, digital_sign=digital_sign)


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
        raise InvalidArgument("the batch names no task", reason="argument.missing", param="tasks")
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
    if not policy.can_act_for_others(actor):
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

    return await act(db, actor, instance_id, action, values=values)


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
    if by_admin and not policy.can_act_for_others(actor):
        raise PermissionDenied(
            f"{actor.user_id} is not an app admin and cannot transfer others' tasks", reason="permission.denied"
        )
    if not to_user:
        raise InvalidArgument("name the user who takes the task over", reason="argument.missing")
    await _existing_users(db, actor.corp_pk, [to_user])

    def action(inst: ProcessInstance) -> Action:
        local = local_task(inst, task_id)
        task = inst.state.task(local)
        if inst.status != "RUNNING" or task is None or task.status != "running":
            raise Conflict(
                f"task {task_id} is not running; only running tasks can be transferred",
                reason="task.redirect_not_running",
            )
        return Redirect(local, actor.user_id, to_user, remark, on_behalf=by_admin)

    return await act(db, actor, instance_id, action)


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
                f"{inst.instance_id} is not an instance of {form_uuid}", reason="form.other_form", param="form"
            )
        local = local_task(inst, task_id)
        task = inst.state.task(local)
        assert task is not None
        if current_node is not None and current_node != task.node_id:
            raise InvalidArgument(
                f"task {task_id} is at {task.node_id}, not {current_node}",
                reason="task.activity_mismatch",
                param="node",
            )
        if task.user_id != actor.user_id and not on_behalf:
            raise PermissionDenied(
                f"only the current approver of task {task_id} may return the instance",
                reason="task.return_not_current_approver",
            )
        return Return(local, actor.user_id, to_node, remark, on_behalf=on_behalf)

    return await act(db, actor, instance_id, action)


def _check_on_behalf(actor: AppActor, on_behalf: bool) -> None:
    if on_behalf and not policy.can_act_for_others(actor):
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
        raise InvalidArgument("{param}: signers must be a list of users", reason="argument.invalid", param="users")
    await _existing_users(db, actor.corp_pk, list(user_ids))

    def action(inst: ProcessInstance) -> Action:
        local = local_task(inst, task_id)
        return AddSigner(local, actor.user_id, tuple(user_ids), position, remark, on_behalf=on_behalf)

    return await act(db, actor, instance_id, action)


async def withdraw_instance(db: Database, actor: AppActor, instance_id: str, *, remark: str = "") -> ProcessInstance:
    """The originator takes the instance back (撤回) before any approver has acted."""
    return await act(db, actor, instance_id, lambda inst: Withdraw(actor.user_id, remark))


async def urge_instance(
    db: Database, actor: AppActor, instance_id: str, *, task_id: int | None = None, remark: str = ""
) -> ProcessInstance:
    """Remind the assignees of the running tasks (or of one task); the originator or an app admin may."""

    def action(inst: ProcessInstance) -> Action:
        _may_manage(actor, inst, "urge")
        local = local_task(inst, task_id) if task_id is not None else None
        return Urge(actor.user_id, local, remark)

    return await act(db, actor, instance_id, action)


async def terminate_instance(db: Database, actor: AppActor, instance_id: str, *, remark: str = "") -> ProcessInstance:
    """End a running instance now (终止): the originator or an app admin."""

    def action(inst: ProcessInstance) -> Action:
        _may_manage(actor, inst, "terminate")
        return Terminate(actor.user_id, remark)

    return await act(db, actor, instance_id, action)


async def delete_instance(db: Database, actor: AppActor, instance_id: str) -> None:
    """Delete an instance and its record (app admins); a running instance is terminated first."""
    if not policy.can_delete(actor, originator="", is_process=True):
        raise PermissionDenied("only app admins may delete process instances", reason="permission.denied")
    async with db.transaction() as tx:
        inst = await load_instance(tx, actor, instance_id, lock=True)
        now = now_ms()  # once the row is locked: after any change it waited for
        if inst.status == "RUNNING":
            definition = await definition_of(tx, inst)
            state, effects = engine.act(definition, inst.state, Terminate(actor.user_id, "deleted"))
            before = {t.task_id: (t.status, t.result) for t in inst.state.tasks}
            adopt(inst, state, now)
            await write_effects_of(tx, inst, before, effects, actor=actor.user_id, now=now)
        await step_store.write_events(tx, inst, [process_event(inst, "process.deleted", actor.user_id, now)], now)
        await repo.delete_instance(tx, inst)
        await record_changes.write_logs(tx, actor, [(inst.record, "DELETE", {})], now)


async def update_instance(db: Database, actor: AppActor, instance_id: str, values: Any) -> ProcessInstance:
    """Change some values of an instance's record; later route conditions see them."""
    async with db.transaction() as tx:
        inst = await load_instance(tx, actor, instance_id, lock=True)
        now = now_ms()  # once the row is locked: modifiedTimeGMT follows commit order
        policy.check_changeable(
            actor,
            record_id=instance_id,
            originator=inst.originator_user_id,
            running_assignees={t.user_id for t in inst.state.tasks if t.status == "running"},
            approval_status=inst.status,
        )
        await record_changes.update_record(tx, actor, inst.record, values, now)
        inst.modified_at = now
        if not await repo.update_process_instance(tx, inst):
            raise Conflict(
                f"process instance {instance_id} was changed concurrently", reason="instance.concurrent_change"
            )
    return inst


async def hand_over_tasks(
    tx: Connection, corp_pk: int, from_user: str, to_user: str, *, by: str, remark: str
) -> list[int]:
    """Inside the caller's transaction: transfer every open task of ``from_user`` to ``to_user``, on behalf of ``by``
    (a user leaving the corp hands his approvals over). Returns the transferred task ids.

    A task that cannot be transferred — one waiting for signers added before its assignee, a resubmission of the
    user's own returned instance, or a node where ``to_user`` already has a turn — raises the engine's error, so the
    caller's whole transaction (the deactivation) changes nothing.
    """
    moved: list[int] = []
    for instance_id, task_ids in (await repo.open_tasks_of(tx, corp_pk, from_user)).items():
        inst = await repo.find_instance(tx, corp_pk, instance_id, lock=True)
        if inst is None:
            continue
        now = now_ms()  # once the instance is locked: after any change it waited for
        for task_id in task_ids:
            definition = await definition_of(tx, inst)
            action = Redirect(local_task(inst, task_id), by, to_user, remark, on_behalf=True)
            state, effects = engine.act(
                definition,
                inst.state,
                action,
                form_data=inst.record.data,
                department_id=inst.department_id,
                public_task_id=inst.global_task_id,
            )
            before = {t.task_id: (t.status, t.result) for t in inst.state.tasks}
            record_changed = adopt(inst, state, now)
            step = step_of(
                inst, before, list(effects), actor=by, now=now, digital_sign=None, record_changed=record_changed
            )
            if not await step_store.write_step(tx, inst, step):  # cannot happen: the row is locked
                raise Conflict(
                    f"process instance {instance_id} was changed concurrently", reason="instance.concurrent_change"
                )
            moved.append(task_id)
    return moved
