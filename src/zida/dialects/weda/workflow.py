"""WeDa workflow actions: ``POST /weda/workflow/v1/{envType}/{Action}`` over the same approval engine as Yida.

Requests are JSON objects with PascalCase keys (camelCase is accepted: the first letter of every key is raised);
answers are ``{"Response": {"RequestId", "Data"}}``, errors ``{"Response": {"RequestId", "Error": {"Code",
"Message"}}}`` (``zida.dialects.weda.errors``). Ids: ``InstanceId`` is the instance id (the Yida
``processInstanceId``, also the record's ``_id``), ``TaskId``/``FlowTaskId`` a task id (Yida's ``taskId``,
sent as a string), ``FlowCode`` the process code, ``ProcessKey`` the bundle's ``processKey`` (else the process
code), a user id the ``sub`` sign-in returns (the Yida ``userId``).

Who acts (WeDa does not say): a signed-in user's token acts as that user; a client-credentials token acts as
``ExtraUserInfo.UserId`` when the body names one (``Source`` is not checked: every user is a Zida user), else as
the app's first active administrator (as the data-model routes do). Task lists need a user.

Choices where WeDa's action names or shapes are unconfirmed (README, "WeDa workflow"): the task lists are
``DescribeFlowTaskList`` (``PageType`` TODO, DONE, CREATE, CC, DRAFT), the deployed processes
``DescribeDeployedProcessList``; ``TaskStatus`` is 1 to do, 2 done, 3 cancelled, 4 waiting for added signers;
``CompleteTask`` ButtonAction 1 (submit) and 2 agree, 3 refuses (a comment is required), 4 transfers to
``TurnToUserId``, 17 saves ``VariableInfos`` values on the record and leaves the task open; without a task (the
start form) 17 saves a draft (``ProcessKey``: a new one; ``InstanceId``: the draft ``DRAFT-…`` again) and 1
submits it (or ``ProcessKey``'s start form at once), and the ``DRAFT`` list shows the user's drafts. Zida assigns
approvers when a node starts, so no task ever waits for ``SubmitFlowTaskList``: it checks the tasks and answers
``Status: true``. Not served, with ``UnsupportedOperation``: ad-hoc CC (``CcUserIds``), ``StartFlowInstance``
(logic flows) and an approver taking back a decision (``Revoke`` by anyone but the originator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from starlette.routing import Route

from zida.cache import TtlCache
from zida.core.apps.models import Form
from zida.core.apps.queries import APPS_CACHE_SCOPE, get_form
from zida.core.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unsupported
from zida.core.org.models import User
from zida.core.org.repository import find_users
from zida.core.principals import AppActor, Scope
from zida.core.records.filters import Page
from zida.core.records.values import brief
from zida.core.workflow import actions as approvals
from zida.core.workflow import definitions, drafts
from zida.core.workflow import queries as approval_queries
from zida.core.workflow import store as workflow_store
from zida.core.workflow.definition import (
    START_ACTIVITY_ID,
    ApproverNode,
    CcNode,
    Node,
    ProcessDefinition,
    RouteNode,
)
from zida.core.workflow.models import InboxQuery, OperationRecord, ProcessInstance, TaskView
from zida.core.workflow.steps import local_task
from zida.dialects.weda.calls import ActionCall, Actions, bad, find_action, pascal
from zida.dialects.weda.http import MAX_PAGE_NO, WedaCall, api_endpoint
from zida.dialects.weda.models import model_values, render_record, values_in
from zida.ids import is_decimal

__all__ = ["ACTIONS", "routes"]

END_NODE_ID = "sid-endevent"
DRAFT_PREFIX = "DRAFT-"  # drafts' ids (zida.core.workflow.drafts)
MAX_PAGE_SIZE = approval_queries.MAX_PAGE_SIZE

# Task statuses (core) → TaskStatus.
TASK_STATUS = {"RUNNING": 1, "COMPLETED": 2, "CANCELED": 3, "TERMINATED": 3, "PAUSED": 4}
# Operation records (core kind) → GetInstanceOperation's ContentInfo.Action (WeDa's history codes).
HISTORY_ACTION = {
    "start": 1,
    "resubmit": 1,
    "agree": 2,
    "disagree": 3,
    "redirect": 4,
    "fallback_to_admin": 4,
    "withdraw": 5,
    "return": 6,
    "add_signer_before": 7,
    "add_signer_after": 7,
    "terminate": 8,
    "error": 8,
    "skip": 9,
    "finish": 12,
    "cc": 15,
}
PENDING_ACTION = 11
BUTTONS = {"1": "同意", "2": "拒绝"}
OPERATION_NAME = orjson.dumps(
    [{"branchName": "同意", "branchType": 1, "edgeId": ""}, {"branchName": "拒绝", "branchType": 2, "edgeId": ""}]
).decode()
# Canvas node types: WeDa's 1 start, 13 end, 17 approval; Zida's own for the kinds WeDa's are unknown.
DATA_TYPE_START, DATA_TYPE_END, DATA_TYPE_APPROVAL, DATA_TYPE_CC, DATA_TYPE_ROUTE, DATA_TYPE_PARALLEL = (
    1,
    13,
    17,
    18,
    20,
    21,
)


# ------------------------------------------------------------------------------------------------ shapes


async def _users(flow: ActionCall, ids: Iterable[str]) -> dict[str, User]:
    return await find_users(flow.db, flow.principal.corp_pk, list(dict.fromkeys(i for i in ids if i)))


def _name(users: Mapping[str, User], user_id: str | None) -> str:
    user = users.get(user_id or "")
    return user.name if user is not None else (user_id or "")


def _user_extra(user: User | None, user_id: str) -> dict[str, Any]:
    """``UserExtraInfo``: who a user is (WeDa's exact field list is unknown; these are the directory's)."""
    if user is None:
        return {"Id": user_id, "Name": user_id}
    return {
        "Id": user.user_id,
        "Name": user.name,
        "UserName": user.username or user.user_id,
        "Email": user.email or "",
        "Phone": user.mobile or "",
        "MainDepartmentId": str(user.dept_ids[0]) if user.dept_ids else "",
        "MainDepartmentName": user.main_dept_name or "",
        "DepartmentIds": [str(d) for d in user.dept_ids],
    }


def _node_name(definition: ProcessDefinition, node_id: str | None) -> str:
    if node_id == START_ACTIVITY_ID:
        return "发起"
    if node_id == END_NODE_ID:
        return "结束"
    if node_id is None or not definition.has_node(node_id):
        return node_id or ""
    node = definition.node(node_id)
    return node.name or node_id


def _instance_state(inst: ProcessInstance) -> dict[str, Any]:
    return {
        "Status": inst.status,
        "Result": inst.result or "",
        "IsCompleted": inst.status != "RUNNING",
        "StartTime": inst.created_at,
        "EndTime": inst.finished_at or 0,
    }


def _instance_brief(inst: ProcessInstance, definition: ProcessDefinition, users: Mapping[str, User]) -> dict[str, Any]:
    return {
        "InstanceId": inst.instance_id,
        "Name": inst.title,
        "ProcessKey": definition.key,
        "FlowCode": inst.process_code,
        "FlowVersion": str(inst.form_version),
        "StartUserId": inst.originator_user_id,
        "StartedBy": _name(users, inst.originator_user_id),
        "StartAppCode": inst.app_type,
        **_instance_state(inst),
    }


def _task_item(task: TaskView, definition: ProcessDefinition, users: Mapping[str, User]) -> dict[str, Any]:
    return {
        "TaskId": str(task.task_id),
        "InstanceId": task.instance_id,
        "Name": task.title,
        "ProcessKey": definition.key,
        "FlowCode": task.process_code,
        "NodeId": task.node_id,
        "NodeName": _node_name(definition, task.node_id),
        "Assignee": task.assignee_user_id,
        "AssigneeName": _name(users, task.assignee_user_id),
        "OperatorUserId": task.actor_user_id or "",
        "TaskStatus": TASK_STATUS.get(task.status, 3),
        "Result": task.result or "",
        "CreateTime": task.created_at,
        "FinishTime": task.finished_at or 0,
        "StartUserId": task.originator_user_id,
        "StartedBy": _name(users, task.originator_user_id),
        "StartAppCode": task.app_type,
        "InstanceStatus": task.instance_status,
    }


def _values_of(flow: ActionCall, form: Form, raw: Any) -> dict[str, Any] | None:
    """``VariableInfos`` (``[{Type, Value: {entityCode, fieldValueMap, recordId}}]``): the values for ``form``."""
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise bad(f"VariableInfos must be a list, got {brief(raw)}")
    found: dict[str, Any] | None = None
    for i, item in enumerate(raw):
        value = pascal(item).get("Value") if isinstance(item, Mapping) else None
        if not isinstance(value, Mapping):
            raise bad(f"VariableInfos[{i}] must be an object with a Value object, got {brief(item)}")
        entity = value.get("entityCode", value.get("EntityCode"))
        if entity not in (None, form.model_name):
            raise bad(f"VariableInfos[{i}].Value.entityCode {brief(entity)} is not this process's model")
        values = value.get("fieldValueMap", value.get("FieldValueMap", {}))
        found = {**(found or {}), **values_in(form, values, f"VariableInfos[{i}].Value.fieldValueMap")}
    return found


# ------------------------------------------------------------------------------------------------ starting


# (corp pk, ProcessKey) → (app pk, form uuid) of the process form; emptied with the apps' caches.
_PROCESSES: TtlCache[tuple[int, str], tuple[int, str]] = TtlCache(scope=APPS_CACHE_SCOPE)


async def _process_form(flow: ActionCall, process_key: str) -> tuple[int, str]:
    cached = _PROCESSES.get((flow.principal.corp_pk, process_key))
    if cached is not None:
        return cached
    rows = await workflow_store.find_process_forms_by_key(flow.db, flow.principal.corp_pk, process_key)
    if not rows:
        raise NotFound(f"process {process_key} does not exist in this environment", reason="process.not_found")
    if len(rows) > 1:
        raise InvalidArgument(
            f"ProcessKey {process_key} is the process code of processes in several apps: give each a processKey",
            reason="process.ambiguous_key",
        )
    return _PROCESSES.put((flow.principal.corp_pk, process_key), (int(rows[0]["app_pk"]), str(rows[0]["form_uuid"])))


def _refuse_ad_hoc_cc(flow: ActionCall) -> None:
    """``CcUserIds`` (an ad-hoc CC) is not served: refused, never dropped (the start or action would seem to copy)."""
    if flow.body.get("CcUserIds"):
        raise Unsupported(
            "CcUserIds: Zida copies (抄送) to the people of the process's CC nodes only", reason="action.unsupported"
        )


async def start_process_with_params(flow: ActionCall) -> dict[str, Any]:
    """StartProcessWithParams: start the process ``ProcessKey`` with the start form's values
    (``StartParams[0].fieldValueMap``, field aliases; ``paramCode`` = the process form's model name). An ``_id``
    there (WeDa: a record created first) is refused: the start creates the record."""
    _refuse_ad_hoc_cc(flow)
    app_pk, form_uuid = await _process_form(flow, flow.required("ProcessKey"))
    trigger = flow.body.get("TriggerType")
    if trigger is not None and (not isinstance(trigger, int) or isinstance(trigger, bool)):
        raise bad(f"TriggerType must be an integer, got {brief(trigger)}")
    actor = await flow.actor(app_pk)
    form = await get_form(flow.db, actor, form_uuid)
    params = flow.body.get("StartParams", [])
    if not isinstance(params, list) or len(params) > 1:
        raise bad(f"StartParams must be a list of at most one start form, got {brief(params)}")
    values: dict[str, Any] = {}
    if params:
        param = params[0]
        if not isinstance(param, Mapping):
            raise bad(f"StartParams[0] must be an object, got {brief(param)}")
        code = param.get("paramCode", param.get("ParamCode"))
        if code is not None and code != form.model_name:
            raise bad(f"StartParams[0].paramCode {brief(code)} is not the process's model ({form.model_name})")
        given = param.get("fieldValueMap", param.get("FieldValueMap", {}))
        if isinstance(given, Mapping) and given.get("_id") not in (None, ""):
            # WeDa binds the process to a data-model record made first; in Zida a process form's record is made by
            # the start itself (its data model refuses create), so no record can be named here: say so.
            raise bad(
                "StartParams[0].fieldValueMap._id: the process makes its own record when it starts;"
                " give the record's values, not a record id"
            )
        values = values_in(form, given, "StartParams[0].fieldValueMap")
    inst = await approvals.start_instance(flow.db, actor, form_uuid, values)
    return {"InstanceId": inst.instance_id, "ProcessKey": (await definitions.definition_of(flow.db, inst)).key}


async def start_flow_instance(flow: ActionCall) -> dict[str, Any]:
    """StartFlowInstance starts a logic flow (FlowId), which Zida does not have."""
    raise Unsupported(
        "StartFlowInstance runs WeDa logic flows, which Zida does not have:"
        " start approvals with StartProcessWithParams",
        reason="action.unsupported",
    )


# ------------------------------------------------------------------------------------------------ reading


async def _history(
    flow: ActionCall, instance_id: str
) -> tuple[AppActor, ProcessInstance, ProcessDefinition, list[OperationRecord], list[TaskView]]:
    actor = await flow.instance_actor(instance_id)
    inst, definition, history, tasks = await approval_queries.instance_history(flow.db, actor, instance_id)
    return actor, inst, definition, history, tasks


async def describe_instance_approver_list(flow: ActionCall) -> dict[str, Any]:
    """DescribeInstanceApproverList: every approver task of an instance, open ones included, oldest first."""
    instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId")
    actor = await flow.instance_actor(instance_id)
    tasks = await approval_queries.instance_tasks(flow.db, actor, instance_id)
    users = await _users(flow, (t.assignee_user_id for t in tasks))
    extra = flow.flag("NeedUserExtraInfo")
    approvers = []
    for task in tasks:
        definition = await definitions.load_definition(flow.db, task.form_pk, task.form_version)
        item = {
            "UserId": task.assignee_user_id,
            "UserName": _name(users, task.assignee_user_id),
            "TaskId": str(task.task_id),
            "NodeId": task.node_id,
            "NodeName": _node_name(definition, task.node_id),
            "TaskStatus": TASK_STATUS.get(task.status, 3),
            "Result": task.result or "",
            "CreateTime": task.created_at,
            "FinishTime": task.finished_at or 0,
        }
        if extra:
            item["UserExtraInfo"] = _user_extra(users.get(task.assignee_user_id), task.assignee_user_id)
        approvers.append(item)
    return {"InstanceId": instance_id, "Total": len(approvers), "ApproverList": approvers}


async def describe_process_instance_details(flow: ActionCall) -> dict[str, Any]:
    """DescribeProcessInstanceDetails: an instance, its record's values (model field names) and its tasks."""
    instance_id = await flow.instance_id("ProcessInstanceId", "InstanceId")
    actor, inst, definition, _, tasks = await _history(flow, instance_id)
    form = await get_form(flow.db, actor, inst.form_uuid, version=inst.record.form_version)
    users = await _users(flow, [inst.originator_user_id, *(t.assignee_user_id for t in tasks)])
    running = [t for t in tasks if t.status == "RUNNING"]
    return {
        **_instance_brief(inst, definition, users),
        "ModelName": form.model_name or "",
        "RecordId": inst.instance_id,
        "FieldValueMap": render_record(form, inst.record) if form.model_name else {},
        "CurrentNodes": [
            {"NodeId": n, "NodeName": _node_name(definition, n)} for n in dict.fromkeys(t.node_id for t in running)
        ],
        "CurrentApprovers": list(dict.fromkeys(t.assignee_user_id for t in running)),
        "Tasks": [_task_item(t, definition, users) for t in tasks],
    }


async def describe_process_instance(flow: ActionCall) -> dict[str, Any]:
    """DescribeProcessInstance: an instance seen from one task (``FlowTaskId``) or from the instance itself."""
    page_type = flow.text("PageType") or "TODO"
    if page_type not in ("TODO", "CREATE", "DONE", "CC", "DRAFT", "CREATEFLOW"):
        raise bad(f"PageType {brief(page_type)} is not one of TODO, CREATE, DONE, CC, DRAFT, CREATEFLOW")
    task_id = flow.task_id("FlowTaskId", "TaskId", required=False)
    if task_id is not None:
        instance_id = await approval_queries.task_instance_id(flow.db, flow.principal.corp_pk, task_id)
    else:
        instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId")
    actor, inst, definition, _, tasks = await _history(flow, instance_id)
    task = next((t for t in tasks if t.task_id == task_id), None) if task_id is not None else None
    running = [t for t in tasks if t.status == "RUNNING"]
    current = task if task is not None and task.status == "RUNNING" else (running[0] if running else None)
    users = await _users(flow, [inst.originator_user_id, *(t.assignee_user_id for t in tasks)])
    approvers = list(dict.fromkeys(t.assignee_user_id for t in running))
    node_id = current.node_id if current is not None else (task.node_id if task is not None else "")
    mine = task is not None and task.status == "RUNNING" and task.assignee_user_id == actor.user_id
    return {
        **_instance_brief(inst, definition, users),
        "Description": "",
        "CurrentApprover": ",".join(approvers),
        "CurrentApproverName": ",".join(_name(users, u) for u in approvers),
        "StartAppName": "",
        "CurrentNodeId": node_id,
        "CurrentNodeName": _node_name(definition, node_id) if node_id else "",
        "CurrentNodeType": DATA_TYPE_APPROVAL if node_id else 0,
        "TaskId": str(task.task_id) if task is not None else "",
        "TaskStatus": TASK_STATUS.get(task.status, 3) if task is not None else 0,
        "Flag": page_type,
        "CanApprove": mine,
        "CanDelete": False,
        "OperationName": OPERATION_NAME,
        "UserTaskType": 1,
        "UserExtraInfos": [_user_extra(users.get(u), u) for u in approvers] if flow.flag("NeedUserExtraInfo") else [],
    }


async def get_approval_page_detail(flow: ActionCall) -> dict[str, Any]:
    """GetApprovalPageDetail: what an approval page shows: the record's model, values and buttons."""
    instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId", task="TaskId")
    actor, inst, _, _, tasks = await _history(flow, instance_id)
    form = await get_form(flow.db, actor, inst.form_uuid, version=inst.record.form_version)
    task_id = flow.task_id("TaskId", required=False)
    task = next((t for t in tasks if t.task_id == task_id), None)
    if task_id is not None and task is None:
        raise NotFound(f"task {task_id} does not exist in process instance {instance_id}", reason="task.not_found")
    actionable = task is not None and task.status == "RUNNING" and task.assignee_user_id == actor.user_id
    model = form.model_name or ""
    return {
        "PageUrl": "",
        "AppCode": inst.app_type,
        "Show": True,
        "ShowSubmitApp": actionable,
        "ShowCarbonCopy": False,
        "ShowTurnToPerson": actionable,
        "ShowAddAssignee": actionable,
        "ShowRollBack": actionable,
        "OutEntityCodes": [{"EntityCode": model, "Type": 1}] if model else [],
        "Buttons": BUTTONS if actionable else {},
        "DataSourceInputParams": [],
        "VariableInfos": {
            "ObjectMap": [
                {
                    "EntityCode": model,
                    "RecordId": inst.instance_id,
                    "FieldValueMap": render_record(form, inst.record) if model else {},
                }
            ],
            "ObjectListMap": [],
        },
    }


async def get_instance_operation(flow: ActionCall) -> dict[str, Any]:
    """GetInstanceOperation: the instance's history (批办过程), then one pending entry per open task.

    Reminders (PressTask) are not listed: WeDa's history has no code for them.
    """
    instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId")
    _, inst, definition, history, tasks = await _history(flow, instance_id)
    users = await _users(flow, [*(r.actor_user_id or "" for r in history), *(t.assignee_user_id for t in tasks)])
    elements: list[dict[str, Any]] = []
    for record in history:
        action = HISTORY_ACTION.get(record.kind)
        if action is None:
            continue
        node_id = START_ACTIVITY_ID if record.kind in ("start", "resubmit") else (record.node_id or END_NODE_ID)
        result = {"agree": "true", "disagree": "false"}.get(record.kind, "")
        elements.append(_element(definition, node_id, [_name(users, record.actor_user_id)], result, action, record))
    for task in tasks:
        if task.status in ("RUNNING", "PAUSED"):
            elements.append(
                _element(
                    definition, task.node_id, [_name(users, task.assignee_user_id)], "待审批", PENDING_ACTION, None
                )
            )
    return {"InstanceId": inst.instance_id, "ElementInfos": elements}


def _element(
    definition: ProcessDefinition,
    node_id: str,
    names: list[str],
    result: str,
    action: int,
    record: OperationRecord | None,
) -> dict[str, Any]:
    node = definition.node(node_id) if definition.has_node(node_id) else None
    strategy = node.mode if isinstance(node, ApproverNode) else ""
    operation: list[dict[str, Any]] = []
    if record is not None and record.user_ids:
        operation.append({"UserIds": list(record.user_ids)})
    if record is not None and record.target_node_id:
        operation.append({"TargetNodeId": record.target_node_id})
    return {
        "Id": node_id,
        "Name": _node_name(definition, node_id),
        "OperaName": names,
        "Result": result,
        "ApprovalStrategy": strategy,
        "ContentInfo": {
            "Action": action,
            "AttachmentInfo": "[]",
            "OperationComment": record.remark if record is not None else "",
            "CreateTime": record.created_at if record is not None else 0,
            "OpinionUserMap": {},
            "HighlightPositionList": "{}",
            "Operation": orjson.dumps(operation).decode(),
        },
    }


async def get_process_canvas_info(flow: ActionCall) -> dict[str, Any]:
    """GetProcessCanvasInfo: the instance's flow chart, each node with its status (0 not reached, 1 in progress,
    2 passed) and its people's decisions."""
    instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId")
    _, inst, definition, history, tasks = await _history(flow, instance_id)
    users = await _users(flow, [inst.originator_user_id, *(t.assignee_user_id for t in tasks)])
    comments: dict[int, str] = {
        r.task_id: r.remark for r in history if r.task_id is not None and r.kind in ("agree", "disagree")
    }
    cc_done = {r.node_id for r in history if r.kind == "cc"}
    canvas = _Canvas(definition, tasks, users, comments, cc_done)
    start_conf = [
        {"Name": _name(users, inst.originator_user_id), "Status": 2, "OpTime": inst.created_at, "Comment": ""}
    ]
    canvas.add_node(START_ACTIVITY_ID, "发起", DATA_TYPE_START, 2, start_conf)
    ends = canvas.link(definition.nodes, [START_ACTIVITY_ID])
    finished = inst.status != "RUNNING"
    end_conf = [{"Name": "", "Status": 2, "OpTime": inst.finished_at or 0, "Comment": ""}] if finished else []
    canvas.add_node(END_NODE_ID, "结束", DATA_TYPE_END, 2 if finished else 0, end_conf)
    for source in ends:
        canvas.add_edge(source, END_NODE_ID, "")
    return {"InstanceId": inst.instance_id, "Nodes": canvas.nodes, "Edges": canvas.edges}


class _Canvas:
    """Nodes and edges of a definition drawn for one instance."""

    def __init__(
        self,
        definition: ProcessDefinition,
        tasks: Sequence[TaskView],
        users: Mapping[str, User],
        comments: Mapping[int, str],
        cc_done: set[str | None],
    ) -> None:
        self.definition = definition
        self.tasks = tasks
        self.users = users
        self.comments = comments
        self.cc_done = cc_done
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.status: dict[str, int] = {}

    def add_node(self, node_id: str, name: str, data_type: int, status: int, conf: list[dict[str, Any]]) -> None:
        self.status[node_id] = status
        full = [{"AttachmentInfo": "[]", "NewProcessors": [], **c} for c in conf]
        self.nodes.append(
            {"Id": node_id, "ElementId": node_id, "Name": name, "DataType": data_type, "Status": status, "Conf": full}
        )

    def add_edge(self, source: str, target: str, label: str) -> None:
        passed = self.status.get(source, 0) == 2 and self.status.get(target, 0) > 0
        self.edges.append({"Label": label, "Type": 1, "Source": source, "Target": target, "Status": 1 if passed else 0})

    def link(self, nodes: Sequence[Node], sources: list[str], label: str = "") -> list[str]:
        """Draw ``nodes`` in order after ``sources``; the ids the next node is linked from."""
        for node in nodes:
            if isinstance(node, ApproverNode):
                mine = [t for t in self.tasks if t.node_id == node.node_id]
                status = 1 if any(t.status in ("RUNNING", "PAUSED") for t in mine) else (2 if mine else 0)
                conf = [
                    {
                        "Name": _name(self.users, t.assignee_user_id),
                        "Status": TASK_STATUS.get(t.status, 3),
                        "OpTime": t.finished_at or 0,
                        "Comment": self.comments.get(t.task_id, ""),
                    }
                    for t in mine
                ]
                self.add_node(node.node_id, node.name, DATA_TYPE_APPROVAL, status, conf)
                targets = [node.node_id]
            elif isinstance(node, CcNode):
                self.add_node(node.node_id, node.name, DATA_TYPE_CC, 2 if node.node_id in self.cc_done else 0, [])
                targets = [node.node_id]
            else:
                kind = DATA_TYPE_ROUTE if isinstance(node, RouteNode) else DATA_TYPE_PARALLEL
                self.add_node(node.node_id, node.name or node.node_id, kind, 0, [])
                targets = []
                branches: list[tuple[Sequence[Node], str]] = (
                    [(b.nodes, b.name or ("默认" if b.is_default else "")) for b in node.branches]
                    if isinstance(node, RouteNode)
                    else [(b, "") for b in node.branches]
                )
                first_edge = len(self.edges)
                for branch, branch_label in branches:
                    targets.extend(self.link(branch, [node.node_id], branch_label))
                reached = any(self.status.get(e["Target"], 0) > 0 for e in self.edges[first_edge:])
                self.status[node.node_id] = 2 if reached else 0
                self._restatus(node.node_id, first_edge)
            for source in sources:
                self.add_edge(source, node.node_id, label)
                label = ""
            sources = list(dict.fromkeys(targets)) or sources
        return sources

    def _restatus(self, node_id: str, first_edge: int) -> None:
        """A gateway's status is known after its branches are drawn: fix its node and its outgoing edges."""
        for node in self.nodes:
            if node["Id"] == node_id:
                node["Status"] = self.status[node_id]
        for edge in self.edges[first_edge:]:
            if edge["Source"] == node_id:
                passed = self.status[node_id] == 2 and self.status.get(edge["Target"], 0) > 0
                edge["Status"] = 1 if passed else 0


async def get_pre_element_list(flow: ActionCall) -> list[dict[str, Any]]:
    """GetPreElementList: where RollBack can send the flow from a running task (``TaskId``, else the first one
    at ``NodeId``, else the first one): the submitter, then the approver nodes the engine allows, oldest first;
    ``LastNode`` marks where a return without a target goes, ``ActTaskId`` the node's latest task."""
    instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId", task="TaskId")
    _, inst, definition, _, tasks = await _history(flow, instance_id)
    task_id = flow.task_id("TaskId", required=False)
    if task_id is None:
        node_id = flow.text("NodeId")
        running = [t for t in tasks if t.status == "RUNNING" and node_id in (None, t.node_id)]
        task_id = running[0].task_id if running else None
    targets = inst.state.return_targets(local_task(inst, task_id)) if task_id is not None else []
    latest = {t.node_id: t.task_id for t in tasks if t.status == "COMPLETED"}
    out = [
        {
            "ElementId": START_ACTIVITY_ID,
            "ElementName": _node_name(definition, START_ACTIVITY_ID),
            "LastNode": not targets,
            "ActTaskId": "",
        }
    ]
    for i, node in enumerate(targets):
        out.append(
            {
                "ElementId": node,
                "ElementName": _node_name(definition, node),
                "LastNode": i == len(targets) - 1,
                "ActTaskId": str(latest[node]) if node in latest else "",
            }
        )
    return out


# ------------------------------------------------------------------------------------------------ acting


async def complete_task(flow: ActionCall) -> dict[str, Any]:
    """CompleteTask: act on a task by ``ButtonAction`` (see the module's docstring)."""
    button = flow.body.get("ButtonAction")
    if isinstance(button, str) and is_decimal(button) and len(button) <= 3:
        button = int(button)
    if isinstance(button, bool) or button not in (1, 2, 3, 4, 17):  # true == 1 in Python: not a button
        raise bad(
            "ButtonAction must be 1 (submit), 2 (agree), 3 (reject), 4 (transfer) or 17 (save draft),"
            f" got {brief(button)}"
        )
    _refuse_ad_hoc_cc(flow)
    task_id = flow.task_id("TaskId", "FlowTaskId", required=button not in (1, 17))
    if task_id is None:  # the start form: a new draft, a draft's change, or a submission
        return await _start_form(flow, button)
    instance_id = await flow.instance_id("InstanceId", task="TaskId")
    actor = await flow.instance_actor(instance_id)
    remark = flow.comment()
    if button == 4:
        to_user = flow.required("TurnToUserId")
        await approvals.redirect_task(flow.db, actor, instance_id, task_id, to_user, remark=remark)
        return _task_done()
    values = None
    if button == 17 or flow.body.get("VariableInfos"):  # values to read: the record's form first
        inst = await approval_queries.get_instance(flow.db, actor, instance_id)
        form = await get_form(flow.db, actor, inst.form_uuid, version=inst.record.form_version)
        values = _values_of(flow, form, flow.body.get("VariableInfos"))
    if button == 17:  # the same task checks as acting on it: this instance's, running, the caller's
        task = inst.state.task(local_task(inst, task_id))
        if task is None or task.status != "running":
            raise Conflict(f"task {task_id} is not running", reason="task.not_running", task_id=task_id)
        if task.user_id != actor.user_id:
            raise PermissionDenied(f"task {task_id} is not {actor.user_id}'s to save", reason="permission.denied")
        if values:
            await approvals.update_instance(flow.db, actor, instance_id, values)
        return _task_done()
    if button == 3 and not remark.strip():
        raise InvalidArgument("OperationComment is required to reject", reason="argument.missing")
    await approvals.execute_task(flow.db, actor, instance_id, task_id, agree=button != 3, remark=remark, values=values)
    return _task_done()


def _task_done() -> dict[str, Any]:
    """CompleteTask's answer on a task: done, no next approver to choose (Zida's processes name their approvers)."""
    return {"Status": True, "ToBeSubmittedFlowTaskFlag": False, "ToBeSubmittedFlowTaskInfo": []}


async def _start_form(flow: ActionCall, button: int) -> dict[str, Any]:
    """CompleteTask without a task, on the start form: ButtonAction 17 saves a draft (a new one for ``ProcessKey``,
    or the draft ``InstanceId``), 1 submits (the draft ``InstanceId``, or ``ProcessKey``'s start form at once).
    ``InstanceId`` in the answer is the draft's id, or the started instance's."""
    draft_id = flow.text("InstanceId")
    if draft_id is not None and not draft_id.startswith(DRAFT_PREFIX):
        raise InvalidArgument("TaskId is required (InstanceId is not a draft)", reason="argument.missing")
    if draft_id is None:
        app_pk, form_uuid = await _process_form(flow, flow.required("ProcessKey"))
        actor = await flow.actor(app_pk)
        values = _values_of(flow, await get_form(flow.db, actor, form_uuid), flow.body.get("VariableInfos")) or {}
        if button == 17:
            draft = await drafts.save_draft(flow.db, actor, form_uuid, values)
            return {"Status": True, "InstanceId": draft.draft_id}
        inst = await approvals.start_instance(flow.db, actor, form_uuid, values)
        return {"Status": True, "InstanceId": inst.instance_id}
    actor = await flow.actor(await drafts.draft_app_pk(flow.db, flow.principal.corp_pk, draft_id))
    draft = await drafts.find_draft(flow.db, actor, draft_id)
    values = _values_of(flow, await get_form(flow.db, actor, draft.form_uuid), flow.body.get("VariableInfos")) or {}
    if button == 17:
        await drafts.save_draft(flow.db, actor, None, {**draft.values, **values}, draft_id=draft_id)
        return {"Status": True, "InstanceId": draft_id}
    inst = await drafts.submit_draft(flow.db, actor, draft_id, values)
    return {"Status": True, "InstanceId": inst.instance_id}


async def submit_flow_task_list(flow: ActionCall) -> dict[str, Any]:
    """SubmitFlowTaskList: confirm next approvers; Zida assigns them when a node starts, so it checks the tasks."""
    raw = flow.body.get("FlowTaskIds")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_PAGE_SIZE:
        raise bad(f"FlowTaskIds must be a list of 1 to {MAX_PAGE_SIZE} task ids, got {brief(raw)}")
    for value in raw:
        task_id = ActionCall(flow.call, {"TaskId": value}).task_id("TaskId")
        assert task_id is not None
        instance_id = await approval_queries.task_instance_id(flow.db, flow.principal.corp_pk, task_id)
        actor = await flow.instance_actor(instance_id)
        await approval_queries.get_instance(flow.db, actor, instance_id)
    return {"Status": True}


async def revoke(flow: ActionCall) -> dict[str, Any]:
    """Revoke: the originator withdraws (撤回) the instance before any approver acted."""
    instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId")
    actor = await flow.instance_actor(instance_id)
    inst = await approval_queries.get_instance(flow.db, actor, instance_id)
    if inst.originator_user_id != actor.user_id:
        raise Unsupported(
            "only the originator revokes an instance (taking back an approval decision is not supported)",
            reason="action.unsupported",
        )
    await approvals.withdraw_instance(flow.db, actor, instance_id, remark=flow.comment())
    return {"Status": True}


async def roll_back(flow: ActionCall) -> dict[str, Any]:
    """RollBack: return (退回) the flow from a task to ``TargetNodeId`` (GetPreElementList lists them)."""
    task_id = flow.task_id("TaskId")
    assert task_id is not None
    instance_id = await flow.instance_id("InstanceId", task="TaskId")
    actor = await flow.instance_actor(instance_id)
    await approvals.return_task(
        flow.db,
        actor,
        instance_id,
        task_id,
        to_node=flow.required("TargetNodeId"),
        current_node=flow.text("NodeId"),
        remark=flow.comment(),
    )
    return {"Status": True}


async def add_counter_sign_assignee(flow: ActionCall) -> dict[str, Any]:
    """AddCounterSignAssignee: add signers (加签) who decide before the task's assignee."""
    task_id = flow.task_id("TaskId")
    assert task_id is not None
    users = flow.user_ids("AssigneeIds")
    instance_id = await flow.instance_id("InstanceId", task="TaskId")
    actor = await flow.instance_actor(instance_id)
    await approvals.add_signers(flow.db, actor, instance_id, task_id, users, remark=flow.comment())
    return {"Status": True}


async def press_task(flow: ActionCall) -> dict[str, Any]:
    """PressTask: remind (催办) the assignees of the running tasks; the originator or an app admin may."""
    instance_id = await flow.instance_id("InstanceId", "ProcessInstanceId")
    actor = await flow.instance_actor(instance_id)
    await approvals.urge_instance(flow.db, actor, instance_id, remark=flow.comment())
    return {"Status": True}


# ------------------------------------------------------------------------------------------------ lists


def _page(flow: ActionCall) -> Page:
    """``PageNo`` (1 to ``MAX_PAGE_NO``, as every WeDa list) and ``PageSize`` (1 to ``MAX_PAGE_SIZE``)."""
    return Page(flow.integer("PageNo", 1, maximum=MAX_PAGE_NO), flow.integer("PageSize", 10, maximum=MAX_PAGE_SIZE))


async def _definition_of(
    flow: ActionCall, cache: dict[tuple[int, int], ProcessDefinition], form_pk: int, version: int
) -> ProcessDefinition:
    key = (form_pk, version)
    if key not in cache:
        cache[key] = await definitions.load_definition(flow.db, form_pk, version)
    return cache[key]


async def describe_flow_task_list(flow: ActionCall) -> dict[str, Any]:
    """DescribeFlowTaskList (Zida's name): the acting user's tasks to do (TODO) or done (DONE), the instances he
    started (CREATE) or was copied on (CC), newest first."""
    page_type = flow.required("PageType")
    if page_type not in ("TODO", "DONE", "CREATE", "CC", "DRAFT"):
        raise bad(f"PageType {brief(page_type)} is not one of TODO, DONE, CREATE, CC, DRAFT")
    user_id = flow.named_user()
    if user_id is None:
        raise InvalidArgument("ExtraUserInfo.UserId is required: a task list is one user's", reason="argument.missing")
    speaking = flow.principal.speaking_for(user_id)
    query = InboxQuery(keyword=flow.text("Keyword"), page=_page(flow))
    cache: dict[tuple[int, int], ProcessDefinition] = {}
    items: list[dict[str, Any]] = []
    if page_type in ("TODO", "DONE"):
        total, tasks = await approval_queries.user_tasks(flow.db, speaking, query, done=page_type == "DONE")
        users = await _users(flow, [*(t.originator_user_id for t in tasks), *(t.assignee_user_id for t in tasks)])
        for task in tasks:
            definition = await _definition_of(flow, cache, task.form_pk, task.form_version)
            items.append(_task_item(task, definition, users))
    elif page_type == "DRAFT":
        users = await _users(flow, [user_id])
        if user_id not in users:  # as the other lists answer (an unknown user has no list, not an empty one)
            raise NotFound(f"user {user_id} does not exist in this corp", reason="user.not_found")
        total, saved = await drafts.list_drafts(flow.db, flow.principal.corp_pk, user_id, query.page)
        for draft in saved:
            actor = await flow.actor(draft.app_pk)
            form = await get_form(flow.db, actor, None, form_pk=draft.form_pk)
            definition = await _definition_of(flow, cache, form.pk, form.version)
            items.append(
                {
                    "InstanceId": draft.draft_id,
                    "Name": form.title_zh,
                    "ProcessKey": definition.key,
                    "FlowCode": definition.process_code,
                    "ModelName": form.model_name or "",
                    "StartUserId": user_id,
                    "StartedBy": _name(users, user_id),
                    "CreateTime": draft.created_at,
                    "UpdateTime": draft.updated_at,
                    "FieldValueMap": model_values(form, draft.values),
                }
            )
    elif page_type == "CREATE":
        total, instances = await approval_queries.user_submissions(flow.db, speaking, query)
        users = await _users(flow, (i.originator_user_id for i in instances))
        for inst in instances:
            definition = await _definition_of(flow, cache, inst.form_pk, inst.form_version)
            items.append(_instance_brief(inst, definition, users))
    else:
        total, copies = await approval_queries.user_copies(flow.db, speaking, query)
        users = await _users(flow, (c.instance.originator_user_id for c in copies))
        for copy in copies:
            definition = await _definition_of(flow, cache, copy.instance.form_pk, copy.instance.form_version)
            items.append({**_instance_brief(copy.instance, definition, users), "CcTime": copy.created_at})
    return {"Total": total, "PageNo": query.page.number, "PageSize": query.page.size, "List": items}


async def describe_deployed_process_list(flow: ActionCall) -> dict[str, Any]:
    """DescribeDeployedProcessList (Zida's name): the environment's processes (current versions), oldest first."""
    page = _page(flow)
    rows = await workflow_store.list_process_forms(flow.db, flow.principal.corp_pk)
    items = []
    for row in rows[(page.number - 1) * page.size : page.number * page.size]:
        definition = await definitions.load_definition(flow.db, int(row["id"]), int(row["version"]))
        items.append(
            {
                "ProcessKey": definition.key,
                "ProcessName": definition.name,
                "FlowCode": definition.process_code,
                "FlowVersion": str(row["version"]),
                "ModelName": row["model_name"] or "",
                "AppCode": row["app_type"],
                "AppName": row["app_name"],
                "UpdateTime": int(row["created_at"]),
            }
        )
    return {"Total": len(rows), "PageNo": page.number, "PageSize": page.size, "ProcessList": items}


# ------------------------------------------------------------------------------------------------ routing

# Action → (the scope it needs, its handler).
ACTIONS: Actions = {
    "StartProcessWithParams": (Scope.PROCESSES_WRITE, start_process_with_params),
    "StartFlowInstance": (Scope.PROCESSES_WRITE, start_flow_instance),
    "DescribeInstanceApproverList": (Scope.TASKS_READ, describe_instance_approver_list),
    "DescribeProcessInstanceDetails": (Scope.PROCESSES_READ, describe_process_instance_details),
    "DescribeProcessInstance": (Scope.PROCESSES_READ, describe_process_instance),
    "GetApprovalPageDetail": (Scope.PROCESSES_READ, get_approval_page_detail),
    "GetInstanceOperation": (Scope.PROCESSES_READ, get_instance_operation),
    "GetProcessCanvasInfo": (Scope.PROCESSES_READ, get_process_canvas_info),
    "GetPreElementList": (Scope.TASKS_READ, get_pre_element_list),
    "CompleteTask": (Scope.TASKS_WRITE, complete_task),
    "SubmitFlowTaskList": (Scope.TASKS_WRITE, submit_flow_task_list),
    "Revoke": (Scope.PROCESSES_WRITE, revoke),
    "RollBack": (Scope.TASKS_WRITE, roll_back),
    "AddCounterSignAssignee": (Scope.TASKS_WRITE, add_counter_sign_assignee),
    "PressTask": (Scope.PROCESSES_WRITE, press_task),
    "DescribeFlowTaskList": (Scope.TASKS_READ, describe_flow_task_list),
    "DescribeDeployedProcessList": (Scope.APPS_READ, describe_deployed_process_list),
}


@api_endpoint(None, data=True)
async def workflow_action(call: WedaCall) -> Any:
    """POST /weda/workflow/v1/{envType}/{Action}."""
    _, action = find_action(call, ACTIONS, "workflow")
    return await action(ActionCall(call, pascal(call.body)))


def routes() -> list[Route]:
    """The workflow service's route (one per action name, dispatched in the handler)."""
    return [Route("/weda/workflow/v1/{env}/{action}", workflow_action, methods=["POST"])]
