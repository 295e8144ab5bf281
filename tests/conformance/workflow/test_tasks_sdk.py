"""Task routes through the official SDK: running-task lists, batch and platform execution, redirect (also by an
admin), the org-level inboxes with their md5 token, the app-level CC list, and v2 restartInstance."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from tests.conformance.sdk import expect_error
from tests.conformance.workflow.conftest import CORP, TASK_API_CODE, Flow
from zida.clock import now_ms

BAD_ORG_TOKEN = ("invalidState.authorization.invalidAuthorizationInformation", 400)


def org_token(user: str, corp: str = CORP, code: str = TASK_API_CODE) -> str:
    """``upper(md5(corpId + userId + taskApiCode))``."""
    return hashlib.md5((corp + user + code).encode()).hexdigest().upper()


def marker() -> str:
    """A unique ASCII word to find this test's instances by keyword."""
    return "mk" + secrets.token_hex(5)


def history(flow: Flow, iid: str) -> list[tuple[str, str, str]]:
    """(operateType, activityId, operator) of the HISTORY rows of getOperationRecords."""
    records = flow.call("get_operation_records", process_instance_id=iid).body.result
    return [(r.operate_type, r.activity_id, r.operator_user_id) for r in records if r.type == "HISTORY"]


# ---------------------------------------------------------------------------------- running task lists


def test_running_task_list_of_many_instances(flow: Flow) -> None:
    a = flow.start("FORM-FLOW-OR", {"textField_title": "批量待办A"}, user="liu")
    b = flow.start("FORM-FLOW-TWO", {"textField_title": "批量待办B"})
    body = flow.call("get_running_task_list", process_instance_id_list=f"{a}, {b},FINST-NOPE", user_corp_id=CORP).body
    got = sorted((r.process_instance_id, r.actual_action_executor_id) for r in body.result)
    assert got == sorted([(a, "chen"), (a, "wang"), (a, "zhao"), (b, "wang")])
    one = next(r for r in body.result if r.process_instance_id == b)
    assert one.task_id == str(flow.task_of(b, "wang")) and one.status == "RUNNING"
    assert one.title == "李员工发起的两级审批" and one.originator_id == "li" and one.originator_name == "李员工"
    assert one.task_type == "COMMON_ALL_AT_ONCE" and one.out_result == "" and one.create_time_gmt.endswith("Z")
    # A bystander sees no task of instances they take no part in; an approver sees those they are in.
    hidden = flow.call("get_running_task_list", user="zhou", process_instance_id_list=f"{a},{b}").body
    assert hidden.result == []
    mine = flow.call("get_running_task_list", user="zhao", process_instance_id_list=f"{a},{b}").body
    assert {r.process_instance_id for r in mine.result} == {a}
    as_json = flow.call("get_running_task_list", user="zhao", process_instance_id_list=json.dumps([a, b])).body
    assert {r.process_instance_id for r in as_json.result} == {a}  # a JSON array is read too
    for empty in ("", "[]", " , "):
        expect_error(
            lambda empty=empty: flow.call("get_running_task_list", process_instance_id_list=empty),
            "invalidParameter.parameter.parameterIsEmpty",
            400,
        )


# ------------------------------------------------------------------------------- batch and platform


def test_execute_batch_task_reports_each_item(flow: Flow) -> None:
    ids = [flow.start("FORM-FLOW-TWO", {"textField_title": f"批量{n}"}) for n in range(3)]
    items = [{"taskId": str(flow.task_of(i, "wang")), "formInstId": i} for i in ids]
    items.append({"taskId": str(flow.task_of(ids[0], "wang")), "formInstId": ids[0]})  # already done by then
    body = flow.call(
        "execute_batch_task",
        user="wang",
        out_result="agree",
        remark="批量同意",
        task_information_list=json.dumps(items),
    ).body
    assert (body.total, body.success_number, body.fail_number) == (4, 3, 1)
    for iid in ids:
        assert flow.assignees(iid) == ["chen"]
    refused = flow.call(
        "execute_batch_task",
        user="chen",
        out_result="disagree",
        task_information_list=json.dumps([{"taskId": flow.task_of(ids[2], "chen"), "formInstId": ids[2]}]),
    ).body
    assert (refused.total, refused.success_number, refused.fail_number) == (1, 1, 0)
    assert flow.instance(ids[2]).approved_result == "disagree"
    # Someone else's task fails alone; bad lists are refused as a whole.
    other = flow.call(
        "execute_batch_task",
        user="zhou",
        out_result="agree",
        task_information_list=json.dumps([{"taskId": flow.task_of(ids[0], "chen"), "formInstId": ids[0]}]),
    ).body
    assert (other.success_number, other.fail_number) == (0, 1)
    for bad in ("[]", "{}", '[{"taskId": "x", "formInstId": "FINST-1"}]', '[{"taskId": 1}]'):
        expect_error(
            lambda b=bad: flow.call("execute_batch_task", out_result="agree", task_information_list=b),  # type: ignore[misc]
            "invalidParameter.parameter.error" if bad != "[]" else "invalidParameter.parameter.parameterIsEmpty",
            400,
        )
    expect_error(
        lambda: flow.call("execute_batch_task", out_result="maybe", task_information_list="[]"),
        "invalidParameter.task.unsupportedOutResultType",
        400,
    )


def test_execute_platform_task_is_an_admin_acting_for_the_one_assignee(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "平台任务"})
    expect_error(
        lambda: flow.call("execute_platform_task", user="wang", process_instance_id=iid, out_result="agree", remark=""),
        "noPermission.permission.deny",
        400,
    )
    flow.call(
        "execute_platform_task",
        user="adm",
        process_instance_id=iid,
        out_result="agree",
        remark="平台同意",
        form_data_json=json.dumps({"numberField_amount": 7}),
    )
    assert flow.assignees(iid) == ["chen"] and flow.instance(iid).data["numberField_amount"] == 7
    records = flow.call("get_operation_records", process_instance_id=iid).body.result
    agreed = next(r for r in records if r.activity_id == "node_one")
    assert (agreed.operate_type, agreed.operator_user_id, agreed.remark) == ("EXECUTE_TASK_AGENT", "adm", "平台同意")
    flow.call("execute_platform_task", user="adm", process_instance_id=iid, out_result="disagree", remark="")
    assert flow.instance(iid).approved_result == "disagree"
    several = flow.start("FORM-FLOW-OR", {"textField_title": "多个任务"}, user="liu")
    expect_error(
        lambda: flow.call(
            "execute_platform_task", user="adm", process_instance_id=several, out_result="agree", remark=""
        ),
        "invalidState.process.expectOnlyOneTask",
        400,
    )
    expect_error(
        lambda: flow.call("execute_platform_task", user="adm", process_instance_id=iid, out_result="agree", remark=""),
        "invalidState.instance.instanceStatusHasChanged",
        400,
    )


# ------------------------------------------------------------------------------------------- redirect


def test_redirect_by_the_assignee_and_by_a_manager(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "转交"})
    wang = flow.task_of(iid, "wang")

    def redirect(user: str, task: int, to: str, **extra: Any) -> Any:
        return flow.call(
            "redirect_task",
            user=user,
            process_instance_id=iid,
            task_id=task,
            now_action_executor_id=to,
            remark="出差",
            **extra,
        )

    expect_error(lambda: redirect("zhou", wang, "sun"), "failure.task.failedToPerformApproval", 400)
    expect_error(lambda: redirect("wang", wang, "ghost"), "failure.user.userNotExist", 400)
    expect_error(lambda: redirect("li", wang, "zhou", by_manager="y"), "noPermission.permission.deny", 400)
    expect_error(lambda: redirect("wang", wang, "sun", by_manager="maybe"), "invalidParameter.parameter.error", 400)
    redirect("wang", wang, "sun", by_manager="n")
    assert flow.assignees(iid) == ["sun"]
    sun = flow.task_of(iid, "sun")
    redirect("adm", sun, "zhou", by_manager="y")  # an app admin moves someone else's task
    assert flow.assignees(iid) == ["zhou"]
    assert history(flow, iid)[1:] == [("REDIRECT_TASK", "node_one", "wang"), ("REDIRECT_TASK", "node_one", "adm")]
    expect_error(lambda: redirect("wang", wang, "chen"), "noPermission.process.onlyRunningTasksCanBeRedirected", 400)
    flow.execute(iid, "zhou")
    assert flow.assignees(iid) == ["chen"]
    done = {t.actioner_id: t.status for t in flow.call("get_process_definition", iid).body.tasks}
    assert done == {"wang": "COMPLETED", "sun": "COMPLETED", "zhou": "COMPLETED", "chen": "RUNNING"}


def test_redirect_in_sequential_mode_cannot_give_a_later_approver_two_turns(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-SEQ", {"textField_title": "依次转交"})
    err = expect_error(
        lambda: flow.call(
            "redirect_task",
            user="wang",
            process_instance_id=iid,
            task_id=flow.task_of(iid, "wang"),
            now_action_executor_id="chen",
            remark="",
        ),
        "invalidState.data.conflict",
        400,
    )
    assert "chen already has a turn at node node_seq" in err.message
    assert flow.assignees(iid) == ["wang"]


def test_errors_name_the_public_task_id(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "错误信息"})
    task = flow.task_of(iid, "wang")
    err = expect_error(
        lambda: flow.call(
            "execute_task", user="chen", process_instance_id=iid, task_id=task, out_result="AGREE", remark=""
        ),
        "failure.task.failedToPerformApproval",
        400,
    )
    assert f"task {task} is assigned to wang" in err.message


# --------------------------------------------------------------------------------------- org level


def org_call(flow: Flow, api: str, *path: str, user: str, **fields: Any) -> Any:
    """An org-level route: no appType/systemToken; corpId + the user's md5 token."""
    token = fields.pop("org_token", org_token(user))
    return flow.call(api, *path, user=None, app=None, org_token=token, **fields)


def test_my_corp_submissions(flow: Flow) -> None:
    mark = marker()
    first = flow.start("FORM-FLOW-TWO", {"textField_title": mark})
    second = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 1, "textField_reason": mark})
    flow.execute(second, "chen")
    body = org_call(flow, "get_me_corp_submission", "li", user="li", corp_id=CORP, keyword=mark).body
    assert body.total_count == 2 and body.page_number == 1
    assert [d.process_instance_id for d in body.data] == [second, first]  # newest first
    done, running = body.data
    assert (done.process_instance_status, done.process_approved_result) == ("COMPLETED", "agree")
    assert done.process_instance_status_text == "已完成" and done.process_approved_result_text == "同意"
    assert (running.process_instance_status, running.actioner_id) == ("RUNNING", ["wang"])
    assert running.actioner[0].name == "王经理" and running.actioner_name == ["王经理"]
    assert running.current_activity_instances[0].activity_id == "node_one"
    assert running.form_uuid == "FORM-FLOW-TWO" and running.app_type == "APP_FLOW1"
    assert running.process_name == "两级审批" and running.originator_display_name == "李员工"
    assert running.data_map["textField_title"] == mark and running.data_type == "process"
    only_leave = org_call(
        flow,
        "get_me_corp_submission",
        "li",
        user="li",
        corp_id=CORP,
        keyword=mark,
        process_codes=json.dumps(["TPROC--FLOW-LEAVE"]),
        app_types="APP_FLOW1",
    ).body
    assert [d.process_instance_id for d in only_leave.data] == [second]
    later = org_call(
        flow, "get_me_corp_submission", "li", user="li", corp_id=CORP, keyword=mark, create_from_time_gmt=now_ms()
    ).body
    assert later.total_count == 0
    paged = org_call(flow, "get_me_corp_submission", "li", user="li", corp_id=CORP, keyword=mark, page_size=1).body
    assert paged.total_count == 2 and len(paged.data) == 1
    # The token belongs to one user of one corp.
    expect_error(
        lambda: org_call(flow, "get_me_corp_submission", "li", user="li", corp_id=CORP, org_token=org_token("wang")),
        *BAD_ORG_TOKEN,
    )
    expect_error(
        lambda: org_call(flow, "get_me_corp_submission", "li", user="li", corp_id=CORP, org_token="0" * 32),
        *BAD_ORG_TOKEN,
    )
    expect_error(
        lambda: org_call(
            flow, "get_me_corp_submission", "li", user="li", corp_id="corpA", org_token=org_token("li", "corpA")
        ),
        *BAD_ORG_TOKEN,
    )


def test_corp_tasks_and_accomplished_tasks(flow: Flow) -> None:
    mark = marker()
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": mark})
    todo = org_call(flow, "get_corp_tasks", user="wang", corp_id=CORP, user_id="wang", keyword=mark).body
    assert todo.total_count == 1
    (item,) = todo.data
    assert (item.process_instance_id, item.task_id, item.status) == (iid, str(flow.task_of(iid, "wang")), "RUNNING")
    assert item.actual_actioner_id == "wang" and item.originator_nick_name_en == "Li" and item.app_type == "APP_FLOW1"
    assert item.out_result == "" and item.finish_time_gmt == ""
    other = org_call(
        flow,
        "get_corp_tasks",
        user="wang",
        corp_id=CORP,
        user_id="wang",
        keyword=mark,
        process_codes=json.dumps(["TPROC--FLOW-OR"]),
    ).body
    assert other.total_count == 0
    flow.execute(iid, "wang", remark="完成")
    assert org_call(flow, "get_corp_tasks", user="wang", corp_id=CORP, user_id="wang", keyword=mark).body.data == []
    done = org_call(flow, "get_corp_accomplishment_tasks", CORP, "wang", user="wang", keyword=mark).body
    assert done.total_count == 1
    (finished,) = done.data
    assert (finished.process_instance_id, finished.status, finished.out_result) == (iid, "COMPLETED", "AGREE")
    assert finished.out_result_name == "同意" and finished.finish_time_gmt.endswith("Z")
    assert finished.originator_nick_name_in_english == "Li"
    # chen's turn is a to-do of chen now, not of wang.
    assert org_call(flow, "get_corp_tasks", user="chen", corp_id=CORP, user_id="chen", keyword=mark).body.total_count
    expect_error(
        lambda: org_call(
            flow, "get_corp_tasks", user="wang", corp_id=CORP, user_id="wang", org_token=org_token("chen")
        ),
        *BAD_ORG_TOKEN,
    )
    expect_error(
        lambda: org_call(
            flow, "get_corp_accomplishment_tasks", "corpA", "wang", user="wang", org_token=org_token("wang", "corpA")
        ),
        *BAD_ORG_TOKEN,
    )
    expect_error(
        lambda: org_call(flow, "get_corp_tasks", user="ghost", corp_id=CORP, user_id="ghost"),
        "failure.user.userNotExist",
        400,
    )
    expect_error(
        lambda: org_call(flow, "get_corp_tasks", user="wang", corp_id=CORP, user_id="wang", page_size=101),
        "invalidParameter.parameter.error",
        400,
    )


def test_notifications_sent_to_me_and_app_level_copies(flow: Flow) -> None:
    mark = marker()
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 1, "textField_reason": mark})
    assert org_call(flow, "get_notify_me", "sun", user="sun", corp_id=CORP, keyword=mark).body.total_count == 0
    flow.execute(iid, "chen")  # the CC node is passed: sun is notified
    notes = org_call(flow, "get_notify_me", "sun", user="sun", corp_id=CORP, keyword=mark).body
    assert notes.total_count == 1
    (note,) = notes.data
    assert (note.form_instance_id, note.activity_id, note.inst_status) == (iid, "node_cc", "COMPLETED")
    assert note.corp_id == CORP and note.creator_user_id == "li" and note.process_code == "TPROC--FLOW-LEAVE"
    filtered = org_call(
        flow,
        "get_notify_me",
        "sun",
        user="sun",
        corp_id=CORP,
        keyword=mark,
        instance_create_to_time_gmt=1,
    ).body
    assert filtered.total_count == 0
    expect_error(
        lambda: org_call(flow, "get_notify_me", "sun", user="sun", corp_id=CORP, org_token=org_token("li")),
        *BAD_ORG_TOKEN,
    )
    copies = flow.call("get_task_copies", user="sun", keyword=mark).body
    assert copies.total_count == 1
    (copy,) = copies.data
    assert (copy.process_instance_id, copy.carbon_activity_id, copy.process_instance_status) == (
        iid,
        "node_cc",
        "COMPLETED",
    )
    assert copy.action_executor_id == [] and copy.originator_display_name == "李员工"
    assert copy.data_map["textField_reason"] == mark and copy.process_name == "请假审批"
    assert flow.call("get_task_copies", user="li", keyword=mark).body.total_count == 0


# --------------------------------------------------------------------------------- v2 restartInstance


def restart(flow: Flow, iid: str, user: str, task: int, current: str, target: str, **extra: Any) -> Any:
    return flow.call(
        "restart_instance",
        version=2,
        user=user,
        form_uuid="FORM-FLOW-TWO",
        proc_instance_id=iid,
        task_id=str(task),
        current_activity_id=current,
        target_activity_id=target,
        **extra,
    )


def test_restart_instance_returns_to_an_earlier_node(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "退回"})
    flow.execute(iid, "wang")
    chen = flow.task_of(iid, "chen")
    expect_error(
        lambda: restart(flow, iid, "chen", chen, "node_one", "node_one"), "invalidParameter.parameter.error", 400
    )
    expect_error(
        lambda: restart(flow, iid, "wang", chen, "node_two", "node_one"),
        "noPermission.process.onlyCurrentApproverCanReturnProcessInstance",
        400,
    )
    expect_error(
        lambda: restart(flow, iid, "chen", chen, "node_two", "node_nope"), "invalidParameter.parameter.error", 400
    )
    restart(flow, iid, "chen", chen, "node_two", "node_one", remark="金额不对")
    assert flow.assignees(iid) == ["wang"]
    records = flow.call("get_operation_records", process_instance_id=iid).body.result
    back = next(r for r in records if r.operate_type == "REDIRECT_PROCESS")
    assert (back.operator_user_id, back.remark, back.action_exit) == ("chen", "金额不对", "return")
    flow.execute(iid, "wang")
    flow.execute(iid, "chen")
    assert flow.instance(iid).approved_result == "agree"


def test_restart_instance_to_the_submitter_lets_the_originator_resubmit(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "退回发起人", "numberField_amount": 100})
    flow.execute(iid, "wang")
    chen = flow.task_of(iid, "chen")
    restart(flow, iid, "chen", chen, "node_two", "sid-restartevent", remark="请补充金额")
    body = flow.instance(iid)
    assert body.instance_status == "RUNNING" and [p.user_id for p in body.action_executor] == ["li"]
    (task,) = flow.running(iid)
    assert (task.activity_id, task.actual_actioner_id) == ("sid-restartevent", "li")
    todo = org_call(flow, "get_corp_tasks", user="li", corp_id=CORP, user_id="li", keyword="退回发起人").body
    assert [t.process_instance_id for t in todo.data] == [iid]
    # Nobody but the originator resubmits; the originator may change the values meanwhile.
    expect_error(
        lambda: flow.call(
            "execute_task",
            user="wang",
            process_instance_id=iid,
            task_id=int(task.task_id),
            out_result="AGREE",
            remark="",
        ),
        "failure.task.failedToPerformApproval",
        400,
    )
    flow.call("update_instance", user="li", process_instance_id=iid, update_form_data_json='{"numberField_amount": 90}')
    flow.execute(iid, "li", remark="已补充", form_data_json=json.dumps({"textField_title": "已补充"}))
    assert flow.assignees(iid) == ["wang"]  # the flow restarts from its first node
    data = flow.instance(iid).data
    assert data["numberField_amount"] == 90 and data["textField_title"] == "已补充"
    assert [h[0] for h in history(flow, iid)] == [
        "NEW_PROCESS",
        "EXECUTE_TASK_NORMAL",
        "REDIRECT_PROCESS",
        "RESUBMIT_PROCESS",
    ]
    inside = flow.admin("GET", f"/admin/v1/process-instances/{iid}").json()
    back = next(h for h in inside["history"] if h["kind"] == "return")
    assert (back["actor"], back["targetNodeId"], back["remark"]) == ("chen", "sid-restartevent", "请补充金额")
    flow.execute(iid, "wang")
    flow.execute(iid, "chen")
    assert flow.instance(iid).approved_result == "agree"


def test_the_originator_may_give_up_instead_of_resubmitting(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "放弃"})
    restart(flow, iid, "wang", flow.task_of(iid, "wang"), "node_one", "sid-restartevent")
    flow.execute(iid, "li", "DISAGREE", "不再申请")
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result) == ("TERMINATED", "")
