"""Running one engine action on a persisted instance: load, decide, and write what the engine says happened.

The engine decides on the instance as read, outside the transaction; the write of the step is guarded by the
instance's ``lock_version`` (``step_store.write_step``), so a lost update is impossible even where row locks are not
available, and a step that lost a race is decided again. The write lock (SQLite's single writer, PostgreSQL's row
lock) is held only while rows are written; on PostgreSQL the whole step is one statement. New form values, or an
instance that keeps changing under us, are decided inside the transaction on the locked row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from zida.clock import now_ms
from zida.core.errors import Conflict, InvalidArgument, NotFound
from zida.core.messages.approvals import approval_messages
from zida.core.principals import AppActor
from zida.core.records import changes as record_changes
from zida.core.records.values import named
from zida.core.workflow import engine
from zida.core.workflow import store as repo
from zida.core.workflow.definition import START_ACTIVITY_ID, ApproverNode, CcNode, OriginatorChoice, ProcessDefinition
from zida.core.workflow.definitions import definition_of
from zida.core.workflow.directory import load_directory
from zida.core.workflow.engine import (
    Action,
    Agree,
    CcSent,
    Effect,
    InstanceState,
    OperationRecorded,
    TaskCompleted,
    TaskResumed,
    TaskUrged,
)
from zida.core.workflow.events import step_events
from zida.core.workflow.models import INSTANCE_STATUS, TASK_ID_BLOCK, TASK_STATUS, ProcessInstance, split_task_id
from zida.core.workflow.step_store import Step, write_effects, write_step, write_step_alone
from zida.db import Connection, Database

__all__ = ["act", "adopt", "load_instance", "local_task", "not_found", "step_of", "write_effects_of"]


def not_found(instance_id: str) -> NotFound:
    """The error for an instance that does not exist where the caller looks."""
    return NotFound(f"process instance {named(instance_id)} does not exist or was deleted", reason="record.not_found")


async def load_instance(conn: Connection, actor: AppActor, instance_id: str, *, lock: bool = False) -> ProcessInstance:
    """An instance of the actor's app (row-locked with its record when ``lock``, on PostgreSQL)."""
    if not instance_id:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="process_instance")
    inst = await repo.find_instance(conn, actor.corp_pk, instance_id, lock=lock)
    if inst is None or inst.app_pk != actor.app_pk:
        raise not_found(instance_id)
    return inst


def local_task(inst: ProcessInstance, task_id: int) -> int:
    """The engine's number of a public task id of this instance."""
    instance_pk, local = split_task_id(task_id)
    if instance_pk != inst.pk or inst.state.task(local) is None:
        raise NotFound(
            f"task {task_id} does not exist in process instance {inst.instance_id}",
            reason="task.not_found",
            task_id=task_id,
        )
    return local


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


def step_of(
    inst: ProcessInstance,
    before: Mapping[int, tuple[str, str | None]],
    effects: Sequence[Effect],
    *,
    actor: str,
    now: int,
    digital_sign: str | None,
    record_changed: bool = True,
) -> Step:
    """The rows one engine step writes (``inst`` already holds the new state; ``before``: its tasks' old status;
    ``record_changed``: whether the record's row is rewritten too)."""
    if inst.state.next_task_id > TASK_ID_BLOCK:
        raise Conflict(
            f"process instance {inst.instance_id} reached the limit of {TASK_ID_BLOCK - 1} tasks",
            reason="instance.too_many_tasks",
        )
    created_now = {t.task_id for t in inst.state.tasks if t.task_id not in before}
    tasks = _task_changes(inst, before, inst.state, effects, actor, now)
    events = step_events(inst, effects, created_now, actor, now)
    return Step(
        tasks=tasks,
        operations=_operations(inst, effects, digital_sign),
        notifications=_notifications(inst, effects),
        events=events,
        now=now,
        record_changed=record_changed,
        messages=approval_messages(inst, tasks, events),  # to the new tasks' assignees, the ended one's originator
    )


async def write_effects_of(
    conn: Connection,
    inst: ProcessInstance,
    before: Mapping[int, tuple[str, str | None]],
    effects: Sequence[Effect],
    *,
    actor: str,
    now: int,
) -> None:
    """Tasks, history, notifications and events of one engine step, in the caller's transaction (the instance row is
    the caller's)."""
    await write_effects(conn, inst, step_of(inst, before, effects, actor=actor, now=now, digital_sign=None))


def adopt(inst: ProcessInstance, state: InstanceState, now: int) -> bool:
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
) -> Step:
    """Take the engine's new state into the instance; the rows the step writes (see ``step_store.write_step``)."""
    before = {t.task_id: (t.status, t.result) for t in inst.state.tasks}
    record_changed = adopt(inst, state, now)
    return step_of(
        inst, before, effects, actor=actor, now=now, digital_sign=digital_sign, record_changed=record_changed
    )


# Decisions on an unlocked read before falling back to deciding under the row lock.
_OPTIMISTIC_ATTEMPTS = 3


async def _decide(conn: Connection, inst: ProcessInstance, action: Action) -> tuple[InstanceState, list[Effect]]:
    definition = await definition_of(conn, inst)
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


async def act(
    db: Database,
    actor: AppActor,
    instance_id: str,
    make_action: Callable[[ProcessInstance], Action],
    *,
    values: Any = None,
    digital_sign: str | None = None,
) -> ProcessInstance:
    """One engine action on one instance, in one transaction (see the module's docstring)."""
    for _ in range(_OPTIMISTIC_ATTEMPTS if values is None else 0):
        now = now_ms()
        inst = await load_instance(db, actor, instance_id)
        state, effects = await _decide(db, inst, make_action(inst))
        step = _apply(inst, state, effects, actor=actor.user_id, now=now, digital_sign=digital_sign)
        if await write_step_alone(db, inst, step):
            return inst
    async with db.transaction() as tx:
        inst = await load_instance(tx, actor, instance_id, lock=True)
        now = now_ms()  # once the row is locked: after the change it waited for
        action = make_action(inst)
        if values is not None:
            await record_changes.update_record(tx, actor, inst.record, values, now)
        state, effects = await _decide(tx, inst, action)
        step = _apply(inst, state, effects, actor=actor.user_id, now=now, digital_sign=digital_sign)
        if not await write_step(tx, inst, step):  # cannot happen: the row is locked
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
