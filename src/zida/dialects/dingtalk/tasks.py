"""Task routes (yida_1_0): running tasks, execute (single, batch, platform), redirect, and the org-level lists
(submitted by me, to-do, done, notifications) and the app-level CC list.

The org-level lists authenticate ``corpId`` + ``token = upper(md5(corpId + userId + taskApiCode))`` (plus the
access token). ``appTypes`` / ``processCodes`` are JSON-array strings (comma-separated lists are accepted
too); their time filters are epoch milliseconds (``yyyy-MM-dd`` is accepted too).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from zida.core.errors import InvalidArgument
from zida.core.principals import Principal
from zida.core.records.filters import Page
from zida.core.records.values import brief, value_limits
from zida.core.workflow import actions as approvals
from zida.core.workflow import definitions
from zida.core.workflow import queries as approval_queries
from zida.core.workflow.definition import ProcessDefinition
from zida.core.workflow.models import InboxQuery, ProcessInstance, TaskView
from zida.dialects.dingtalk.auth import check_org_token
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.process_shapes import (
    current_activities,
    display_directory,
    rendering_for,
    running_assignees,
    status_texts,
    task_item,
)
from zida.dialects.dingtalk.processes import id_value, instance_actor, task_id_param
from zida.dialects.dingtalk.search import time_point
from zida.dialects.dingtalk.shapes import gmt

__all__ = ["routes"]


# --------------------------------------------------------------------------------------------- parsing


def _out_result(call: Call) -> bool:
    """True for agree; accepts AGREE/DISAGREE (executeTask) and agree/disagree (batch, platform)."""
    value = (call.text("outResult", "body", required=True) or "").strip().lower()
    if value not in ("agree", "disagree"):
        raise InvalidArgument(
            f"outResult must be AGREE or DISAGREE, got {brief(call.raw('outResult', 'body'))}",
            reason="task.unsupported_out_result",
        )
    return value == "agree"


def _remark(call: Call) -> str:
    """``remark`` is required by the API (an empty string is accepted)."""
    value = call.raw("remark", "body")
    if value is None:
        raise InvalidArgument("remark不能为空", reason="argument.missing", param="remark")
    if not isinstance(value, str):
        raise InvalidArgument("remark must be a string", reason="argument.invalid", param="remark")
    return call.text("remark", "body", max_chars=value_limits().textarea_chars) or ""


def _expressions(call: Call) -> None:
    """``noExecuteExpressions`` y/n: Zida has no form rules to skip; values are always type-checked."""
    value = call.text("noExecuteExpressions", "body")
    if value is not None and value.strip().lower() not in ("y", "n"):
        raise InvalidArgument("noExecuteExpressions must be y or n", reason="argument.invalid")


def _time(call: Call, name: str, *, end: bool = False) -> int | None:
    value = call.raw(name, "query")
    if value is None or value == "":
        return None
    return time_point(value, call.zida.settings.timezone, end_of_day=end)


def _inbox_query(call: Call) -> InboxQuery:
    return InboxQuery(
        app_types=tuple(call.names("appTypes", "query")),
        process_codes=tuple(call.names("processCodes", "query")),
        created_from=_time(call, "createFromTimeGMT"),
        created_to=_time(call, "createToTimeGMT", end=True),
        instance_created_from=_time(call, "instanceCreateFromTimeGMT"),
        instance_created_to=_time(call, "instanceCreateToTimeGMT", end=True),
        keyword=call.text("keyword", "query"),
        page=Page(
            call.integer("pageNumber", 1, "query"),
            call.integer("pageSize", 10, "query", maximum=approval_queries.MAX_PAGE_SIZE),
        ),
    )


async def _org_user(call: Call, *, corp_where: str = "query", user_where: str = "query") -> Principal:
    """Check ``corpId`` + ``token`` for ``userId``; the caller, speaking for that user."""
    assert call.principal is not None
    corp_id = call.text("corpId", corp_where, required=True) or ""
    user_id = call.text("userId", user_where, required=True) or ""
    token = call.text("token", "query", required=True) or ""
    return await check_org_token(call.zida.db, call.zida.box, call.principal, corp_id, user_id, token)


async def _definitions(call: Call, keys: set[tuple[int, int]]) -> dict[tuple[int, int], ProcessDefinition]:
    return {key: await definitions.load_definition(call.zida.db, *key) for key in keys}


async def _task_items(
    call: Call, corp_pk: int, tasks: list[TaskView], language: str, **options: Any
) -> list[dict[str, Any]]:
    definitions = await _definitions(call, {(t.form_pk, t.form_version) for t in tasks})
    directory = await display_directory(call.zida, corp_pk, {t.originator_user_id for t in tasks})
    return [task_item(t, definitions[(t.form_pk, t.form_version)], directory, language, **options) for t in tasks]


# ------------------------------------------------------------------------------------------- app level


@endpoint("Yida.Task.Read")
async def get_running_tasks(call: Call) -> dict[str, Any]:
    """GetRunningTasks: the running tasks of one instance → ``{result: [...]}``.

    The SDK marks every parameter optional. ``appType`` may indeed be left out (the instance names its app);
    ``processInstanceId``, ``systemToken`` and ``userId`` may not — which instance, and who asks, are what a
    client always sends — so their absence is ``parameterIsEmpty`` naming the parameter.
    """
    instance_id = call.text("processInstanceId", "query", required=True) or ""
    actor = await instance_actor(call, instance_id, "query")
    tasks = await approval_queries.running_tasks(call.zida.db, actor, [instance_id], strict=True)
    language = call.text("language", "query") or "zh_CN"
    items = await _task_items(call, actor.corp_pk, tasks, language, with_activity=True, with_originator=False)
    return {"result": items}


@endpoint("Yida.Task.Read")
async def get_running_task_list(call: Call) -> dict[str, Any]:
    """GetRunningTaskList: running tasks of many instances (comma-separated ids; a JSON array is read too) →
    ``{result: [...]}``."""
    actor = await call.actor(where="body")
    ids = call.names("processInstanceIdList", "body")
    if not ids:  # absent, blank or []
        raise InvalidArgument("processInstanceIdList不能为空", reason="argument.missing", param="processInstanceIdList")
    tasks = await approval_queries.running_tasks(call.zida.db, actor, ids)
    items = await _task_items(call, actor.corp_pk, tasks, "zh_CN", actor_key="actualActionExecutorId")
    return {"result": items}


@endpoint("Yida.Process.Write")
async def execute_task(call: Call) -> dict[str, Any]:
    """ExecuteTask: AGREE or DISAGREE a task as its assignee, optionally with form values and a signature."""
    instance_id = call.text("processInstanceId", "body", required=True) or ""
    actor = await call.actor(where="body")
    agree = _out_result(call)
    remark = _remark(call)
    task_id = task_id_param(call)
    _expressions(call)
    await approvals.execute_task(
        call.zida.db,
        actor,
        instance_id,
        task_id,
        agree=agree,
        remark=remark,
        values=call.form_data("formDataJson", "body"),
        digital_sign=call.text("digitalSignUrl", "body"),
    )
    return {"result": True}


@endpoint("Yida.Task.Write")
async def execute_batch_task(call: Call) -> dict[str, Any]:
    """ExecuteBatchTask: ``taskInformationList`` ``[{taskId, formInstId}]``; each item on its own."""
    actor = await call.actor(where="body")
    agree = _out_result(call)
    raw = call.json("taskInformationList", "body", required=True)
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise InvalidArgument(
            'taskInformationList must be a JSON array like [{"taskId": "…", "formInstId": "FINST-…"}]',
            reason="argument.invalid",
            param="taskInformationList",
        )
    items: list[tuple[str, int]] = []
    for index, item in enumerate(raw):
        task_id, instance_id = item.get("taskId"), item.get("formInstId") or item.get("processInstanceId")
        if not isinstance(instance_id, str) or not instance_id or task_id in (None, ""):
            raise InvalidArgument(
                f"taskInformationList[{index}] needs a numeric taskId and a formInstId",
                reason="argument.invalid",
                param="taskInformationList",
            )
        items.append((instance_id, id_value(f"taskInformationList[{index}].taskId", task_id)))
    outcome = await approvals.execute_tasks(
        call.zida.db,
        actor,
        items,
        agree=agree,
        remark=call.text("remark", "body", max_chars=value_limits().textarea_chars) or "",
    )
    return {"total": outcome.total, "successNumber": len(outcome.succeeded), "failNumber": len(outcome.failed)}


@endpoint("Yida.Task.Write")
async def execute_platform_task(call: Call) -> dict[str, Any]:
    """ExecutePlatformTask: an app admin executes the instance's single running task for its assignee."""
    instance_id = call.text("processInstanceId", "body", required=True) or ""
    actor = await call.actor(where="body")
    agree = _out_result(call)
    remark = _remark(call)
    _expressions(call)
    await approvals.execute_platform_task(
        call.zida.db, actor, instance_id, agree=agree, remark=remark, values=call.form_data("formDataJson", "body")
    )
    return {"result": True}


@endpoint("Yida.Task.Write")
async def redirect_task(call: Call) -> dict[str, Any]:
    """RedirectTask: transfer a running task (``byManager`` y: an app admin for the assignee)."""
    instance_id = call.text("processInstanceId", "body", required=True) or ""
    actor = await call.actor(where="body")
    by_manager = (call.text("byManager", "body") or "n").strip().lower()
    if by_manager not in ("y", "n"):
        raise InvalidArgument("byManager must be y or n", reason="argument.invalid", param="byManager")
    await approvals.redirect_task(
        call.zida.db,
        actor,
        instance_id,
        task_id_param(call),
        call.text("nowActionExecutorId", "body", required=True) or "",
        remark=_remark(call),
        by_admin=by_manager == "y",
    )
    return {"result": True}


# ------------------------------------------------------------------------------------------ org level


def _instance_summary(
    inst: ProcessInstance, definition: ProcessDefinition, data: dict[str, Any], language: str, english_key: str
) -> dict[str, Any]:
    """Keys shared by the submitted-by-me and CC lists."""
    return {
        "processInstanceId": inst.instance_id,
        "formInstanceId": inst.instance_id,
        "formUuid": inst.form_uuid,
        "appType": inst.app_type,
        "processCode": inst.process_code,
        "processId": inst.pk,
        "processName": definition.name_en if language == "en_US" and definition.name_en else definition.name,
        "title": inst.title,
        "originatorId": inst.originator_user_id,
        "originatorAvatar": "",
        "createTimeGMT": gmt(inst.created_at),
        "modifiedTimeGMT": gmt(inst.record.modified_at),
        "finishTimeGMT": gmt(inst.finished_at) if inst.finished_at else "",
        "dataMap": data,
        "dataType": "process",
        "instanceValue": "",
        "version": inst.record.form_version,
        "currentActivityInstances": current_activities(inst, definition, language, english_key=english_key),
        **status_texts(inst),
    }


@endpoint("Yida.Process.Read")
async def get_me_corp_submission(call: Call) -> dict[str, Any]:
    """GetMeCorpSubmission: instances the user started across the corp's apps, newest first."""
    principal = await _org_user(call, user_where="path")
    corp_pk = principal.corp_pk
    query = _inbox_query(call)
    total, found = await approval_queries.user_submissions(call.zida.db, principal, query)
    language = call.text("language", "query") or "zh_CN"
    rendering = await rendering_for(call.zida, corp_pk, found)
    definitions = await _definitions(call, {(i.form_pk, i.form_version) for i in found})
    data = []
    for inst in found:
        assignees = running_assignees(inst)
        item = _instance_summary(
            inst,
            definitions[(inst.form_pk, inst.form_version)],
            rendering.data(inst, language),
            language,
            "activityNameEn",
        )
        item["originatorDisplayName"] = rendering.directory.user_name(inst.originator_user_id, language)
        item["actionerId"] = assignees
        item["actionerName"] = [rendering.directory.user_name(u, language) for u in assignees]
        item["actioner"] = [
            {"userId": u, "name": rendering.directory.user_name(u, language), "state": "ACTIVE"} for u in assignees
        ]
        data.append(item)
    return {"pageNumber": query.page.number, "totalCount": total, "data": data}


@endpoint("Yida.Task.Read")
async def get_corp_tasks(call: Call) -> dict[str, Any]:
    """GetCorpTasks: the user's to-do (running) tasks across the corp's apps, newest first."""
    principal = await _org_user(call)
    corp_pk = principal.corp_pk
    query = _inbox_query(call)
    total, tasks = await approval_queries.user_tasks(call.zida.db, principal, query)
    language = call.text("language", "query") or "zh_CN"
    items = await _task_items(call, corp_pk, tasks, language, nick_en_key="originatorNickNameEn")
    return {"pageNumber": query.page.number, "totalCount": total, "data": items}


@endpoint("Yida.Task.Read")
async def get_corp_accomplishment_tasks(call: Call) -> dict[str, Any]:
    """GetCorpAccomplishmentTasks: the user's completed tasks (``{corpId}/{userId}`` in the path)."""
    principal = await _org_user(call, corp_where="path", user_where="path")
    corp_pk = principal.corp_pk
    query = _inbox_query(call)
    total, tasks = await approval_queries.user_tasks(call.zida.db, principal, query, done=True)
    language = call.text("language", "query") or "zh_CN"
    items = await _task_items(call, corp_pk, tasks, language)
    return {"pageNumber": query.page.number, "totalCount": total, "data": items}


@endpoint("Yida.Task.Read")
async def get_notify_me(call: Call) -> dict[str, Any]:
    """GetNotifyMe: instances CC'd to the user across the corp's apps, newest first."""
    principal = await _org_user(call, user_where="path")
    query = _inbox_query(call)
    total, notes = await approval_queries.user_copies(call.zida.db, principal, query)
    data = []
    for note in notes:
        inst = note.instance
        data.append(
            {
                "formInstanceId": inst.instance_id,
                "processCode": inst.process_code,
                "appType": inst.app_type,
                "corpId": inst.corp_id,
                "activityId": note.node_id or "",
                "title": inst.title,
                "titleInEnglish": inst.title,
                "creatorUserId": inst.originator_user_id,
                "instStatus": inst.status,
                "createTimeGMT": gmt(note.created_at),
                "modifiedTimeGMT": gmt(inst.record.modified_at),
                "url": "",
                "mobileUrl": "",
            }
        )
    return {"pageNumber": query.page.number, "totalCount": total, "data": data}


@endpoint("Yida.Task.Read")
async def get_task_copies(call: Call) -> dict[str, Any]:
    """GetTaskCopies: instances CC'd to the user in one app (appType + systemToken), newest first."""
    actor = await call.actor(where="query")
    assert call.principal is not None
    query = _inbox_query(call)
    total, notes = await approval_queries.user_copies(
        call.zida.db, call.principal.speaking_for(actor.user_id), query, app_pk=actor.app_pk
    )
    language = call.text("language", "query") or "zh_CN"
    instances = [n.instance for n in notes]
    rendering = await rendering_for(call.zida, actor.corp_pk, instances)
    definitions = await _definitions(call, {(i.form_pk, i.form_version) for i in instances})
    data = []
    for note in notes:
        inst = note.instance
        assignees = running_assignees(inst)
        item = _instance_summary(
            inst,
            definitions[(inst.form_pk, inst.form_version)],
            rendering.data(inst, language),
            language,
            "activityNameInEnglish",
        )
        item["carbonActivityId"] = note.node_id or ""
        item["serialNumber"] = inst.record.serial_no or ""
        item["originatorDisplayName"] = rendering.directory.user_name(inst.originator_user_id, language)
        item["actionExecutorId"] = assignees
        item["actionExecutorName"] = [rendering.directory.user_name(u, language) for u in assignees]
        data.append(item)
    return {"pageNumber": query.page.number, "totalCount": total, "data": data}


def routes() -> list[Route]:
    """Task routes."""
    return [
        Route("/v1.0/yida/processes/tasks/getRunningTasks", get_running_tasks, methods=["GET"]),
        Route("/v1.0/yida/tasks/runningTasks/query", get_running_task_list, methods=["POST"]),
        Route("/v1.0/yida/tasks/execute", execute_task, methods=["POST"]),
        Route("/v1.0/yida/tasks/batches/execute", execute_batch_task, methods=["POST"]),
        Route("/v1.0/yida/tasks/platformTasks/execute", execute_platform_task, methods=["POST"]),
        Route("/v1.0/yida/tasks/redirect", redirect_task, methods=["POST"]),
        Route("/v1.0/yida/tasks/myCorpSubmission/{userId}", get_me_corp_submission, methods=["GET"]),
        Route("/v1.0/yida/tasks/completedTasks/{corpId}/{userId}", get_corp_accomplishment_tasks, methods=["GET"]),
        Route("/v1.0/yida/tasks/taskCopies", get_task_copies, methods=["GET"]),
        Route("/v1.0/yida/corpTasks", get_corp_tasks, methods=["GET"]),
        Route("/v1.0/yida/corpNotifications/{userId}", get_notify_me, methods=["GET"]),
    ]
