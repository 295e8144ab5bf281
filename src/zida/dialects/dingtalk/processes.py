"""Process routes (yida_1_0, and yida_2_0 where the SDK has them): start, terminate, delete, update, get,
search, definition, activities, operation records, and v2 restartInstance.

Wire choices: ``processData`` is the JSON array ``[{"key": "__optionalApproval_<nodeId>", "value": [userIds]}]``
(an object ``{nodeId: [userIds]}`` is accepted too); ``departmentId`` must be one of the originator's
departments; the id returned by startInstance is both the processInstanceId and the formInstanceId (current Yida
returns ``FINST-`` ids from startInstance and pairs tasks with a ``formInstId`` in executeBatchTask), and every API
taking either id accepts it. executePlatformTask: Zida has no virtual "platform" role; an app admin executes, on
behalf of its assignee, the one task that is running. Deleting through deleteInstance or through the form API's
DeleteFormData deletes a process record the same way (app admins; a running instance is terminated first).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.core.apps.queries import get_form
from zida.core.errors import InvalidArgument
from zida.core.principals import AppActor
from zida.core.records.filters import Page, RecordQuery
from zida.core.records.values import brief, value_limits
from zida.core.workflow import actions as approvals
from zida.core.workflow import definitions
from zida.core.workflow import queries as approval_queries
from zida.core.workflow.definition import START_ACTIVITY_ID, ApproverNode, CcNode
from zida.dialects.dingtalk.aliases import values_from_aliases
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.process_shapes import (
    activity_name,
    display_directory,
    instance_item,
    operation_items,
    rendering_for,
    running_assignees,
)
from zida.dialects.dingtalk.records import search_filter
from zida.dialects.dingtalk.search import order_from_json
from zida.ids import is_decimal

__all__ = ["MAX_ID", "id_value", "instance_actor", "routes", "task_id_param"]

_CHOICE_PREFIX = "__optionalApproval_"


# Ids are positive 64-bit integers; anything larger cannot name a row (and would overflow SQL integers).
MAX_ID = 2**63 - 1


def id_value(name: str, value: Any) -> int:
    """A numeric id (JSON number or numeric string) between 1 and 2^63-1."""
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not is_decimal(text) or not 1 <= int(text) <= MAX_ID:
        raise InvalidArgument(
            f"{name} must be a number between 1 and {MAX_ID}, got {brief(value)}", reason="argument.invalid", param=name
        )
    return int(text)


def task_id_param(call: Call, name: str = "taskId", where: str = "body") -> int:
    """A required numeric task id (JSON number or numeric string)."""
    value = call.raw(name, where)
    if value is None or value == "":
        raise InvalidArgument(f"{name}不能为空", reason="argument.missing", param=name)
    return id_value(name, value)


def _chosen_approvers(raw: Any) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list) and all(isinstance(i, dict) for i in raw):
        pairs = [(i.get("key"), i.get("value")) for i in raw]
    else:
        raise InvalidArgument(
            'processData must be a JSON array like [{"key": "__optionalApproval_<nodeId>", "value": ["userId"]}]',
            reason="argument.invalid",
            param="processData",
        )
    chosen: dict[str, list[str]] = {}
    for key, value in pairs:
        if not isinstance(key, str) or not key:
            raise InvalidArgument("every processData item needs a key", reason="argument.invalid", param="processData")
        users = [value] if isinstance(value, str) else value
        if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
            raise InvalidArgument(
                f"processData {key}: value must be a list of userIds", reason="argument.invalid", param="processData"
            )
        node_id = key.removeprefix(_CHOICE_PREFIX)
        chosen[node_id] = [*chosen.get(node_id, []), *users]
    return chosen


def _department(call: Call) -> int | None:
    value = call.text("departmentId", "body")
    return None if value is None else id_value("departmentId", value)


@endpoint("Yida.Process.Write")
async def start_instance(call: Call) -> dict[str, Any]:
    """StartInstance: a new record of a process form and its approval → ``{result: processInstanceId}``."""
    actor = await call.actor(where="body")
    form_uuid = call.text("formUuid", "body", required=True) or ""
    values = call.form_data("formDataJson", "body", required=True)
    if call.flag("useAlias", False, "body"):
        values = values_from_aliases(await get_form(call.zida.db, actor, form_uuid), values)
    inst = await approvals.start_instance(
        call.zida.db,
        actor,
        form_uuid,
        values,
        process_code=call.text("processCode", "body"),
        department_id=_department(call),
        chosen_approvers=_chosen_approvers(call.json("processData", "body")),
    )
    return {"result": inst.instance_id}


async def instance_actor(call: Call, instance_id: str, where: str) -> AppActor:
    """Authenticate against ``appType`` if given, else against the app the instance belongs to."""
    if call.text("appType", where):
        return await call.actor(where=where)
    assert call.principal is not None
    app_pk = await approval_queries.instance_app_pk(call.zida.db, call.principal.corp_pk, instance_id)
    return await call.actor(app_pk=app_pk, where=where)


@endpoint("Yida.Process.Write")
async def terminate_instance(call: Call) -> dict[str, Any]:
    """TerminateInstance: PUT with query parameters; the originator or an app admin."""
    actor = await call.actor(where="query")
    instance_id = call.text("processInstanceId", "query", required=True) or ""
    await approvals.terminate_instance(call.zida.db, actor, instance_id)
    return {"result": True}


@endpoint("Yida.Process.Write")
async def delete_instance(call: Call) -> dict[str, Any]:
    """DeleteInstance: DELETE with query parameters; app admins only."""
    actor = await call.actor(where="query")
    instance_id = call.text("processInstanceId", "query", required=True) or ""
    await approvals.delete_instance(call.zida.db, actor, instance_id)
    return {"result": True}


@endpoint("Yida.Process.Write")
async def update_instance(call: Call) -> dict[str, Any]:
    """UpdateInstance: change some values of the instance's record (the SDK expects a JSON object back)."""
    actor = await call.actor(where="body")
    instance_id = call.text("processInstanceId", "body", required=True) or ""
    values = call.form_data("updateFormDataJson", "body", required=True)
    await approvals.update_instance(call.zida.db, actor, instance_id, values)
    return {}


_INSTANCE_STATUSES = ("RUNNING", "TERMINATED", "COMPLETED", "ERROR")
_APPROVED_RESULTS = ("agree", "disagree")


def _choice(call: Call, name: str, allowed: tuple[str, ...]) -> str | None:
    """An optional filter value among ``allowed`` (any case: ``running`` is RUNNING); another value is refused
    rather than matching nothing."""
    value = call.text(name, "body")
    if value is None:
        return None
    for choice in allowed:
        if value.strip().lower() == choice.lower():
            return choice
    raise InvalidArgument(
        f"{name} must be one of {', '.join(allowed)}, got {brief(value)}", reason="argument.invalid", param=name
    )


async def _search(call: Call, *, ids_only: bool) -> tuple[AppActor, Page, int | None, list[Any]]:
    actor = await call.actor(where="body")
    form = await get_form(call.zida.db, actor, call.text("formUuid", "body", required=True))
    use_alias = call.flag("useAlias", False, "body")
    page = Page(
        call.integer("pageNumber", 1, "query"),
        call.page_size("pageSize", 10, "query", maximum=approval_queries.MAX_PAGE_SIZE),
    )
    task_id = task_id_param(call, "taskId") if call.raw("taskId", "body") not in (None, "") else None
    query = RecordQuery(
        filter=search_filter(call, form, use_alias=use_alias),
        sort=order_from_json(form, call.json("orderConfigJson", "body"), use_alias=use_alias),
        page=page,
    )
    options: dict[str, Any] = {
        "status": _choice(call, "instanceStatus", _INSTANCE_STATUSES),
        "result": _choice(call, "approvedResult", _APPROVED_RESULTS),
        "task_id": task_id,
    }
    if ids_only:
        total, ids = await approval_queries.search_instance_ids(call.zida.db, actor, form, query, **options)
        return actor, page, total, ids
    total, found = await approval_queries.search_instances(call.zida.db, actor, form, query, **options)
    return actor, page, total, found


@endpoint("Yida.Process.Read")
async def get_instance_id_list(call: Call) -> dict[str, Any]:
    """GetInstanceIdList: paging in the query, filters in the body → ``{pageNumber, totalCount, data: [ids]}``."""
    _, page, total, ids = await _search(call, ids_only=True)
    return {"pageNumber": page.number, "totalCount": total, "data": ids}


@endpoint("Yida.Process.Read")
async def get_instances(call: Call) -> dict[str, Any]:
    """GetInstances: the same search with each instance's values, status, originator and current handlers."""
    actor, page, total, found = await _search(call, ids_only=False)
    language = call.text("language", "body") or "zh_CN"
    rendering = await rendering_for(call.zida, actor.corp_pk, found)
    use_alias = call.flag("useAlias", False, "body")
    return {
        "pageNumber": page.number,
        "totalCount": total,
        "data": [instance_item(i, rendering, language, use_alias=use_alias) for i in found],
    }


@endpoint("Yida.Process.Read")
async def get_instances_by_id_list(call: Call) -> dict[str, Any]:
    """GetInstancesByIdList: comma-separated ids (at most 100; a JSON array is read too) → ``{result: [...]}``
    (persons: departmentName)."""
    actor = await call.actor(where="query")
    ids = call.names("processInstanceIds", "query")
    found = await approval_queries.get_instances(call.zida.db, actor, ids)
    form_uuid = call.text("formUuid", "query")
    if form_uuid:
        found = [i for i in found if i.form_uuid == form_uuid]
    language = call.text("language", "query") or "zh_CN"
    rendering = await rendering_for(call.zida, actor.corp_pk, found)
    return {
        "result": [instance_item(i, rendering, language, dept_key="departmentName", with_times=False) for i in found]
    }


@endpoint("Yida.Process.Read")
async def get_instance_by_id(call: Call) -> dict[str, Any]:
    """GetInstanceById: the instance object itself (v2: ``useAlias``, ``formUuid``)."""
    instance_id = call.path["id"]
    actor = await instance_actor(call, instance_id, "query")
    inst = await approval_queries.get_instance(call.zida.db, actor, instance_id)
    form_uuid = call.text("formUuid", "query")
    if form_uuid and form_uuid != inst.form_uuid:
        raise InvalidArgument(
            f"{instance_id} is not an instance of {form_uuid}", reason="form.other_form", param="formUuid"
        )
    rendering = await rendering_for(call.zida, actor.corp_pk, [inst])
    language = call.text("language", "query") or "zh_CN"
    return instance_item(inst, rendering, language, use_alias=call.flag("useAlias", False, "query"))


def _person_detail(directory: Any, user_id: str) -> dict[str, Any]:
    user = directory.users.get(user_id)
    return {
        "userId": user_id,
        "displayName": user.name if user else user_id,
        "displayEnName": (user.name_en or user.name) if user else user_id,
        "departmentDescription": (user.main_dept_name or "") if user else "",
        "masterDataDepartments": [],
        "orderNumber": "",
        "personalPhoto": "",
        "status": "ACTIVE" if user else "UNKNOWN",
        "tbWang": "",
        "userInfo": "",
    }


@endpoint("Yida.Process.Read")
async def get_process_definition(call: Call) -> dict[str, Any]:
    """GetProcessDefinition: one instance's process — its tasks with their activities, owners and variables."""
    instance_id = call.path["processInstanceId"]
    actor = await instance_actor(call, instance_id, "query")
    inst, definition, _, tasks = await approval_queries.instance_history(call.zida.db, actor, instance_id)
    language = call.text("language", "query") or "zh_CN"
    owners = running_assignees(inst)
    directory = await display_directory(call.zida, actor.corp_pk, [inst.originator_user_id, *owners])
    return {
        "processInstanceId": inst.instance_id,
        "processId": str(inst.pk),
        "formUuid": inst.form_uuid,
        "title": inst.title,
        "status": inst.status,
        "outResult": inst.result or "",
        "originator": _person_detail(directory, inst.originator_user_id),
        "owners": [_person_detail(directory, u) for u in owners],
        "variables": dict(inst.state.route_data),
        "tasks": [
            {
                "taskId": t.task_id,
                "actionerId": t.assignee_user_id,
                "status": t.status,
                "activity": {
                    "activityId": t.node_id,
                    "activityName": activity_name(definition, t.node_id, language)[0],
                    "activityNameInEnglish": activity_name(definition, t.node_id, language)[1],
                    "activityInstanceStatus": "RUNNING" if t.status in ("RUNNING", "PAUSED") else "COMPLETED",
                    "id": t.task_id,
                },
            }
            for t in tasks
        ],
    }


@endpoint("Yida.Process.Read")
async def get_activity_list(call: Call) -> dict[str, Any]:
    """GetActivityList: the submit activity, then every approver and CC node of the process, in order.

    The SDK marks every parameter optional, but a process code only names a process inside an app, and the app
    authenticates with ``systemToken`` + ``userId``: all four are required (``parameterIsEmpty`` naming the
    missing one).
    """
    actor = await call.actor(where="query")
    definition = await definitions.process_activities(
        call.zida.db, actor, call.text("processCode", "query", required=True) or ""
    )
    language = call.text("language", "query") or "zh_CN"
    node_ids = [START_ACTIVITY_ID] + [n.node_id for n in definition.walk() if isinstance(n, ApproverNode | CcNode)]
    result = []
    for node_id in node_ids:
        name, english = activity_name(definition, node_id, language)
        result.append({"activityId": node_id, "activityName": name, "activityNameInEnglish": english})
    return {"result": result}


@endpoint("Yida.Process.Read")
async def get_operation_records(call: Call) -> dict[str, Any]:
    """GetOperationRecords: the instance's history (HISTORY) and its open tasks (TODO) → ``{result: [...]}``."""
    instance_id = call.text("processInstanceId", "query", required=True) or ""
    actor = await instance_actor(call, instance_id, "query")
    inst, definition, history, tasks = await approval_queries.instance_history(call.zida.db, actor, instance_id)
    users = {r.actor_user_id for r in history if r.actor_user_id} | {t.assignee_user_id for t in tasks}
    directory = await display_directory(call.zida, actor.corp_pk, users)
    language = call.text("language", "query") or "zh_CN"
    return {"result": operation_items(inst, definition, history, tasks, directory, language)}


@endpoint("Yida.Process.Write")
async def restart_instance(call: Call) -> dict[str, Any]:
    """RestartInstance (v2): return the instance from the current task to an earlier approver node (退回), or with
    ``targetActivityId: sid-restartevent`` to the submitter, who then resubmits (see ``zida.core.workflow.service``)."""
    instance_id = call.text("procInstanceId", "body", required=True) or ""
    actor = await call.actor(where="body")
    form_uuid = call.text("formUuid", "body", required=True)
    await approvals.return_task(
        call.zida.db,
        actor,
        instance_id,
        task_id_param(call),
        to_node=call.text("targetActivityId", "body", required=True),
        current_node=call.text("currentActivityId", "body", required=True),
        remark=call.text("remark", "body", max_chars=value_limits().textarea_chars) or "",
        form_uuid=form_uuid,
    )
    return {"result": True}


def routes() -> list[Route]:
    """Process routes, v1.0 and the v2.0 variants."""
    base = "/v1.0/yida/processes"
    v2 = "/v2.0/yida/processes"
    return [
        Route(f"{base}/instances/start", start_instance, methods=["POST"]),
        Route(f"{base}/instances/terminate", terminate_instance, methods=["PUT"]),
        Route(f"{base}/instances/searchWithIds", get_instances_by_id_list, methods=["GET"]),
        Route(f"{base}/instances", get_instances, methods=["POST"]),
        Route(f"{base}/instances", update_instance, methods=["PUT"]),
        Route(f"{base}/instances", delete_instance, methods=["DELETE"]),
        Route(f"{base}/instanceIds", get_instance_id_list, methods=["POST"]),
        Route(f"{base}/instancesInfos/{{id}}", get_instance_by_id, methods=["GET"]),
        Route(f"{base}/definitions/{{processInstanceId}}", get_process_definition, methods=["GET"]),
        Route(f"{base}/activities", get_activity_list, methods=["GET"]),
        Route(f"{base}/operationRecords", get_operation_records, methods=["GET"]),
        Route(f"{v2}/instances/start", start_instance, methods=["POST"]),
        Route(f"{v2}/instances/restartInstance", restart_instance, methods=["POST"]),
        Route(f"{v2}/instances", get_instances, methods=["POST"]),
        Route(f"{v2}/instanceIds", get_instance_id_list, methods=["POST"]),
        Route(f"{v2}/instancesInfos/{{id}}", get_instance_by_id, methods=["GET"]),
    ]
