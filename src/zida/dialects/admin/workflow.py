"""Admin API for approvals: the operations Yida's OpenAPI lacks, and a look inside instances and the outbox.

Authentication: ``authorization: Bearer <access token>``, the token of an app credential (issued by
``POST /v1.0/oauth2/accessToken`` or ``GET /gettoken``) whose scopes include ``Zida.Admin`` (or ``*``). The
token's corp bounds every call. Bodies are JSON objects; every action names the acting user in ``userId`` (a
member of the corp), who must be allowed to do it — a task's assignee, the originator — unless
``onBehalf: true`` and the user is an admin of the instance's app. Errors: ``{"error": {"code", "message"}}``
with 400 (bad input), 401 (token), 403 (not allowed), 404 (unknown), 409 (state forbids it), 422 (not
supported). Task ids are those of the Yida API (``getRunningTasks``); instance ids are processInstanceIds.

====== ================================================== ======================================================
method path                                               body → effect
====== ================================================== ======================================================
GET    /admin/v1/process-instances/{instanceId}           → the instance: status, result, tasks, history
POST   /admin/v1/process-instances/{instanceId}/withdraw  ``{userId, remark?}``: the originator takes it back
                                                          (撤回), allowed until an approver has acted, and
                                                          while it waits for the originator to resubmit
POST   /admin/v1/process-instances/{instanceId}/urge      ``{userId, taskId?, remark?}``: remind the assignees
                                                          of the running tasks (催办); originator or app admin
POST   /admin/v1/tasks/{taskId}/return                    ``{userId, toNode?, remark?, onBehalf?}``: back to an
                                                          approver node passed before (退回; default the latest),
                                                          or ``toNode: sid-restartevent``: to the originator,
                                                          who resubmits with executeTask AGREE
POST   /admin/v1/tasks/{taskId}/signers                   ``{userId, userIds, position?, remark?, onBehalf?}``:
                                                          add signers (加签) ``before`` (default) the assignee
                                                          decides or ``after`` the assignee agrees
POST   /admin/v1/tasks/{taskId}/transfer                  ``{userId, toUserId, remark?, onBehalf?}``: hand the
                                                          task to another user (转交)
GET    /admin/v1/events?after=&limit=                     → undelivered domain events of the corp, oldest first
                                                          (``after``: an event id; ``limit`` 1–1000, default 100):
                                                          ``{id, topic, object, actor, app, data, createdAt}``
====== ================================================== ======================================================

Actions answer ``{"instance": …}``, the instance as the GET shows it.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.core.access.members import app_actor
from zida.core.errors import InvalidArgument
from zida.core.events.outbox import pending_events
from zida.core.principals import AppActor
from zida.core.workflow import actions as approvals
from zida.core.workflow import queries as approval_queries
from zida.core.workflow.models import OperationRecord, ProcessInstance, TaskView
from zida.dialects.admin.http import AdminCall, admin_endpoint
from zida.dialects.admin.org import limit_of

__all__ = ["routes"]


def _view(inst: ProcessInstance, tasks: list[TaskView], history: list[OperationRecord] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "instanceId": inst.instance_id,
        "appType": inst.app_type,
        "formUuid": inst.form_uuid,
        "processCode": inst.process_code,
        "title": inst.title,
        "originator": inst.originator_user_id,
        "status": inst.status,
        "result": inst.result,
        "createdAt": inst.created_at,
        "finishedAt": inst.finished_at,
        "currentNodes": inst.state.current_node_ids(),
        "tasks": [
            {
                "taskId": t.task_id,
                "nodeId": t.node_id,
                "assignee": t.assignee_user_id,
                "actor": t.actor_user_id,
                "status": t.status,
                "result": t.result,
                "createdAt": t.created_at,
                "finishedAt": t.finished_at,
            }
            for t in tasks
        ],
    }
    if history is not None:
        out["history"] = [
            {
                "kind": r.kind,
                "actor": r.actor_user_id,
                "nodeId": r.node_id,
                "taskId": r.task_id,
                "result": r.result,
                "remark": r.remark,
                "userIds": list(r.user_ids),
                "targetNodeId": r.target_node_id,
                "onBehalf": r.on_behalf,
                "at": r.created_at,
            }
            for r in history
        ]
    return out


async def _actor(call: AdminCall, instance_id: str) -> AppActor:
    app_pk = await approval_queries.instance_app_pk(call.zida.db, call.principal.corp_pk, instance_id)
    return await app_actor(call.zida.db, call.principal.corp_pk, app_pk, call.text("userId", required=True) or "")


async def _answer(call: AdminCall, instance_id: str) -> dict[str, Any]:
    inst, _, tasks = await approval_queries.inspect_instance(call.zida.db, call.principal.corp_pk, instance_id)
    return {"instance": _view(inst, tasks)}


async def _task(call: AdminCall) -> tuple[int, str, AppActor]:
    task_id = call.number("taskId", call.path["taskId"], minimum=1)
    instance_id = await approval_queries.task_instance_id(call.zida.db, call.principal.corp_pk, task_id)
    return task_id, instance_id, await _actor(call, instance_id)


@admin_endpoint
async def get_instance(call: AdminCall) -> dict[str, Any]:
    """The instance with its tasks and history."""
    inst, history, tasks = await approval_queries.inspect_instance(
        call.zida.db, call.principal.corp_pk, call.path["instanceId"]
    )
    return _view(inst, tasks, history)


@admin_endpoint
async def withdraw(call: AdminCall) -> dict[str, Any]:
    """The originator withdraws the instance."""
    instance_id = call.path["instanceId"]
    actor = await _actor(call, instance_id)
    await approvals.withdraw_instance(call.zida.db, actor, instance_id, remark=call.text("remark") or "")
    return await _answer(call, instance_id)


@admin_endpoint
async def urge(call: AdminCall) -> dict[str, Any]:
    """Remind the assignees of running tasks."""
    instance_id = call.path["instanceId"]
    actor = await _actor(call, instance_id)
    raw_task = call.body.get("taskId")
    task_id = call.number("taskId", raw_task, minimum=1) if raw_task is not None else None
    await approvals.urge_instance(call.zida.db, actor, instance_id, task_id=task_id, remark=call.text("remark") or "")
    return await _answer(call, instance_id)


@admin_endpoint
async def return_task(call: AdminCall) -> dict[str, Any]:
    """Send the flow back to an earlier approver node."""
    task_id, instance_id, actor = await _task(call)
    await approvals.return_task(
        call.zida.db,
        actor,
        instance_id,
        task_id,
        to_node=call.text("toNode"),
        remark=call.text("remark") or "",
        on_behalf=call.flag("onBehalf"),
    )
    return await _answer(call, instance_id)


@admin_endpoint
async def add_signers(call: AdminCall) -> dict[str, Any]:
    """Add signers before or after the task's assignee."""
    task_id, instance_id, actor = await _task(call)
    users = call.body.get("userIds")
    if not isinstance(users, list) or not users:
        raise InvalidArgument("userIds must be a non-empty list of userIds", reason="argument.invalid")
    await approvals.add_signers(
        call.zida.db,
        actor,
        instance_id,
        task_id,
        users,
        position=call.text("position") or "before",
        remark=call.text("remark") or "",
        on_behalf=call.flag("onBehalf"),
    )
    return await _answer(call, instance_id)


@admin_endpoint
async def transfer(call: AdminCall) -> dict[str, Any]:
    """Hand the task to another user."""
    task_id, instance_id, actor = await _task(call)
    on_behalf = call.flag("onBehalf")
    await approvals.redirect_task(
        call.zida.db,
        actor,
        instance_id,
        task_id,
        call.text("toUserId", required=True) or "",
        remark=call.text("remark") or "",
        by_admin=on_behalf,
    )
    return await _answer(call, instance_id)


@admin_endpoint
async def events(call: AdminCall) -> dict[str, Any]:
    """Undelivered outbox events of the token's corp, oldest first."""
    query = call.request.query_params
    after = call.number("after", query.get("after", "0"))
    limit = limit_of(call)
    found = await pending_events(call.zida.db, call.principal.corp_pk, after_id=after, limit=limit)
    return {
        "events": [
            {
                "id": e.event_id,
                "topic": e.topic,
                "object": e.object_id,
                "actor": e.actor,
                "app": e.app,
                "data": e.data,
                "createdAt": e.at,
            }
            for e in found
        ]
    }


def routes() -> list[Route]:
    """Admin routes for approvals."""
    base = "/admin/v1"
    return [
        Route(f"{base}/process-instances/{{instanceId}}", get_instance, methods=["GET"]),
        Route(f"{base}/process-instances/{{instanceId}}/withdraw", withdraw, methods=["POST"]),
        Route(f"{base}/process-instances/{{instanceId}}/urge", urge, methods=["POST"]),
        Route(f"{base}/tasks/{{taskId}}/return", return_task, methods=["POST"]),
        Route(f"{base}/tasks/{{taskId}}/signers", add_signers, methods=["POST"]),
        Route(f"{base}/tasks/{{taskId}}/transfer", transfer, methods=["POST"]),
        Route(f"{base}/events", events, methods=["GET"]),
    ]
