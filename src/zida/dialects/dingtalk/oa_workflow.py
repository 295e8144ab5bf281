"""DingTalk's OA workflow API v1.0 (``alibabacloud_dingtalk.workflow_1_0``) on the approval engine the Yida process
API uses: the same instances, tasks and history, so an approval started here is finished through Yida's
executeTask and the other way round. A process is named by its ``processCode`` (unique in a corp; a code that
processes of several apps share is ``processCodeError``).

Who acts: OA calls name no app and carry no systemToken. The access token's corp and the ``processCode`` (or the
instance, or the task) name the app; the user ids of the body (``originatorUserId``, ``actionerUserId``,
``operatingUserId``, ``commentUserId``, ``operateUserId``, ``userId``) are the acting users, active members of the
corp (else ``invalidParameter`` naming them), with the same rights as through Yida (only a task's assignee executes
or transfers it…). Calls that name no user (instance detail, the id and page lists, the form schema, a terminate
with ``isSystem``) act as the integration itself: the app's first active administrator, as WeDa's do.

Choices where the platform is silent or Zida differs (each tested):

* ``approvers`` replace the process's flow with steps of users (``AND`` all agree, ``OR`` one agrees, ``NONE`` one
  after the other); ``ccList`` copies users at ``ccPosition`` START (default), FINISH (when the instance is
  approved) or START_FINISH (``zida.core.workflow.own_flow``). ``targetSelectActioners`` give the users of the
  originator-choice nodes (``actionerKey`` is the node id, as processes/forecast's ``actorKey`` says); without
  ``approvers``, each such node the flow will reach must be given users (``targetSelectApproverMissing``).
* ``deptId`` is optional (the originator's main department); ``-1`` (the root) also means the main department.
  ``microappAgentId`` and ``bizDetailPageUrl`` are accepted and not used. Attachments (``file``) on execute,
  comments and redirect are not supported (``invalidParameter.operation.notSupported``).
* terminate (撤销) ends the instance TERMINATED: with ``isSystem`` as the integration, else ``operatingUserId`` must
  be its originator (``forbidden.accessDenied``). DingTalk's 15-second rule is not applied.
* comments are the record's comments (Yida's remarks): ``ADD_REMARK`` rows of operationRecords.
* batchExecute's ``result`` is keyed by the task id (as a string): ``{result: bool, message}`` per task.
* ``nextToken`` is an offset into the list (``"0"`` or absent: the first page); instanceIds/query orders by creation.
* todoTasks/numbers and workRecords/todoTasks cover the user's tasks in every app of the corp; workRecords
  ``status`` 0 lists the to-do tasks, 1 the done ones; ``forms`` shows the originator and the process.
* userVisibilities/templates lists every process of the corp (Zida has no visibility ranges).
* ``POST /v1.0/workflow/forms`` (create or change a template) is not supported: processes come from bundles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from zida.clock import now_ms
from zida.core.access.members import app_actor, integration_actor
from zida.core.apps.models import Field, Form
from zida.core.apps.queries import get_form
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unsupported, ZidaError
from zida.core.org.repository import find_users
from zida.core.principals import AppActor
from zida.core.records.filters import And, Condition, Filter, Page, RecordQuery, Sort
from zida.core.records.remarks import list_remarks, save_remark
from zida.core.workflow import actions as approvals
from zida.core.workflow import definitions
from zida.core.workflow import queries as approval_queries
from zida.core.workflow import store as workflow_store
from zida.core.workflow.definition import OriginatorChoice, RouteNode
from zida.core.workflow.models import InboxQuery, ProcessInstance
from zida.core.workflow.own_flow import ApproverStep
from zida.dialects.dingtalk.http import Call, endpoint
from zida.dialects.dingtalk.oa_shapes import component_type, form_values, instance_detail, instance_page_item
from zida.dialects.dingtalk.process_shapes import display_directory
from zida.dialects.dingtalk.processes import id_value
from zida.dialects.dingtalk.shapes import Directory, gmt, referenced_in

__all__ = ["routes"]

# Request parameters as the OA API names them (core errors name them semantically).
_PARAMS = {
    "user": "userId",
    "users": "userIds",
    "process": "processCode",
    "process_instance": "processInstanceId",
    "task": "taskId",
    "department": "deptId",
    "approvers": "approvers",
    "cc": "ccList",
    "content": "text",
}
_STATUSES = ("RUNNING", "TERMINATED", "COMPLETED")
_ACTION_TYPES = {"AND": "and", "OR": "or", "NONE": "sequential"}
_CC_POSITIONS = {"START": "start", "FINISH": "finish", "START_FINISH": "start_finish"}
_DAY_MS = 86_400_000
MAX_WINDOW_DAYS = 120
MAX_AGE_DAYS = 365


# ------------------------------------------------------------------------------------------------ errors


def _oa_error(exc: ZidaError) -> ZidaError:
    """A core error as the OA API reports it (its own codes, §2.2); others keep their DingTalk rendering."""
    reason = exc.reason
    text = exc.render(_PARAMS)
    if reason == "record.not_found":
        return NotFound(text, reason="oa.instance_not_found")
    if reason in ("process.not_found", "process.ambiguous_code", "process.code_mismatch"):
        return NotFound(text, reason="oa.process_code")
    if reason.startswith("form_data."):
        return InvalidArgument(text, reason="oa.form_converter")
    if reason == "process.choice_missing":
        return InvalidArgument(text, reason="oa.target_select_missing")
    if reason == "process.unknown_user":
        return InvalidArgument(text, reason="oa.target_select_scope")
    if reason == "user.not_found":
        return NotFound(text, reason="oa.user_not_found")
    if reason in ("instance.finished", "instance.already_acted"):
        return Conflict(text, reason="oa.instance_status")
    if reason in ("task.not_running", "task.redirect_not_running"):
        return Conflict(text, reason="oa.task_not_executable")
    if reason == "argument.missing":
        return InvalidArgument(text, reason="oa.missing_parameter")
    if isinstance(exc, PermissionDenied) and not reason.startswith("auth."):
        return PermissionDenied(text, reason="oa.forbidden")
    if isinstance(exc, InvalidArgument | NotFound) and (
        reason.startswith(("argument.", "process.", "task.", "oa.")) or reason == "not_found"
    ):
        return exc if reason.startswith("oa.") else InvalidArgument(text, reason="oa.invalid_parameter")
    return exc


def oa_endpoint(
    permission: str,
) -> Callable[[Callable[[Call], Awaitable[Any]]], Callable[[Request], Awaitable[Response]]]:
    """``endpoint(permission)`` whose handler's core errors are reported in the OA API's codes."""

    def wrap(handler: Callable[[Call], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def translated(call: Call) -> Any:
            try:
                return await handler(call)
            except ZidaError as exc:
                raise _oa_error(exc) from exc

        translated.__name__ = handler.__name__
        translated.__doc__ = handler.__doc__
        return endpoint(permission)(translated)

    return wrap


# ------------------------------------------------------------------------------------------------ helpers


def _corp(call: Call) -> int:
    assert call.principal is not None
    return call.principal.corp_pk


async def _user_actor(call: Call, app_pk: int, param: str) -> AppActor:
    user_id = call.text(param, required=True) or ""
    try:
        return await app_actor(call.zida.db, _corp(call), app_pk, user_id)
    except NotFound as exc:
        if exc.reason == "user.not_found":
            raise NotFound(f"{param}: user {user_id} does not exist in this corp", reason="user.not_found") from None
        raise


async def _integration(call: Call, app_pk: int) -> AppActor:
    actor = await integration_actor(call.zida.db, _corp(call), app_pk)
    if actor is None:
        raise PermissionDenied("the process's app has no active administrator to act for the integration")
    return actor


async def _instance_app(call: Call, instance_id: str) -> int:
    return await approval_queries.instance_app_pk(call.zida.db, _corp(call), instance_id)


def _user_ids(call: Call, name: str, maximum: int) -> list[str]:
    raw = call.raw(name, "body")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(u, str) and u for u in raw):
        raise InvalidArgument(f"{name} must be an array of userIds", reason="oa.invalid_parameter")
    if len(raw) > maximum:
        raise InvalidArgument(f"{name} may name at most {maximum} users", reason="oa.invalid_parameter")
    return list(dict.fromkeys(raw))


def _objects(call: Call, name: str) -> list[dict[str, Any]]:
    raw = call.raw(name, "body")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise InvalidArgument(f"{name} must be an array of objects", reason="oa.invalid_parameter")
    return raw


def _approver_steps(call: Call) -> list[ApproverStep]:
    steps = []
    for index, item in enumerate(_objects(call, "approvers")):
        action = str(item.get("actionType") or "NONE").upper()
        users = item.get("userIds")
        if action not in _ACTION_TYPES:
            raise InvalidArgument(
                f"approvers[{index}].actionType must be AND, OR or NONE", reason="oa.invalid_parameter"
            )
        if not isinstance(users, list) or not users or not all(isinstance(u, str) and u for u in users):
            raise InvalidArgument(f"approvers[{index}].userIds must name users", reason="oa.invalid_parameter")
        steps.append(ApproverStep(tuple(users), _ACTION_TYPES[action]))
    return steps


def _target_choices(call: Call) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for index, item in enumerate(_objects(call, "targetSelectActioners")):
        key, users = item.get("actionerKey"), item.get("actionerUserIds")
        if not isinstance(key, str) or not key:
            raise InvalidArgument(
                f"targetSelectActioners[{index}].actionerKey is required", reason="oa.invalid_parameter"
            )
        if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
            raise InvalidArgument(
                f"targetSelectActioners[{index}].actionerUserIds must name users", reason="oa.invalid_parameter"
            )
        chosen[key] = [*chosen.get(key, []), *users]
    return chosen


def _department(call: Call) -> int | None:
    value = call.raw("deptId", "body")
    if value in (None, "", -1, "-1"):
        return None
    return id_value("deptId", value)


def _no_files(call: Call) -> None:
    file = call.raw("file", "body")
    if isinstance(file, dict) and (file.get("photos") or file.get("attachments")):
        raise Unsupported("Zida does not keep files attached to approval actions", reason="oa.unsupported")
    if file not in (None, {}) and not isinstance(file, dict):
        raise InvalidArgument("file must be an object", reason="oa.invalid_parameter")


def _remark(call: Call, name: str, max_chars: int) -> str:
    return call.text(name, "body", max_chars=max_chars) or ""


def _offset(call: Call, where: str) -> int:
    return call.integer("nextToken", 0, where, minimum=0)


def _page(offset: int, size: int) -> Page:
    if offset % size:
        raise InvalidArgument(
            f"nextToken {offset} is not a token this list gave for maxResults {size}", reason="oa.invalid_parameter"
        )
    return Page(offset // size + 1, size)


def _next_token(offset: int, count: int, total: int | None) -> str:
    return str(offset + count) if total is not None and total > offset + count else ""


async def _directory(call: Call, shown: Sequence[tuple[ProcessInstance, tuple[Field, ...], set[str]]]) -> Directory:
    """The people and departments some instances show (one lookup for them all): originators, approvers, the
    ``extra`` users of each (history actors, remark authors), those their values name, the originators' departments."""
    users: set[str] = set()
    depts: set[int] = set()
    for inst, fields, extra in shown:
        users |= {inst.originator_user_id, *extra, *(t.user_id for t in inst.state.tasks)}
        referenced_in(fields, inst.record.data, users, depts)
    known = await find_users(call.zida.db, _corp(call), sorted({inst.originator_user_id for inst, _, _ in shown}))
    for inst, _, _ in shown:
        originator = known.get(inst.originator_user_id)
        if inst.department_id is not None:
            depts.add(inst.department_id)
        elif originator is not None and originator.dept_ids:
            depts.add(originator.dept_ids[0])
    return await display_directory(call.zida, _corp(call), users, depts)


async def _rendered(call: Call, actor: AppActor, instance_id: str) -> dict[str, Any]:
    db = call.zida.db
    inst, definition, history, tasks = await approval_queries.instance_history(db, actor, instance_id)
    fields = await definitions.record_fields(db, inst.record.form_pk, inst.record.form_version)
    form = await get_form(db, actor, inst.form_uuid)
    remarks = (await list_remarks(db, actor, form, [instance_id])).get(instance_id, [])
    extra = {r.actor_user_id for r in history if r.actor_user_id} | {r.creator_user_id for r in remarks}
    directory = await _directory(call, [(inst, fields, extra)])
    return instance_detail(inst, definition, fields, history, tasks, remarks, directory, call.zida.settings.timezone)


async def _page_items(call: Call, actor: AppActor, form: Form, found: Sequence[ProcessInstance]) -> list[Any]:
    """A page of instances of one form as page items: their histories, tasks, remarks and the people they show
    read once for the page, not once per instance."""
    db = call.zida.db
    histories = await approval_queries.instances_histories(db, found)
    remarks = await list_remarks(db, actor, form, [i.instance_id for i in found])
    fields_of: dict[tuple[int, int], tuple[Field, ...]] = {}
    shown = []
    for inst, (_, history, _) in zip(found, histories, strict=True):
        key = (inst.record.form_pk, inst.record.form_version)
        if key not in fields_of:
            fields_of[key] = await definitions.record_fields(db, *key)
        extra = {r.actor_user_id for r in history if r.actor_user_id}
        extra |= {r.creator_user_id for r in remarks.get(inst.instance_id, [])}
        shown.append((inst, fields_of[key], extra))
    directory = await _directory(call, shown)
    zone = call.zida.settings.timezone
    return [
        instance_page_item(inst, definition, fields, history, tasks, remarks.get(inst.instance_id, []), directory, zone)
        for (inst, fields, _), (definition, history, tasks) in zip(shown, histories, strict=True)
    ]


def _time_window(call: Call, start_name: str, end_name: str, where: str) -> tuple[int, int]:
    now = now_ms()
    if call.raw(start_name, where) in (None, ""):
        raise InvalidArgument(f"{start_name}不能为空", reason="oa.missing_parameter")
    start = call.integer(start_name, 0, where, minimum=0, maximum=2**53)
    end = call.integer(end_name, now, where, minimum=0, maximum=2**53)
    if end < start or end - start > MAX_WINDOW_DAYS * _DAY_MS or start < now - MAX_AGE_DAYS * _DAY_MS:
        raise InvalidArgument(
            f"{start_name}..{end_name} must span at most {MAX_WINDOW_DAYS} days, starting at most {MAX_AGE_DAYS}"
            " days ago",
            reason="oa.invalid_end_time",
        )
    return start, end


# ---------------------------------------------------------------------------------------------- instances


@oa_endpoint("Workflow.Instance.Write")
async def start_process_instance(call: Call) -> dict[str, Any]:
    """StartProcessInstance (发起): ``{instanceId}``."""
    code = call.text("processCode", "body", required=True) or ""
    app_pk, form_uuid = await definitions.find_process_by_code(call.zida.db, _corp(call), code)
    actor = await _user_actor(call, app_pk, "originatorUserId")
    form = await get_form(call.zida.db, actor, form_uuid)
    raw_values = call.raw("formComponentValues", "body")
    if raw_values is None:
        raise InvalidArgument("formComponentValues不能为空", reason="oa.missing_parameter")
    values = form_values(form, raw_values, call.zida.settings.timezone)
    approvers = _approver_steps(call)
    position = str(call.text("ccPosition", "body") or "START").upper()
    if position not in _CC_POSITIONS:
        raise InvalidArgument("ccPosition must be START, FINISH or START_FINISH", reason="oa.invalid_parameter")
    inst = await approvals.start_instance(
        call.zida.db,
        actor,
        form_uuid,
        values,
        process_code=code,
        department_id=_department(call),
        chosen_approvers=_target_choices(call),
        approvers=approvers,
        cc_users=_user_ids(call, "ccList", 50),
        cc_at=_CC_POSITIONS[position],
        choices_required=not approvers,
    )
    return {"instanceId": inst.instance_id}


@oa_endpoint("Workflow.Instance.Read")
async def get_process_instance(call: Call) -> dict[str, Any]:
    """GetProcessInstance: ``{result: {…}, success: "true"}`` (§6.3)."""
    instance_id = call.text("processInstanceId", "query", required=True) or ""
    actor = await _integration(call, await _instance_app(call, instance_id))
    return {"result": await _rendered(call, actor, instance_id), "success": "true"}


def _agree(call: Call) -> bool:
    result = (call.text("result", "body", required=True) or "").strip().lower()
    if result not in ("agree", "refuse"):
        raise InvalidArgument("result must be agree or refuse", reason="oa.invalid_parameter")
    return result == "agree"


@oa_endpoint("Workflow.Task.Write")
async def execute_process_instance(call: Call) -> dict[str, Any]:
    """ExecuteProcessInstance: agree or refuse a task as its assignee → ``{result: true, success: true}``."""
    instance_id = call.text("processInstanceId", "body", required=True) or ""
    if call.raw("taskId", "body") in (None, ""):
        raise InvalidArgument("taskId不能为空", reason="oa.missing_parameter")
    task_id = id_value("taskId", call.raw("taskId", "body"))
    agree = _agree(call)
    remark = _remark(call, "remark", 1024)
    _no_files(call)
    actor = await _user_actor(call, await _instance_app(call, instance_id), "actionerUserId")
    await approvals.execute_task(call.zida.db, actor, instance_id, task_id, agree=agree, remark=remark)
    return {"result": True, "success": True}


@oa_endpoint("Workflow.Task.Write")
async def batch_execute_process_instances(call: Call) -> dict[str, Any]:
    """BatchExecuteProcessInstances: each task on its own → ``{result: {taskId: {result, message}}, success}``."""
    agree = _agree(call)
    remark = _remark(call, "remark", 1024)
    items = _objects(call, "taskInfoList")
    if not items:
        raise InvalidArgument("taskInfoList不能为空", reason="oa.missing_parameter")
    if len(items) > approvals.MAX_BATCH:
        raise InvalidArgument(f"at most {approvals.MAX_BATCH} tasks per batch", reason="oa.invalid_parameter")
    user_id = call.text("actionerUserId", "body", required=True) or ""
    outcome: dict[str, dict[str, Any]] = {}

    def report(task_id: int, failure: ZidaError | None) -> None:
        # The answer is keyed by taskId: a task listed twice is executed once and its other listing fails ("not
        # running"); the task was executed, so that is its answer, whatever order the listings came in.
        key = str(task_id)
        if failure is None:
            outcome[key] = {"result": True, "message": ""}
        elif key not in outcome:
            outcome[key] = {"result": False, "message": _oa_error(failure).message}

    by_app: dict[int, list[tuple[str, int]]] = {}
    for index, item in enumerate(items):
        instance_id, raw_task = item.get("processInstanceId"), item.get("taskId")
        if not isinstance(instance_id, str) or not instance_id or raw_task in (None, ""):
            raise InvalidArgument(
                f"taskInfoList[{index}] needs a processInstanceId and a taskId", reason="oa.invalid_parameter"
            )
        task_id = id_value(f"taskInfoList[{index}].taskId", raw_task)
        try:
            by_app.setdefault(await _instance_app(call, instance_id), []).append((instance_id, task_id))
        except NotFound as exc:
            report(task_id, exc)
    if not by_app and not outcome:
        raise InvalidArgument("taskInfoList不能为空", reason="oa.missing_parameter")
    for app_pk, group in by_app.items():
        actor = await app_actor(call.zida.db, _corp(call), app_pk, user_id)
        done = await approvals.execute_tasks(call.zida.db, actor, group, agree=agree, remark=remark)
        for _, task_id in done.succeeded:
            report(task_id, None)
        for _, task_id, failure in done.failed:
            report(task_id, failure)
    return {"result": outcome, "success": True}


@oa_endpoint("Workflow.Instance.Write")
async def terminate_process_instance(call: Call) -> dict[str, Any]:
    """TerminateProcessInstance (撤销): ``isSystem`` as the integration, else by its originator."""
    instance_id = call.text("processInstanceId", "body", required=True) or ""
    remark = _remark(call, "remark", 1024)
    app_pk = await _instance_app(call, instance_id)
    if call.flag("isSystem", False, "body"):
        actor = await _integration(call, app_pk)
    else:
        actor = await _user_actor(call, app_pk, "operatingUserId")
        inst = await approval_queries.get_instance(call.zida.db, actor, instance_id)
        if inst.originator_user_id != actor.user_id:
            raise PermissionDenied(f"only the originator of {instance_id} may revoke it", reason="oa.forbidden")
    await approvals.terminate_instance(call.zida.db, actor, instance_id, remark=remark)
    return {"result": True, "success": True}


@oa_endpoint("Workflow.Instance.Write")
async def add_process_instance_comment(call: Call) -> dict[str, Any]:
    """AddProcessInstanceComment: a comment (the record's remark) by someone who may see the instance."""
    instance_id = call.text("processInstanceId", "body", required=True) or ""
    text = call.text("text", "body", required=True, max_chars=1024) or ""
    _no_files(call)
    actor = await _user_actor(call, await _instance_app(call, instance_id), "commentUserId")
    await save_remark(call.zida.db, actor, instance_id, text)
    return {"result": True, "success": True}


@oa_endpoint("Workflow.Task.Write")
async def redirect_workflow_task(call: Call) -> dict[str, Any]:
    """RedirectWorkflowTask (转交): the current assignee hands a running task to ``toUserId``."""
    if call.raw("taskId", "body") in (None, ""):
        raise InvalidArgument("taskId不能为空", reason="oa.missing_parameter")
    task_id = id_value("taskId", call.raw("taskId", "body"))
    to_user = call.text("toUserId", "body", required=True) or ""
    remark = _remark(call, "remark", 256)
    _no_files(call)
    instance_id = await approval_queries.task_instance_id(call.zida.db, _corp(call), task_id)
    actor = await _user_actor(call, await _instance_app(call, instance_id), "operateUserId")
    await approvals.redirect_task(call.zida.db, actor, instance_id, task_id, to_user, remark=remark)
    return {"result": True, "success": True}


# ------------------------------------------------------------------------------------------------- lists


def _search_filter(start: int, end: int, users: list[str], statuses: list[str]) -> Filter:
    parts: list[Filter] = [Condition("created_at", "ge", start), Condition("created_at", "le", end)]
    if users:
        parts.append(Condition("originator", "in", users))
    if statuses:
        parts.append(Condition("instance_status", "in", statuses))
    return And(tuple(parts))


@oa_endpoint("Workflow.Instance.Read")
async def list_process_instance_ids(call: Call) -> dict[str, Any]:
    """ListProcessInstanceIds: ids of a process's instances created in a window → ``{result: {list, nextToken}}``."""
    code = call.text("processCode", "body", required=True) or ""
    start, end = _time_window(call, "startTime", "endTime", "body")
    size = call.integer("maxResults", 20, "body", maximum=20)
    offset = _offset(call, "body")
    users = _user_ids(call, "userIds", 10)
    statuses = call.raw("statuses", "body") or []
    if not isinstance(statuses, list) or not all(s in _STATUSES for s in statuses):
        raise InvalidArgument("statuses may hold RUNNING, TERMINATED and COMPLETED", reason="oa.invalid_parameter")
    app_pk, form_uuid = await definitions.find_process_by_code(call.zida.db, _corp(call), code)
    actor = await _integration(call, app_pk)
    form = await get_form(call.zida.db, actor, form_uuid)
    query = RecordQuery(_search_filter(start, end, users, statuses), (Sort("created_at"),), _page(offset, size))
    total, ids = await approval_queries.search_instance_ids(call.zida.db, actor, form, query)
    return {"result": {"list": ids, "nextToken": _next_token(offset, len(ids), total)}, "success": True}


@oa_endpoint("Workflow.Instance.Read")
async def query_all_process_instances(call: Call) -> dict[str, Any]:
    """QueryAllProcessInstances (pages/instances): a process's instances of a window, times in epoch ms."""
    code = call.text("processCode", "query", required=True) or ""
    start, end = _time_window(call, "startTimeInMills", "endTimeInMills", "query")
    size = call.integer("maxResults", 20, "query", maximum=20)
    offset = _offset(call, "query")
    app_pk, form_uuid = await definitions.find_process_by_code(call.zida.db, _corp(call), code)
    actor = await _integration(call, app_pk)
    form = await get_form(call.zida.db, actor, form_uuid)
    query = RecordQuery(_search_filter(start, end, [], []), (Sort("created_at"),), _page(offset, size))
    total, found = await approval_queries.search_instances(call.zida.db, actor, form, query)
    items = await _page_items(call, actor, form, found)
    token = _next_token(offset, len(found), total)
    return {"result": {"list": items, "hasMore": bool(token), "nextToken": token, "maxResults": size}}


@oa_endpoint("Workflow.Instance.Read")
async def get_user_todo_task_sum(call: Call) -> dict[str, Any]:
    """GetUserTodoTaskSum (todoTasks/numbers): how many tasks wait for the user → ``{result: n}``."""
    assert call.principal is not None
    user_id = call.text("userId", "query", required=True) or ""
    total, _ = await approval_queries.user_tasks(
        call.zida.db, call.principal.speaking_for(user_id), InboxQuery(page=Page(1, 1))
    )
    return {"result": total}


@oa_endpoint("Workflow.Instance.Read")
async def list_todo_work_records(call: Call) -> dict[str, Any]:
    """ListTodoWorkRecords (workRecords/todoTasks): the user's to-do (status 0) or done (1) tasks."""
    assert call.principal is not None
    user_id = call.text("userId", "query", required=True) or ""
    status = call.integer("status", 0, "query", minimum=0, maximum=1)
    size = call.integer("maxResults", 20, "query", maximum=approval_queries.MAX_PAGE_SIZE)
    offset = _offset(call, "query")
    total, tasks = await approval_queries.user_tasks(
        call.zida.db, call.principal.speaking_for(user_id), InboxQuery(page=_page(offset, size)), done=status == 1
    )
    directory = await display_directory(call.zida, _corp(call), {t.originator_user_id for t in tasks})
    items = []
    for task in tasks:
        definition = await definitions.load_definition(call.zida.db, task.form_pk, task.form_version)
        items.append(
            {
                "instanceId": task.instance_id,
                "taskId": task.task_id,
                "title": task.title,
                "url": "",
                "forms": [
                    {"title": "发起人", "content": directory.user_name(task.originator_user_id)},
                    {"title": "审批流程", "content": definition.name},
                    {"title": "创建时间", "content": gmt(task.created_at)},
                ],
            }
        )
    token = _next_token(offset, len(tasks), total)
    return {"result": {"list": items, "nextToken": int(token) if token else None}}


# ------------------------------------------------------------------------------------------------- forms


@oa_endpoint("Workflow.Form.Read")
async def query_schema_by_process_code(call: Call) -> dict[str, Any]:
    """QuerySchemaByProcessCode (forms/schemas/processCodes): the process's form as OA components."""
    code = call.text("processCode", "query", required=True) or ""
    app_pk, form_uuid = await definitions.find_process_by_code(call.zida.db, _corp(call), code)
    actor = await _integration(call, app_pk)
    form = await get_form(call.zida.db, actor, form_uuid)
    definition = await definitions.load_definition(call.zida.db, form.pk, form.version)

    def item(f: Any) -> dict[str, Any]:
        props: dict[str, Any] = {"id": f.field_id, "label": f.label_zh, "required": f.required}
        if f.alias:
            props["bizAlias"] = f.alias
        if f.options:
            props["options"] = [o.label_zh for o in f.options]
        return {"componentName": component_type(f), "props": props, "children": [item(c) for c in f.children]}

    return {
        "result": {
            "name": definition.name,
            "formCode": code,
            "formUuid": form.form_uuid,
            "appUuid": actor.app_type,
            "memo": "",
            "status": "PUBLISHED",
            "gmtCreate": gmt(form.created_at),
            "schemaContent": {"title": form.title_zh, "icon": "", "items": [item(f) for f in form.fields]},
        }
    }


@oa_endpoint("Workflow.Instance.Write")  # a write: DingTalk names no template-write point Zida grants
async def form_create(call: Call) -> dict[str, Any]:
    """FormCreate (create or change a template): not supported — Zida's processes are defined in bundles."""
    raise Unsupported(
        "creating or changing approval templates through the OA API is not supported: define processes in a"
        " bundle (zida load)",
        reason="oa.unsupported",
    )


@oa_endpoint("Workflow.Form.Read")
async def list_user_visible_bpms_processes(call: Call) -> dict[str, Any]:
    """ListUserVisibleBpmsProcesses (userVisibilities/templates): the processes the user may start."""
    user_id = call.text("userId", "query", required=True) or ""
    size = call.integer("maxResults", 100, "query", maximum=100)
    offset = _offset(call, "query")
    user = (await find_users(call.zida.db, _corp(call), [user_id])).get(user_id)
    if user is None or not user.active:
        raise NotFound(f"userId: user {user_id} does not exist in this corp", reason="user.not_found")
    rows = await workflow_store.list_process_forms(call.zida.db, _corp(call))
    page = rows[offset : offset + size]
    processes = []
    for row in page:
        definition = await definitions.load_definition(call.zida.db, int(row["id"]), int(row["version"]))
        processes.append(
            {
                "processCode": definition.process_code,
                "name": definition.name,
                "iconUrl": "",
                "url": "",
                "dirId": row["app_type"],
                "dirName": row["app_name"],
            }
        )
    more = len(rows) > offset + size
    return {"result": {"processList": processes, "nextToken": offset + size if more else None}}


@oa_endpoint("Workflow.Instance.Read")
async def process_forecast(call: Call) -> dict[str, Any]:
    """ProcessForecast: the approver activities a new instance with these values would go through."""
    code = call.text("processCode", "body", required=True) or ""
    app_pk, form_uuid = await definitions.find_process_by_code(call.zida.db, _corp(call), code)
    actor = await _user_actor(call, app_pk, "userId")
    form = await get_form(call.zida.db, actor, form_uuid)
    values = form_values(form, call.raw("formComponentValues", "body"), call.zida.settings.timezone)
    definition, steps = await approval_queries.forecast_instance(
        call.zida.db, actor, form_uuid, values, department_id=_department(call)
    )
    directory = await display_directory(call.zida, _corp(call), {u for s in steps for u in s.user_ids})
    rules = []
    previous = "sid-startevent"
    for step in steps:
        node = step.node
        chosen = isinstance(node.who, OriginatorChoice)
        method = {"and": "AND", "or": "OR", "sequential": "ONE_BY_ONE", "vote": "AND"}[node.mode]
        rules.append(
            {
                "activityId": node.node_id,
                "prevActivityId": previous,
                "activityName": node.name,
                "activityType": "target_select" if chosen else "target_approval",
                "isTargetSelect": chosen,
                "workflowActor": {
                    "actorKey": node.node_id,
                    "actorType": "approver",
                    "actorSelectionType": "selectable" if chosen else "fixed",
                    "actorActivateType": "ONE_BY_ONE" if node.mode == "sequential" else "ALL",
                    "allowedMulti": True,
                    "approvalType": method,
                    "approvalMethod": method,
                    "required": chosen,
                },
                "activityActioners": [
                    {"userId": u, "name": directory.user_name(u), "avatar": ""} for u in step.user_ids
                ],
            }
        )
        previous = node.node_id
    return {
        "result": {
            "isForecastSuccess": True,
            "processCode": code,
            "userId": actor.user_id,
            "processId": form.pk,
            "isStaticWorkflow": not any(isinstance(n, RouteNode) for n in definition.walk()),
            "workflowActivityRules": rules,
            "workflowForecastNodes": [{"activityId": r["activityId"], "outId": r["activityId"]} for r in rules],
        }
    }


def routes() -> list[Route]:
    """The OA workflow routes."""
    return [
        Route("/v1.0/workflow/processInstances", start_process_instance, methods=["POST"]),
        Route("/v1.0/workflow/processInstances", get_process_instance, methods=["GET"]),
        Route("/v1.0/workflow/processInstances/execute", execute_process_instance, methods=["POST"]),
        Route("/v1.0/workflow/processInstances/batchExecute", batch_execute_process_instances, methods=["POST"]),
        Route("/v1.0/workflow/processInstances/terminate", terminate_process_instance, methods=["POST"]),
        Route("/v1.0/workflow/processInstances/comments", add_process_instance_comment, methods=["POST"]),
        Route("/v1.0/workflow/tasks/redirect", redirect_workflow_task, methods=["POST"]),
        Route("/v1.0/workflow/processes/instanceIds/query", list_process_instance_ids, methods=["POST"]),
        Route("/v1.0/workflow/processes/pages/instances", query_all_process_instances, methods=["GET"]),
        Route("/v1.0/workflow/processes/todoTasks/numbers", get_user_todo_task_sum, methods=["GET"]),
        Route("/v1.0/workflow/workRecords/todoTasks", list_todo_work_records, methods=["GET"]),
        Route("/v1.0/workflow/forms/schemas/processCodes", query_schema_by_process_code, methods=["GET"]),
        Route("/v1.0/workflow/forms", form_create, methods=["POST"]),
        Route("/v1.0/workflow/processes/userVisibilities/templates", list_user_visible_bpms_processes, methods=["GET"]),
        Route("/v1.0/workflow/processes/forecast", process_forecast, methods=["POST"]),
    ]
