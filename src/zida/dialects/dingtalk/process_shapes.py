"""Core process instances, tasks and history → the shapes of the Yida process and task APIs (yida_1_0 models).

Choices where the platform's values are unconfirmed (spec yida-openapi §4.2, §7.1, §7.3):

* task ``status`` is the stored one (``RUNNING``, ``PAUSED``, ``COMPLETED``, ``CANCELED``, ``TERMINATED``);
  ``outResult`` is ``AGREE`` / ``DISAGREE`` / ``REDIRECT`` / ``RETURN`` (empty while open);
* ``taskType`` is ``COMMON_ONE_BY_ONE`` for sequential nodes and ``COMMON_ALL_AT_ONCE`` otherwise;
* operation records: ``type`` HISTORY for what happened and TODO for each open task; ``operateType`` follows
  DingTalk's workflow record types (NEW_PROCESS, EXECUTE_TASK_NORMAL / _AGENT, REDIRECT_TASK,
  APPEND_TASK_BEFORE / _AFTER, REDIRECT_PROCESS for a return, TERMINATE_PROCESS_INSTANCE, PROCESS_CC,
  FINISH_PROCESS_INSTANCE, and URGE_TASK, SKIP_TASK, FALLBACK_TO_ADMIN, PROCESS_ERROR, RESUBMIT_PROCESS (the
  originator resubmits after a return to ``sid-restartevent``) for Zida's own steps);
  the submit record has ``taskId`` "null", as the platform writes it;
* the start activity is ``sid-restartevent`` (发起), listed first by getActivityList.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zida.app_state import Zida
from zida.core.apps.models import Field
from zida.core.org.repository import find_departments, find_users
from zida.core.workflow import definitions
from zida.core.workflow.definition import START_ACTIVITY_ID, ApproverNode, CcNode, ProcessDefinition
from zida.core.workflow.models import OperationRecord, ProcessInstance, TaskView
from zida.dialects.dingtalk.records import render_form_data
from zida.dialects.dingtalk.shapes import Directory, gmt, person, referenced_in

__all__ = [
    "OUT_RESULTS",
    "Rendering",
    "activity_name",
    "current_activities",
    "display_directory",
    "instance_item",
    "operation_items",
    "out_result",
    "rendering_for",
    "running_assignees",
    "status_texts",
    "task_item",
    "task_type",
]

OUT_RESULTS = {
    "agree": ("AGREE", "同意"),
    "disagree": ("DISAGREE", "拒绝"),
    "redirect": ("REDIRECT", "转交"),
    "return": ("RETURN", "退回"),
}
_STATUS_TEXT = {"RUNNING": "审批中", "COMPLETED": "已完成", "TERMINATED": "已终止", "ERROR": "异常"}
_RESULT_TEXT = {"agree": "同意", "disagree": "拒绝"}

# Operation record kind → (operateType, actionExit, action text).
_OPERATIONS = {
    "start": ("NEW_PROCESS", "submit", "发起"),
    "agree": ("EXECUTE_TASK_NORMAL", "agree", "同意"),
    "disagree": ("EXECUTE_TASK_NORMAL", "disagree", "拒绝"),
    "redirect": ("REDIRECT_TASK", "forward", "转交"),
    "add_signer_before": ("APPEND_TASK_BEFORE", "append", "加签"),
    "add_signer_after": ("APPEND_TASK_AFTER", "append", "加签"),
    "return": ("REDIRECT_PROCESS", "return", "退回"),
    "withdraw": ("TERMINATE_PROCESS_INSTANCE", "withdraw", "撤回"),
    "resubmit": ("RESUBMIT_PROCESS", "submit", "重新提交"),
    "terminate": ("TERMINATE_PROCESS_INSTANCE", "terminate", "终止"),
    "urge": ("URGE_TASK", "urge", "催办"),
    "cc": ("PROCESS_CC", "cc", "抄送"),
    "skip": ("SKIP_TASK", "skip", "跳过"),
    "fallback_to_admin": ("FALLBACK_TO_ADMIN", "fallback", "转交管理员"),
    "finish": ("FINISH_PROCESS_INSTANCE", "finish", "结束"),
    "error": ("PROCESS_ERROR", "error", "异常"),
}


def out_result(result: str | None) -> tuple[str, str]:
    """(outResult, outResultName) of a task result."""
    return OUT_RESULTS.get(result or "", ("", ""))


def activity_name(definition: ProcessDefinition, node_id: str | None, language: str) -> tuple[str, str]:
    """(name in the asked language, English name) of a node."""
    if node_id == START_ACTIVITY_ID:
        return ("Submit" if language == "en_US" else "发起"), "Submit"
    if node_id is None or not definition.has_node(node_id):
        return node_id or "", node_id or ""
    node = definition.node(node_id)
    if isinstance(node, ApproverNode | CcNode):
        english = node.name_en or node.name
        return (english if language == "en_US" else node.name), english
    name = node.name or node_id
    return name, name


def task_type(definition: ProcessDefinition, node_id: str) -> str:
    """``COMMON_ONE_BY_ONE`` for sequential nodes, ``COMMON_ALL_AT_ONCE`` otherwise."""
    node = definition.node(node_id) if definition.has_node(node_id) else None
    if isinstance(node, ApproverNode) and node.mode == "sequential":
        return "COMMON_ONE_BY_ONE"
    return "COMMON_ALL_AT_ONCE"


def running_assignees(inst: ProcessInstance) -> list[str]:
    """Users with a running task in the instance (the ``actionExecutor``)."""
    return list(dict.fromkeys(t.user_id for t in inst.state.tasks if t.status == "running"))


def current_activities(
    inst: ProcessInstance, definition: ProcessDefinition, language: str, *, english_key: str
) -> list[dict[str, Any]]:
    """``currentActivityInstances``: the approver nodes the instance waits at."""
    out = []
    for node_id in dict.fromkeys(inst.state.current_node_ids()):
        name, english = activity_name(definition, node_id, language)
        first = next((t.task_id for t in inst.state.tasks if t.node_id == node_id and t.is_open), 0)
        out.append(
            {
                "activityId": node_id,
                "activityName": name,
                english_key: english,
                "activityInstanceStatus": "RUNNING",
                "id": inst.global_task_id(first) if first else 0,
            }
        )
    return out


async def display_directory(zida: Zida, corp_pk: int, users: Iterable[str], depts: Iterable[int] = ()) -> Directory:
    """These users and departments of a corp, for display names."""
    return Directory(await find_users(zida.db, corp_pk, users), await find_departments(zida.db, corp_pk, depts))


class Rendering:
    """What rendering a set of instances needs: each record's schema version and the people it names."""

    def __init__(self, fields_of: dict[tuple[int, int], tuple[Field, ...]], directory: Directory) -> None:
        self.fields_of = fields_of
        self.directory = directory

    def data(self, inst: ProcessInstance, language: str, *, use_alias: bool = False) -> dict[str, Any]:
        """``data`` / ``dataMap``: the record's values in the return format."""
        fields = self.fields_of[(inst.record.form_pk, inst.record.form_version)]
        return render_form_data(fields, inst.record, self.directory, language, use_alias=use_alias)


async def rendering_for(
    zida: Zida, corp_pk: int, instances: Iterable[ProcessInstance], extra_users: Iterable[str] = ()
) -> Rendering:
    """Schemas and a display directory for these instances (plus ``extra_users``)."""
    fields_of: dict[tuple[int, int], tuple[Field, ...]] = {}
    users: set[str] = set(extra_users)
    depts: set[int] = set()
    for inst in instances:
        key = (inst.record.form_pk, inst.record.form_version)
        if key not in fields_of:
            fields_of[key] = await definitions.record_fields(zida.db, *key)
        users.add(inst.originator_user_id)
        users.update(t.user_id for t in inst.state.tasks)
        referenced_in(fields_of[key], inst.record.data, users, depts)
    return Rendering(fields_of, await display_directory(zida, corp_pk, users, depts))


def instance_item(
    inst: ProcessInstance,
    rendering: Rendering,
    language: str,
    *,
    dept_key: str = "deptName",
    with_times: bool = True,
    use_alias: bool = False,
) -> dict[str, Any]:
    """A process instance as getInstanceById / getInstances / getInstancesByIdList return it."""
    directory = rendering.directory
    item: dict[str, Any] = {
        "processInstanceId": inst.instance_id,
        "title": inst.title,
        "formUuid": inst.form_uuid,
        "processCode": inst.process_code,
        "instanceStatus": inst.status,
        "approvedResult": inst.result or "",
        "data": rendering.data(inst, language, use_alias=use_alias),
        "originator": person(directory, inst.originator_user_id, dept_key=dept_key),
        "actionExecutor": [person(directory, u, dept_key=dept_key) for u in running_assignees(inst)],
    }
    if with_times:
        item["createTimeGMT"] = gmt(inst.created_at)
        item["modifiedTimeGMT"] = gmt(inst.record.modified_at)
        item["version"] = inst.record.form_version
    return item


def task_item(
    task: TaskView,
    definition: ProcessDefinition,
    directory: Directory,
    language: str,
    *,
    actor_key: str = "actualActionerId",
    nick_en_key: str | None = None,
    with_activity: bool = False,
    with_originator: bool = True,
) -> dict[str, Any]:
    """A task as the task lists return it (running tasks, to-dos, done tasks)."""
    title = task.title
    result, result_name = out_result(task.result)
    item: dict[str, Any] = {
        "taskId": str(task.task_id),
        "processInstanceId": task.instance_id,
        "appType": task.app_type,
        "status": task.status,
        "taskType": task_type(definition, task.node_id),
        "title": title,
        "titleInEnglish": title,
        "originatorId": task.originator_user_id,
        actor_key: task.actor_user_id or task.assignee_user_id,
        "outResult": result,
        "outResultName": result_name,
        "createTimeGMT": gmt(task.created_at),
        "activeTimeGMT": gmt(task.active_at),
        "finishTimeGMT": gmt(task.finished_at) if task.finished_at else "",
    }
    if with_activity:
        item["activityId"] = task.node_id
    if with_originator:
        user = directory.users.get(task.originator_user_id)
        name = user.name if user else task.originator_user_id
        english = (user.name_en or user.name) if user else task.originator_user_id
        item.update(
            originatorName=name,
            originatorNameInEnglish=english,
            originatorNickName=name,
            originatorEmail=(user.email or "") if user else "",
            originatorPhoto="",
        )
        item[nick_en_key or "originatorNickNameInEnglish"] = english
    return item


def operation_items(
    inst: ProcessInstance,
    definition: ProcessDefinition,
    history: list[OperationRecord],
    tasks: list[TaskView],
    directory: Directory,
    language: str,
) -> list[dict[str, Any]]:
    """getOperationRecords: what happened (HISTORY), then one TODO per open task."""
    created = {t.task_id: t for t in tasks}
    items: list[dict[str, Any]] = []
    for record in history:
        operate_type, exit_, action = _OPERATIONS.get(record.kind, (record.kind.upper(), record.kind, record.kind))
        if record.kind in ("agree", "disagree") and record.on_behalf:
            operate_type = "EXECUTE_TASK_AGENT"
        node_id = START_ACTIVITY_ID if record.kind == "start" else record.node_id
        name, _ = activity_name(definition, node_id, language) if node_id else ("", "")
        task = created.get(record.task_id) if record.task_id is not None else None
        operator = record.actor_user_id or ""
        items.append(
            {
                "type": "HISTORY",
                "operateType": operate_type,
                "action": action,
                "actionExit": exit_,
                "showName": name,
                "activityId": node_id or "",
                "taskId": str(record.task_id) if record.task_id is not None else "null",
                "taskType": task_type(definition, record.node_id) if record.node_id else "",
                "taskExecuteType": "AGENT" if record.on_behalf else "NORMAL",
                "operatorUserId": operator,
                **_operator(directory, operator, language),
                "operateTimeGMT": gmt(record.created_at),
                "activeTimeGMT": gmt(task.active_at if task is not None else record.created_at),
                "taskHoldTimeGMT": record.created_at - task.created_at if task is not None else 0,
                "remark": record.remark,
                "digitalSign": record.digital_sign or "",
                "files": "[]",
                "size": 0,
                "processInstanceId": inst.instance_id,
                "domainList": [],
                **({"users": list(record.user_ids)} if record.user_ids else {}),
                **({"targetActivityId": record.target_node_id} if record.target_node_id else {}),
            }
        )
    for task in tasks:
        if task.status not in ("RUNNING", "PAUSED"):
            continue
        name, _ = activity_name(definition, task.node_id, language)
        items.append(
            {
                "type": "TODO",
                "operateType": "EXECUTE_TASK_NORMAL",
                "action": "审批中" if task.status == "RUNNING" else "等待中",
                "actionExit": "doing",
                "showName": name,
                "activityId": task.node_id,
                "taskId": str(task.task_id),
                "taskType": task_type(definition, task.node_id),
                "taskExecuteType": "NORMAL",
                "operatorUserId": task.assignee_user_id,
                **_operator(directory, task.assignee_user_id, language),
                "operateTimeGMT": "",
                "activeTimeGMT": gmt(task.active_at),
                "taskHoldTimeGMT": 0,
                "remark": "",
                "digitalSign": "",
                "files": "[]",
                "size": 0,
                "processInstanceId": inst.instance_id,
                "domainList": [],
            }
        )
    return items


def _operator(directory: Directory, user_id: str, language: str) -> Mapping[str, Any]:
    user = directory.users.get(user_id)
    name = directory.user_name(user_id, language) if user_id else ""
    return {
        "operatorName": name,
        "operatorDisplayName": name,
        "operatorNickName": name,
        "operatorPhotoUrl": "",
        "operatorStatus": "ACTIVE" if user is not None else ("" if not user_id else "UNKNOWN"),
    }


def status_texts(inst: ProcessInstance) -> dict[str, str]:
    """Status and result keys with their display texts (the lists of submissions and copies)."""
    return {
        "processInstanceStatus": inst.status,
        "processInstanceStatusText": _STATUS_TEXT.get(inst.status, inst.status),
        "processApprovedResult": inst.result or "",
        "processApprovedResultText": _RESULT_TEXT.get(inst.result or "", ""),
    }
