"""WeDa workflow actions over the approval engine: start, every CompleteTask button, roll back, add signers, urge,
revoke, the task lists, the views of an instance, errors that change nothing, and one approval through both
dialects."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.dialects.weda.conftest import OTHER_SECRET, READ_ONLY, Weda, credential_token
from zida.dialects.weda.workflow import ACTIONS

WF = "/weda/workflow/v1/prod"


def tag() -> str:
    return uuid.uuid4().hex[:10]


DONE = {
    "Status": True,
    "ToBeSubmittedFlowTaskFlag": False,
    "ToBeSubmittedFlowTaskInfo": [],
}  # CompleteTask's answer on a task


def flow(client: Weda, action: str, body: dict[str, Any] | None = None, env: str = "prod") -> Any:
    """An action that must succeed: its ``Data``."""
    reply = client.call("POST", f"/weda/workflow/v1/{env}/{action}", body or {})
    assert reply.status_code == 200, reply.text
    response = reply.json()["Response"]
    assert "Error" not in response, response
    assert response["RequestId"]
    return response["Data"]


def flow_error(client: Weda, action: str, body: dict[str, Any] | None = None, env: str = "prod") -> dict[str, str]:
    """An action that must fail the TencentCloud API way: ``Response.Error`` and no ``Data``."""
    reply = client.call("POST", f"/weda/workflow/v1/{env}/{action}", body or {})
    assert reply.status_code == 200, reply.text
    response = reply.json()["Response"]
    assert response["RequestId"] and "Data" not in response, response
    error: dict[str, str] = response["Error"]
    assert error["Code"] and error["Message"]
    return error


def as_user(user_id: str) -> dict[str, Any]:
    return {"ExtraUserInfo": {"UserId": user_id, "Source": 4}}


def start(client: Weda, days: int, reason: str, key: str = "leave_approval", **more: Any) -> str:
    body = {
        "ProcessKey": key,
        "TriggerType": 6,
        "StartParams": [
            {
                "name": "请假",
                "paramCode": "leave",
                "fieldType": "object",
                "fieldValueMap": {"reason": reason, "days": days},
            }
        ],
        **more,
    }
    data = flow(client, "StartProcessWithParams", body)
    instance_id: str = data["InstanceId"]
    return instance_id


def running(client: Weda, instance_id: str) -> list[dict[str, Any]]:
    approvers = flow(client, "DescribeInstanceApproverList", {"InstanceId": instance_id})["ApproverList"]
    return [a for a in approvers if a["TaskStatus"] == 1]


def test_start_and_approve_through_two_nodes(weda: Weda, zhangsan: Weda, lisi: Weda) -> None:
    reason = tag()
    instance_id = start(zhangsan, 5, reason)
    details = flow(weda, "DescribeProcessInstanceDetails", {"processInstanceId": instance_id})  # camelCase accepted
    assert details["ProcessKey"] == "leave_approval" and details["FlowCode"] == "TPROC--WEDA-LEAVE"
    assert details["ModelName"] == "leave" and details["FieldValueMap"]["reason"] == reason
    assert details["FieldValueMap"]["_id"] == instance_id and details["StartUserId"] == "wuser1"
    assert details["Status"] == "RUNNING" and details["IsCompleted"] is False
    assert details["CurrentNodes"] == [{"NodeId": "node_lead", "NodeName": "组长审批"}]

    approvers = flow(weda, "DescribeInstanceApproverList", {"InstanceId": instance_id, "NeedUserExtraInfo": True})
    [lead] = approvers["ApproverList"]
    assert lead["UserId"] == "wuser2" and lead["UserName"] == "李四" and lead["TaskStatus"] == 1
    assert lead["UserExtraInfo"]["Id"] == "wuser2" and lead["UserExtraInfo"]["MainDepartmentName"] == "财务部"

    todo = flow(lisi, "DescribeFlowTaskList", {"PageType": "TODO", "Keyword": reason})
    assert todo["Total"] == 1 and todo["List"][0]["TaskId"] == lead["TaskId"]
    assert todo["List"][0]["ProcessKey"] == "leave_approval" and todo["List"][0]["StartedBy"] == "张三"

    seen = flow(lisi, "DescribeProcessInstance", {"FlowTaskId": lead["TaskId"], "PageType": "TODO"})
    assert seen["CanApprove"] is True and seen["CurrentNodeId"] == "node_lead" and seen["TaskStatus"] == 1
    page = flow(lisi, "GetApprovalPageDetail", {"InstanceId": instance_id, "TaskId": lead["TaskId"]})
    assert page["Buttons"] == {"1": "同意", "2": "拒绝"} and page["OutEntityCodes"] == [
        {"EntityCode": "leave", "Type": 1}
    ]
    assert page["VariableInfos"]["ObjectMap"][0]["FieldValueMap"]["days"] == 5
    assert (
        flow(zhangsan, "GetApprovalPageDetail", {"InstanceId": instance_id, "TaskId": lead["TaskId"]})["Buttons"] == {}
    )

    # The lead agrees and changes a value on the way; days > 3 routes to the boss.
    variables = [{"Type": 1, "Value": {"entityCode": "leave", "fieldValueMap": {"days": 6}}}]
    done = flow(
        lisi,
        "CompleteTask",
        {
            "ButtonAction": 2,
            "InstanceId": instance_id,
            "TaskId": lead["TaskId"],
            "OperationComment": "好",
            "VariableInfos": variables,
        },
    )
    assert done["Status"] is True
    [boss] = running(weda, instance_id)
    assert boss["UserId"] == "wadmin" and boss["NodeName"] == "老板审批"
    # The boss's node, the last one drawn inside the route, is in progress (1) until he acts, not passed (2).
    waiting = flow(weda, "GetProcessCanvasInfo", {"InstanceId": instance_id})
    assert {n["Id"]: n["Status"] for n in waiting["Nodes"]} == {
        "sid-restartevent": 2,
        "node_lead": 2,
        "route_days": 2,
        "node_boss": 1,
        "node_cc": 0,
        "sid-endevent": 0,
    }
    assert {(e["Source"], e["Target"]): e["Status"] for e in waiting["Edges"]}[("node_boss", "node_cc")] == 0
    assert flow(lisi, "DescribeFlowTaskList", {"PageType": "DONE", "Keyword": reason})["Total"] == 1

    flow(
        weda,
        "CompleteTask",
        {"ButtonAction": 2, "InstanceId": instance_id, "TaskId": boss["TaskId"], **as_user("wadmin")},
    )
    details = flow(weda, "DescribeProcessInstanceDetails", {"ProcessInstanceId": instance_id})
    assert details["Status"] == "COMPLETED" and details["Result"] == "agree" and details["IsCompleted"] is True
    assert details["FieldValueMap"]["days"] == 6 and details["EndTime"] >= details["StartTime"]

    history = flow(weda, "GetInstanceOperation", {"InstanceId": instance_id})["ElementInfos"]
    actions = [(e["Id"], e["ContentInfo"]["Action"]) for e in history]
    assert actions[:3] == [("sid-restartevent", 1), ("node_lead", 2), ("node_boss", 2)]
    assert ("node_cc", 15) in actions and history[1]["ContentInfo"]["OperationComment"] == "好"
    assert history[1]["OperaName"] == ["李四"] and history[1]["Result"] == "true"

    canvas = flow(weda, "GetProcessCanvasInfo", {"InstanceId": instance_id})
    status = {n["Id"]: n["Status"] for n in canvas["Nodes"]}
    assert status == {
        "sid-restartevent": 2,
        "node_lead": 2,
        "route_days": 2,
        "node_boss": 2,
        "node_cc": 2,
        "sid-endevent": 2,
    }
    types = {n["Id"]: n["DataType"] for n in canvas["Nodes"]}
    assert types["sid-restartevent"] == 1 and types["node_lead"] == 17 and types["sid-endevent"] == 13
    edges = {(e["Source"], e["Target"]): e for e in canvas["Edges"]}
    assert ("route_days", "node_boss") in edges and ("route_days", "node_cc") in edges  # the empty default branch
    assert edges[("node_lead", "route_days")]["Status"] == 1 and edges[("node_boss", "node_cc")]["Status"] == 1

    created = flow(zhangsan, "DescribeFlowTaskList", {"PageType": "CREATE", "Keyword": reason})
    assert [i["InstanceId"] for i in created["List"]] == [instance_id] and created["List"][0]["Result"] == "agree"
    copies = flow(weda, "DescribeFlowTaskList", {"PageType": "CC", "Keyword": reason, **as_user("wadmin")})
    assert [i["InstanceId"] for i in copies["List"]] == [instance_id] and copies["List"][0]["CcTime"] > 0


def test_a_start_form_keeps_the_digits_of_an_integer_wider_than_64_bits(weda: Weda, zhangsan: Weda) -> None:
    # Python's json writes the literal exactly; WeDa's workflow reads the start form's values as its models do.
    wide = 123456789012345678901234567890
    instance_id = start(zhangsan, 2, wide)  # type: ignore[arg-type]  (a number where the reason's text goes)
    details = flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id})
    assert details["FieldValueMap"]["reason"] == str(wide)
    # An id written as a number is read as its digits, all of them: not a task id, and refused as such.
    error = flow_error(weda, "DescribeProcessInstance", {"FlowTaskId": wide, "PageType": "TODO"})
    assert error["Code"] == "InvalidParameter" and "123456789012345678901234567890" in error["Message"]


def test_reject_transfer_and_save_draft(weda: Weda, zhangsan: Weda, lisi: Weda) -> None:
    instance_id = start(zhangsan, 1, tag())
    [lead] = running(weda, instance_id)
    body = {"InstanceId": instance_id, "TaskId": lead["TaskId"]}

    # Save draft: the values change, the task stays open.
    draft = [{"Type": 1, "Value": {"entityCode": "leave", "fieldValueMap": {"reason": "草稿"}}}]
    saved = flow(lisi, "CompleteTask", {**body, "ButtonAction": 17, "VariableInfos": draft})
    assert saved == DONE  # every answer on a task has the same keys
    assert (
        flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id})["FieldValueMap"]["reason"] == "草稿"
    )
    assert running(weda, instance_id)[0]["TaskId"] == lead["TaskId"]
    assert flow_error(zhangsan, "CompleteTask", {**body, "ButtonAction": 17, "VariableInfos": draft})["Code"] == (
        "UnauthorizedOperation"
    )
    # Saving through a task that is not this instance's, or does not exist, changes nothing.
    other_instance = start(zhangsan, 1, tag())
    [other_lead] = running(weda, other_instance)
    bogus = [{"Type": 1, "Value": {"entityCode": "leave", "fieldValueMap": {"reason": "不该写入"}}}]
    for wrong_task in (other_lead["TaskId"], "99999999"):
        wrong = {"InstanceId": instance_id, "TaskId": wrong_task, "ButtonAction": 17, "VariableInfos": bogus}
        assert flow_error(lisi, "CompleteTask", wrong)["Code"] == "ResourceNotFound", wrong_task
    assert (
        flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id})["FieldValueMap"]["reason"] == "草稿"
    )

    # Transfer to the admin, who refuses; a refusal needs a comment.
    transferred = flow(
        lisi, "CompleteTask", {**body, "ButtonAction": 4, "TurnToUserId": "wadmin", "OperationComment": "请您审"}
    )
    assert transferred == DONE
    [moved] = running(weda, instance_id)
    assert moved["UserId"] == "wadmin"
    refuse = {"InstanceId": instance_id, "TaskId": moved["TaskId"], "ButtonAction": 3}
    assert flow_error(weda, "CompleteTask", refuse)["Code"] == "MissingParameter"
    assert running(weda, instance_id)[0]["TaskId"] == moved["TaskId"]  # nothing changed
    flow(weda, "CompleteTask", {**refuse, "OperationComment": "不批"})
    details = flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id})
    assert details["Status"] == "COMPLETED" and details["Result"] == "disagree"
    actions = [
        e["ContentInfo"]["Action"]
        for e in flow(weda, "GetInstanceOperation", {"InstanceId": instance_id})["ElementInfos"]
    ]
    assert actions[:3] == [1, 4, 3]


def test_roll_back_add_signers_urge_and_revoke(weda: Weda, zhangsan: Weda, lisi: Weda) -> None:
    instance_id = start(zhangsan, 5, tag())
    [lead] = running(weda, instance_id)
    assert flow(lisi, "GetPreElementList", {"InstanceId": instance_id, "NodeId": "node_lead"}) == [
        {"ElementId": "sid-restartevent", "ElementName": "发起", "LastNode": True, "ActTaskId": ""}
    ]
    flow(lisi, "CompleteTask", {"ButtonAction": 2, "InstanceId": instance_id, "TaskId": lead["TaskId"]})
    [boss] = running(weda, instance_id)
    targets = flow(weda, "GetPreElementList", {"InstanceId": instance_id, "TaskId": boss["TaskId"]})
    assert [(t["ElementId"], t["LastNode"]) for t in targets] == [("sid-restartevent", False), ("node_lead", True)]
    assert targets[1]["ActTaskId"] == lead["TaskId"]

    # The boss sends it back to the lead, who gets a new task.
    flow(
        weda,
        "RollBack",
        {"InstanceId": instance_id, "TaskId": boss["TaskId"], "TargetNodeId": "node_lead", "SourceType": 1},
    )
    [again] = running(weda, instance_id)
    assert again["NodeId"] == "node_lead" and again["TaskId"] != lead["TaskId"]

    # The lead adds zhangsan as a signer before him; his own task waits (TaskStatus 4).
    flow(
        lisi,
        "AddCounterSignAssignee",
        {"InstanceId": instance_id, "TaskId": again["TaskId"], "AssigneeIds": ["wadmin"]},
    )
    statuses = {
        (a["UserId"], a["TaskStatus"])
        for a in flow(weda, "DescribeInstanceApproverList", {"InstanceId": instance_id})["ApproverList"]
    }
    assert ("wuser2", 4) in statuses and ("wadmin", 1) in statuses

    assert flow(zhangsan, "PressTask", {"InstanceId": instance_id}) == {"Status": True}
    assert flow_error(lisi, "PressTask", {"InstanceId": instance_id})["Code"] == "UnauthorizedOperation"

    # An approver acted: the originator can no longer revoke; a fresh instance he can.
    assert flow_error(zhangsan, "Revoke", {"InstanceId": instance_id, "RevokeType": 2})["Code"] == "FailedOperation"
    assert flow_error(lisi, "Revoke", {"InstanceId": instance_id, "RevokeType": 1})["Code"] == "UnsupportedOperation"
    fresh = start(zhangsan, 1, tag())
    flow(zhangsan, "Revoke", {"InstanceId": fresh, "RevokeType": 2, "FlowCode": "TPROC--WEDA-LEAVE"})
    assert flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": fresh})["Status"] == "TERMINATED"


def test_processes_and_acting_users(weda: Weda, zhangsan: Weda) -> None:
    processes = flow(weda, "DescribeDeployedProcessList", {"PageSize": 100})
    by_key = {p["ProcessKey"]: p for p in processes["ProcessList"]}
    assert (
        by_key["leave_approval"]["FlowCode"] == "TPROC--WEDA-LEAVE" and by_key["leave_approval"]["ModelName"] == "leave"
    )
    assert by_key["TPROC--WEDA-TRIP"]["ProcessName"] == "出差审批"  # no processKey: the process code
    assert processes["Total"] == len(by_key) == 2

    # Without ExtraUserInfo a client-credentials call acts as the app's first admin; with it, as that user.
    as_admin = start(
        weda, 1, tag(), key="TPROC--WEDA-TRIP", StartParams=[{"paramCode": "trip", "fieldValueMap": {"city": "深圳"}}]
    )
    assert flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": as_admin})["StartUserId"] == "wadmin"
    as_lisi = start(weda, 2, tag(), **as_user("wuser2"))
    assert flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": as_lisi})["StartUserId"] == "wuser2"
    # A signed-in user always acts as himself; he sees only what the access policy lets him.
    assert (
        flow_error(zhangsan, "DescribeProcessInstanceDetails", {"InstanceId": as_lisi})["Code"]
        == "UnauthorizedOperation"
    )
    assert flow_error(weda, "DescribeFlowTaskList", {"PageType": "TODO"})["Code"] == "MissingParameter"


def test_bad_input_is_refused_in_the_api_format_and_changes_nothing(weda: Weda, weda_base: str, zhangsan: Weda) -> None:
    reason = tag()
    good = {
        "ProcessKey": "leave_approval",
        "StartParams": [{"paramCode": "leave", "fieldValueMap": {"reason": reason, "days": 1}}],
    }
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("NoSuchAction", {}, "InvalidAction"),
        ("StartFlowInstance", {"FlowId": "x"}, "UnsupportedOperation"),
        ("StartProcessWithParams", {}, "MissingParameter"),
        ("StartProcessWithParams", {**good, "ProcessKey": "nope"}, "ResourceNotFound"),
        ("StartProcessWithParams", {**good, "ProcessKey": 12.5}, "InvalidParameter"),
        ("StartProcessWithParams", {**good, "StartParams": {"reason": 1}}, "InvalidParameter"),
        (
            "StartProcessWithParams",
            {**good, "StartParams": [{"paramCode": "trip", "fieldValueMap": {}}]},
            "InvalidParameter",
        ),
        ("StartProcessWithParams", {**good, "StartParams": [{"fieldValueMap": {"nope": 1}}]}, "InvalidParameter"),
        ("StartProcessWithParams", {**good, "StartParams": [{"fieldValueMap": {"days": "many"}}]}, "InvalidParameter"),
        (  # WeDa's record made first: Zida's start makes the record, so an id cannot be bound (it was dropped)
            "StartProcessWithParams",
            {**good, "StartParams": [{"fieldValueMap": {"_id": "FINST-DOES-NOT-EXIST", "reason": reason}}]},
            "InvalidParameter",
        ),
        ("StartProcessWithParams", {**good, "ExtraUserInfo": {"UserId": "ghost"}}, "ResourceNotFound"),
        ("StartProcessWithParams", {**good, "ExtraUserInfo": "wuser1"}, "InvalidParameter"),
        ("StartProcessWithParams", {**good, "TriggerType": "six"}, "InvalidParameter"),
        ("StartProcessWithParams", {**good, "CcUserIds": ["wadmin"]}, "UnsupportedOperation"),  # not dropped
        ("DescribeProcessInstanceDetails", {"InstanceId": "PROC-nope"}, "ResourceNotFound"),
        ("DescribeProcessInstance", {"FlowTaskId": "abc"}, "InvalidParameter"),
        ("DescribeProcessInstance", {"FlowTaskId": "1", "PageType": "NOPE"}, "InvalidParameter"),
        ("CompleteTask", {"ButtonAction": 9, "TaskId": "1"}, "InvalidParameter"),
        ("CompleteTask", {"ButtonAction": 2}, "MissingParameter"),
        ("CompleteTask", {"ButtonAction": 2, "TaskId": "999999999"}, "ResourceNotFound"),
        ("CompleteTask", {"ButtonAction": 2, "TaskId": "1", "CcUserIds": "wadmin"}, "UnsupportedOperation"),
        ("SubmitFlowTaskList", {"FlowTaskIds": "1"}, "InvalidParameter"),
        ("AddCounterSignAssignee", {"InstanceId": "x", "TaskId": "1", "AssigneeIds": []}, "InvalidParameter"),
        ("DescribeFlowTaskList", {"PageType": "TODO", "PageSize": 500, **as_user("wuser1")}, "InvalidParameter"),
        ("DescribeFlowTaskList", {"PageType": "LATER", **as_user("wuser1")}, "InvalidParameter"),
        ("DescribeDeployedProcessList", {"PageNo": 0}, "InvalidParameter"),
    ]
    for action, body, code in cases:
        assert flow_error(weda, action, body)["Code"] == code, (action, body)
    assert flow_error(weda, "StartProcessWithParams", good, env="staging")["Code"] == "InvalidParameterValue.Env"
    assert flow(zhangsan, "DescribeFlowTaskList", {"PageType": "CREATE", "Keyword": reason})["Total"] == 0

    raw = weda.call(
        "POST", f"{WF}/StartProcessWithParams", headers={"content-type": "application/json"}, content=b"{nope"
    )
    assert raw.status_code == 200 and raw.json()["Response"]["Error"]["Code"]
    assert weda.call("GET", f"{WF}/DescribeInstanceApproverList").status_code == 200  # method refused in the format
    assert weda.call("GET", f"{WF}/DescribeInstanceApproverList").json()["Response"]["Error"]["Code"]

    read_only = Weda(weda_base, credential_token(weda_base, READ_ONLY))
    assert flow_error(read_only, "StartProcessWithParams", good)["Code"] == "UnauthorizedOperation"
    anonymous = httpx.post(f"{weda_base}{WF}/DescribeInstanceApproverList", json={"InstanceId": "x"})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "MISSING_CREDENTIALS"

    # Another environment's credential does not see this one's instances or processes.
    instance_id = start(weda, 1, tag())
    other = Weda(weda_base, credential_token(weda_base, OTHER_SECRET))
    assert flow_error(other, "DescribeInstanceApproverList", {"InstanceId": instance_id})["Code"] == "ResourceNotFound"
    assert flow_error(other, "StartProcessWithParams", good)["Code"] == "ResourceNotFound"


def test_an_approval_started_through_weda_is_finished_through_yida(weda: Weda, weda_base: str, zhangsan: Weda) -> None:
    instance_id = start(zhangsan, 1, tag())
    [lead] = running(weda, instance_id)
    token = httpx.post(
        f"{weda_base}/v1.0/oauth2/accessToken",
        json={"appKey": "weda-dingtalk-key", "appSecret": "weda-dingtalk-secret"},
    ).json()["accessToken"]
    reply = httpx.post(
        f"{weda_base}/v1.0/yida/tasks/execute",
        json={
            "appType": "APP_WEDA_MAIN",
            "systemToken": "ST-WEDA-MAIN-APP",
            "userId": "wuser2",
            "processInstanceId": instance_id,
            "taskId": int(lead["TaskId"]),
            "outResult": "AGREE",
            "remark": "钉钉上批",
        },
        headers={"x-acs-dingtalk-access-token": token},
    )
    assert reply.status_code == 200, reply.text
    details = flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id})
    assert details["Status"] == "COMPLETED" and details["Result"] == "agree"
    history = flow(weda, "GetInstanceOperation", {"InstanceId": instance_id})["ElementInfos"]
    assert history[1]["ContentInfo"]["OperationComment"] == "钉钉上批"


def test_auth_matrix_of_every_action(weda: Weda, weda_base: str) -> None:
    """No token: the gateway's 401; a credential without the action's scope: UnauthorizedOperation before the
    body is read; a made-up token: INVALID_ACCESS_TOKEN."""
    read_only = Weda(weda_base, credential_token(weda_base, READ_ONLY))  # records.read only
    forged = Weda(weda_base, "not-a-token")
    for action in ACTIONS:
        anonymous = httpx.post(f"{weda_base}{WF}/{action}", json={})
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "MISSING_CREDENTIALS", action
        bad = forged.call("POST", f"{WF}/{action}", {})
        assert bad.status_code == 401 and bad.json()["code"] == "INVALID_ACCESS_TOKEN", action
        assert flow_error(read_only, action, {})["Code"] == "UnauthorizedOperation", action


def test_drafts_are_saved_changed_listed_and_submitted(weda: Weda, zhangsan: Weda, lisi: Weda) -> None:
    reason = tag()

    def variables(**values: Any) -> list[dict[str, Any]]:
        return [{"Type": 1, "Value": {"entityCode": "leave", "fieldValueMap": values}}]

    new = {"ButtonAction": 17, "ProcessKey": "leave_approval", "VariableInfos": variables(reason=reason)}
    draft_id = flow(zhangsan, "CompleteTask", new)["InstanceId"]
    assert draft_id.startswith("DRAFT-")
    flow(
        zhangsan, "CompleteTask", {"ButtonAction": 17, "InstanceId": draft_id, "VariableInfos": variables(days="many")}
    )
    [mine] = [
        d for d in flow(zhangsan, "DescribeFlowTaskList", {"PageType": "DRAFT"})["List"] if d["InstanceId"] == draft_id
    ]
    assert mine["FieldValueMap"] == {"reason": reason, "days": "many"} and mine["ProcessKey"] == "leave_approval"
    assert mine["StartUserId"] == "wuser1" and mine["UpdateTime"] >= mine["CreateTime"]
    assert all(d["InstanceId"] != draft_id for d in flow(lisi, "DescribeFlowTaskList", {"PageType": "DRAFT"})["List"])
    assert flow_error(lisi, "CompleteTask", {"ButtonAction": 1, "InstanceId": draft_id})["Code"] == "ResourceNotFound"

    # A draft may be incomplete or wrong; submitting it checks the form's rules and keeps it when they fail.
    assert (
        flow_error(zhangsan, "CompleteTask", {"ButtonAction": 1, "InstanceId": draft_id})["Code"] == "InvalidParameter"
    )
    assert any(
        d["InstanceId"] == draft_id for d in flow(zhangsan, "DescribeFlowTaskList", {"PageType": "DRAFT"})["List"]
    )
    started = flow(
        zhangsan, "CompleteTask", {"ButtonAction": 1, "InstanceId": draft_id, "VariableInfos": variables(days=2)}
    )
    instance_id = started["InstanceId"]
    details = flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": instance_id})
    assert details["FieldValueMap"]["reason"] == reason and details["FieldValueMap"]["days"] == 2
    assert details["StartUserId"] == "wuser1" and details["Status"] == "RUNNING"
    assert all(
        d["InstanceId"] != draft_id for d in flow(zhangsan, "DescribeFlowTaskList", {"PageType": "DRAFT"})["List"]
    )
    assert (
        flow_error(zhangsan, "CompleteTask", {"ButtonAction": 1, "InstanceId": draft_id})["Code"] == "ResourceNotFound"
    )

    # The start form submitted at once; bad drafts are refused and change nothing.
    direct = {"ButtonAction": 1, "ProcessKey": "leave_approval", "VariableInfos": variables(reason=f"{reason}-direct")}
    direct_id = flow(zhangsan, "CompleteTask", direct)["InstanceId"]
    assert (
        flow(weda, "DescribeProcessInstanceDetails", {"InstanceId": direct_id})["FieldValueMap"]["reason"]
        == f"{reason}-direct"
    )
    for body, code in (
        ({"ButtonAction": 17, "ProcessKey": "leave_approval", "VariableInfos": variables(nope=1)}, "InvalidParameter"),
        ({"ButtonAction": 17, "ProcessKey": "nosuch"}, "ResourceNotFound"),
        ({"ButtonAction": 17, "InstanceId": instance_id}, "MissingParameter"),  # an instance: its task is needed
        ({"ButtonAction": 2, "InstanceId": draft_id}, "MissingParameter"),
        ({"ButtonAction": 17, "InstanceId": "DRAFT-nosuch"}, "ResourceNotFound"),
    ):
        assert flow_error(zhangsan, "CompleteTask", body)["Code"] == code, body
