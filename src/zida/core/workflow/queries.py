"""Workflow queries: instances, their history and tasks, searches, and the org-level inbox lists; what a caller may
see is the access policy's (``zida.core.access.policy``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from zida.cache import TtlCache
from zida.core.access import policy
from zida.core.apps.models import Form
from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument, NotFound
from zida.core.org.repository import find_users
from zida.core.principals import AppActor, Principal
from zida.core.records import changes as record_changes
from zida.core.records import queries as records
from zida.core.records.filters import And, Condition, Filter, RecordQuery
from zida.core.records.values import normalize_values
from zida.core.workflow import engine
from zida.core.workflow import store as repo
from zida.core.workflow.definition import ApproverNode, ProcessDefinition
from zida.core.workflow.definitions import definition_of, load_definition, resolve_node_names
from zida.core.workflow.directory import load_directory
from zida.core.workflow.models import InboxQuery, Notification, OperationRecord, ProcessInstance, TaskView
from zida.core.workflow.steps import load_instance, not_found
from zida.db import Connection

__all__ = [
    "MAX_PAGE_SIZE",
    "ForecastStep",
    "forecast_instance",
    "get_instance",
    "get_instances",
    "inspect_instance",
    "instance_app_pk",
    "instance_history",
    "instance_tasks",
    "instances_histories",
    "running_tasks",
    "search_instance_ids",
    "search_instances",
    "task_instance_id",
    "user_copies",
    "user_submissions",
    "user_tasks",
]

MAX_PAGE_SIZE = 100


async def instance_app_pk(conn: Connection, corp_pk: int, instance_id: str) -> int:
    """The app a process instance of the corp belongs to."""
    cached = _INSTANCE_APPS.get((corp_pk, instance_id))
    if cached is not None:
        return cached
    row = await repo.instance_ref(conn, corp_pk, instance_id)
    if row is None:
        raise not_found(instance_id)
    return _INSTANCE_APPS.put((corp_pk, instance_id), int(row["app_pk"]))


async def _visible(conn: Connection, actor: AppActor, inst: ProcessInstance) -> bool:
    return await policy.can_read(
        conn,
        actor,
        app_pk=inst.app_pk,
        record_id=inst.instance_id,
        originator=inst.originator_user_id,
        is_process=True,
        assignees={t.user_id for t in inst.state.tasks},
    )


async def _check_visible(conn: Connection, actor: AppActor, inst: ProcessInstance) -> None:
    await policy.check_readable(
        conn,
        actor,
        app_pk=inst.app_pk,
        record_id=inst.instance_id,
        originator=inst.originator_user_id,
        is_process=True,
        assignees={t.user_id for t in inst.state.tasks},
        what="process instance",
    )


async def get_instance(conn: Connection, actor: AppActor, instance_id: str) -> ProcessInstance:
    """One instance the actor may see."""
    inst = await load_instance(conn, actor, instance_id)
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
    return replace(query, filter=combined)


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
        raise not_found(instance_id)
    return inst, await repo.list_operations(conn, inst.pk), await repo.list_tasks(conn, [inst.pk])


async def _scoped(
    conn: Connection,
    actor: AppActor,
    form: Form,
    query: RecordQuery,
    status: str | None,
    result: str | None,
    task_id: int | None,
) -> RecordQuery:
    task_instance = await _task_instance(conn, actor.corp_pk, task_id)
    scoped = _process_query(form, query, status=status, result=result, task_instance=task_instance)
    return replace(scoped, filter=await resolve_node_names(conn, form, scoped.filter))


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
    scoped = await _scoped(conn, actor, form, query, status, result, task_id)
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
    scoped = await _scoped(conn, actor, form, query, status, result, task_id)
    return await records.search_form_instance_ids(conn, actor, form, scoped)


async def running_tasks(
    conn: Connection, actor: AppActor, instance_ids: Sequence[str], *, strict: bool = False
) -> list[TaskView]:
    """The running tasks of instances the actor may see; ``strict``: an unknown or hidden instance is an error."""
    if strict:
        return [task for instance_id in instance_ids for task in await _running_tasks_of(conn, actor, instance_id)]
    instances = await get_instances(conn, actor, instance_ids)
    return await repo.list_tasks(conn, [i.pk for i in instances], ["RUNNING"])


async def _running_tasks_of(conn: Connection, actor: AppActor, instance_id: str) -> list[TaskView]:
    """One instance's running tasks (see :func:`instance_tasks`)."""
    if not instance_id:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="process_instance")
    return [t for t in await instance_tasks(conn, actor, instance_id) if t.status == "RUNNING"]


async def instance_tasks(conn: Connection, actor: AppActor, instance_id: str) -> list[TaskView]:
    """Every task of an instance the actor may see, oldest first: one query when the task rows already show that
    he may see it; an unknown or hidden instance is an error."""
    tasks = await repo.instance_tasks(conn, actor.corp_pk, instance_id)
    if tasks and tasks[0].app_type == actor.app_type:
        await policy.check_readable(
            conn,
            actor,
            app_pk=actor.app_pk,
            record_id=instance_id,
            originator=tasks[0].originator_user_id,
            is_process=True,
            assignees={t.assignee_user_id for t in tasks},
            what="process instance",
        )
        return tasks
    # Unknown, another app's, or no task at all: decide on the instance itself.
    inst = await get_instance(conn, actor, instance_id)
    return await repo.list_tasks(conn, [inst.pk])


# The app of an instance never changes: (corp pk, instance id) → app pk.
_INSTANCE_APPS: TtlCache[tuple[int, str], int] = TtlCache(ttl=3600, size=20_000, scope="instances")


async def instance_history(
    conn: Connection, actor: AppActor, instance_id: str
) -> tuple[ProcessInstance, ProcessDefinition, list[OperationRecord], list[TaskView]]:
    """An instance, its definition, its operation records and all its tasks."""
    inst = await get_instance(conn, actor, instance_id)
    definition = await definition_of(conn, inst)
    return inst, definition, await repo.list_operations(conn, inst.pk), await repo.list_tasks(conn, [inst.pk])


async def instances_histories(
    conn: Connection, instances: Sequence[ProcessInstance]
) -> list[tuple[ProcessDefinition, list[OperationRecord], list[TaskView]]]:
    """For instances a search already let the caller see (:func:`search_instances`), in their order: each one's
    definition, operation records and tasks, as :func:`instance_history` gives them (two queries for them all)."""
    pks = [i.pk for i in instances]
    operations = await repo.list_operations_of(conn, pks)
    tasks: dict[int, list[TaskView]] = {}
    by_id = {i.instance_id: i.pk for i in instances}
    for task in await repo.list_tasks(conn, pks):
        tasks.setdefault(by_id[task.instance_id], []).append(task)
    return [(await definition_of(conn, i), operations.get(i.pk, []), tasks.get(i.pk, [])) for i in instances]


# ------------------------------------------------------------------------------------ org-level lists


async def _inbox_user(conn: Connection, principal: Principal, query: InboxQuery) -> str:
    if principal.user_id is None:
        raise InvalidArgument("{param} is required", reason="argument.missing", param="user")
    if query.page.number < 1 or not 1 <= query.page.size <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page must be >= 1 and pageSize between 1 and {MAX_PAGE_SIZE}", reason="argument.invalid_page"
        )
    user = (await find_users(conn, principal.corp_pk, [principal.user_id])).get(principal.user_id)
    if user is None or not user.active:  # a deactivated user acts nowhere, his inbox included
        raise NotFound(f"user {principal.user_id} does not exist in this corp", reason="user.not_found")
    return principal.user_id


async def user_tasks(
    conn: Connection, principal: Principal, query: InboxQuery, *, done: bool = False
) -> tuple[int, list[TaskView]]:
    """The to-do tasks (running) or done tasks (completed by or for him) of the user the principal speaks for,
    newest first."""
    user_id = await _inbox_user(conn, principal, query)
    statuses = ["COMPLETED"] if done else ["RUNNING"]
    return await repo.list_user_tasks(conn, principal.corp_pk, user_id, statuses, query)


async def user_submissions(
    conn: Connection, principal: Principal, query: InboxQuery
) -> tuple[int, list[ProcessInstance]]:
    """Instances the user the principal speaks for started, newest first."""
    user_id = await _inbox_user(conn, principal, query)
    return await repo.list_submissions(conn, principal.corp_pk, user_id, query)


async def user_copies(
    conn: Connection, principal: Principal, query: InboxQuery, *, app_pk: int | None = None
) -> tuple[int, list[Notification]]:
    """Instances CC'd to the user the principal speaks for (抄送我的), newest first; optionally of one app."""
    user_id = await _inbox_user(conn, principal, query)
    return await repo.list_notifications(conn, principal.corp_pk, user_id, "cc", query, app_pk=app_pk)


# ------------------------------------------------------------------------------------------- forecast


@dataclass(frozen=True, slots=True)
class ForecastStep:
    """An approver node a new instance would reach, and the users it resolves to now."""

    node: ApproverNode
    user_ids: tuple[str, ...]


async def forecast_instance(
    conn: Connection,
    actor: AppActor,
    form_uuid: str,
    values: Any,
    *,
    department_id: int | None = None,
    chosen_approvers: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ProcessDefinition, list[ForecastStep]]:
    """The approver nodes an instance of the form with these values, started by the actor now, would reach, with
    their users. The values given are validated as at start (the fields a flow's routes read are enough: required
    fields may be left out); nothing is written."""
    form = await get_form(conn, actor, form_uuid)
    if form.form_type != "process":
        raise InvalidArgument(f"{form.form_uuid} is not a process form", reason="process.not_process_form")
    definition = await load_definition(conn, form.pk, form.version)
    data, refs = normalize_values(form.fields, values, partial=True)
    problem = (await record_changes.reference_problems(conn, actor.corp_pk, [refs]))[0]
    if problem is not None:
        raise problem
    chosen = dict(chosen_approvers or {})
    directory = await load_directory(
        conn,
        corp_pk=actor.corp_pk,
        app_pk=actor.app_pk,
        definition=definition,
        originator=actor.user_id,
        department_id=department_id,
        form_data=data,
        chosen=chosen,
    )
    state, _ = engine.start(
        definition,
        originator=actor.user_id,
        form_data=data,
        directory=directory,
        chosen_approvers=chosen,
        department_id=department_id,
    )
    steps = [
        ForecastStep(node, tuple(state.assignees.get(node.node_id, ()))) for node in engine.forecast(definition, data)
    ]
    return definition, steps
