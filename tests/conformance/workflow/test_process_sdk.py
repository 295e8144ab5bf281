"""Process instances through the official SDK: every approver kind and mode, routes, parallel branches, CC,
empty-approver policies, refusal, terminate, delete, update, searches, definitions and history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.sdk import expect_error
from tests.conformance.workflow.conftest import APP2, FLOW_ALL, FLOW_FORMS, Flow
from tests.conftest import FIXTURES, ServerProcess, load_fixture_bundle


def records_of(flow: Flow, form: str) -> int:
    rows = flow.sql(
        "SELECT count(*) AS n FROM form_instance fi JOIN form f ON f.id = fi.form_pk WHERE f.form_uuid = :f",
        {"f": form},
    )
    return int(rows[0]["n"])


# ------------------------------------------------------------------------------------ start, ids, records


def test_start_creates_one_id_for_the_record_and_its_approval(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 2, "textField_reason": "病假"})
    body = flow.instance(iid)
    assert body.process_instance_id == iid
    assert (body.instance_status, body.approved_result) == ("RUNNING", "")
    assert body.process_code == "TPROC--FLOW-LEAVE" and body.form_uuid == "FORM-FLOW-LEAVE"
    assert body.title == "李员工发起的请假单"
    assert body.originator.user_id == "li" and body.originator.name.name_in_chinese == "李员工"
    assert body.originator.dept_name == "华东销售"
    assert [p.user_id for p in body.action_executor] == ["chen"]
    assert body.data["numberField_days"] == 2 and body.data["textField_reason"] == "病假"
    assert body.version == 1 and body.create_time_gmt.endswith("Z")
    # The same id is the form record: readable and searchable through the form API, with its status.
    record = flow.call("get_form_data_by_id", iid, user="li").body
    assert record.form_inst_id == iid and record.form_data["numberField_days"] == 2
    found = flow.call(
        "search_form_datas",
        user="adm",
        form_uuid="FORM-FLOW-LEAVE",
        search_field_json=json.dumps({"instanceStatus": "RUNNING", "textField_reason": "病假"}),
        page_size=100,
    ).body
    assert iid in [d.form_instance_id for d in found.data]


def test_receipt_forms_cannot_start_and_process_forms_cannot_be_saved(flow: Flow) -> None:
    expect_error(
        lambda: flow.start("FORM-FLOW-PLAIN", {"textField_title": "x"}),
        "failure.operation.receiptFormCanNotStartInstance",
        400,
    )
    expect_error(
        lambda: flow.call(
            "save_form_data", user="li", form_uuid="FORM-FLOW-LEAVE", form_data_json=json.dumps({"numberField_days": 1})
        ),
        "failure.operation.processFormCanNotSaveReceiptFormData",
        400,
    )


def test_bad_input_is_refused_and_writes_nothing(flow: Flow) -> None:
    before = records_of(flow, "FORM-FLOW-LEAVE")
    events_before = len(flow.sql("SELECT id FROM outbox_event"))
    cases = [
        ({"numberField_days": "many"}, {}, "invalidParameter.parameter.expectDoubleButNonNumeric"),
        ({"textField_reason": "no days"}, {}, "invalidState.form.invalidFormData"),
        ({"numberField_days": 1, "textField_nope": 1}, {}, "invalidState.form.invalidFormData"),
        ({"numberField_days": 1}, {"process_code": "TPROC--OTHER"}, "invalidParameter.parameter.error"),
        ({"numberField_days": 1}, {"department_id": "100"}, "invalidParameter.parameter.error"),
        ({"numberField_days": 1}, {"department_id": "abc"}, "invalidParameter.parameter.error"),
        ({"numberField_days": 1}, {"process_data": "not json"}, "invalidParameter.parameter.error"),
    ]
    for data, extra, code in cases:
        expect_error(lambda d=data, e=extra: flow.start("FORM-FLOW-LEAVE", d, **e), code, 400)  # type: ignore[misc]
    expect_error(
        lambda: flow.call("start_instance", user="li", form_uuid="FORM-FLOW-LEAVE"),
        "invalidParameter.parameter.parameterIsEmpty",
        400,
    )
    assert records_of(flow, "FORM-FLOW-LEAVE") == before
    assert len(flow.sql("SELECT id FROM outbox_event")) == events_before


def test_department_id_names_one_of_the_originators_departments(flow: Flow) -> None:
    # li belongs to 110 (main) and 200; starting from 200 makes the department head chain start there.
    iid = flow.start("FORM-FLOW-PAR", {"employeeField_reviewer": ["sun"]}, department_id="200")
    # Level 2 above 财务部 (200) is the root (1): boss. zhao heads 200 itself (level 1).
    assert flow.assignees(iid) == ["boss", "sun"]
    row = flow.sql("SELECT department_id FROM process_instance WHERE instance_id = :i", {"i": iid})[0]
    assert row["department_id"] == 200


# -------------------------------------------------------------------------------- approver kinds, modes


def test_manager_condition_route_countersign_and_cc(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 5})
    assert flow.assignees(iid) == ["chen"]  # li's manager (level 1)
    flow.execute(iid, "chen")
    assert flow.assignees(iid) == ["qian", "zhao"]  # days > 3: role 9001, countersign
    flow.execute(iid, "zhao")
    assert flow.assignees(iid) == ["qian"]  # countersign waits for everyone
    assert flow.instance(iid).instance_status == "RUNNING"
    flow.execute(iid, "qian")
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result, body.action_executor) == ("COMPLETED", "agree", [])
    cc = flow.sql(
        "SELECT n.user_id, n.node_id FROM process_notification n JOIN process_instance pi"
        " ON pi.id = n.process_instance_pk WHERE pi.instance_id = :i AND n.kind = 'cc'",
        {"i": iid},
    )
    assert cc == [{"user_id": "sun", "node_id": "node_cc"}]


def test_short_leave_takes_the_default_branch(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 3})
    flow.execute(iid, "chen")
    assert flow.instance(iid).instance_status == "COMPLETED"


def test_or_sign_first_decision_cancels_the_others(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-OR", {"textField_title": "或签"}, user="liu")
    assert flow.assignees(iid) == ["chen", "wang", "zhao"]
    flow.execute(iid, "zhao")
    statuses = flow.sql(
        "SELECT t.assignee_user_id, t.status, t.result FROM task t JOIN process_instance pi"
        " ON pi.id = t.process_instance_pk WHERE pi.instance_id = :i ORDER BY t.id",
        {"i": iid},
    )
    assert statuses == [
        {"assignee_user_id": "wang", "status": "CANCELED", "result": None},
        {"assignee_user_id": "chen", "status": "CANCELED", "result": None},
        {"assignee_user_id": "zhao", "status": "COMPLETED", "result": "agree"},
    ]
    assert flow.instance(iid).approved_result == "agree"


def test_sequential_then_vote(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-SEQ", {"textField_title": "依次"})
    assert flow.assignees(iid) == ["wang"]  # one by one, in order
    flow.execute(iid, "wang")
    assert flow.assignees(iid) == ["chen"]
    flow.execute(iid, "chen")
    assert flow.assignees(iid) == ["qian", "sun", "zhao", "zhou"]
    flow.execute(iid, "zhao")
    flow.execute(iid, "sun", "DISAGREE", "不同意")
    assert flow.instance(iid).instance_status == "RUNNING"
    flow.execute(iid, "qian")  # 2 of 4 agree: the 0.5 ratio passes
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result) == ("COMPLETED", "agree")


def test_vote_fails_when_the_ratio_can_no_longer_be_reached(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-SEQ", {"textField_title": "投票失败"})
    flow.execute(iid, "wang")
    flow.execute(iid, "chen")
    for user in ("zhao", "qian", "sun"):
        flow.execute(iid, user, "DISAGREE")
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result) == ("COMPLETED", "disagree")


def test_parallel_branches_department_head_field_choice_and_originator(flow: Flow) -> None:
    choice = json.dumps([{"key": "__optionalApproval_node_pick", "value": ["sun", "zhou"]}])
    iid = flow.start("FORM-FLOW-PAR", {"employeeField_reviewer": ["zhao"]}, process_data=choice)
    # Branch 1: head of li's department two levels up (110 → 100: wang); branch 2: the EmployeeField.
    assert flow.assignees(iid) == ["wang", "zhao"]
    flow.execute(iid, "zhao")
    assert flow.assignees(iid) == ["wang"]  # the join waits for every branch
    flow.execute(iid, "wang")
    assert flow.assignees(iid) == ["sun", "zhou"]  # chosen by the originator, countersign
    flow.execute(iid, "sun")
    flow.execute(iid, "zhou")
    assert flow.assignees(iid) == ["li"]  # the originator confirms
    flow.execute(iid, "li")
    assert flow.instance(iid).instance_status == "COMPLETED"
    cc = flow.sql(
        "SELECT n.user_id FROM process_notification n JOIN process_instance pi ON pi.id = n.process_instance_pk"
        " WHERE pi.instance_id = :i AND n.kind = 'cc'",
        {"i": iid},
    )
    assert cc == [{"user_id": "boss"}]


def test_process_data_is_checked(flow: Flow) -> None:
    wrong_node = json.dumps([{"key": "__optionalApproval_node_head", "value": ["sun"]}])
    expect_error(
        lambda: flow.start("FORM-FLOW-PAR", {}, process_data=wrong_node), "invalidParameter.parameter.error", 400
    )
    ghost = json.dumps([{"key": "__optionalApproval_node_pick", "value": ["ghost"]}])
    expect_error(lambda: flow.start("FORM-FLOW-PAR", {}, process_data=ghost), "invalidParameter.parameter.error", 400)
    # An object {nodeId: [users]} works too; nobody chosen for an originator-choice node skips it.
    iid = flow.start("FORM-FLOW-PAR", {}, process_data=json.dumps({"node_pick": ["boss"]}))
    assert flow.assignees(iid) == ["wang"]  # the reviewer field is empty: that branch is skipped
    flow.execute(iid, "wang")
    assert flow.assignees(iid) == ["boss"]


def test_empty_approvers_skip_fall_back_to_admin_or_fail(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-EMPTY", {"textField_title": "空"})
    assert flow.assignees(iid) == ["adm"]  # node_skip skipped; node_admin falls back to the app admin
    kinds = [r.operate_type for r in flow.call("get_operation_records", process_instance_id=iid).body.result]
    assert kinds[:3] == ["NEW_PROCESS", "SKIP_TASK", "FALLBACK_TO_ADMIN"]
    flow.execute(iid, "adm")
    assert flow.instance(iid).instance_status == "COMPLETED"
    before = records_of(flow, "FORM-FLOW-FAIL")
    err = expect_error(
        lambda: flow.start("FORM-FLOW-FAIL", {"textField_title": "失败"}), "invalidParameter.parameter.error", 400
    )
    assert "node_fail" in err.message
    assert records_of(flow, "FORM-FLOW-FAIL") == before


def test_refusal_policies_continue_and_return(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-REFUSE", {"textField_title": "拒绝"})
    flow.execute(iid, "wang", "DISAGREE", "先不同意")  # onRefuse: continue
    assert flow.assignees(iid) == ["chen"]
    flow.execute(iid, "chen", "DISAGREE", "退回去")  # onRefuse: return to the previous approver
    assert flow.assignees(iid) == ["wang"]
    flow.execute(iid, "wang")
    flow.execute(iid, "chen")
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result) == ("COMPLETED", "agree")


def test_refusal_ends_the_instance_as_disagree_and_records_show_it(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 1, "textField_reason": "拒绝我"})
    flow.execute(iid, "chen", "DISAGREE", "不批")
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result) == ("COMPLETED", "disagree")
    condition = [
        {"key": "processApprovedResult", "value": ["disagree"], "type": "ARRAY", "operator": "in"},
        {"key": "textField_reason", "value": "拒绝我", "type": "TEXT", "operator": "eq"},
    ]
    found = flow.call(
        "search_form_datas", form_uuid="FORM-FLOW-LEAVE", search_field_json=json.dumps(condition), page_size=100
    ).body
    assert [d.form_instance_id for d in found.data] == [iid]
    events = [(e["EventType"], e["type"], e.get("result")) for e in flow.events(iid)]
    assert events[-2:] == [("bpms_task_change", "finish", "refuse"), ("bpms_instance_change", "finish", "refuse")]


# ------------------------------------------------------------------------ terminate, delete, update


def test_terminate_by_originator_or_admin_only(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "终止"})
    expect_error(
        lambda: flow.call("terminate_instance", user="zhao", process_instance_id=iid),
        "noPermission.permission.deny",
        400,
    )
    flow.call("terminate_instance", user="li", process_instance_id=iid)
    body = flow.instance(iid)
    assert (body.instance_status, body.approved_result, body.action_executor) == ("TERMINATED", "", [])
    task = flow.sql(
        "SELECT t.status FROM task t JOIN process_instance pi ON pi.id = t.process_instance_pk"
        " WHERE pi.instance_id = :i",
        {"i": iid},
    )
    assert task == [{"status": "TERMINATED"}]
    assert [(e["type"], e.get("result")) for e in flow.events(iid)][-2:] == [("cancel", None), ("terminate", None)]
    expect_error(
        lambda: flow.call("terminate_instance", user="adm", process_instance_id=iid),
        "invalidState.instance.instanceStatusHasChanged",
        400,
    )


def test_delete_is_for_app_admins_and_terminates_first(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "删除"})
    expect_error(
        lambda: flow.call("delete_instance", user="li", process_instance_id=iid), "noPermission.permission.deny", 400
    )
    flow.call("delete_instance", user="adm", process_instance_id=iid)
    expect_error(lambda: flow.instance(iid), "invalidState.form.dataDoesNotExistOrIsDeleted", 400)
    assert flow.sql("SELECT id FROM process_instance WHERE instance_id = :i", {"i": iid}) == []
    assert [e["type"] for e in flow.events(iid)][-3:] == ["cancel", "terminate", "delete"]
    expect_error(
        lambda: flow.call("delete_instance", user="adm", process_instance_id=iid),
        "invalidState.form.dataDoesNotExistOrIsDeleted",
        400,
    )


def test_update_changes_values_that_later_routes_read(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 2, "textField_reason": "短假"})
    expect_error(
        lambda: flow.call(
            "update_instance", user="sun", process_instance_id=iid, update_form_data_json='{"numberField_days": 9}'
        ),
        "noPermission.permission.deny",
        400,
    )
    expect_error(
        lambda: flow.call(
            "update_instance", user="li", process_instance_id=iid, update_form_data_json='{"numberField_days": "x"}'
        ),
        "invalidParameter.parameter.expectDoubleButNonNumeric",
        400,
    )
    flow.call("update_instance", user="li", process_instance_id=iid, update_form_data_json='{"numberField_days": 9}')
    assert flow.instance(iid).data["numberField_days"] == 9
    flow.execute(iid, "chen")
    assert flow.assignees(iid) == ["qian", "zhao"]  # the route saw 9 days


# ----------------------------------------------------------------------------------------- searches


def test_get_instances_and_id_list_with_filters_paging_and_order(flow: Flow) -> None:
    marker = "检索-" + str(id(flow))
    ids = [flow.start("FORM-FLOW-TWO", {"textField_title": marker, "numberField_amount": n}) for n in (10, 20, 30)]
    flow.call("terminate_instance", user="li", process_instance_id=ids[0])
    flow.execute(ids[1], "wang")
    flow.execute(ids[1], "chen")
    search = json.dumps({"textField_title": marker})

    def listed(**filters: object) -> list[str]:
        body = flow.call("get_instance_id_list", form_uuid="FORM-FLOW-TWO", search_field_json=search, **filters).body
        return list(body.data)

    assert set(listed()) == set(ids)
    assert listed(instance_status="TERMINATED") == [ids[0]]
    assert listed(instance_status="COMPLETED", approved_result="agree") == [ids[1]]
    assert listed(instance_status="RUNNING") == [ids[2]]
    assert listed(instance_status="running", approved_result="") == [ids[2]]  # any case, as executeTask's outResult
    for typo in ({"instance_status": "RUNING"}, {"approved_result": "yes"}):  # refused, not an empty answer
        expect_error(lambda typo=typo: listed(**typo), "invalidParameter.parameter.error", 400)
    assert listed(originator_id="wang") == []
    task_id = flow.task_of(ids[2], "wang")
    assert listed(task_id=str(task_id)) == [ids[2]]
    page = flow.call(
        "get_instances",
        form_uuid="FORM-FLOW-TWO",
        search_field_json=search,
        order_config_json=json.dumps({"numberField_amount": "-"}),
        page_number=1,
        page_size=2,
    ).body
    assert page.total_count == 3 and page.page_number == 1
    assert [d.process_instance_id for d in page.data] == [ids[2], ids[1]]
    first = page.data[0]
    assert first.instance_status == "RUNNING" and [p.user_id for p in first.action_executor] == ["wang"]
    assert first.originator.dept_name == "华东销售" and first.data["numberField_amount"] == 30
    # Non-admins see the instances they originated or take part in (see test_visibility_sdk.py).
    mine = flow.call("get_instance_id_list", user="chen", form_uuid="FORM-FLOW-TWO", search_field_json=search).body
    assert mine.data == [ids[1]]  # chen's node was reached only there
    expect_error(
        lambda: flow.call("get_instances", form_uuid="FORM-FLOW-PLAIN"), "invalidParameter.parameter.error", 400
    )


def test_get_instances_by_id_list(flow: Flow) -> None:
    a = flow.start("FORM-FLOW-TWO", {"textField_title": "批量A"})
    b = flow.start("FORM-FLOW-OR", {"textField_title": "批量B"})
    body = flow.call("get_instances_by_id_list", process_instance_ids=f"{b},FINST-NOPE,{a}").body
    assert [r.process_instance_id for r in body.result] == [b, a]
    assert body.result[1].originator.department_name == "华东销售"
    assert [p.user_id for p in body.result[1].action_executor] == ["wang"]
    only_two = flow.call("get_instances_by_id_list", process_instance_ids=f"{a},{b}", form_uuid="FORM-FLOW-TWO").body
    assert [r.process_instance_id for r in only_two.result] == [a]
    as_json = flow.call("get_instances_by_id_list", process_instance_ids=json.dumps([b, "FINST-NOPE", a])).body
    assert [r.process_instance_id for r in as_json.result] == [b, a]  # a JSON array is read too
    for empty in (" , ", "[]"):
        expect_error(
            lambda empty=empty: flow.call("get_instances_by_id_list", process_instance_ids=empty),
            "invalidParameter.process.emptyProcessInstanceIds",
            400,
        )


def test_yida_2_variants_with_aliases(flow: Flow) -> None:
    iid = flow.call(
        "start_instance",
        version=2,
        user="li",
        form_uuid="FORM-FLOW-LEAVE",
        form_data_json=json.dumps({"numberField_days": 1, "reason": "别名"}),
        use_alias=True,
    ).body.result
    got = flow.call("get_instance_by_id", iid, version=2, use_alias=True, form_uuid="FORM-FLOW-LEAVE").body
    assert got.data["reason"] == "别名" and got.instance_status == "RUNNING"
    plain = flow.call("get_instance_by_id", iid, version=2).body
    assert plain.data["textField_reason"] == "别名"
    ids = flow.call(
        "get_instance_id_list",
        version=2,
        form_uuid="FORM-FLOW-LEAVE",
        search_field_json=json.dumps({"reason": "别名"}),
        use_alias=True,
    ).body
    assert iid in ids.data
    found = flow.call(
        "get_instances",
        version=2,
        form_uuid="FORM-FLOW-LEAVE",
        search_field_json=json.dumps({"reason": "别名"}),
        use_alias=True,
    ).body
    assert [d.data["reason"] for d in found.data if d.process_instance_id == iid] == ["别名"]


# ------------------------------------------------------------------- definitions, activities, history


def test_activity_list_and_process_definition(flow: Flow) -> None:
    acts = flow.call("get_activity_list", process_code="TPROC--FLOW-LEAVE").body.result
    assert [(a.activity_id, a.activity_name) for a in acts] == [
        ("sid-restartevent", "发起"),
        ("node_mgr", "主管审批"),
        ("node_fin", "财务会签"),
        ("node_cc", "抄送孙助理"),
    ]
    english = flow.call("get_activity_list", process_code="TPROC--FLOW-LEAVE", language="en_US").body.result
    assert english[1].activity_name == "Manager" and english[1].activity_name_in_english == "Manager"
    expect_error(
        lambda: flow.call("get_activity_list", process_code="TPROC--NOPE"), "invalidParameter.parameter.error", 400
    )
    iid = flow.start("FORM-FLOW-LEAVE", {"numberField_days": 4})
    flow.execute(iid, "chen")
    definition = flow.call("get_process_definition", iid).body
    assert definition.process_instance_id == iid and definition.status == "RUNNING"
    assert definition.form_uuid == "FORM-FLOW-LEAVE" and definition.originator.user_id == "li"
    assert sorted(o.user_id for o in definition.owners) == ["qian", "zhao"]
    assert [(t.actioner_id, t.status, t.activity.activity_id) for t in definition.tasks] == [
        ("chen", "COMPLETED", "node_mgr"),
        ("zhao", "RUNNING", "node_fin"),
        ("qian", "RUNNING", "node_fin"),
    ]
    assert definition.variables == {"numberField_days": 4}


def test_operation_records_history_then_todo(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "记录"})
    flow.execute(iid, "wang", remark="同意一审", digital_sign_url="https://sign.example/wang.png")
    records = flow.call("get_operation_records", user="li", process_instance_id=iid).body.result
    assert [(r.type, r.operate_type, r.action_exit, r.activity_id, r.operator_user_id) for r in records] == [
        ("HISTORY", "NEW_PROCESS", "submit", "sid-restartevent", "li"),
        ("HISTORY", "EXECUTE_TASK_NORMAL", "agree", "node_one", "wang"),
        ("TODO", "EXECUTE_TASK_NORMAL", "doing", "node_two", "chen"),
    ]
    submit, agreed, todo = records
    assert submit.task_id == "null" and submit.show_name == "发起" and submit.operator_name == "李员工"
    assert agreed.remark == "同意一审" and agreed.digital_sign == "https://sign.example/wang.png"
    assert agreed.show_name == "一审" and agreed.task_id.isdigit() and agreed.task_hold_time_gmt >= 0
    assert todo.task_id == str(flow.task_of(iid, "chen"))
    expect_error(
        lambda: flow.call("get_operation_records", user="zhou", process_instance_id=iid),
        "noPermission.permission.deny",
        400,
    )


# ------------------------------------------------------------------------ versions, restarts, access


def test_running_instances_keep_their_definition_version(flow: Flow, tmp_path: Path) -> None:
    source = (FIXTURES / "corp_flow.yaml").read_text()
    old = flow.call(
        "start_instance",
        app=APP2,
        user="li",
        form_uuid="FORM-FLOW2-ONE",
        form_data_json=json.dumps({"textField_title": "旧版本"}),
    ).body.result
    changed = source.replace(
        "            - approver: {id: node_x, name: 审批, who: {users: [wang]}}",
        "            - approver: {id: node_y, name: 新审批, who: {users: [chen]}}",
    )
    assert changed != source
    (tmp_path / "corp_flow.yaml").write_text(changed)
    load_fixture_bundle(str(flow.url), str(tmp_path / "corp_flow.yaml"))
    fresh = ServerProcess(flow.url)  # sees the new version at once (running servers within ZIDA_CACHE_SECONDS)
    try:
        second = Flow(fresh, flow.url)
        new = second.call(
            "start_instance",
            app=APP2,
            user="li",
            form_uuid="FORM-FLOW2-ONE",
            form_data_json=json.dumps({"textField_title": "新版本"}),
        ).body.result
        tasks_old = second.call("get_running_tasks", app=APP2, user="zhou", process_instance_id=old).body.result
        tasks_new = second.call("get_running_tasks", app=APP2, user="zhou", process_instance_id=new).body.result
        assert [(t.activity_id, t.actual_actioner_id) for t in tasks_old] == [("node_x", "wang")]
        assert [(t.activity_id, t.actual_actioner_id) for t in tasks_new] == [("node_y", "chen")]
        second.call(
            "execute_task",
            app=APP2,
            user="wang",
            process_instance_id=old,
            task_id=int(tasks_old[0].task_id),
            out_result="AGREE",
            remark="",
        )
        old_body = second.call("get_instance_by_id", old, app=APP2, user="zhou").body
        assert (old_body.instance_status, old_body.version) == ("COMPLETED", 1)
        assert second.call("get_instance_by_id", new, app=APP2, user="zhou").body.version == 2
        second.call("terminate_instance", app=APP2, user="zhou", process_instance_id=new)
    finally:
        fresh.stop()
        load_fixture_bundle(str(flow.url), "corp_flow.yaml")


def test_a_waiting_instance_survives_a_server_restart(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "重启"})
    flow.execute(iid, "wang")
    other = ServerProcess(flow.url)  # a fresh process: nothing but the database is shared
    try:
        second = Flow(other, flow.url)
        second.execute(iid, "chen")
        assert second.instance(iid).instance_status == "COMPLETED"
    finally:
        other.stop()
    assert flow.instance(iid).approved_result == "agree"


@pytest.mark.parametrize(
    ("api", "fields"),
    [
        ("get_instance_id_list", {"form_uuid": "FORM-FLOW-TWO"}),
        ("get_operation_records", {"process_instance_id": "FINST-X"}),
        ("get_activity_list", {"process_code": "TPROC--FLOW-TWO"}),
    ],
)
def test_read_apis_need_the_process_read_scope(flow: Flow, api: str, fields: dict[str, str]) -> None:
    expect_error(
        lambda: flow.call(api, credential=FLOW_FORMS, **fields),
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
        403,
    )


def test_access_matrix_of_instances(flow: Flow) -> None:
    iid = flow.start("FORM-FLOW-TWO", {"textField_title": "权限"})
    expect_error(
        lambda: flow.sdk.call("get_instance_by_id", iid, token=None, **{"app_type": "APP_FLOW1"}),
        "AuthenticationFailed.MissingParameter",
        400,
    )
    expect_error(
        lambda: flow.sdk.call(
            "get_instance_by_id", iid, token="bogus", app_type="APP_FLOW1", system_token="x", user_id="adm"
        ),
        "InvalidAuthentication",
        400,
    )
    expect_error(
        lambda: flow.call("get_instance_by_id", iid, app={"app_type": "APP_FLOW1", "system_token": "WRONG"}),
        "invalidParameter.parameter.accessKeyNotMatch",
        400,
    )
    expect_error(lambda: flow.call("get_instance_by_id", iid, user="ghost"), "failure.user.userNotExist", 400)
    # Another app of the corp, and another corp, do not see it.
    expect_error(
        lambda: flow.call("get_instance_by_id", iid, app=APP2, user="zhou"),
        "invalidState.form.dataDoesNotExistOrIsDeleted",
        400,
    )
    expect_error(
        lambda: flow.sdk.call(
            "get_instance_by_id", iid, app_type="APP_A1", system_token="ST-A1-SECRET-TOKEN", user_id="admin1"
        ),
        "invalidState.form.dataDoesNotExistOrIsDeleted",
        400,
    )
    # Participants see it; bystanders do not.
    assert flow.instance(iid, user="wang").process_instance_id == iid
    expect_error(lambda: flow.instance(iid, user="zhou"), "noPermission.permission.deny", 400)
    assert flow.call("get_instance_by_id", iid, credential=FLOW_ALL).body.title == "李员工发起的两级审批"


def test_waiting_instances_survive_a_restart_of_the_server(flow: Flow) -> None:
    """Every step of a manager → countersign flow on a freshly started ``zida serve`` (nothing kept in memory)."""

    def on_new_server(step: Callable[[Flow], Any]) -> Any:
        server = ServerProcess(flow.url)
        try:
            return step(Flow(server, flow.url))
        finally:
            server.stop()

    def read_then_execute(user: str, assignees: list[str]) -> Callable[[Flow], None]:
        def step(f: Flow) -> None:
            assert f.assignees(iid) == assignees
            f.execute(iid, user)

        return step

    # Each step starts on a server that has seen none of the steps before: what it reads, it reads from the database.
    iid = on_new_server(lambda f: f.start("FORM-FLOW-LEAVE", {"numberField_days": 5}))
    on_new_server(read_then_execute("chen", ["chen"]))
    on_new_server(read_then_execute("zhao", ["qian", "zhao"]))
    on_new_server(read_then_execute("qian", ["qian"]))
    body, history = on_new_server(
        lambda f: (f.instance(iid), f.call("get_operation_records", process_instance_id=iid).body.result)
    )
    assert (body.instance_status, body.approved_result) == ("COMPLETED", "agree")
    assert [(r.operator_user_id, r.operate_type) for r in history if r.operate_type == "EXECUTE_TASK_NORMAL"] == [
        ("chen", "EXECUTE_TASK_NORMAL"),
        ("zhao", "EXECUTE_TASK_NORMAL"),
        ("qian", "EXECUTE_TASK_NORMAL"),
    ]
