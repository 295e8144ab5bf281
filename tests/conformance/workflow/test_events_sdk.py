"""The outbox after each transition driven through the official SDK: ``bpms_instance_change`` and
``bpms_task_change`` payloads with the fields of dingtalk-platform.md §4.6 (start, finish agree/refuse, terminate,
redirect, or-sign cancel), written in the transaction of the change."""

from __future__ import annotations

from typing import Any

from tests.conformance.workflow.conftest import CORP, Flow

COMMON = {"EventType", "processInstanceId", "corpId", "processCode", "bizCategoryId", "title", "type", "staffId"}
INSTANCE_START = COMMON | {"createTime", "url"}
INSTANCE_END = INSTANCE_START | {"finishTime"}
TASK_START = COMMON | {"taskId", "createTime"}
TASK_FINISH = TASK_START | {"finishTime", "result", "remark"}


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None]]:
    """(event, type, staffId, result) of each event."""
    short = {"bpms_instance_change": "instance", "bpms_task_change": "task"}
    return [(short[e["EventType"]], e["type"], e["staffId"], e.get("result")) for e in events]


def check_common(flow: Flow, iid: str, events: list[dict[str, Any]], code: str, title: str) -> None:
    created = flow.sql("SELECT created_at FROM process_instance WHERE instance_id = :i", {"i": iid})[0]["created_at"]
    tasks = {
        int(r["id"]): r
        for r in flow.sql(
            "SELECT t.id, t.created_at, t.assignee_user_id FROM task t JOIN process_instance pi"
            " ON pi.id = t.process_instance_pk WHERE pi.instance_id = :i",
            {"i": iid},
        )
    }
    for e in events:
        assert (e["processInstanceId"], e["corpId"], e["processCode"], e["title"]) == (iid, CORP, code, title)
        assert e["bizCategoryId"] == ""
        if e["EventType"] == "bpms_instance_change":
            assert e["createTime"] == created and e["url"] == f"/console/approvals/{iid}"
            keys = {"start": INSTANCE_START, "finish": INSTANCE_END | {"result"}}.get(e["type"], INSTANCE_END)
            assert set(e) == keys, e
            if e["type"] == "start":
                assert e["staffId"] == flow.instance(iid).originator.user_id
        else:
            task = tasks[e["taskId"]]
            assert e["staffId"] == task["assignee_user_id"] and e["createTime"] == task["created_at"]
            assert set(e) == (TASK_FINISH if e["type"] == "finish" else TASK_START), e
        if "finishTime" in e:
            assert e["finishTime"] >= e["createTime"]


def test_start_agree_and_finish(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "事件同意"})
    flow.execute(iid, "wang", remark="一审通过")
    flow.execute(iid, "chen", remark="二审通过")
    events = flow.events(iid)
    assert summary(events) == [
        ("instance", "start", "li", None),
        ("task", "start", "wang", None),
        ("task", "finish", "wang", "agree"),
        ("task", "start", "chen", None),
        ("task", "finish", "chen", "agree"),
        ("instance", "finish", "li", "agree"),
    ]
    assert [e.get("remark") for e in events if e["type"] == "finish" and "taskId" in e] == ["一审通过", "二审通过"]
    check_common(flow, iid, events, "TPROC--FLOW-TWO", "李员工发起的两级审批")


def test_refusal(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "事件拒绝"})
    flow.execute(iid, "wang", "DISAGREE", "不行")
    events = flow.events(iid)
    assert summary(events)[2:] == [("task", "finish", "wang", "refuse"), ("instance", "finish", "li", "refuse")]
    assert events[2]["remark"] == "不行"
    check_common(flow, iid, events, "TPROC--FLOW-TWO", "李员工发起的两级审批")


def test_terminate_cancels_the_open_tasks(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "事件终止"})
    flow.call("terminate_instance", user="li", process_instance_id=iid)
    events = flow.events(iid)
    assert summary(events) == [
        ("instance", "start", "li", None),
        ("task", "start", "wang", None),
        ("task", "cancel", "wang", None),
        ("instance", "terminate", "li", None),  # no result on terminate
    ]
    check_common(flow, iid, events, "TPROC--FLOW-TWO", "李员工发起的两级审批")


def test_redirect_finishes_one_task_and_starts_another(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "事件转交"})
    flow.call(
        "redirect_task",
        user="wang",
        process_instance_id=iid,
        task_id=flow.task_of(iid, "wang"),
        now_action_executor_id="sun",
        remark="出差中",
    )
    events = flow.events(iid)
    assert summary(events)[2:] == [("task", "finish", "wang", "redirect"), ("task", "start", "sun", None)]
    assert events[2]["remark"] == "出差中" and events[3]["taskId"] == flow.task_of(iid, "sun")
    check_common(flow, iid, events, "TPROC--FLOW-TWO", "李员工发起的两级审批")


def test_or_sign_cancels_the_other_approvers_tasks(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-OR", {"textField_title": "事件或签"}, user="liu")
    tasks = {u: flow.task_of(iid, u) for u in ("wang", "chen", "zhao")}
    flow.execute(iid, "chen")
    events = flow.events(iid)
    assert summary(events) == [
        ("instance", "start", "liu", None),
        ("task", "start", "wang", None),
        ("task", "start", "chen", None),
        ("task", "start", "zhao", None),
        ("task", "finish", "chen", "agree"),
        ("task", "cancel", "wang", None),
        ("task", "cancel", "zhao", None),
        ("instance", "finish", "liu", "agree"),
    ]
    assert [e["taskId"] for e in events if e["type"] == "cancel"] == [tasks["wang"], tasks["zhao"]]
    check_common(flow, iid, events, "TPROC--FLOW-OR", "刘员工发起的或签单")


def test_return_to_the_submitter_and_resubmission(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "事件退回"})
    flow.call(
        "restart_instance",
        version=2,
        user="wang",
        form_uuid="FORM-FLOW-TWO",
        proc_instance_id=iid,
        task_id=str(flow.task_of(iid, "wang")),
        current_activity_id="node_one",
        target_activity_id="sid-restartevent",
    )
    flow.execute(iid, "li", remark="重新提交")
    events = flow.events(iid)
    assert summary(events)[2:] == [
        ("task", "finish", "wang", "return"),
        ("task", "start", "li", None),
        ("task", "finish", "li", "agree"),
        ("task", "start", "wang", None),
    ]
    check_common(flow, iid, events, "TPROC--FLOW-TWO", "李员工发起的两级审批")


def test_delete_ends_with_a_delete_event(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "事件删除"})
    flow.call("delete_instance", user="adm", process_instance_id=iid)
    events = flow.events(iid)
    assert summary(events)[2:] == [
        ("task", "cancel", "wang", None),
        ("instance", "terminate", "li", None),
        ("instance", "delete", "adm", None),
    ]
    assert {"finishTime", "url", "createTime"} <= set(events[-1])
